use std::path::Path;

use serde_json::{Value, json};
use survey_server::AppState;
use tempfile::TempDir;

use crate::helpers::{error_code, spawn_app_with, test_config};

fn write(dir: &Path, name: &str, schema: &Value) {
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(schema).unwrap()).unwrap();
}

fn visit_form(version: &str) -> Value {
    json!({
        "x-form-id": "visit",
        "x-form-version": version,
        "title": "回访",
        "type": "object",
        "properties": {"township": {"$ref": "common.json#/$defs/township"}},
        "required": ["township"]
    })
}

fn schemas_with_library() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "common.json",
        &json!({"$defs": {"township": {"enum": ["平马镇", "思林镇"]}}}),
    );
    write(dir.path(), "visit.json", &visit_form("1"));
    dir
}

#[tokio::test]
async fn schemas_can_refer_to_definitions_in_another_file() {
    let schemas = schemas_with_library();
    let app = spawn_app_with(|c| c.schemas_dir = schemas.path().to_owned()).await;
    let submit = |township: &str| json!({"id": uuid::Uuid::new_v4().to_string(), "data": {"township": township}});

    let ok = app
        .post_json("/api/v1/forms/visit/submissions", &submit("思林镇"))
        .await;
    let bad = app
        .post_json("/api/v1/forms/visit/submissions", &submit("北京"))
        .await;

    assert_eq!(ok.status(), 201);
    let (status, _, error) = error_code(bad).await;
    assert_eq!(status, 422);
    assert_eq!(error["details"][0]["path"], "/township");
    assert_eq!(error["details"][0]["keyword"], "enum");
}

#[tokio::test]
async fn a_schema_file_that_does_not_compile_stops_the_start_and_names_the_file() {
    let schemas = tempfile::tempdir().unwrap();
    let mut broken = visit_form("1");
    broken["properties"] = json!({"township": {"type": "no-such-type"}});
    write(schemas.path(), "visit.json", &broken);
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(&data);
    config.schemas_dir = schemas.path().to_owned();

    let error = AppState::open(&config)
        .await
        .err()
        .expect("the start fails")
        .to_string();

    assert!(error.contains("visit.json"), "{error}");
}

#[tokio::test]
async fn a_shipped_form_edited_without_a_new_version_stops_the_start() {
    let schemas = schemas_with_library();
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(&data);
    config.schemas_dir = schemas.path().to_owned();
    drop(
        AppState::open(&config)
            .await
            .expect("the first start works"),
    );
    let mut edited = visit_form("1");
    edited["required"] = json!([]);
    write(schemas.path(), "visit.json", &edited);

    // sled's background thread may hold the directory's lock a moment after the first start.
    let mut error = String::new();
    for _ in 0..50 {
        error = AppState::open(&config)
            .await
            .err()
            .expect("the start fails")
            .to_string();
        if !error.contains("in use") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    assert!(
        error.contains("visit.json") && error.contains("x-form-version"),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_schemas_directory_is_a_clear_start_error() {
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(&data);
    config.schemas_dir = data.path().join("no-such-dir");

    let error = AppState::open(&config)
        .await
        .err()
        .expect("the start fails")
        .to_string();

    assert!(error.contains("SURVEY_SCHEMAS_DIR"), "{error}");
}
