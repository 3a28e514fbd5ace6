//! Findings F4 and F13 of the outside review: every CSV the server writes makes formula cells
//! inert, and no name can add parameters to a download's `Content-Disposition`.

use serde_json::json;

use crate::helpers::{envelope, household, spawn_app};

#[tokio::test]
async fn indicators_csv_makes_formula_cells_inert_like_every_other_csv() {
    let app = spawn_app().await;
    let analyst = app.user("analyst", "analyst", None).await;
    let mut data = household();
    data["village"] = json!("=HYPERLINK(\"http://evil.example\",\"x\")");
    assert_eq!(app.submit(&envelope(data)).await.status(), 201);

    let response = app
        .get_as(
            &analyst,
            "/api/v1/forms/labour-survey/indicators.csv?table=main&by=village",
        )
        .await;

    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let cells: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    assert!(cells[0].starts_with("\"'=HYPERLINK"), "{text}");
    assert!(
        !text.lines().any(|line| line.starts_with("=")),
        "no cell may start a formula: {text}"
    );
    let log: serde_json::Value = app
        .get_json_as(&app.admin_token, "/api/v1/audit?action=export_downloaded")
        .await;
    assert_eq!(
        log["items"][0]["target"], "export:labour-survey-indicators.csv",
        "a download of figures is on record too"
    );
}

#[tokio::test]
async fn a_table_named_to_inject_a_second_file_name_gets_one_quoted_name() {
    let app = spawn_app().await;
    let analyst = app.user("analyst", "analyst", None).await;
    let property = "x\"; filename=\"evil.exe";
    let schema = json!({"type": "object", "properties": {property: {"type": "array",
        "items": {"type": "object", "properties": {"a": {"type": "string"}}}}}});
    let published = app
        .post_json_as(
            &app.admin_token,
            "/api/v1/forms",
            &json!({"id": "evil", "version": "1", "title": "t", "schema": schema}),
        )
        .await;
    assert_eq!(published.status(), 201);

    let response = app
        .get_as(
            &analyst,
            "/api/v1/forms/evil/export/x%22%3B%20filename%3D%22evil.exe.csv",
        )
        .await;

    assert_eq!(response.status(), 200);
    let disposition = response.headers()["content-disposition"].to_str().unwrap();
    assert_eq!(disposition.matches("filename=").count(), 1, "{disposition}");
    assert!(
        disposition.starts_with("attachment; filename=\"evil-x__"),
        "{disposition}"
    );
    assert!(
        disposition.ends_with("; filename*=UTF-8''evil-x%22%3B%20filename%3D%22evil.exe.csv"),
        "{disposition}"
    );
}

#[tokio::test]
async fn every_download_names_its_file_both_ways() {
    let app = spawn_app().await;
    let analyst = app.user("analyst", "analyst", None).await;
    for (token, path, name) in [
        (
            &analyst,
            "/api/v1/forms/labour-survey/export.zip",
            "labour-survey.zip",
        ),
        (
            &analyst,
            "/api/v1/forms/labour-survey/indicators.csv",
            "labour-survey-indicators.csv",
        ),
        (&app.admin_token, "/api/v1/admin/backup", "survey-server-"),
    ] {
        let response = app.get_as(token, path).await;
        let disposition = response.headers()["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with(&format!("attachment; filename=\"{name}")),
            "{disposition}"
        );
        assert!(
            disposition.contains(&format!("; filename*=UTF-8''{name}")),
            "{disposition}"
        );
    }
}
