//! The syntax of form ids and version labels: they appear in URLs, file names and store keys.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A form's id, e.g. `labour-survey`: only ever built by [`FormId::parse`] (also when read from
/// the store), so anything holding one holds a name that is safe in a URL, a file name and a key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct FormId(String);

impl FormId {
    /// `None` unless `id` follows [`is_valid_form_id`].
    pub fn parse(id: &str) -> Option<Self> {
        is_valid_form_id(id).then(|| Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FormId {
    type Error = &'static str;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        if is_valid_form_id(&id) {
            Ok(Self(id))
        } else {
            Err("a form id has lower-case letters, digits, - and _, at most 64")
        }
    }
}

impl Borrow<str> for FormId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FormId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl utoipa::PartialSchema for FormId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[a-z0-9][a-z0-9_-]{0,63}$"))
            .into()
    }
}

impl utoipa::ToSchema for FormId {}

/// `labour-survey`: lower-case ASCII letters, digits, `-` and `_`, starting with a letter or digit, 1–64 long.
pub fn is_valid_form_id(id: &str) -> bool {
    is_label(id, 64, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
    })
}

/// `1`, `2026-03`, `1.2.0`: ASCII letters, digits, `.`, `-` and `_`, starting with a letter or digit, 1–32 long.
pub fn is_valid_version(version: &str) -> bool {
    is_label(version, 32, |c| {
        c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'
    })
}

fn is_label(s: &str, max_len: usize, allowed: impl Fn(char) -> bool) -> bool {
    let starts_well = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    starts_well && s.len() <= max_len && s.chars().all(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_ids_are_url_and_key_safe() {
        assert!(is_valid_form_id("labour-survey"));
        assert!(is_valid_form_id("a1_b"));
        for bad in [
            "",
            "-x",
            "Labour",
            "labour survey",
            "劳动力",
            "a/b",
            &"x".repeat(65),
        ] {
            assert!(!is_valid_form_id(bad), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_form_id_is_checked_when_parsed_and_when_read_back() {
        assert_eq!(
            FormId::parse("labour-survey").unwrap().as_str(),
            "labour-survey"
        );
        assert!(FormId::parse("Labour").is_none());
        let id: FormId = serde_json::from_str("\"labour-survey\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"labour-survey\"");
        assert!(serde_json::from_str::<FormId>("\"a/b\"").is_err());
    }

    #[test]
    fn versions_allow_dotted_and_dated_labels() {
        for good in ["1", "2026-03", "1.2.0", "v2_beta"] {
            assert!(is_valid_version(good), "{good:?} should be allowed");
        }
        for bad in ["", ".1", "1 2", "1/2", &"9".repeat(33)] {
            assert!(!is_valid_version(bad), "{bad:?} should be refused");
        }
    }
}
