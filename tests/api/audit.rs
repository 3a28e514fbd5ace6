//! The audit log: an entry for every audited action, who did it, to what; never a password.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, PASSWORD, envelope, error_code, household, spawn_app};

async fn entries(app: &crate::helpers::TestApp, query: &str) -> Vec<Value> {
    let response = app
        .get_as(&app.admin_token, &format!("/api/v1/audit?{query}"))
        .await;
    assert_eq!(response.status(), 200, "{query}");
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_audited_action_leaves_an_entry_naming_actor_and_target() {
    let app = spawn_app().await;
    let submission = envelope(household());
    app.submit(&submission).await;
    let wrong = json!({"username": "fw1", "password": "not-the-password"});
    app.client
        .post(app.url("/api/v1/auth/login"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    let session = app.login("fw1", PASSWORD).await;
    let refresh = json!({"refresh_token": session["refresh_token"]});
    app.post_json_as(
        session["access_token"].as_str().unwrap(),
        "/api/v1/auth/logout",
        &refresh,
    )
    .await;
    app.client
        .patch(app.url("/api/v1/users/fw1"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"display_name": "韦调查员"}))
        .send()
        .await
        .unwrap();
    let form =
        json!({"id": "visit", "version": "1", "title": "回访", "schema": {"type": "object"}});
    app.post_json_as(&app.admin_token, "/api/v1/forms", &form)
        .await;
    app.get_as(
        &app.admin_token,
        "/api/v1/forms/labour-survey/export/main.csv",
    )
    .await
    .bytes()
    .await
    .unwrap();
    let id = submission["id"].as_str().unwrap();

    let expected = [
        ("login", "fw1", "user:fw1"),
        ("login_failed", "fw1", "user:fw1"),
        ("logout", "fw1", "user:fw1"),
        ("user_created", "admin", "user:fw1"),
        ("user_created", "system", "user:admin"),
        ("user_updated", "admin", "user:fw1"),
        ("form_published", "system", "form:labour-survey@1"),
        ("form_published", "admin", "form:visit@1"),
        ("submission_created", "fw1", &format!("submission:{id}")),
        (
            "export_downloaded",
            "admin",
            "export:labour-survey-main.csv",
        ),
    ];
    for (action, actor, target) in expected {
        let found = entries(&app, &format!("action={action}&actor={actor}")).await;
        assert!(
            found.iter().any(|e| e["target"] == target),
            "no {action} by {actor} on {target}: {found:?}"
        );
        assert!(
            found
                .iter()
                .all(|e| e["at"].is_string() && e["seq"].is_u64())
        );
    }
    let everything = serde_json::to_string(&entries(&app, "limit=1000").await).unwrap();
    for secret in [PASSWORD, ADMIN_PASSWORD, "not-the-password", "思林镇"] {
        assert!(!everything.contains(secret), "the log holds {secret:?}");
    }
}

#[tokio::test]
async fn a_submissions_trail_is_readable_by_its_reviewers() {
    let app = spawn_app().await;
    let submission = envelope(household());
    app.submit(&submission).await;
    let supervisor = app.user("sup", "supervisor", None).await;
    let id = submission["id"].as_str().unwrap();

    let trail: Value = app
        .get_json_as(&supervisor, &format!("/api/v1/submissions/{id}/audit"))
        .await;

    let items = trail["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0]["action"].as_str(), items[0]["actor"].as_str()),
        (Some("submission_created"), Some("fw1"))
    );
    assert!(items[0]["request_id"].is_string());
}

#[tokio::test]
async fn the_log_pages_with_a_cursor_and_refuses_bad_filters() {
    let app = spawn_app().await;
    for _ in 0..5 {
        app.submit(&envelope(household())).await;
    }

    let first: Value = app
        .get_json_as(
            &app.admin_token,
            "/api/v1/audit?action=submission_created&limit=3",
        )
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .get_json_as(
            &app.admin_token,
            &format!("/api/v1/audit?action=submission_created&limit=3&cursor={cursor}"),
        )
        .await;

    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    assert_eq!(second["items"].as_array().unwrap().len(), 2);
    assert!(second["next_cursor"].is_null());
    for query in ["action=dancing", "since=yesterday", "limit=0"] {
        let (status, code, _) = error_code(
            app.get_as(&app.admin_token, &format!("/api/v1/audit?{query}"))
                .await,
        )
        .await;
        assert_eq!((status, code.as_str()), (400, "query_invalid"), "{query}");
    }
}

#[tokio::test]
async fn every_review_action_is_in_the_submissions_trail_in_order() {
    let app = spawn_app().await;
    let submission = envelope(household());
    app.submit(&submission).await;
    let id = submission["id"].as_str().unwrap();
    let path = format!("/api/v1/submissions/{id}");
    let admin = app.admin_token.clone();
    let send = |method: reqwest::Method, path: String, body: Value, if_match: Option<String>| {
        let mut request = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(&admin)
            .json(&body);
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        request.send()
    };

    send(
        reqwest::Method::PATCH,
        format!("{path}/review"),
        json!({"status": "has_issues", "comment": "请核对"}),
        None,
    )
    .await
    .unwrap();
    let etag = app.get_as(&admin, &path).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    send(
        reqwest::Method::PUT,
        path.clone(),
        json!({"data": household()}),
        Some(etag),
    )
    .await
    .unwrap();
    send(
        reqwest::Method::DELETE,
        path.clone(),
        json!({"reason": "entered twice"}),
        None,
    )
    .await
    .unwrap();
    send(
        reqwest::Method::POST,
        format!("{path}/restore"),
        json!({}),
        None,
    )
    .await
    .unwrap();

    let trail: Value = app.get_json_as(&admin, &format!("{path}/audit")).await;
    let actions: Vec<(&str, &str)> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("submission_created", "fw1"),
            ("submission_reviewed", "admin"),
            ("comment_added", "admin"),
            ("submission_edited", "admin"),
            ("submission_deleted", "admin"),
            ("submission_restored", "admin"),
        ]
    );
}
