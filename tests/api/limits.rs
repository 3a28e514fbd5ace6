//! Findings F14 and F15 of the outside review: shape errors never quote what was sent, and every
//! stored text has a bound (the README's table of limits).

use serde_json::{Value, json};

use crate::helpers::{TestApp, envelope, error_code, household, spawn_app};

/// The status, code and first detail's path of a refused request.
async fn refused(response: reqwest::Response) -> (u16, String, String) {
    let (status, code, error) = error_code(response).await;
    let path = error["details"][0]["path"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    (status, code, path)
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_described_without_echoing_its_values() {
    let app = spawn_app().await;
    let body = json!({"username": 98765432123_u64, "password": "secret-value-123",
                      "role": "field_worker", "display_name": "韦"});

    let response = app
        .post_json_as(&app.admin_token, "/api/v1/users", &body)
        .await;

    let (status, code, error) = error_code(response).await;
    assert_eq!((status, code.as_str()), (422, "request_invalid"));
    assert_eq!(error["details"][0]["path"], "/username");
    let text = error.to_string();
    assert!(!text.contains("98765432123"), "{text}");
    assert!(!text.contains("secret-value"), "{text}");

    let wrong_role = json!({"username": "wei", "password": "field-work-2026",
                            "role": "root-of-all", "display_name": "韦"});
    let (_, _, error) = error_code(
        app.post_json_as(&app.admin_token, "/api/v1/users", &wrong_role)
            .await,
    )
    .await;
    assert!(!error.to_string().contains("root-of-all"), "{error}");
}

fn user(scope: Value, display_name: String) -> Value {
    json!({"username": "wei", "password": "field-work-2026", "role": "field_worker",
           "display_name": display_name, "scope": scope})
}

async fn delete(app: &TestApp, id: &str, reason: String) -> reqwest::Response {
    let path = format!("/api/v1/submissions/{id}");
    app.delete_json_as(&app.admin_token, &path, &json!({"reason": reason}))
        .await
}

#[tokio::test]
async fn every_stored_text_is_held_to_its_limit() {
    let app = spawn_app().await;
    let post = |body: Value| {
        let app = &app;
        async move {
            app.post_json_as(&app.admin_token, "/api/v1/users", &body)
                .await
        }
    };

    let too_many: Vec<String> = (0..101).map(|i| format!("村{i}")).collect();
    let cases = [
        (user(json!(too_many), "韦".into()), "/scope"),
        (user(json!(["镇".repeat(51)]), "韦".into()), "/scope"),
        (user(json!(null), "名".repeat(101)), "/display_name"),
    ];
    for (body, path) in cases {
        let answer = refused(post(body).await).await;
        assert_eq!(answer, (422, "request_invalid".into(), path.into()));
    }
    let fits: Vec<String> = (0..100).map(|i| format!("村{i}")).collect();
    assert_eq!(
        post(user(json!(fits), "名".repeat(100))).await.status(),
        201
    );

    let form = |title: String| json!({"id": "titled", "version": "1", "title": title, "schema": {"type": "object"}});
    let answer = refused(
        app.post_json_as(&app.admin_token, "/api/v1/forms", &form("题".repeat(201)))
            .await,
    )
    .await;
    assert_eq!(answer, (422, "request_invalid".into(), "/title".into()));
    let published = app
        .post_json_as(&app.admin_token, "/api/v1/forms", &form("题".repeat(200)))
        .await;
    assert_eq!(published.status(), 201);
    // Padding does not carry a title past the limit: it is trimmed away.
    let padded = json!({"id": "padded", "version": "1",
        "title": format!("{}调查{}", " ".repeat(20_000), " ".repeat(20_000)), "schema": {"type": "object"}});
    let published = app
        .post_json_as(&app.admin_token, "/api/v1/forms", &padded)
        .await;
    assert_eq!(published.status(), 201);
    let stored: Value = app.get_json("/api/v1/forms/padded").await;
    assert_eq!(stored["title"], "调查");

    let submission = envelope(household());
    app.submit(&submission).await;
    let id = submission["id"].as_str().unwrap();
    let answer = refused(delete(&app, id, "因".repeat(501)).await).await;
    assert_eq!(answer, (422, "request_invalid".into(), "/reason".into()));
    let comment = app
        .post_json_as(
            &app.admin_token,
            &format!("/api/v1/submissions/{id}/comments"),
            &json!({"text": "字".repeat(2001)}),
        )
        .await;
    assert_eq!(
        refused(comment).await,
        (422, "request_invalid".into(), "/text".into())
    );
    assert_eq!(delete(&app, id, "因".repeat(500)).await.status(), 200);
}
