//! What a form's schema must be, beyond valid JSON Schema, for this server to use it safely.
//!
//! - **References that mean one thing** (`refs.rs`): no `$id` below the root, no anchor twice.
//! - **No `$ref` cycles.** A recursive schema is valid JSON Schema, but exports flatten a form
//!   into tables and columns, and a recursive form has no end: refused, naming the cycle
//!   (references by pointer or anchor; `$dynamicRef` and `$recursiveRef` exist for recursion
//!   only, and are refused).
//! - **A bounded shape.** Even without a cycle, references can nest a form thousands of levels
//!   deep, or expand a small schema to millions of columns (two properties both referring to
//!   the next definition, twenty times over): at most 32 levels and 20,000 properties, counted
//!   with every reference followed (and 500,000 subschemas of any kind, so checking stays quick).
//! - **A scope field that always names a place.** `x-scope` points at the field that places a
//!   submission (the township); scoped users may only write inside their places. If that field
//!   could be missing, empty or not text, a scoped user could write county-wide.

use std::collections::HashMap;

use serde_json::Value;

use super::refs::Document;

/// Most subschemas a form may nest, references followed.
const MAX_DEPTH: usize = 32;
/// Most properties (questions, at every level) a form may expand to, references followed: each
/// is at least a column of an export.
const MAX_PROPERTIES: usize = 20_000;
/// Most subschemas of any kind (choices, conditions...) a form may expand to: a bound on the
/// work of checking it.
const MAX_EXPANDED: usize = 500_000;
/// Keywords made for recursive schemas.
const RECURSIVE: [&str; 2] = ["$dynamicRef", "$recursiveRef"];

/// Keywords whose value is one subschema.
const ONE: [&str; 11] = [
    "items",
    "additionalItems",
    "additionalProperties",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
];
/// Keywords whose value is an array of subschemas.
const LIST: [&str; 4] = ["prefixItems", "allOf", "anyOf", "oneOf"];
/// Keywords whose value maps names to subschemas.
const MAP: [&str; 5] = [
    "properties",
    "patternProperties",
    "dependentSchemas",
    "$defs",
    "definitions",
];

/// Every rule of this module, in the order that keeps each check finite: references first,
/// then cycles, then the bounded walk (which needs no cycles), then the scope field.
pub fn all(schema: &Value) -> Result<(), String> {
    let document = Document::new(schema);
    document.check()?;
    if let Some(cycle) = ref_cycle(&document) {
        return Err(format!(
            "the schema refers to itself ($ref cycle: {cycle}); a questionnaire must have an end"
        ));
    }
    bounded(&document)?;
    scope_field(&document)
}

/// The first `$ref` cycle, as the pointers along it (`#/$defs/node → … → #/$defs/node`).
fn ref_cycle(document: &Document<'_>) -> Option<String> {
    // Depth-first over subschemas and local `$ref`s, with an explicit stack: a long chain of
    // references must not be able to overflow ours either.
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state: HashMap<String, u8> = HashMap::new();
    let mut stack: Vec<(String, Vec<String>, usize)> = Vec::new();
    state.insert(String::new(), ON_PATH);
    stack.push((String::new(), next_schemas(document, ""), 0));
    while let Some((_, next, index)) = stack.last_mut() {
        let Some(child) = next.get(*index).cloned() else {
            if let Some((pointer, _, _)) = stack.pop() {
                state.insert(pointer, DONE);
            }
            continue;
        };
        *index += 1;
        match state.get(&child) {
            Some(&ON_PATH) => {
                let start = stack.iter().position(|(p, _, _)| *p == child)?;
                let mut path: Vec<String> = stack[start..]
                    .iter()
                    .map(|(p, _, _)| format!("#{p}"))
                    .collect();
                path.push(format!("#{child}"));
                return Some(path.join(" → "));
            }
            Some(_) => {}
            None => {
                state.insert(child.clone(), ON_PATH);
                let after = next_schemas(document, &child);
                stack.push((child, after, 0));
            }
        }
    }
    None
}

