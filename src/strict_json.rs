//! JSON as this server reads request bodies: a key repeated within one object is refused.
//!
//! RFC 8259 leaves repeated keys to each reader, and readers disagree (first wins, last wins,
//! error). A body read one way by validation and another way by an export would let unchecked
//! answers into the county's figures, so a repeated key anywhere is an error that names the
//! second occurrence by its JSON Pointer. Stored records from before this rule are read
//! last-wins everywhere, which is what their validation saw.

use std::cell::RefCell;
use std::fmt;

use serde::Deserialize as _;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a body could not be read strictly.
#[derive(Debug)]
pub enum StrictError {
    /// Not JSON at all (the parser's own message, which never quotes the text).
    Syntax(serde_json::Error),
    /// The JSON Pointer of a key's second occurrence in one object.
    Duplicate(String),
}

/// Parses `bytes`, refusing any repeated key.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictError> {
    read(bytes, None, true)
}

/// Checks only the keys of the outermost object (a batch wrapper: its items are judged one by
/// one, each with its own pointers); what is inside it reads as `null`.
pub fn outer(bytes: &[u8]) -> Result<Value, StrictError> {
    read(bytes, Some(1), true)
}

/// Whether `bytes` is JSON with a repeated key (a record stored before the rule). Lists ask this
/// of every record they show, so only keys are kept while looking.
pub fn has_duplicates(bytes: &[u8]) -> bool {
    matches!(read(bytes, None, false), Err(StrictError::Duplicate(_)))
}

/// Reads `bytes` strictly; below `depth_limit` nothing is looked at, and without `keep_values`
/// only the keys are (the value then says nothing of the document).
fn read(bytes: &[u8], depth_limit: Option<usize>, keep_values: bool) -> Result<Value, StrictError> {
    let found = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let seed = Strict {
        at: &At::ROOT,
        depth: 0,
        depth_limit,
        keep_values,
        found: &found,
    };
    let outcome = seed
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    match (outcome, found.into_inner()) {
        (_, Some(pointer)) => Err(StrictError::Duplicate(pointer)),
        (Ok(value), None) => Ok(value),
        (Err(error), None) => Err(StrictError::Syntax(error)),
    }
}

/// A place in the document, linked to its parent; turned into a pointer only when needed.
struct At<'a> {
    parent: Option<&'a At<'a>>,
    segment: Segment<'a>,
}

enum Segment<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl At<'_> {
    const ROOT: At<'static> = At {
        parent: None,
        segment: Segment::Root,
    };

    fn pointer(&self) -> String {
        let mut segments = Vec::new();
        let mut here = Some(self);
        while let Some(at) = here {
            match at.segment {
                Segment::Root => {}
                Segment::Key(key) => segments.push(key.replace('~', "~0").replace('/', "~1")),
                Segment::Index(i) => segments.push(i.to_string()),
            }
            here = at.parent;
        }
        segments.iter().rev().map(|s| format!("/{s}")).collect()
    }
}

#[derive(Clone, Copy)]
struct Strict<'s> {
    at: &'s At<'s>,
    depth: usize,
    depth_limit: Option<usize>,
    keep_values: bool,
    found: &'s RefCell<Option<String>>,
}

impl<'s> Strict<'s> {
    fn child<'c>(&self, at: &'c At<'c>) -> Strict<'c>
    where
        's: 'c,
    {
        Strict {
            at,
            depth: self.depth + 1,
            depth_limit: self.depth_limit,
            keep_values: self.keep_values,
            found: self.found,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.depth_limit.is_some_and(|limit| self.depth >= limit) {
            IgnoredAny::deserialize(deserializer)?;
            return Ok(Value::Null);
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(if self.keep_values {
            Value::String(s.to_owned())
        } else {
            Value::Null
        })
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        for index in 0.. {
            let at = At {
                parent: Some(self.at),
                segment: Segment::Index(index),
            };
            match seq.next_element_seed(self.child(&at))? {
                Some(item) if self.keep_values => items.push(item),
                Some(_) => {}
                None => break,
            }
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = At {
                parent: Some(self.at),
                segment: Segment::Key(&key),
            };
            if members.contains_key(&key) {
                *self.found.borrow_mut() = Some(at.pointer());
                return Err(serde::de::Error::custom(
                    "a key appears twice in one object",
                ));
            }
            let value = map.next_value_seed(self.child(&at))?;
            members.insert(key, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate(text: &str) -> Option<String> {
        match parse(text.as_bytes()) {
            Err(StrictError::Duplicate(pointer)) => Some(pointer),
            _ => None,
        }
    }

    #[test]
    fn a_repeated_key_is_named_by_the_pointer_of_its_second_occurrence() {
        assert_eq!(
            duplicate(r#"{"id":1,"data":{},"data":{}}"#).as_deref(),
            Some("/data")
        );
        assert_eq!(
            duplicate(r#"{"data":{"members":[{"a":1},{"a/b":1,"a/b":2}]}}"#).as_deref(),
            Some("/data/members/1/a~1b")
        );
        assert_eq!(duplicate(r#"{"a":{"b":1},"c":{"b":1}}"#), None);
    }

    #[test]
    fn documents_without_repeats_parse_as_serde_json_does() {
        let text = r#"{"b":[1,-2,2.5,true,null,"x\"y"],"a":{"k":"v"}}"#;
        let strict = parse(text.as_bytes()).unwrap();
        assert_eq!(strict, serde_json::from_str::<Value>(text).unwrap());
        let keys: Vec<&String> = strict.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["b", "a"]);
        assert!(matches!(parse(b"{\"a\":"), Err(StrictError::Syntax(_))));
        assert!(matches!(parse(b"{} []"), Err(StrictError::Syntax(_))));
    }

    #[test]
    fn the_outer_check_looks_only_at_the_outermost_keys() {
        let nested = br#"{"submissions":[{"id":1,"id":2}]}"#;
        assert_eq!(
            outer(nested).unwrap(),
            serde_json::json!({"submissions": null})
        );
        assert!(matches!(
            outer(br#"{"submissions":[],"submissions":[]}"#),
            Err(StrictError::Duplicate(p)) if p == "/submissions"
        ));
        assert!(has_duplicates(nested));
        assert!(!has_duplicates(br#"{"a":[{"b":1},{"b":2}]}"#));
    }
}
