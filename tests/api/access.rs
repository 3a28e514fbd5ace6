//! Who may do what: every route × every kind of caller, and scopes on reads and writes.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, claims_for, envelope, error_code, household, sign_with_server_key, spawn_app,
};

/// The callers of the matrix, in column order.
const CALLERS: [&str; 7] = [
    "anonymous",
    "expired",
    "fw1",
    "fw2",
    "supervisor",
    "analyst",
    "admin",
];

/// Expected status per caller (same order as `CALLERS`) for one route.
struct Rule {
    method: &'static str,
    path: &'static str,
    expect: [u16; 7],
}

const fn rule(method: &'static str, path: &'static str, expect: [u16; 7]) -> Rule {
    Rule {
        method,
        path,
        expect,
    }
}

/// One row per route. A route the server answers without a row here fails `every_route_has_a_rule`.
const MATRIX: &[Rule] = &[
    rule("GET", "/healthz", [200, 200, 200, 200, 200, 200, 200]),
    rule("GET", "/readyz", [200, 200, 200, 200, 200, 200, 200]),
    // Public on the API listener unless SURVEY_METRICS_BIND moves it; deploy/ proxies keep it inside.
    rule("GET", "/metrics", [200, 200, 200, 200, 200, 200, 200]),
    // A client developer reads the spec before having an account.
    rule(
        "GET",
        "/api/v1/openapi.json",
        [200, 200, 200, 200, 200, 200, 200],
    ),
    // The words of validation messages hold no data; the app fetches them before anyone signs in.
    rule(
        "GET",
        "/api/v1/messages",
        [200, 200, 200, 200, 200, 200, 200],
    ),
    // Login needs no token (the body signs in as fw1); refresh needs only a refresh token (bogus here).
    rule(
        "POST",
        "/api/v1/auth/login",
        [200, 200, 200, 200, 200, 200, 200],
    ),
    rule(
        "POST",
        "/api/v1/auth/refresh",
        [401, 401, 401, 401, 401, 401, 401],
    ),
    // A wrong current password: 422 once signed in.
    rule(
        "POST",
        "/api/v1/auth/password",
        [401, 401, 422, 422, 422, 422, 422],
    ),
    rule("GET", "/api/v1/users", [401, 401, 403, 403, 403, 403, 200]),
    rule("POST", "/api/v1/users", [401, 401, 403, 403, 403, 403, 201]),
    rule(
        "GET",
        "/api/v1/users/{username}",
        [401, 401, 403, 403, 403, 403, 200],
    ),
    rule(
        "PATCH",
        "/api/v1/users/{username}",
        [401, 401, 403, 403, 403, 403, 200],
    ),
    rule("GET", "/api/v1/forms", [401, 401, 200, 200, 200, 200, 200]),
    rule("POST", "/api/v1/forms", [401, 401, 403, 403, 403, 403, 201]),
    rule(
        "GET",
        "/api/v1/forms/{form}",
        [401, 401, 200, 200, 200, 200, 200],
    ),
    rule(
        "POST",
        "/api/v1/forms/{form}/submissions",
        [401, 401, 201, 201, 201, 403, 201],
    ),
    rule(
        "GET",
        "/api/v1/forms/{form}/submissions",
        [401, 401, 200, 200, 200, 200, 200],
    ),
    rule(
        "POST",
        "/api/v1/forms/{form}/submissions/batch",
        [401, 401, 200, 200, 200, 403, 200],
    ),
    // fw1's submission: its author, not another field worker; everyone in scope above them.
    rule(
        "GET",
        "/api/v1/submissions/{id}",
        [401, 401, 200, 404, 200, 200, 200],
    ),
    rule(
        "GET",
        "/api/v1/submissions/{id}/raw",
        [401, 401, 200, 404, 200, 200, 200],
    ),
    rule(
        "GET",
        "/api/v1/forms/{form}/export.zip",
        [401, 401, 403, 403, 403, 200, 200],
    ),
    rule(
        "GET",
        "/api/v1/forms/{form}/export/{file}",
        [401, 401, 403, 403, 403, 200, 200],
    ),
    rule(
        "GET",
        "/api/v1/forms/{form}/indicators",
        [401, 401, 403, 403, 200, 200, 200],
    ),
    rule(
        "GET",
        "/api/v1/forms/{form}/indicators.csv",
        [401, 401, 403, 403, 200, 200, 200],
    ),
    rule(
        "GET",
        "/api/v1/forms/{form}/progress",
        [401, 401, 403, 403, 200, 200, 200],
    ),
    // Anyone signed in may ask for a link; what it opens is checked when it is used, as the
    // download's own route checks it. A link that was never given out has expired.
    rule(
        "POST",
        "/api/v1/downloads",
        [401, 401, 201, 201, 201, 201, 201],
    ),
    rule(
        "GET",
        "/api/v1/downloads/{link}",
        [410, 410, 410, 410, 410, 410, 410],
    ),
    rule("GET", "/api/v1/audit", [401, 401, 403, 403, 403, 403, 200]),
    rule(
        "GET",
        "/api/v1/admin/backup",
        [401, 401, 403, 403, 403, 403, 200],
    ),
    // Reviewers in scope and admins only: the author and analysts read the submission but not
    // its trail; fw2 may not even see it.
    rule(
        "GET",
        "/api/v1/submissions/{id}/audit",
        [401, 401, 403, 404, 200, 403, 200],
    ),
    rule(
        "PATCH",
        "/api/v1/submissions/{id}/review",
        [401, 401, 403, 403, 200, 403, 200],
    ),
    rule(
        "GET",
        "/api/v1/submissions/{id}/comments",
        [401, 401, 200, 404, 200, 200, 200],
    ),
    rule(
        "POST",
        "/api/v1/submissions/{id}/comments",
        [401, 401, 201, 404, 201, 403, 201],
    ),
    // A correction without If-Match: allowed callers get as far as 428.
    rule(
        "PUT",
        "/api/v1/submissions/{id}",
        [401, 401, 403, 403, 428, 403, 428],
    ),
    rule(
        "GET",
        "/api/v1/submissions/{id}/versions",
        [401, 401, 200, 404, 200, 200, 200],
    ),
    rule(
        "GET",
        "/api/v1/submissions/{id}/versions/{n}",
        [401, 401, 200, 404, 200, 200, 200],
    ),
    rule(
        "GET",
        "/api/v1/submissions/{id}/diff",
        [401, 401, 200, 404, 200, 200, 200],
    ),
    // Near the end: the admin deletes fw1's submission, then restores it.
    rule(
        "DELETE",
        "/api/v1/submissions/{id}",
        [401, 401, 403, 403, 403, 403, 200],
    ),
    rule(
        "POST",
        "/api/v1/submissions/{id}/restore",
        [401, 401, 403, 403, 403, 403, 200],
    ),
    // tus says what it speaks to anyone; uploads are to one's own submissions (admins: any).
    // The labour survey asks for no file, so allowed callers get as far as 422 (no answer names
    // it); fw2 cannot see fw1's submission; a supervisor and an analyst may read it, not add to it.
    rule(
        "OPTIONS",
        "/api/v1/uploads",
        [204, 204, 204, 204, 204, 204, 204],
    ),
    rule(
        "POST",
        "/api/v1/uploads",
        [401, 401, 422, 404, 403, 403, 422],
    ),
    // No such upload here: tests/api/attachments.rs tries others' uploads.
    rule(
        "HEAD",
        "/api/v1/uploads/{id}",
        [401, 401, 404, 404, 404, 404, 404],
    ),
    rule(
        "PATCH",
        "/api/v1/uploads/{id}",
        [401, 401, 404, 404, 404, 404, 404],
    ),
    rule(
        "DELETE",
        "/api/v1/uploads/{id}",
        [401, 401, 404, 404, 404, 404, 404],
    ),
    // Whoever reads the submission may read its files (none was uploaded here).
    rule(
        "GET",
        "/api/v1/submissions/{id}/attachments/{filename}",
        [401, 401, 404, 404, 404, 404, 404],
    ),
    // Admins import the register (the JSON body here gets as far as 415); everyone signed in
    // reads their places' roster (none imported here: 404).
    rule(
        "PUT",
        "/api/v1/forms/{form}/registry",
        [401, 401, 403, 403, 403, 403, 415],
    ),
    rule(
        "GET",
        "/api/v1/forms/{form}/registry",
        [401, 401, 404, 404, 404, 404, 404],
    ),
    // Figures over the register (none imported here: 404 for those who may read figures).
    rule(
        "GET",
        "/api/v1/forms/{form}/coverage",
        [401, 401, 403, 403, 404, 404, 404],
    ),
    rule(
        "GET",
        "/api/v1/forms/{form}/coverage.csv",
        [401, 401, 403, 403, 404, 404, 404],
    ),
    rule(
        "GET",
        "/api/v1/forms/{form}/coverage/missing",
        [401, 401, 403, 403, 404, 404, 404],
    ),
    // After the register's reads: building a register a register from another form's cleaned data: admins (fw1's `from` is the same
    // form; its one submission makes a register).
    rule(
        "POST",
        "/api/v1/forms/{form}/registry/from-export",
        [401, 401, 403, 403, 403, 403, 200],
    ),
    // The changes feed: analysts and admins.
    rule(
        "GET",
        "/api/v1/forms/{form}/changes",
        [401, 401, 403, 403, 403, 200, 200],
    ),
    // Webhooks: admins (no such webhook here: 404; a new one's JSON body is not one: 422).
    rule(
        "POST",
        "/api/v1/webhooks",
        [401, 401, 403, 403, 403, 403, 422],
    ),
    rule(
        "GET",
        "/api/v1/webhooks",
        [401, 401, 403, 403, 403, 403, 200],
    ),
    rule(
        "GET",
        "/api/v1/webhooks/{id}",
        [401, 401, 403, 403, 403, 403, 404],
    ),
    rule(
        "PATCH",
        "/api/v1/webhooks/{id}",
        [401, 401, 403, 403, 403, 403, 404],
    ),
    rule(
        "DELETE",
        "/api/v1/webhooks/{id}",
        [401, 401, 403, 403, 403, 403, 404],
    ),
    rule(
        "GET",
        "/api/v1/webhooks/{id}/deliveries",
        [401, 401, 403, 403, 403, 403, 404],
    ),
    rule(
        "POST",
        "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver",
        [401, 401, 403, 403, 403, 403, 404],
    ),
    // Very last: logging out ends the login of the access token each caller used.
    rule(
        "POST",
        "/api/v1/auth/logout",
        [401, 401, 204, 204, 204, 204, 204],
    ),
];

