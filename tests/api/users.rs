use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_app};

fn new_user(username: &str, password: &str) -> Value {
    json!({"username": username, "password": password, "role": "field_worker",
           "display_name": "韦秀英", "scope": ["思林镇"]})
}

#[tokio::test]
async fn an_admin_creates_a_field_worker_who_can_then_sign_in() {
    let app = spawn_app().await;

    let response = app
        .post_json_as(
            &app.admin_token,
            "/api/v1/users",
            &new_user("Wei.XiuYing", "siling-2026"),
        )
        .await;

    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["username"], "wei.xiuying");
    assert_eq!(user["scope"], json!(["思林镇"]));
    assert!(user.get("password_hash").is_none());
    let session = app.login("WEI.XIUYING", "siling-2026").await;
    assert_eq!(session["user"]["scope"], json!(["思林镇"]));
}

#[tokio::test]
async fn usernames_are_unique_whatever_their_case() {
    let app = spawn_app().await;
    app.post_json_as(
        &app.admin_token,
        "/api/v1/users",
        &new_user("wei", "siling-2026"),
    )
    .await;

    let again = app
        .post_json_as(
            &app.admin_token,
            "/api/v1/users",
            &new_user("WEI", "other-pass-1"),
        )
        .await;

    let (status, code, _) = error_code(again).await;
    assert_eq!((status, code.as_str()), (409, "user_exists"));
}

#[tokio::test]
async fn weak_passwords_and_bad_fields_are_refused_with_a_pointer() {
    let app = spawn_app().await;
    let cases = [
        (new_user("wei", "short"), "/password"),
        (new_user("weixiuying", "WeiXiuYing"), "/password"),
        (
            json!({"username": "wei", "password": "long-enough-1", "role": "root", "display_name": "x"}),
            "/role",
        ),
        (
            json!({"username": "wei", "password": "long-enough-1", "role": "analyst", "display_name": "x", "scope": []}),
            "/scope",
        ),
        (new_user("韦秀英", "long-enough-1"), "/username"),
    ];
    for (body, path) in cases {
        let (status, code, error) = error_code(
            app.post_json_as(&app.admin_token, "/api/v1/users", &body)
                .await,
        )
        .await;
        assert_eq!((status, code.as_str()), (422, "request_invalid"), "{body}");
        assert_eq!(error["details"][0]["path"], path, "{body}");
    }
}

#[tokio::test]
async fn an_admin_lists_reads_and_changes_users() {
    let app = spawn_app().await;
    let patch =
        json!({"role": "supervisor", "scope": ["思林镇", "平马镇"], "display_name": "黄主任"});

    let changed = app
        .client
        .patch(app.url("/api/v1/users/FW1"))
        .bearer_auth(&app.admin_token)
        .json(&patch)
        .send()
        .await
        .unwrap();

    assert_eq!(changed.status(), 200);
    let one: Value = app.get_json_as(&app.admin_token, "/api/v1/users/fw1").await;
    assert_eq!(
        (one["role"].as_str(), one["display_name"].as_str()),
        (Some("supervisor"), Some("黄主任"))
    );
    let all: Value = app.get_json_as(&app.admin_token, "/api/v1/users").await;
    let names: Vec<&str> = all["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "fw1"]);
    assert_eq!(
        app.get("/api/v1/forms").await.status(),
        401,
        "a role change ends the old token"
    );
    let (status, code, _) =
        error_code(app.get_as(&app.admin_token, "/api/v1/users/nobody").await).await;
    assert_eq!((status, code.as_str()), (404, "user_not_found"));
}
