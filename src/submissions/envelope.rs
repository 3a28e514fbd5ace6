//! The submission envelope a phone sends: `{id, form_version?, data, meta?}`.

use serde_json::Value;
use uuid::Uuid;

use crate::error::AppError;
use crate::strict_json;

/// The envelope, checked for shape (not yet against the form).
pub struct Envelope {
    /// The client's UUID: the submission's identity and idempotency key.
    pub id: Uuid,
    /// The form version the phone filled in; `None` means the current one.
    pub form_version: Option<String>,
    /// The answers, validated against the form version's schema.
    pub data: Value,
}

/// Envelope keys; anything else is refused so a misspelt `form_version` cannot silently fall back to the current version.
const KEYS: [&str; 4] = ["id", "form_version", "data", "meta"];

impl Envelope {
    /// Parses raw bytes: 400 if they are not JSON, 422 `request_invalid` if the envelope is
    /// malformed or repeats a key anywhere (pointer relative to the envelope).
    pub fn parse(raw: &[u8]) -> Result<Self, AppError> {
        let whole = strict_json::parse(raw).map_err(AppError::from)?;
        let Value::Object(mut object) = whole else {
            return Err(AppError::invalid_field("", "a submission is a JSON object"));
        };
        if let Some(unknown) = object.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(AppError::invalid_field(
                &format!("/{}", unknown.replace('~', "~0").replace('/', "~1")),
                "unknown envelope field; expected id, form_version, data and meta",
            ));
        }
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::try_parse(s).ok())
            .ok_or_else(|| AppError::invalid_field("/id", "id must be a UUID"))?;
        let form_version = match object.remove("form_version") {
            None | Some(Value::Null) => None,
            Some(Value::String(v)) => Some(v),
            Some(_) => {
                return Err(AppError::invalid_field(
                    "/form_version",
                    "form_version must be a string",
                ));
            }
        };
        if !matches!(
            object.get("meta"),
            None | Some(Value::Null | Value::Object(_))
        ) {
            return Err(AppError::invalid_field("/meta", "meta must be an object"));
        }
        let Some(data @ Value::Object(_)) = object.remove("data") else {
            return Err(AppError::invalid_field(
                "/data",
                "data must be an object with the answers",
            ));
        };
        Ok(Self {
            id,
            form_version,
            data,
        })
    }
}

/// Whether two envelopes (as received) say the same thing: key order and white space do not
/// matter, anything else does. Only called when an id is seen again, so parsing again is fine.
pub fn same_content(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (
        serde_json::from_slice::<Value>(a),
        serde_json::from_slice::<Value>(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "9f1c0b8e-1d2a-4c1e-9a39-3f0d5d2a7e11";

    fn parse(text: &str) -> Result<Envelope, AppError> {
        Envelope::parse(text.as_bytes())
    }

    fn path_of(error: AppError) -> String {
        match error {
            AppError::RequestInvalid(details) => details[0].path.clone(),
            other => panic!("expected request_invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_complete_envelope_parses() {
        let envelope = parse(&format!(
            r#"{{"id":"{ID}","form_version":"1","data":{{"a":1}},"meta":{{}}}}"#
        ))
        .unwrap();
        assert_eq!(envelope.id.to_string(), ID);
        assert_eq!(envelope.form_version.as_deref(), Some("1"));
    }

    #[test]
    fn not_json_is_malformed_not_invalid() {
        assert!(matches!(parse("{\"id\":"), Err(AppError::BodyMalformed(_))));
    }

    #[test]
    fn shape_errors_point_at_the_field() {
        assert_eq!(
            path_of(parse(r#"{"id":"nope","data":{}}"#).err().unwrap()),
            "/id"
        );
        assert_eq!(
            path_of(
                parse(&format!(r#"{{"id":"{ID}","data":[]}}"#))
                    .err()
                    .unwrap()
            ),
            "/data"
        );
        assert_eq!(
            path_of(
                parse(&format!(
                    r#"{{"id":"{ID}","data":{{}},"form_verison":"2"}}"#
                ))
                .err()
                .unwrap()
            ),
            "/form_verison"
        );
        assert_eq!(path_of(parse("[]").err().unwrap()), "");
    }

    #[test]
    fn a_repeated_key_anywhere_is_refused_at_its_second_occurrence() {
        let twice = format!(r#"{{"id":"{ID}","data":{{"a":1}},"data":{{"a":2}}}}"#);
        assert_eq!(path_of(parse(&twice).err().unwrap()), "/data");
        let inside = format!(r#"{{"id":"{ID}","data":{{"township":"a","township":"b"}}}}"#);
        assert_eq!(path_of(parse(&inside).err().unwrap()), "/data/township");
    }

    #[test]
    fn a_retry_with_other_key_order_is_the_same_content() {
        let first = format!(r#"{{"id":"{ID}","data":{{"a":1,"b":2}}}}"#);
        let retry = format!(r#"{{ "data": {{"b":2,"a":1}}, "id": "{ID}" }}"#);
        let changed = format!(r#"{{"id":"{ID}","data":{{"a":1,"b":3}}}}"#);
        assert!(same_content(first.as_bytes(), retry.as_bytes()));
        assert!(!same_content(first.as_bytes(), changed.as_bytes()));
    }
}