/// The field app owns every other path (deep links open it): public, since it holds no data; what
/// it shows comes from the API with the worker's token.
const APP: &[Rule] = &[
    rule("GET", "/", [200, 200, 200, 200, 200, 200, 200]),
    rule("GET", "/sw.js", [200, 200, 200, 200, 200, 200, 200]),
    rule("GET", "/fill/a-draft", [200, 200, 200, 200, 200, 200, 200]),
];

#[test]
fn every_route_has_a_rule() {
    let routes: BTreeSet<(String, String)> = survey_server::route_table()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_owned()))
        .collect();
    let rules: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(
        routes, rules,
        "every route needs exactly one row in the authorisation matrix"
    );
}

async fn tokens(app: &TestApp) -> Vec<Option<String>> {
    vec![
        None,
        Some(sign_with_server_key(
            app,
            &claims_for("fw1", "field_worker", -10),
        )),
        Some(app.token.clone()),
        Some(app.user("fw2", "field_worker", None).await),
        Some(app.user("supervisor", "supervisor", None).await),
        Some(app.user("analyst", "analyst", None).await),
        Some(app.admin_token.clone()),
    ]
}

/// A request body that lets the route succeed when the caller is allowed to use it.
fn body_for(rule: &Rule, caller: &str) -> Option<Value> {
    let body = match (rule.method, rule.path) {
        ("POST", "/api/v1/auth/login") => {
            json!({"username": "fw1", "password": crate::helpers::PASSWORD})
        }
        ("POST", "/api/v1/auth/refresh" | "/api/v1/auth/logout") => {
            json!({"refresh_token": "not-a-token"})
        }
        ("POST", "/api/v1/auth/password") => {
            json!({"current_password": "wrong-password", "new_password": "whatever-new-1"})
        }
        ("POST", "/api/v1/users") => {
            json!({"username": format!("new-{caller}"), "password": "a-long-password",
                                             "role": "field_worker", "display_name": "新调查员"})
        }
        ("PATCH", "/api/v1/submissions/{id}/review") => json!({"status": "approved"}),
        ("PATCH", "/api/v1/uploads/{id}") => return None,
        ("PATCH", "/api/v1/webhooks/{id}") => json!({"active": true}),
        ("POST", "/api/v1/webhooks") => {
            json!({"url": "ftp://nowhere.example/", "events": ["submission.created"],
                   "secret": "a-county-secret-of-at-least-32-bytes!"})
        }
        ("PATCH", _) => json!({"display_name": "韦秀英"}),
        ("POST", "/api/v1/submissions/{id}/comments") => {
            json!({"text": "请核对第2位劳动力的身份证号"})
        }
        ("DELETE", _) => json!({"reason": "entered twice"}),
        ("PUT", _) => json!({"data": household()}),
        ("POST", "/api/v1/forms") => {
            json!({"id": format!("matrix-{caller}"), "version": "1", "title": "t",
                                             "schema": {"type": "object"}})
        }
        ("POST", "/api/v1/forms/{form}/submissions") => envelope(household()),
        ("POST", "/api/v1/downloads") => json!({"path": "/api/v1/forms/labour-survey/export.zip"}),
        ("POST", "/api/v1/forms/{form}/submissions/batch") => {
            json!({"submissions": [envelope(household())]})
        }
        _ => return None,
    };
    Some(body)
}