/// The pointers of the subschemas of the schema at `pointer`, and the target of its local `$ref`.
fn next_schemas(document: &Document<'_>, pointer: &str) -> Vec<String> {
    let Some(Value::Object(schema)) = document.root().pointer(pointer) else {
        return Vec::new();
    };
    let mut next = Vec::new();
    if let Some(target) = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| document.target_pointer(reference))
    {
        next.push(target);
    }
    let child = |keyword: &str, name: &str| format!("{pointer}/{keyword}/{}", escape(name));
    for (keyword, value) in schema {
        let keyword = keyword.as_str();
        match value {
            Value::Object(_) if ONE.contains(&keyword) => next.push(format!("{pointer}/{keyword}")),
            Value::Object(members) if MAP.contains(&keyword) => {
                next.extend(members.keys().map(|name| child(keyword, name)));
            }
            Value::Array(items) if LIST.contains(&keyword) || keyword == "items" => {
                next.extend((0..items.len()).map(|i| child(keyword, &i.to_string())));
            }
            _ => {}
        }
    }
    next
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Refuses a schema that nests deeper than `MAX_DEPTH`, or expands to more than
/// `MAX_PROPERTIES` properties or `MAX_EXPANDED` subschemas, with its references followed, or
/// that uses a keyword made for recursion. Only for a schema without cycles (`ref_cycle`): the
/// walk then ends, and the bounds keep it short.
fn bounded(document: &Document<'_>) -> Result<(), String> {
    let mut counts = Counts::default();
    expand(document, "", 0, &mut counts)
}

/// How much of a schema a walk has seen.
#[derive(Default)]
struct Counts {
    subschemas: usize,
    properties: usize,
}

fn expand(
    document: &Document<'_>,
    pointer: &str,
    depth: usize,
    counts: &mut Counts,
) -> Result<(), String> {
    counts.subschemas += 1;
    if pointer.rsplit('/').nth(1) == Some("properties") {
        counts.properties += 1;
    }
    if counts.properties > MAX_PROPERTIES || counts.subschemas > MAX_EXPANDED {
        return Err(format!(
            "with its references followed, the schema expands to more than {MAX_PROPERTIES} \
             questions (or {MAX_EXPANDED} parts); a questionnaire that large cannot be exported"
        ));
    }
    if depth > MAX_DEPTH {
        return Err(format!(
            "with its references followed, the schema nests deeper than {MAX_DEPTH} levels (at #{pointer})"
        ));
    }
    let schema = document.root().pointer(pointer);
    if let Some(keyword) = RECURSIVE
        .iter()
        .find(|keyword| schema.is_some_and(|s| s.get(*keyword).is_some()))
    {
        return Err(format!(
            "{keyword} (at #{pointer}) is for recursive schemas; a questionnaire has a fixed shape"
        ));
    }
    for next in next_schemas(document, pointer) {
        expand(document, &next, depth + 1, counts)?;
    }
    Ok(())
}

