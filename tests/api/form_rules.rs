//! Findings F3 and F11 of the outside review: a self-referencing schema killed the process on
//! export, and a scope field that may be missing or empty let scoped users write county-wide.

use serde_json::{Value, json};

use crate::helpers::{envelope, error_code, plant_form_version, spawn_app};

/// A valid JSON Schema that refers to itself.
fn recursive() -> Value {
    json!({"type": "object", "properties": {"root": {"$ref": "#/$defs/node"}},
           "$defs": {"node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}}})
}

/// A form scoped by `/township`, with that field's schema and whether it is required.
fn scoped(township: Value, required: bool) -> Value {
    let required = if required {
        json!(["township"])
    } else {
        json!([])
    };
    json!({"type": "object", "x-scope": "/township", "required": required,
           "properties": {"township": township, "note": {"type": "string"}}})
}

async fn publish(app: &crate::helpers::TestApp, id: &str, schema: Value) -> reqwest::Response {
    let body = json!({"id": id, "version": "1", "title": "测试问卷", "schema": schema});
    app.post_json_as(&app.admin_token, "/api/v1/forms", &body)
        .await
}

#[tokio::test]
async fn a_self_referencing_schema_is_refused_at_publish_naming_the_cycle() {
    let app = spawn_app().await;
    let (status, code, error) = error_code(publish(&app, "tree", recursive()).await).await;
    assert_eq!((status, code.as_str()), (422, "schema_invalid"));
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("#/$defs/node"), "{message}");
}

#[tokio::test]
async fn a_schema_too_deep_or_too_wide_once_its_references_are_followed_is_refused() {
    let app = spawn_app().await;
    let chain: serde_json::Map<String, Value> = (0..100)
        .map(|i| {
            let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
            (
                format!("d{i}"),
                json!({"type": "object", "properties": {"a": next}}),
            )
        })
        .chain([("d100".to_owned(), json!({"type": "string"}))])
        .collect();
    let deep =
        json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/d0"}}, "$defs": chain});
    let (status, code, error) = error_code(publish(&app, "deep", deep).await).await;
    assert_eq!((status, code.as_str()), (422, "schema_invalid"));
    assert!(
        error["message"].as_str().unwrap().contains("deeper than"),
        "{error}"
    );

    // Four properties each referring to the next definition, eight times: 65,536 columns.
    let wide: serde_json::Map<String, Value> = (0..8)
        .map(|i| {
            let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
            let fields = json!({"a": next, "b": next, "c": next, "d": next});
            (
                format!("d{i}"),
                json!({"type": "object", "properties": fields}),
            )
        })
        .chain([("d8".to_owned(), json!({"type": "string"}))])
        .collect();
    let wide =
        json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/d0"}}, "$defs": wide});
    let (status, code, _) = error_code(publish(&app, "wide", wide).await).await;
    assert_eq!((status, code.as_str()), (422, "schema_invalid"));
}

#[tokio::test]
async fn references_that_could_be_read_two_ways_are_refused() {
    let app = spawn_app().await;
    // A decoy anchor would make the scope check read an enum where validation reads any string.
    let decoy = json!({"type": "object", "x-scope": "/township", "required": ["township"],
        "properties": {"township": {"$ref": "#t"}},
        "$defs": {"a": {"$anchor": "t", "enum": ["平马镇"]}, "b": {"$anchor": "t", "type": "string"}}});
    let embedded = json!({"type": "object", "properties": {"place": {"$id": "urn:place",
        "$defs": {"t": {"type": "string"}}, "type": "object"}}});
    for (id, schema) in [("decoy", decoy), ("embedded", embedded)] {
        let (status, code, _) = error_code(publish(&app, id, schema).await).await;
        assert_eq!((status, code.as_str()), (422, "schema_invalid"), "{id}");
    }
}

#[tokio::test]
async fn a_large_questionnaire_with_long_choice_lists_is_accepted() {
    let app = spawn_app().await;
    // 50 questions sharing one list of 400 labelled villages: 20,000 choices, 50 columns.
    let villages: Vec<Value> = (0..400)
        .map(|i| json!({"const": format!("v{i}"), "title": format!("村{i}")}))
        .collect();
    let questions: serde_json::Map<String, Value> = (0..50)
        .map(|i| (format!("q{i}"), json!({"$ref": "#/$defs/village"})))
        .collect();
    let schema = json!({"type": "object", "properties": questions,
                        "$defs": {"village": {"oneOf": villages}}});
    assert_eq!(publish(&app, "villages", schema).await.status(), 201);
}

#[tokio::test]
async fn a_scope_field_that_may_be_missing_empty_or_not_text_is_refused() {
    let app = spawn_app().await;
    let refused = [
        scoped(json!({"enum": ["平马镇", "思林镇"]}), false),
        scoped(json!({"type": "string"}), true),
        scoped(json!({"type": "integer"}), true),
        scoped(json!({"enum": ["平马镇", ""]}), true),
        json!({"type": "object", "x-scope": 3}),
        // The place inside an object that need not be one: `"place": "nowhere"` would pass.
        json!({"type": "object", "x-scope": "/place/township", "required": ["place"],
               "properties": {"place": {"required": ["township"],
                   "properties": {"township": {"enum": ["平马镇", "思林镇"]}}}}}),
    ];
    for (i, schema) in refused.into_iter().enumerate() {
        let (status, code, _) =
            error_code(publish(&app, &format!("scoped-{i}"), schema).await).await;
        assert_eq!(
            (status, code.as_str()),
            (422, "schema_invalid"),
            "schema {i}"
        );
    }
    let text = scoped(json!({"type": "string", "minLength": 1}), true);
    assert_eq!(publish(&app, "scoped-ok", text).await.status(), 201);
}

#[tokio::test]
async fn a_stored_form_that_breaks_the_rules_loads_but_refuses_submissions_and_exports() {
    let mut app = spawn_app().await;
    app.stop().await;
    plant_form_version(app.data_path(), "tree", "1", recursive());
    plant_form_version(
        app.data_path(),
        "loose",
        "1",
        scoped(json!({"type": "string"}), false),
    );
    let app = app.restart().await;

    let forms: Value = app.get_json("/api/v1/forms").await;
    let ids: Vec<&str> = forms["forms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"tree") && ids.contains(&"loose"), "{ids:?}");

    let analyst = app.user("analyst", "analyst", None).await;
    for form in ["tree", "loose"] {
        let submitted = app
            .post_json(
                &format!("/api/v1/forms/{form}/submissions"),
                &envelope(json!({"note": "x"})),
            )
            .await;
        let (status, code, _) = error_code(submitted).await;
        assert_eq!((status, code.as_str()), (422, "schema_invalid"), "{form}");
        for path in ["export.zip", "export/main.csv", "indicators"] {
            let response = app
                .get_as(&analyst, &format!("/api/v1/forms/{form}/{path}"))
                .await;
            let (status, code, _) = error_code(response).await;
            assert_eq!(
                (status, code.as_str()),
                (422, "schema_invalid"),
                "{form}/{path}"
            );
        }
    }
    // The server is alive and the county's form still works.
    let healthy = app.get("/healthz").await;
    assert_eq!(healthy.status(), 200);
}
