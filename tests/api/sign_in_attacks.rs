//! Findings F2, F5, F6 and F7 of the outside review, and the refresh retry grace: signing in
//! must not grow the database, lock a county out, or leave ended sessions working.

use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, TestApp, claims_for, error_code, sign_with_server_key, spawn_app, spawn_app_with,
};

async fn login_attempt(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let page: Value = app
        .get_json_as(&app.admin_token, &format!("/api/v1/audit?{query}"))
        .await;
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_huge_username_gets_401_and_leaves_one_short_audit_entry_and_no_throttle_entry() {
    let app = spawn_app_with(|config| config.max_body_bytes = 1024 * 1024).await;
    let huge = "x".repeat(900 * 1024);

    // Six times the same name: a name tracked for throttling would be refused the sixth time.
    for _ in 0..6 {
        let (status, code, _) = error_code(login_attempt(&app, &huge, "whatever-1").await).await;
        assert_eq!((status, code.as_str()), (401, "invalid_credentials"));
    }

    let failed = audit(&app, "action=login_failed").await;
    assert_eq!(failed.len(), 6);
    for entry in &failed {
        assert_eq!(entry["actor"], "x".repeat(32));
        assert_eq!(entry["target"], format!("user:{}", "x".repeat(32)));
    }
}

#[tokio::test]
async fn wrong_current_passwords_are_throttled_like_logins_before_any_hashing() {
    let app = spawn_app().await;
    let change = |current: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/password"))
            .bearer_auth(&app.token)
            .json(&json!({"current_password": current, "new_password": "a-new-password-1"}))
            .send()
    };
    for _ in 0..5 {
        let (status, code, _) = error_code(change("wrong-password").await.unwrap()).await;
        assert_eq!((status, code.as_str()), (422, "request_invalid"));
    }

    let refused = change(PASSWORD).await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    let (status, code, _) = error_code(refused).await;
    assert_eq!((status, code.as_str()), (429, "too_many_attempts"));
    let login = login_attempt(&app, "fw1", PASSWORD).await;
    assert_eq!(login.status(), 429, "the same brakes as login, per user");
}

