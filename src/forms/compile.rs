//! Compiling a form's JSON Schema and turning validation errors into details a phone can show.

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Registry, Validator};
use serde_json::Value;

use super::messages::{self, Lang, Problem};
use super::rules::RuleSet;
use crate::attachments::{self, Field};
use crate::error::Detail;
use crate::export::layout::Layout;

/// The only dialect we accept: forms are draft 2020-12.
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// At most this many errors are reported for one submission; the rest add nothing a person can act on.
const MAX_DETAILS: usize = 100;

/// A schema ready to check submissions: the JSON Schema validator and the `x-rules` beyond it.
#[derive(Debug)]
pub struct Compiled {
    pub validator: Validator,
    pub rules: RuleSet,
    /// The attachment questions, whose answers name files.
    pub attachments: Vec<Field>,
}

/// Compiles `schema` as draft 2020-12, offline, resolving `$ref`s against the `schemas/` library.
/// Why `pattern` is not a regular expression the validator takes, if it is not.
pub fn pattern_problem(pattern: &str) -> Option<String> {
    jsonschema::draft202012::options()
        .offline()
        .build(&serde_json::json!({ "pattern": pattern }))
        .err()
        .map(|e| e.to_string())
}

pub fn compile(schema: &Value, library: &Registry<'_>) -> Result<Compiled, String> {
    if let Some(dialect) = schema.get("$schema") {
        let declared = dialect.as_str().unwrap_or_default().trim_end_matches('#');
        if declared != DRAFT_2020_12 {
            return Err(format!(
                "$schema must be {DRAFT_2020_12} (forms are JSON Schema draft 2020-12)"
            ));
        }
    }
    let validator = jsonschema::draft202012::options()
        .offline()
        .with_registry(library)
        .should_validate_formats(true)
        .with_format("cn-resident-id", super::formats::is_resident_id)
        .with_format("cn-mobile", super::formats::is_mobile)
        .build(schema)
        .map_err(|e| e.to_string())?;
    Ok(Compiled {
        validator,
        rules: RuleSet::of(schema)?,
        attachments: attachments::fields(&Layout::of(schema)),
    })
}

/// Every way `data` fails the schema (or, once it passes, the rules), as JSON Pointers into
/// `data` with messages in `lang` that name the field and never echo a value.
pub fn errors(compiled: &Compiled, schema: &Value, data: &Value, lang: Lang) -> Vec<Detail> {
    errors_where(compiled, schema, data, lang, |_| true)
}