/// The headers a tus request needs to get past its checks to the permission ones.
fn tus_headers_for(rule: &Rule, submission: &str) -> Vec<(&'static str, String)> {
    let metadata = || {
        use base64::Engine;
        let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        format!(
            "submission {},filename {},filetype {}",
            b64(submission),
            b64("house.jpg"),
            b64("image/jpeg")
        )
    };
    let tus = ("tus-resumable", "1.0.0".to_owned());
    match (rule.method, rule.path) {
        ("POST", "/api/v1/uploads") => vec![
            tus,
            ("upload-length", "1000".to_owned()),
            ("upload-metadata", metadata()),
        ],
        ("PATCH", "/api/v1/uploads/{id}") => vec![
            tus,
            ("upload-offset", "0".to_owned()),
            ("content-type", "application/offset+octet-stream".to_owned()),
        ],
        (_, path) if path.starts_with("/api/v1/uploads/") => vec![tus],
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn each_role_gets_exactly_the_access_the_matrix_says() {
    let app = spawn_app().await;
    let tokens = tokens(&app).await;
    let mine = envelope(household());
    assert_eq!(app.submit(&mine).await.status(), 201);
    let id = mine["id"].as_str().unwrap();

    let mut wrong = Vec::new();
    for rule in MATRIX.iter().chain(APP) {
        let path = rule
            .path
            .replace("{username}", "fw1")
            .replace("{form}", "labour-survey")
            .replace("{id}", id)
            .replace("{file}", "members.csv")
            .replace("{n}", "1")
            .replace("{filename}", "house.jpg")
            .replace("{link}", &"0123456789abcdef".repeat(4));
        let path = if path.ends_with("/diff") {
            format!("{path}?from=1&to=1")
        } else if path.ends_with("/progress") {
            format!("{path}?by=day")
        } else if path.ends_with("/from-export") {
            format!("{path}?from=labour-survey")
        } else {
            path
        };
        for (column, token) in tokens.iter().enumerate() {
            let mut request = app
                .client
                .request(rule.method.parse().unwrap(), app.url(&path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body_for(rule, CALLERS[column]) {
                request = request.json(&body);
            }
            for (name, value) in tus_headers_for(rule, id) {
                request = request.header(name, value);
            }
            let status = request.send().await.unwrap().status().as_u16();
            if status != rule.expect[column] {
                wrong.push(format!(
                    "{} {} as {}: {status}, expected {}",
                    rule.method, rule.path, CALLERS[column], rule.expect[column]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn household_in(township: &str) -> Value {
    let mut data = household();
    data["township"] = json!(township);
    envelope(data)
}

#[tokio::test]
async fn a_field_worker_cannot_submit_outside_their_scope() {
    let app = spawn_app().await;
    let siling = app
        .user("fw-siling", "field_worker", Some(&["思林镇"]))
        .await;

    let inside = app.submit_as(&siling, &household_in("思林镇")).await;
    let outside = app.submit_as(&siling, &household_in("平马镇")).await;

    assert_eq!(inside.status(), 201);
    let (status, code, _) = error_code(outside).await;
    assert_eq!((status, code.as_str()), (403, "out_of_scope"));
}

#[tokio::test]
async fn scoped_readers_see_only_their_townships_and_field_workers_only_their_own() {
    let app = spawn_app().await;
    let siling = household_in("思林镇");
    let pingma = household_in("平马镇");
    app.submit(&siling).await;
    app.submit(&pingma).await;
    let fw2 = app.user("fw2", "field_worker", None).await;
    let theirs = household_in("思林镇");
    app.submit_as(&fw2, &theirs).await;
    let supervisor = app
        .user("sup-siling", "supervisor", Some(&["思林镇"]))
        .await;
    let analyst = app.user("ana-pingma", "analyst", Some(&["平马镇"])).await;

    let listed = |token: String| {
        let app = &app;
        async move {
            let page: Value = app
                .get_json_as(&token, "/api/v1/forms/labour-survey/submissions")
                .await;
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();

    assert_eq!(listed(supervisor.clone()).await, [id(&siling), id(&theirs)]);
    assert_eq!(listed(analyst.clone()).await, [id(&pingma)]);
    assert_eq!(listed(app.token.clone()).await, [id(&siling), id(&pingma)]);
    assert_eq!(listed(fw2).await, [id(&theirs)]);
    let outside = format!("/api/v1/submissions/{}", id(&pingma));
    assert_eq!(app.get_as(&supervisor, &outside).await.status(), 404);
    assert_eq!(app.get_as(&analyst, &outside).await.status(), 200);
}

#[tokio::test]
async fn a_submission_records_who_sent_it_from_the_token() {
    let app = spawn_app().await;
    let submission = envelope(household());
    app.submit(&submission).await;

    let id = submission["id"].as_str().unwrap();
    let stored: Value = app
        .get_json_as(&app.admin_token, &format!("/api/v1/submissions/{id}"))
        .await;

    assert_eq!(stored["submitted_by"], "fw1");
}
