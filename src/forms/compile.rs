//! Compiling a form's JSON Schema and turning validation errors into details a phone can show.

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Registry, Validator};
use serde_json::Value;

use crate::error::Detail;

/// The only dialect we accept: forms are draft 2020-12.
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// At most this many errors are reported for one submission; the rest add nothing a person can act on.
const MAX_DETAILS: usize = 100;

/// Compiles `schema` as draft 2020-12, offline, resolving `$ref`s against the `schemas/` library.
pub fn compile(schema: &Value, library: &Registry<'_>) -> Result<Validator, String> {
    if let Some(dialect) = schema.get("$schema") {
        let declared = dialect.as_str().unwrap_or_default().trim_end_matches('#');
        if declared != DRAFT_2020_12 {
            return Err(format!(
                "$schema must be {DRAFT_2020_12} (forms are JSON Schema draft 2020-12)"
            ));
        }
    }
    jsonschema::draft202012::options()
        .offline()
        .with_registry(library)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| e.to_string())
}

/// Every way `data` fails `validator`, as JSON Pointers into `data`; never echoes a value.
pub fn errors(validator: &Validator, data: &Value) -> Vec<Detail> {
    validator
        .iter_errors(data)
        .take(MAX_DETAILS)
        .map(|error| {
            let mut path = error.instance_path().as_str().to_owned();
            // A missing field is easiest to show on the field itself, not on its parent object.
            if let ValidationErrorKind::Required { property } = error.kind() {
                if let Some(name) = property.as_str() {
                    path.push('/');
                    path.push_str(&name.replace('~', "~0").replace('/', "~1"));
                }
            }
            Detail {
                path,
                keyword: Some(error.kind().keyword().to_owned()),
                message: error.masked().to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn library() -> Registry<'static> {
        Registry::new().prepare().unwrap()
    }

    #[test]
    fn other_dialects_are_refused() {
        let schema = json!({"$schema": "http://json-schema.org/draft-07/schema#"});
        assert!(
            compile(&schema, &library())
                .unwrap_err()
                .contains("2020-12")
        );
    }

    #[test]
    fn a_missing_field_is_reported_at_the_field() {
        let schema = json!({"type": "object", "properties": {"a/b": {}}, "required": ["a/b"]});
        let validator = compile(&schema, &library()).unwrap();
        let details = errors(&validator, &json!({}));
        assert_eq!(details.len(), 1);
        assert_eq!(details[0].path, "/a~1b");
        assert_eq!(details[0].keyword.as_deref(), Some("required"));
    }

    #[test]
    fn messages_never_contain_the_rejected_value() {
        let schema = json!({"type": "object", "properties": {"id": {"type": "string", "pattern": "^[0-9]{18}$"}}});
        let validator = compile(&schema, &library()).unwrap();
        let details = errors(&validator, &json!({"id": "45102219800101123X-secret"}));
        assert_eq!(details[0].path, "/id");
        assert!(
            !details[0].message.contains("secret"),
            "{}",
            details[0].message
        );
    }

    #[test]
    fn formats_are_asserted_not_just_annotated() {
        let schema = json!({"type": "string", "format": "date"});
        let validator = compile(&schema, &library()).unwrap();
        assert_eq!(
            errors(&validator, &json!("2026-02-30"))[0]
                .keyword
                .as_deref(),
            Some("format")
        );
    }

    #[test]
    fn network_references_are_not_fetched() {
        let schema = json!({"$ref": "https://example.com/schema.json"});
        assert!(compile(&schema, &library()).is_err());
    }
}
