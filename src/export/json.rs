//! A read-only JSON tree that borrows from the stored bytes.
//!
//! Exports read every submission twice; building `serde_json::Value`s (an allocation per string,
//! a hashed map per object) was most of their time. This tree borrows strings without escapes
//! and keeps objects as small vectors searched in order, which suits questionnaires of a few
//! dozen fields.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

#[derive(Clone, Debug, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// Parses `bytes`, borrowing from them.
    pub fn parse(bytes: &'a [u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(bytes)
    }

    /// A member of an object; the last of that name, as validation read it (only records
    /// stored before repeated keys were refused can have two).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at a path of member names.
    pub fn at(&self, path: &[String]) -> Option<&Json<'a>> {
        path.iter().try_fold(self, |v, key| v.get(key))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Compact JSON text, for values that have no column of their own.
    pub fn to_json_string(&self) -> String {
        serde_json::Value::from(self).to_string()
    }
}

impl From<&Json<'_>> for serde_json::Value {
    fn from(json: &Json<'_>) -> Self {
        match json {
            Json::Null => Self::Null,
            Json::Bool(b) => Self::Bool(*b),
            Json::Number(n) => Self::Number(n.clone()),
            Json::String(s) => Self::String(s.to_string()),
            Json::Array(items) => Self::Array(items.iter().map(Self::from).collect()),
            Json::Object(members) => Self::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.to_string(), Self::from(v)))
                    .collect(),
            ),
        }
    }
}

/// Which members to keep when parsing: a tree of member names. Array items pass through, so a
/// filter for `members` → `id_number` keeps every labourer's ID number and nothing else of them.
#[derive(Debug, Default)]
pub struct Filter {
    members: Vec<(String, Filter)>,
    /// Keep this value whole.
    whole: bool,
}

impl Filter {
    /// Keeps the value at `path` (and what is below it).
    pub fn keep(&mut self, path: &[String]) {
        let Some((first, rest)) = path.split_first() else {
            self.whole = true;
            return;
        };
        let position = match self.members.iter().position(|(name, _)| name == first) {
            Some(i) => i,
            None => {
                self.members.push((first.clone(), Filter::default()));
                self.members.len() - 1
            }
        };
        self.members[position].1.keep(rest);
    }

    /// Parses bare answers (the `data` of an envelope) with what this filter keeps under `data`.
    pub fn parse_data<'a>(&self, bytes: &'a [u8]) -> serde_json::Result<Json<'a>> {
        match self.members.iter().find(|(name, _)| name == "data") {
            Some((_, data)) => data.parse(bytes),
            None => Ok(Json::Null),
        }
    }

    /// Parses only what this filter keeps; everything else is skipped without being built.
    pub fn parse<'a>(&self, bytes: &'a [u8]) -> serde_json::Result<Json<'a>> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let json = serde::de::DeserializeSeed::deserialize(Filtered(self), &mut deserializer)?;
        deserializer.end()?;
        Ok(json)
    }
}

struct Filtered<'f>(&'f Filter);

impl<'de, 'f> serde::de::DeserializeSeed<'de> for Filtered<'f> {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        if self.0.whole {
            return Json::deserialize(deserializer);
        }
        deserializer.deserialize_any(FilteredVisitor(self.0))
    }
}

struct FilteredVisitor<'f>(&'f Filter);

impl<'de> Visitor<'de> for FilteredVisitor<'_> {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
        JsonVisitor.visit_bool(b)
    }
    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
        JsonVisitor.visit_i64(n)
    }
    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
        JsonVisitor.visit_u64(n)
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
        JsonVisitor.visit_f64(n)
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        JsonVisitor.visit_borrowed_str(s)
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
        JsonVisitor.visit_str(s)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Filtered(self.0))? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            match self.0.members.iter().find(|(name, _)| *name == key) {
                Some((_, filter)) => members.push((key, map.next_value_seed(Filtered(filter))?)),
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Json::Object(members))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some((Key(key), value)) = map.next_entry()? {
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_borrowing_strings_and_keeps_member_order() {
        let text =
            br#"{"b": "plain", "a": "esc\"aped", "n": [1, -2, 2.5, true, null], "o": {"k": "v"}}"#;
        let json = Json::parse(text).unwrap();
        assert!(matches!(
            json.get("b"),
            Some(Json::String(Cow::Borrowed("plain")))
        ));
        assert_eq!(json.get("a").and_then(Json::as_str), Some("esc\"aped"));
        assert_eq!(
            json.at(&["o".into(), "k".into()]).and_then(Json::as_str),
            Some("v")
        );
        assert_eq!(
            json.get("n").and_then(Json::as_array).map(<[_]>::len),
            Some(5)
        );
        let value = serde_json::Value::from(&json);
        assert_eq!(
            value,
            serde_json::from_slice::<serde_json::Value>(text).unwrap()
        );
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["b", "a", "n", "o"]);
    }

    #[test]
    fn a_repeated_key_reads_last_wins_as_validation_did() {
        let json = Json::parse(br#"{"t": "first", "t": "last"}"#).unwrap();
        assert_eq!(json.get("t").and_then(Json::as_str), Some("last"));
        let value = serde_json::Value::from(&json);
        assert_eq!(value["t"], "last");
    }

    #[test]
    fn a_filter_keeps_only_the_paths_asked_for_through_arrays() {
        let text = br#"{"data": {"id": "h1", "skip": {"deep": [1, 2]}, "members": [{"id_number": "x1", "name": "n"}, {"name": "m"}]}, "meta": {"test": true}}"#;
        let mut filter = Filter::default();
        filter.keep(&["data".into(), "id".into()]);
        filter.keep(&["data".into(), "members".into(), "id_number".into()]);
        filter.keep(&["meta".into()]);
        let json = filter.parse(text).unwrap();
        let expected = serde_json::json!({"data": {"id": "h1", "members": [{"id_number": "x1"}, {}]}, "meta": {"test": true}});
        assert_eq!(serde_json::Value::from(&json), expected);
        assert!(filter.parse(b"{\"data\": ").is_err());
    }
}
