use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_app};

fn small_form(version: &str, max: u32) -> Value {
    json!({
        "id": "training-feedback",
        "version": version,
        "title": "培训反馈",
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"score": {"type": "integer", "minimum": 1, "maximum": max}},
            "required": ["score"]
        }
    })
}

#[tokio::test]
async fn the_shipped_labour_survey_is_listed_with_its_current_version() {
    let app = spawn_app().await;

    let body: Value = app.get_json("/api/v1/forms").await;

    let form = &body["forms"][0];
    assert_eq!(form["id"], "labour-survey");
    // Both shipped versions are published; the second (with presence) is current.
    assert_eq!(form["current_version"], "2");
    assert!(form["title"].as_str().unwrap().contains("劳动力"));
}

#[tokio::test]
async fn a_form_is_served_with_its_schema_and_an_etag_that_saves_a_download() {
    let app = spawn_app().await;

    let response = app.get("/api/v1/forms/labour-survey").await;
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["version"], "2");
    assert_eq!(body["schema"]["properties"]["members"]["title"], "劳动力");

    let again = app
        .client
        .get(app.url("/api/v1/forms/labour-survey"))
        .bearer_auth(&app.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn an_unknown_form_or_version_is_named_in_the_error() {
    let app = spawn_app().await;

    let (status, code, _) = error_code(app.get("/api/v1/forms/no-such-form").await).await;
    assert_eq!((status, code.as_str()), (404, "form_not_found"));

    let (status, code, _) =
        error_code(app.get("/api/v1/forms/labour-survey?version=99").await).await;
    assert_eq!((status, code.as_str()), (422, "form_version_unknown"));
}

#[tokio::test]
async fn publishing_is_idempotent_and_versions_are_immutable() {
    let app = spawn_app().await;

    let first = app
        .post_json_as(&app.admin_token, "/api/v1/forms", &small_form("1", 5))
        .await;
    assert_eq!(first.status(), 201);
    let again = app
        .post_json_as(&app.admin_token, "/api/v1/forms", &small_form("1", 5))
        .await;
    assert_eq!(again.status(), 200);

    let (status, code, _) = error_code(
        app.post_json_as(&app.admin_token, "/api/v1/forms", &small_form("1", 10))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "form_version_conflict"));

    let form: Value = app.get_json("/api/v1/forms/training-feedback").await;
    assert_eq!(form["schema"]["properties"]["score"]["maximum"], 5);
}

#[tokio::test]
async fn the_newest_published_version_becomes_current_and_the_old_one_stays_readable() {
    let app = spawn_app().await;
    app.post_json_as(&app.admin_token, "/api/v1/forms", &small_form("1", 5))
        .await;

    app.post_json_as(&app.admin_token, "/api/v1/forms", &small_form("2", 10))
        .await;

    let current: Value = app.get_json("/api/v1/forms/training-feedback").await;
    assert_eq!(current["current_version"], "2");
    assert_eq!(current["versions"].as_array().unwrap().len(), 2);
    let old: Value = app
        .get_json("/api/v1/forms/training-feedback?version=1")
        .await;
    assert_eq!(old["schema"]["properties"]["score"]["maximum"], 5);
}

#[tokio::test]
async fn a_published_schema_is_stored_exactly_as_given() {
    let app = spawn_app().await;
    let mut form = small_form("1", 5);
    form["schema"]["x-custom-annotation"] = json!({"kept": [1, 2, 3]});

    app.post_json_as(&app.admin_token, "/api/v1/forms", &form)
        .await;

    let stored: Value = app.get_json("/api/v1/forms/training-feedback").await;
    assert_eq!(stored["schema"], form["schema"]);
}

#[tokio::test]
async fn a_schema_that_does_not_compile_is_refused() {
    let app = spawn_app().await;
    let mut form = small_form("1", 5);
    form["schema"]["properties"]["score"]["type"] = json!("integr");

    let (status, code, _) = error_code(
        app.post_json_as(&app.admin_token, "/api/v1/forms", &form)
            .await,
    )
    .await;

    assert_eq!((status, code.as_str()), (422, "schema_invalid"));
}

#[tokio::test]
async fn a_schema_may_not_fetch_references_from_the_network() {
    let app = spawn_app().await;
    let mut form = small_form("1", 5);
    form["schema"]["properties"]["score"] = json!({"$ref": "https://example.com/score.json"});

    let (status, code, _) = error_code(
        app.post_json_as(&app.admin_token, "/api/v1/forms", &form)
            .await,
    )
    .await;

    assert_eq!((status, code.as_str()), (422, "schema_invalid"));
}

#[tokio::test]
async fn a_bad_form_id_is_refused_with_a_pointer_to_it() {
    let app = spawn_app().await;
    let mut form = small_form("1", 5);
    form["id"] = json!("Training Feedback");

    let (status, code, error) = error_code(
        app.post_json_as(&app.admin_token, "/api/v1/forms", &form)
            .await,
    )
    .await;

    assert_eq!((status, code.as_str()), (422, "request_invalid"));
    assert_eq!(error["details"][0]["path"], "/id");
}

#[tokio::test]
async fn published_versions_survive_a_restart() {
    let app = spawn_app().await;
    app.post_json_as(&app.admin_token, "/api/v1/forms", &small_form("1", 5))
        .await;

    let app = app.restart().await;

    let form: Value = app.get_json("/api/v1/forms/training-feedback").await;
    assert_eq!(form["current_version"], "1");
}
