//! Findings F8, F9 and F10 of the outside review: a review and its comment are one write,
//! analysts do not read trails, and scope applies to reviewing one's own submissions too.

use serde_json::{Value, json};

use crate::helpers::{envelope, error_code, household, spawn_app};

async fn review(
    app: &crate::helpers::TestApp,
    token: &str,
    id: &str,
    body: Value,
) -> reqwest::Response {
    let path = format!("/api/v1/submissions/{id}/review");
    app.patch_json_as(token, &path, &body).await
}

#[tokio::test]
async fn a_review_whose_comment_is_refused_changes_nothing() {
    let app = spawn_app().await;
    let submission = envelope(household());
    assert_eq!(app.submit(&submission).await.status(), 201);
    let id = submission["id"].as_str().unwrap();

    let body = json!({"status": "approved", "comment": "长".repeat(2001)});
    let (status, code, error) = error_code(review(&app, &app.admin_token, id, body).await).await;

    assert_eq!((status, code.as_str()), (422, "request_invalid"));
    assert_eq!(error["details"][0]["path"], "/comment");
    let stored: Value = app
        .get_json_as(&app.admin_token, &format!("/api/v1/submissions/{id}"))
        .await;
    assert_eq!(stored["status"], "received");
    let trail: Value = app
        .get_json_as(&app.admin_token, &format!("/api/v1/submissions/{id}/audit"))
        .await;
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["submission_created"]);

    // With a good comment, both land together, each with its audit entry.
    let body = json!({"status": "has_issues", "comment": "请核对第2位劳动力的身份证号"});
    assert_eq!(review(&app, &app.admin_token, id, body).await.status(), 200);
    let comments: Value = app
        .get_json_as(
            &app.admin_token,
            &format!("/api/v1/submissions/{id}/comments"),
        )
        .await;
    assert_eq!(comments["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn analysts_may_not_read_a_submissions_trail() {
    let app = spawn_app().await;
    let analyst = app.user("analyst", "analyst", None).await;
    let submission = envelope(household());
    app.submit(&submission).await;
    let path = format!(
        "/api/v1/submissions/{}/audit",
        submission["id"].as_str().unwrap()
    );

    let (status, code, _) = error_code(app.get_as(&analyst, &path).await).await;

    assert_eq!((status, code.as_str()), (403, "forbidden"));
    assert_eq!(
        app.get_as(&analyst, &path.replace("/audit", ""))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_supervisor_moved_away_no_longer_reviews_their_own_submission_from_before() {
    let app = spawn_app().await;
    let before = app.user("sup-moved", "supervisor", Some(&["思林镇"])).await;
    let own = envelope(household());
    assert_eq!(app.submit_as(&before, &own).await.status(), 201);
    let id = own["id"].as_str().unwrap();

    let moved = app
        .patch_json_as(
            &app.admin_token,
            "/api/v1/users/sup-moved",
            &json!({"scope": ["平马镇"]}),
        )
        .await;
    assert_eq!(moved.status(), 200);
    let after = app.login("sup-moved", crate::helpers::PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(
        app.get_as(&after, &format!("/api/v1/submissions/{id}"))
            .await
            .status(),
        200,
        "still their own to read"
    );
    let (status, code, _) =
        error_code(review(&app, &after, id, json!({"status": "approved"})).await).await;
    assert_eq!((status, code.as_str()), (403, "out_of_scope"));
    let correction = app
        .client
        .put(app.url(&format!("/api/v1/submissions/{id}")))
        .bearer_auth(&after)
        .header("if-match", format!("\"{id}-v1\""))
        .json(&json!({"data": household()}))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_code(correction).await;
    assert_eq!((status, code.as_str()), (403, "out_of_scope"));
}