/// Refuses a form whose `x-scope` field may be absent or something other than a non-empty
/// string: every object on the way must be `type: object` and require it, and it must be
/// `type: string` with `minLength` ≥ 1, or an `enum` or `const` of non-empty strings.
fn scope_field(document: &Document<'_>) -> Result<(), String> {
    let schema = document.root();
    let Some(declared) = schema.get("x-scope") else {
        return Ok(());
    };
    let pointer = declared.as_str().filter(|p| p.starts_with('/')).ok_or(
        "x-scope must be a JSON Pointer to the field that places a submission, e.g. \"/township\"",
    )?;
    let mut here = document.resolve(schema);
    for segment in pointer.split('/').skip(1) {
        let name = segment.replace("~1", "/").replace("~0", "~");
        // `properties` and `required` say nothing about a value that is not an object.
        if here.get("type").and_then(Value::as_str) != Some("object") {
            return Err(format!(
                "x-scope: every object on the way to {pointer} must be \"type\": \"object\" \
                 (before \"{name}\"), or a submission could put something else there and no place"
            ));
        }
        let property = here
            .get("properties")
            .and_then(|p| p.get(&name))
            .ok_or_else(|| format!("x-scope: {pointer} is not a property of the form"))?;
        let required = here
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(|names| names.iter().any(|n| n.as_str() == Some(name.as_str())));
        if !required {
            return Err(format!(
                "x-scope: {pointer} must be required (list \"{name}\" in \"required\"), or a \
                 submission without it would be readable and writable county-wide"
            ));
        }
        here = document.resolve(property);
    }
    let place = |v: &Value| v.as_str().is_some_and(|s| !s.trim().is_empty());
    let ok = match (here.get("enum"), here.get("const")) {
        (Some(Value::Array(choices)), _) => !choices.is_empty() && choices.iter().all(place),
        (Some(_), _) => false,
        (None, Some(constant)) => place(constant),
        (None, None) => {
            here.get("type").and_then(Value::as_str) == Some("string")
                && here
                    .get("minLength")
                    .and_then(Value::as_u64)
                    .is_some_and(|n| n >= 1)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "x-scope: {pointer} must always be a non-empty string: \"type\": \"string\" with \
             \"minLength\" of 1 or more, or an \"enum\" or \"const\" of non-empty strings"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(schema: &Value) -> Result<(), String> {
        scope_field(&Document::new(schema))
    }

    #[test]
    fn a_self_referencing_schema_is_found_and_its_cycle_named() {
        let schema = json!({"type": "object", "properties": {"root": {"$ref": "#/$defs/node"}},
            "$defs": {"node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}}});
        let cycle = ref_cycle(&Document::new(&schema)).unwrap();
        assert!(cycle.starts_with("#/$defs/node"), "{cycle}");
        assert!(cycle.contains("#/$defs/node/properties/child"), "{cycle}");
        assert!(ref_cycle(&Document::new(&json!({"anyOf": [{"$ref": "#"}]}))).is_some());
    }

    #[test]
    fn shared_definitions_without_a_cycle_pass() {
        let schema = json!({"properties": {
            "a": {"$ref": "#/$defs/yes"}, "b": {"$ref": "#/$defs/yes"},
            "c": {"type": "array", "items": {"$ref": "#/$defs/person"}}},
            "$defs": {"yes": {"type": "boolean"},
                      "person": {"properties": {"ok": {"$ref": "#/$defs/yes"}}}}});
        assert_eq!(ref_cycle(&Document::new(&schema)), None);
        assert_eq!(
            ref_cycle(&Document::new(&json!({"$ref": "common.json#/$defs/x"}))),
            None
        );
    }

    #[test]
    fn a_long_chain_of_references_does_not_overflow_the_check() {
        let mut defs = serde_json::Map::new();
        for i in 0..20_000 {
            defs.insert(
                format!("d{i}"),
                json!({"$ref": format!("#/$defs/d{}", i + 1)}),
            );
        }
        defs.insert("d20000".into(), json!({"type": "string"}));
        assert_eq!(
            ref_cycle(&Document::new(
                &json!({"$ref": "#/$defs/d0", "$defs": defs})
            )),
            None
        );
    }

    #[test]
    fn cycles_through_encoded_pointers_and_anchors_are_found_too() {
        let encoded = json!({"properties": {"a": {"$ref": "#/%24defs/n"}},
            "$defs": {"n": {"properties": {"b": {"$ref": "#/%24defs/n"}}}}});
        assert!(ref_cycle(&Document::new(&encoded)).is_some());
        let anchored = json!({"properties": {"a": {"$ref": "#knot"}},
            "$defs": {"n": {"$anchor": "knot", "properties": {"b": {"$ref": "#knot"}}}}});
        assert!(ref_cycle(&Document::new(&anchored)).is_some());
    }

    #[test]
    fn long_chains_wide_expansions_and_recursive_keywords_are_refused() {
        let chain = |n: usize| {
            let defs: serde_json::Map<String, Value> = (0..n)
                .map(|i| {
                    (
                        format!("d{i}"),
                        json!({"properties": {"a": {"$ref": format!("#/$defs/d{}", i + 1)}}}),
                    )
                })
                .chain([(format!("d{n}"), json!({"type": "string"}))])
                .collect();
            json!({"$ref": "#/$defs/d0", "$defs": defs})
        };
        assert!(bounded(&Document::new(&chain(10))).is_ok());
        assert!(
            bounded(&Document::new(&chain(4000)))
                .unwrap_err()
                .contains("deeper than")
        );
        // Four properties each referring to the next definition, eight times: 4^8 columns.
        let widening: serde_json::Map<String, Value> = (0..8)
            .map(|i| {
                let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
                let properties: serde_json::Map<String, Value> = ["a", "b", "c", "d"]
                    .iter()
                    .map(|p| ((*p).to_owned(), next.clone()))
                    .collect();
                (format!("d{i}"), json!({"properties": properties}))
            })
            .chain([("d8".to_owned(), json!({"type": "string"}))])
            .collect();
        let widening = json!({"properties": {"x": {"$ref": "#/$defs/d0"}}, "$defs": widening});
        assert!(
            bounded(&Document::new(&widening))
                .unwrap_err()
                .contains("more than")
        );
        assert!(bounded(&Document::new(&json!({"$dynamicRef": "#meta"}))).is_err());
    }

    #[test]
    fn the_scope_field_must_be_required_and_a_non_empty_string() {
        let form = |township: Value, required: Value| {
            json!({"type": "object", "x-scope": "/township", "required": required,
                   "properties": {"township": township}})
        };
        let enumerated = json!({"enum": ["平马镇", "思林镇"]});
        assert!(scope(&form(enumerated.clone(), json!(["township"]))).is_ok());
        assert!(scope(&form(enumerated, json!([]))).is_err(), "optional");
        let text = |min: Value| json!({"type": "string", "minLength": min});
        assert!(scope(&form(text(json!(1)), json!(["township"]))).is_ok());
        assert!(scope(&form(text(json!(0)), json!(["township"]))).is_err());
        assert!(scope(&form(json!({"type": "string"}), json!(["township"]))).is_err());
        assert!(scope(&form(json!({"type": "integer"}), json!(["township"]))).is_err());
        assert!(scope(&form(json!({"enum": ["平马镇", ""]}), json!(["township"]))).is_err());
        assert!(scope(&form(json!({"enum": ["平马镇", 3]}), json!(["township"]))).is_err());
        assert!(scope(&form(json!({"const": "思林镇"}), json!(["township"]))).is_ok());
        assert!(scope(&json!({"x-scope": 7})).is_err());
        let nested = |place: Value| {
            json!({"type": "object", "x-scope": "/place/township", "required": ["place"],
                   "properties": {"place": place}})
        };
        let inner =
            json!({"required": ["township"], "properties": {"township": {"enum": ["思林镇"]}}});
        assert!(
            scope(&nested(inner.clone())).is_err(),
            "the place may be a string"
        );
        let mut object = inner;
        object["type"] = json!("object");
        assert!(scope(&nested(object)).is_ok());
        assert!(scope(&json!({"type": "object"})).is_ok(), "no scope field");
    }

    #[test]
    fn the_shipped_questionnaire_passes_every_check() {
        let text = include_str!("../../schemas/labour-survey.json");
        let schema: Value = serde_json::from_str(text).unwrap();
        assert_eq!(ref_cycle(&Document::new(&schema)), None);
        assert_eq!(bounded(&Document::new(&schema)), Ok(()));
        assert_eq!(scope(&schema), Ok(()));
    }
}
