use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_PASSWORD, PASSWORD, claims_for, error_code, sign_with_server_key, spawn_app,
};

async fn refresh(app: &crate::helpers::TestApp, token: &str) -> reqwest::Response {
    let body = json!({ "refresh_token": token });
    app.client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn login_returns_a_bearer_session_with_the_user() {
    let app = spawn_app().await;

    let session = app.login("FW1", PASSWORD).await;

    assert_eq!(session["token_type"], "Bearer");
    assert_eq!(session["expires_in"], 900);
    assert_eq!(session["user"]["username"], "fw1");
    assert_eq!(session["user"]["role"], "field_worker");
    assert!(session["user"].get("password_hash").is_none());
    let token = session["access_token"].as_str().unwrap();
    assert_eq!(app.get_as(token, "/api/v1/forms").await.status(), 200);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    let attempt = |username: &'static str| {
        let body = json!({"username": username, "password": "not-the-password"});
        app.client
            .post(app.url("/api/v1/auth/login"))
            .json(&body)
            .send()
    };

    let (s1, c1, e1) = error_code(attempt("fw1").await.unwrap()).await;
    let (s2, c2, e2) = error_code(attempt("nobody").await.unwrap()).await;

    assert_eq!((s1, c1.as_str()), (401, "invalid_credentials"));
    assert_eq!((s2, c2), (s1, c1));
    assert_eq!(e1, e2);
}

