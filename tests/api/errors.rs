use serde_json::json;

use crate::helpers::{envelope, error_code, household, spawn_app};

const SUBMISSIONS: &str = "/api/v1/forms/labour-survey/submissions";

#[tokio::test]
async fn a_body_that_is_not_json_is_a_bad_request() {
    let app = spawn_app().await;
    let (status, code, _) = error_code(
        app.post_raw(SUBMISSIONS, "application/json", "{\"id\": ")
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "body_malformed"));
}

#[tokio::test]
async fn a_body_that_is_not_declared_as_json_is_refused() {
    let app = spawn_app().await;
    let body = envelope(household()).to_string();
    let (status, code, _) = error_code(app.post_raw(SUBMISSIONS, "text/plain", body).await).await;
    assert_eq!((status, code.as_str()), (415, "unsupported_media_type"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused() {
    let app = spawn_app().await;
    let mut data = household();
    data["village"] = json!("村".repeat(app.config.max_body_bytes));
    let (status, code, _) = error_code(app.submit(&envelope(data)).await).await;
    assert_eq!((status, code.as_str()), (413, "body_too_large"));
}

#[tokio::test]
async fn deeply_nested_json_is_refused_without_harm() {
    let app = spawn_app().await;
    let depth = 20_000;
    let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let (status, code, _) =
        error_code(app.post_raw(SUBMISSIONS, "application/json", body).await).await;
    assert_eq!((status, code.as_str()), (400, "body_malformed"));
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn an_unknown_route_answers_in_json() {
    let app = spawn_app().await;
    let (status, code, _) = error_code(app.get("/api/v1/nothing-here").await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
}

#[tokio::test]
async fn a_wrong_method_answers_in_json() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(app.url("/api/v1/forms"))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(response).await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn health_is_reported() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn readiness_means_the_store_can_make_a_write_durable() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_the_audit_log_names_it() {
    let app = spawn_app().await;
    let generated = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        generated.headers()["x-request-id"].len(),
        36,
        "a UUID when the client sent none"
    );

    let sent = app
        .client
        .post(app.url("/api/v1/forms/labour-survey/submissions"))
        .bearer_auth(&app.token)
        .header("x-request-id", "phone-17-upload-0042")
        .json(&envelope(household()))
        .send()
        .await
        .unwrap();

    assert_eq!(sent.headers()["x-request-id"], "phone-17-upload-0042");
    let log: serde_json::Value = app
        .get_json_as(&app.admin_token, "/api/v1/audit?action=submission_created")
        .await;
    assert_eq!(log["items"][0]["request_id"], "phone-17-upload-0042");
}

#[tokio::test]
async fn a_path_that_is_not_utf8_is_not_found_in_the_error_shape() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/forms/%FF/submissions",
        "/api/v1/submissions/%C3%28",
    ] {
        let (status, code, _) = error_code(app.get(path).await).await;
        assert_eq!((status, code.as_str()), (404, "not_found"), "{path}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_refused_even_where_a_list_would_fit_the_fields() {
    let app = spawn_app().await;
    let submission = envelope(household());
    app.submit(&submission).await;
    let id = submission["id"].as_str().unwrap();
    let deleted = app
        .delete_json_as(
            &app.admin_token,
            &format!("/api/v1/submissions/{id}"),
            &json!(["entered twice"]),
        )
        .await;
    let (status, code, _) = error_code(deleted).await;
    assert_eq!((status, code.as_str()), (422, "request_invalid"));
}
