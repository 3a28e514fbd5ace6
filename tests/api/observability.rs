//! `/metrics` after real traffic, and the separate metrics listener with JSON logs on the real binary.

use serde_json::{Value, json};

use crate::helpers::{envelope, household, spawn_app};

#[tokio::test]
async fn metrics_count_requests_submissions_logins_and_export_rows() {
    let app = spawn_app().await;
    let accepted = envelope(household());
    assert_eq!(app.submit(&accepted).await.status(), 201);
    assert_eq!(app.submit(&accepted).await.status(), 201, "a replay");
    let mut conflicting = accepted.clone();
    conflicting["data"]["village"] = json!("另一个村");
    assert_eq!(app.submit(&conflicting).await.status(), 409);
    let mut invalid = household();
    invalid.as_object_mut().unwrap().remove("village");
    assert_eq!(app.submit(&envelope(invalid)).await.status(), 422);
    let wrong_password = json!({"username": "admin", "password": "not the password"});
    assert_eq!(
        app.post_json("/api/v1/auth/login", &wrong_password)
            .await
            .status(),
        401
    );
    let analyst = app.user("ana", "analyst", None).await;
    let export = app
        .get_as(&analyst, "/api/v1/forms/labour-survey/export/members.csv")
        .await;
    assert_eq!(export.status(), 200);
    let members = export.text().await.unwrap().lines().count() - 1;
    app.get("/api/v1/forms/no-such-form/submissions").await;

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    let route = "/api/v1/forms/{form}/submissions";
    for line in [
        format!(r#"survey_http_requests_total{{method="POST",route="{route}",status="201"}} 2"#),
        format!(r#"survey_http_requests_total{{method="POST",route="{route}",status="422"}} 1"#),
        r#"survey_submissions_total{form="labour-survey",outcome="accepted"} 1"#.to_owned(),
        r#"survey_submissions_total{form="labour-survey",outcome="replayed"} 1"#.to_owned(),
        r#"survey_submissions_total{form="labour-survey",outcome="submission_conflict"} 1"#
            .to_owned(),
        r#"survey_submissions_total{form="labour-survey",outcome="validation_failed"} 1"#
            .to_owned(),
        r#"survey_validation_errors_total{form="labour-survey",keyword="required"} 1"#.to_owned(),
        r#"survey_logins_total{outcome="failure"} 1"#.to_owned(),
        format!(r#"survey_export_rows_total{{form="labour-survey",format="csv"}} {members}"#),
    ] {
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }
    assert!(
        !text.contains("no-such-form"),
        "names that are not forms stay out of the labels"
    );
    assert!(text.contains(&format!(
        r#"survey_http_request_duration_seconds_count{{method="POST",route="{route}"}} 4"#
    )));
    let flushes = sample(&text, "survey_flush_batch_writes_count");
    assert!(flushes >= 1.0, "every acknowledged write was flushed");
    assert!(sample(&text, "survey_database_size_bytes") > 0.0);
}

/// The value of the first sample named exactly `name`.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_metrics_listener_of_its_own_takes_metrics_off_the_api() {
    let app = crate::helpers::spawn_app_with(|config| {
        config.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

/// The binary with `SURVEY_LOG_FORMAT=json` and `SURVEY_METRICS_BIND`: JSON lines naming the request,
/// no secrets in them, and `/metrics` only on its own listener.
#[tokio::test]
async fn the_binary_logs_json_lines_with_request_ids_and_serves_metrics_apart() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};

    use crate::helpers::{ADMIN_PASSWORD, admin_token, server_command};

    let data = tempfile::tempdir().unwrap();
    let mut child = server_command(data.path())
        .env("SURVEY_LOG", "info")
        .env("SURVEY_LOG_FORMAT", "json")
        .env("SURVEY_METRICS_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut api, mut metrics) = (None, None);
    while metrics.is_none() {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the server stopped"
        );
        let line = line.trim();
        if let Some(address) = line.strip_prefix("survey-server listening on ") {
            api = Some(address.to_owned());
        }
        metrics = line.strip_prefix("metrics: ").map(str::to_owned);
    }
    let (api, metrics) = (api.unwrap(), metrics.unwrap());

    let client = reqwest::Client::new();
    let token = &admin_token(&client, &api).await;
    let submitted = client
        .post(format!("{api}/api/v1/forms/labour-survey/submissions"))
        .bearer_auth(token)
        .header("x-request-id", "phone-9-upload-1")
        .json(&envelope(household()))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 201);
    let on_api = client.get(format!("{api}/metrics")).send().await.unwrap();
    assert_eq!(on_api.status(), 404);
    let scraped = client.get(&metrics).send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(
        text.contains(r#"survey_logins_total{outcome="success"} 1"#),
        "{text}"
    );

    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(child.wait().unwrap().success());
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();

    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let submission = lines
        .iter()
        .find(|line| line["span"]["id"] == "phone-9-upload-1")
        .unwrap_or_else(|| panic!("no line names the request id in\n{logs}"));
    assert_eq!(submission["fields"]["status"], 201);
    assert_eq!(
        submission["fields"]["route"],
        "/api/v1/forms/{form}/submissions"
    );
    for secret in [ADMIN_PASSWORD, token] {
        assert!(!logs.contains(secret), "a secret in the logs:\n{logs}");
    }
}