/// [`errors`], counting only the problems `keep` accepts: a register's row is a part of a
/// submission, so what it does not give (a required answer) is no problem of it.
pub fn errors_where(
    compiled: &Compiled,
    schema: &Value,
    data: &Value,
    lang: Lang,
    keep: impl Fn(&Detail) -> bool,
) -> Vec<Detail> {
    let detail = |path: String, keyword: &str, problem: Problem| Detail {
        message: messages::message(schema, &path, &problem, lang),
        keyword: Some(keyword.to_owned()),
        key: Some(problem.key.to_owned()),
        params: (!problem.params.is_empty()).then_some(problem.params),
        path,
    };
    // Most submissions are valid: the boolean check is much cheaper than collecting errors.
    let valid = compiled.validator.is_valid(data);
    let from_schema: Vec<Detail> = (!valid)
        .then(|| compiled.validator.iter_errors(data))
        .into_iter()
        .flatten()
        .map(|error| {
            let mut path = error.instance_path().as_str().to_owned();
            // A missing field is easiest to show on the field itself, not on its parent object.
            if let ValidationErrorKind::Required { property } = error.kind()
                && let Some(name) = property.as_str()
            {
                path.push('/');
                path.push_str(&name.replace('~', "~0").replace('/', "~1"));
            }
            let problem = Problem::of(error.kind(), error.instance(), || {
                error.masked().to_string()
            });
            detail(path, error.kind().keyword(), problem)
        })
        .filter(&keep)
        .take(MAX_DETAILS)
        .collect();
    if !from_schema.is_empty() {
        return from_schema;
    }
    let broken = compiled.rules.check(data).into_iter().map(|broken| {
        let mut problem = Problem::new(broken.key);
        if let Some(other) = broken.other {
            problem.params.insert("other".into(), Value::String(other));
        }
        detail(broken.path, broken.rule, problem)
    });
    let files = attachments::expected(&compiled.attachments, data);
    let names = attachments::name_problems(&files)
        .into_iter()
        .map(|(path, key)| detail(path, "contentMediaType", Problem::new(key)));
    broken.chain(names).filter(keep).collect()
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
        let compiled = compile(&schema, &library()).unwrap();
        let details = errors(&compiled, &schema, &json!({}), Lang::En);
        assert_eq!(details.len(), 1);
        assert_eq!(details[0].path, "/a~1b");
        assert_eq!(details[0].keyword.as_deref(), Some("required"));
    }

    #[test]
    fn each_kind_of_problem_has_a_catalogue_key_and_its_params() {
        let cases = [
            (json!({"required": ["a"]}), json!({}), "required", None),
            (json!({"type": "string"}), json!(1), "type.string", None),
            (
                json!({"type": "null"}),
                json!(1),
                "type.other",
                Some(json!({"type": "null"})),
            ),
            (
                json!({"format": "email"}),
                json!("x"),
                "format",
                Some(json!({"format": "email"})),
            ),
            (
                json!({"exclusiveMinimum": 0}),
                json!(0),
                "minimum",
                Some(json!({"limit": 0})),
            ),
            (
                json!({"exclusiveMaximum": 1.5}),
                json!(2),
                "maximum",
                Some(json!({"limit": 1.5})),
            ),
            (json!({"minLength": 1}), json!(""), "not_empty", None),
            (
                json!({"maxItems": 1}),
                json!([1, 2]),
                "max_items",
                Some(json!({"limit": 1})),
            ),
            (
                json!({"properties": {"a": false}}),
                json!({"a": 1}),
                "not_asked",
                None,
            ),
        ];
        for (schema, data, key, params) in cases {
            let compiled = compile(&schema, &library()).unwrap();
            let details = errors(&compiled, &schema, &data, Lang::En);
            assert_eq!(details.len(), 1, "{schema}");
            assert_eq!(details[0].key.as_deref(), Some(key), "{schema}");
            assert_eq!(
                details[0].params.clone().map(Value::Object),
                params,
                "{schema}"
            );
            assert!(Lang::Zh.template(key).is_some() && Lang::En.template(key).is_some());
        }
        let schema = json!({"not": {}});
        let compiled = compile(&schema, &library()).unwrap();
        let other = &errors(&compiled, &schema, &json!(1), Lang::Zh)[0];
        assert_eq!(other.key.as_deref(), Some("other"));
        assert_eq!(
            other.message,
            format!(
                "问卷：{}",
                other.params.as_ref().unwrap()["text"].as_str().unwrap()
            )
        );
    }

    #[test]
    fn messages_never_contain_the_rejected_value() {
        let schema = json!({"type": "object", "properties": {"id": {"type": "string", "pattern": "^[0-9]{18}$"}}});
        let compiled = compile(&schema, &library()).unwrap();
        let details = errors(
            &compiled,
            &schema,
            &json!({"id": "45102219800101123X-secret"}),
            Lang::En,
        );
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
        let compiled = compile(&schema, &library()).unwrap();
        let details = errors(&compiled, &schema, &json!("2026-02-30"), Lang::En);
        assert_eq!(details[0].keyword.as_deref(), Some("format"));
    }

    #[test]
    fn network_references_are_not_fetched() {
        let schema = json!({"$ref": "https://example.com/schema.json"});
        assert!(compile(&schema, &library()).is_err());
    }
}