#[tokio::test]
async fn requests_without_a_token_are_refused_with_a_bearer_challenge() {
    let app = spawn_app().await;

    let response = app
        .client
        .get(app.url("/api/v1/forms"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let (status, code, _) = error_code(response).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
}

#[tokio::test]
async fn a_refresh_token_rotates_and_reusing_an_old_one_revokes_the_whole_family() {
    let app = spawn_app().await;
    let first = app.login("fw1", PASSWORD).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let second: Value = refresh(&app, &first).await.json().await.unwrap();
    let second = second["refresh_token"].as_str().unwrap().to_owned();
    let third = refresh(&app, &second).await;
    assert_eq!(third.status(), 200);
    let third: Value = third.json().await.unwrap();
    let third = third["refresh_token"].as_str().unwrap().to_owned();

    let (status, code, _) = error_code(refresh(&app, &first).await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_refresh_token"));
    assert_eq!(
        refresh(&app, &third).await.status(),
        401,
        "the thief's reuse must end the family"
    );
    let other_login = app.login("fw1", PASSWORD).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        refresh(&app, &other_login).await.status(),
        200,
        "other logins are untouched"
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let session = app.login("fw1", PASSWORD).await;
    let refresh_token = session["refresh_token"].as_str().unwrap();

    let response = app
        .post_json_as(
            session["access_token"].as_str().unwrap(),
            "/api/v1/auth/logout",
            &json!({"refresh_token": refresh_token}),
        )
        .await;

    assert_eq!(response.status(), 204);
    assert_eq!(refresh(&app, refresh_token).await.status(), 401);
}

#[tokio::test]
async fn five_failures_throttle_the_username_with_retry_after() {
    let app = spawn_app().await;
    let attempt = |password: &'static str| {
        let body = json!({"username": "fw1", "password": password});
        app.client
            .post(app.url("/api/v1/auth/login"))
            .json(&body)
            .send()
    };
    for _ in 0..5 {
        assert_eq!(attempt("guess-guess").await.unwrap().status(), 401);
    }

    let throttled = attempt(PASSWORD).await.unwrap();

    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    let (status, code, _) = error_code(throttled).await;
    assert_eq!((status, code.as_str()), (429, "too_many_attempts"));
    app.login("admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn forged_and_stale_tokens_are_all_refused() {
    let app = spawn_app().await;
    let valid = sign_with_server_key(&app, &claims_for("fw1", "field_worker", 600));
    assert_eq!(
        app.get_as(&valid, "/api/v1/forms").await.status(),
        200,
        "the forging helper works"
    );

    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let mut forged: Vec<(&str, String)> = Vec::new();
    let header_none = json!({"alg": "none", "typ": "JWT"});
    forged.push((
        "alg none",
        format!(
            "{}.{}.",
            b64(&header_none),
            b64(&claims_for("fw1", "admin", 600))
        ),
    ));
    let public_key = {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        let pem = crate::helpers::server_key_pem(&app);
        ed25519_dalek::SigningKey::from_pkcs8_pem(&pem)
            .unwrap()
            .verifying_key()
            .to_bytes()
    };
    forged.push((
        "HS256 with the public key",
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims_for("fw1", "admin", 600),
            &jsonwebtoken::EncodingKey::from_secret(&public_key),
        )
        .unwrap(),
    ));
    let other_key = {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        jsonwebtoken::EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes())
    };
    let ed_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    forged.push((
        "another key",
        jsonwebtoken::encode(
            &ed_header,
            &claims_for("fw1", "field_worker", 600),
            &other_key,
        )
        .unwrap(),
    ));
    forged.push((
        "expired",
        sign_with_server_key(&app, &claims_for("fw1", "field_worker", -5)),
    ));
    let mut string_exp = claims_for("fw1", "field_worker", 600);
    string_exp["exp"] = json!(string_exp["exp"].to_string());
    forged.push(("exp as a string", sign_with_server_key(&app, &string_exp)));
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    parts[1] = b64(&claims_for("admin", "admin", 600));
    forged.push(("tampered payload", parts.join(".")));
    let mut wrong_aud = claims_for("fw1", "field_worker", 600);
    wrong_aud["aud"] = json!("another-api");
    forged.push(("wrong audience", sign_with_server_key(&app, &wrong_aud)));
    let mut wrong_iss = claims_for("fw1", "field_worker", 600);
    wrong_iss["iss"] = json!("someone-else");
    forged.push(("wrong issuer", sign_with_server_key(&app, &wrong_iss)));
    let mut no_version = claims_for("fw1", "field_worker", 600);
    no_version.as_object_mut().unwrap().remove("ver");
    forged.push(("no token version", sign_with_server_key(&app, &no_version)));
    forged.push((
        "unknown user",
        sign_with_server_key(&app, &claims_for("ghost", "admin", 600)),
    ));

    for (attack, token) in forged {
        let status = app.get_as(&token, "/api/v1/forms").await.status();
        assert_eq!(status, 401, "{attack} was accepted");
    }
}

#[tokio::test]
async fn disabling_a_user_or_changing_their_password_ends_their_tokens_at_once() {
    let app = spawn_app().await;
    let disabled = app.user("fw2", "field_worker", None).await;
    let changed = app.user("fw3", "field_worker", None).await;

    let patch = |user: &'static str, body: Value| {
        app.client
            .patch(app.url(&format!("/api/v1/users/{user}")))
            .bearer_auth(&app.admin_token)
            .json(&body)
            .send()
    };
    assert_eq!(
        patch("fw2", json!({"active": false}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        patch("fw3", json!({"password": "a-new-password-1"}))
            .await
            .unwrap()
            .status(),
        200
    );

    assert_eq!(app.get_as(&disabled, "/api/v1/forms").await.status(), 401);
    assert_eq!(app.get_as(&changed, "/api/v1/forms").await.status(), 401);
    app.login("fw3", "a-new-password-1").await;
    let body = json!({"username": "fw2", "password": PASSWORD});
    let login = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 401, "a disabled user cannot sign in");
}

#[tokio::test]
async fn a_user_changes_their_own_password_and_keeps_a_fresh_session() {
    let app = spawn_app().await;
    let old_token = app.token.clone();
    let body = json!({"current_password": PASSWORD, "new_password": "my-new-secret-9"});

    let response = app.post_json("/api/v1/auth/password", &body).await;

    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert_eq!(
        app.get_as(session["access_token"].as_str().unwrap(), "/api/v1/forms")
            .await
            .status(),
        200
    );
    assert_eq!(app.get_as(&old_token, "/api/v1/forms").await.status(), 401);
    let wrong = json!({"current_password": "not-it-at-all", "new_password": "another-secret-9"});
    let (status, _, error) = error_code(
        app.post_json_as(
            session["access_token"].as_str().unwrap(),
            "/api/v1/auth/password",
            &wrong,
        )
        .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(error["details"][0]["path"], "/current_password");
}

#[tokio::test]
async fn a_first_start_without_an_admin_password_writes_a_generated_one_for_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(&data);
    config.admin_password = None;

    drop(survey_server::AppState::open(&config).await.unwrap());

    let path = data.path().join("initial-admin-password");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let password = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    assert!(password.len() >= 16);
    let key_file = data.path().join("jwt-ed25519.pem");
    if crate::helpers::test_cluster().is_some() {
        assert!(
            !key_file.exists(),
            "with PostgreSQL the key is in the database"
        );
    } else {
        let key_mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(key_mode & 0o777, 0o600);
    }
    let store = crate::helpers::open_store_when_free(data.path()).await;
    let admin = store.user("admin").unwrap().unwrap();
    assert!(survey_server::auth::password::verify(
        &password,
        &admin.password_hash
    ));
}