#[tokio::test]
async fn failures_from_one_address_do_not_lock_out_colleagues_behind_it() {
    let app = spawn_app().await;
    app.user("colleague", "field_worker", None).await;

    // 60 failures heat the address (malformed names: refused without hashing).
    for _ in 0..60 {
        assert_eq!(login_attempt(&app, "!", "x").await.status(), 401);
    }
    let (status, code, _) = error_code(login_attempt(&app, "!", "x").await).await;
    assert_eq!((status, code.as_str()), (429, "too_many_attempts"));
    assert_eq!(
        login_attempt(&app, "sprayed", "guess-1").await.status(),
        401
    );
    assert_eq!(
        login_attempt(&app, "sprayed", "guess-2").await.status(),
        429,
        "a name that failed waits"
    );

    // Someone behind the same address who types the right password still gets in.
    assert_eq!(
        login_attempt(&app, "colleague", PASSWORD).await.status(),
        200
    );
    assert_eq!(login_attempt(&app, "fw1", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_range_each_phone_counts_as_itself() {
    let app = spawn_app_with(|config| {
        config.trusted_proxies = "127.0.0.0/8".parse().unwrap();
    })
    .await;
    let from = |phone: &'static str, username: &'static str, password: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", phone)
            .json(&json!({"username": username, "password": password}))
            .send()
    };
    for _ in 0..60 {
        from("203.0.113.66", "!", "x").await.unwrap();
    }
    assert_eq!(from("203.0.113.66", "!", "x").await.unwrap().status(), 429);
    assert_eq!(from("203.0.113.7", "!", "x").await.unwrap().status(), 401);
}

#[tokio::test]
async fn logging_out_ends_the_access_token_at_once() {
    let app = spawn_app().await;
    let session = app.login("fw1", PASSWORD).await;
    let access = session["access_token"].as_str().unwrap();
    assert_eq!(app.get_as(access, "/api/v1/forms").await.status(), 200);

    let logout = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(access)
        .json(&json!({"refresh_token": session["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);

    assert_eq!(app.get_as(access, "/api/v1/forms").await.status(), 401);
    assert_eq!(
        app.get_as(&app.token, "/api/v1/forms").await.status(),
        200,
        "another login of the same user goes on"
    );
}

#[tokio::test]
async fn logging_out_ends_the_login_of_the_access_token_whatever_refresh_token_is_sent() {
    let app = spawn_app().await;
    let session = app.login("fw1", PASSWORD).await;
    let access = session["access_token"].as_str().unwrap();

    let logout = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(access)
        .json(&json!({"refresh_token": "not-a-token-this-server-gave"}))
        .send()
        .await
        .unwrap();

    assert_eq!(logout.status(), 204);
    assert_eq!(app.get_as(access, "/api/v1/forms").await.status(), 401);
    assert_eq!(refresh(&app, &session["refresh_token"]).await.status(), 401);
}

#[tokio::test]
async fn a_burst_of_simultaneous_guesses_is_held_to_five() {
    let app = spawn_app().await;
    let guesses = (0..20).map(|i| {
        let app = &app;
        async move {
            login_attempt(app, "fw1", &format!("wrong-guess-{i}"))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;

    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 5, "{checked} guesses were checked: {statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 429)),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn guesses_whose_answers_nobody_waits_for_are_counted_and_audited_all_the_same() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    for i in 0..6 {
        let body = json!({"username": "fw1", "password": format!("wrong-guess-{i}")}).to_string();
        let request = format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nhost: survey\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        let address = app.address.strip_prefix("http://").unwrap();
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        // Hung up once the server has the request, before its password hash is done.
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        drop(stream);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    assert_eq!(login_attempt(&app, "fw1", PASSWORD).await.status(), 429);
    let failed = audit(&app, "action=login_failed&actor=fw1").await;
    assert!(failed.len() >= 5, "{} guesses were audited", failed.len());
}

#[tokio::test]
async fn a_token_without_a_session_claim_is_refused() {
    let app = spawn_app().await;
    let mut claims = claims_for("fw1", "field_worker", 600);
    claims.as_object_mut().unwrap().remove("sid");
    let token = sign_with_server_key(&app, &claims);
    assert_eq!(app.get_as(&token, "/api/v1/forms").await.status(), 401);
}

async fn refresh(app: &TestApp, token: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_phone_that_lost_the_answer_to_its_refresh_gets_the_same_pair_again() {
    let app = spawn_app().await;
    let first = app.login("fw1", PASSWORD).await;

    let answered: Value = refresh(&app, &first["refresh_token"])
        .await
        .json()
        .await
        .unwrap();
    let retried = refresh(&app, &first["refresh_token"]).await;

    assert_eq!(retried.status(), 200);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["refresh_token"], answered["refresh_token"]);
    assert_eq!(retried["access_token"], answered["access_token"]);
    let access = answered["access_token"].as_str().unwrap();
    assert_eq!(app.get_as(access, "/api/v1/forms").await.status(), 200);

    // Once the successor has been used, the old token is a copy: the login ends.
    let next: Value = refresh(&app, &answered["refresh_token"])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refresh(&app, &first["refresh_token"]).await.status(), 401);
    let latest = next["access_token"].as_str().unwrap();
    assert_eq!(app.get_as(latest, "/api/v1/forms").await.status(), 401);
    assert_eq!(refresh(&app, &next["refresh_token"]).await.status(), 401);
}

#[tokio::test]
async fn reuse_after_the_grace_period_revokes_the_whole_login() {
    // A grace of 0 seconds turns it off: any reuse is a copy.
    let app = spawn_app_with(|config| config.refresh_grace = 0).await;
    let first = app.login("fw1", PASSWORD).await;
    let second: Value = refresh(&app, &first["refresh_token"])
        .await
        .json()
        .await
        .unwrap();

    let reused = refresh(&app, &first["refresh_token"]).await;

    let (status, code, _) = error_code(reused).await;
    assert_eq!((status, code.as_str()), (401, "invalid_refresh_token"));
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(app.get_as(access, "/api/v1/forms").await.status(), 401);
    assert_eq!(refresh(&app, &second["refresh_token"]).await.status(), 401);
}
