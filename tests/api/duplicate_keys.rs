//! Finding F1 of the outside review: a key repeated in a body was read one way by validation and
//! another by exports; and one record that cannot be read must never fail a list or an export.

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, csv_rows, envelope, error_code, household, post_text_as, rewrite_stored_payload,
    spawn_app, unzip,
};

const SUBMISSIONS: &str = "/api/v1/forms/labour-survey/submissions";

/// `{"id":…,"form_version":"1","data":<first>,"data":<second>}`, as the attacker sent it.
fn twice_data(id: &str, first: &Value, second: &Value) -> String {
    format!(r#"{{"id":"{id}","form_version":"1","data":{first},"data":{second}}}"#)
}

/// Answers that must never reach the county's figures.
fn junk() -> Value {
    let mut data = household();
    data["township"] = json!("平马镇");
    data["members"][0]["id_number"] = json!("NOT-AN-ID");
    data
}

#[tokio::test]
async fn a_repeated_key_anywhere_in_a_submission_is_refused_at_its_second_occurrence() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4().to_string();

    let body = twice_data(&id, &junk(), &household());
    let (status, code, error) =
        error_code(post_text_as(&app, &app.token, SUBMISSIONS, body).await).await;
    assert_eq!((status, code.as_str()), (422, "request_invalid"));
    assert_eq!(error["details"][0]["path"], "/data");

    // A second township inside the answers would move the submission's scope.
    let inside = serde_json::to_string(&envelope(household()))
        .unwrap()
        .replacen(
            r#""township":"思林镇""#,
            r#""township":"思林镇","township":"平马镇""#,
            1,
        );
    let (status, code, error) =
        error_code(post_text_as(&app, &app.token, SUBMISSIONS, inside).await).await;
    assert_eq!((status, code.as_str()), (422, "request_invalid"));
    assert_eq!(error["details"][0]["path"], "/data/township");

    let stored = app.get(&format!("/api/v1/submissions/{id}")).await;
    assert_eq!(stored.status(), 404, "nothing was stored");
}

#[tokio::test]
async fn a_batch_refuses_the_item_with_a_repeated_key_and_keeps_the_others() {
    let app = spawn_app().await;
    let good = serde_json::to_string(&envelope(household())).unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    let bad = twice_data(&id, &junk(), &household());

    let body = format!(r#"{{"submissions":[{bad},{good}]}}"#);
    let response = post_text_as(&app, &app.token, &format!("{SUBMISSIONS}/batch"), body).await;

    assert_eq!(response.status(), 200);
    let results: Value = response.json().await.unwrap();
    let first = &results["results"][0];
    assert_eq!(first["status"], 422);
    assert_eq!(first["error"]["code"], "request_invalid");
    assert_eq!(
        first["error"]["details"][0]["path"], "/data",
        "relative to the item"
    );
    assert_eq!(results["results"][1]["status"], 201);

    let wrapper = format!(r#"{{"submissions":[{good}],"submissions":[]}}"#);
    let refused = post_text_as(&app, &app.token, &format!("{SUBMISSIONS}/batch"), wrapper).await;
    let (status, code, error) = error_code(refused).await;
    assert_eq!((status, code.as_str()), (422, "request_invalid"));
    assert_eq!(error["details"][0]["path"], "/submissions");
}

#[tokio::test]
async fn other_bodies_with_a_repeated_key_are_refused_too() {
    let app = spawn_app().await;
    let body = r#"{"username":"wei","username":"li","password":"field-work-2026","role":"field_worker","display_name":"韦"}"#;
    let (status, code, error) =
        error_code(post_text_as(&app, &app.admin_token, "/api/v1/users", body.into()).await).await;
    assert_eq!((status, code.as_str()), (422, "request_invalid"));
    assert_eq!(error["details"][0]["path"], "/username");
}

/// A supervisor of 思林镇 and an analyst, as the county has them.
async fn readers(app: &TestApp) -> (String, String) {
    let supervisor = app
        .user("sup-siling", "supervisor", Some(&["思林镇"]))
        .await;
    let analyst = app.user("analyst", "analyst", None).await;
    (supervisor, analyst)
}

#[tokio::test]
async fn a_record_stored_with_a_repeated_key_is_read_last_wins_by_every_reader() {
    let mut app = spawn_app().await;
    let (supervisor, analyst) = readers(&app).await;
    let valid = envelope(household());
    assert_eq!(app.submit(&valid).await.status(), 201);
    let id = valid["id"].as_str().unwrap().to_owned();

    // What a server before this fix stored: the junk first, the validated answers last.
    app.stop().await;
    let payload = twice_data(&id, &junk(), &valid["data"]);
    rewrite_stored_payload(app.data_path(), &id, payload.as_bytes());
    let app = app.restart().await;

    let one: Value = app
        .get_json_as(&supervisor, &format!("/api/v1/submissions/{id}"))
        .await;
    assert_eq!(one["data"]["members"][0]["id_number"], "452223198503150025");
    let page: Value = app.get_json_as(&supervisor, SUBMISSIONS).await;
    assert_eq!(page["items"][0]["data"]["township"], "思林镇");

    for raw in ["false", "true"] {
        let path = format!("/api/v1/forms/labour-survey/export/members.csv?raw={raw}");
        let response = app.get_as(&analyst, &path).await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(!text.contains("NOT-AN-ID"), "raw={raw}: {text}");
        assert!(
            csv_rows(&text)
                .iter()
                .all(|row| row["township"] == "思林镇")
        );
    }
    let figures: Value = app
        .get_json_as(
            &analyst,
            "/api/v1/forms/labour-survey/indicators?table=members&by=township",
        )
        .await;
    assert_eq!(figures["groups"][0]["township"], "思林镇");

    let deleted = app
        .delete_json_as(
            &app.admin_token,
            &format!("/api/v1/submissions/{id}"),
            &json!({"reason": "replayed attack"}),
        )
        .await;
    assert_eq!(deleted.status(), 200);
}

#[tokio::test]
async fn an_unreadable_record_is_left_out_of_lists_and_exports_and_said_so() {
    let mut app = spawn_app().await;
    let (_, analyst) = readers(&app).await;
    let damaged = envelope(household());
    let intact = envelope(household());
    assert_eq!(app.submit(&damaged).await.status(), 201);
    assert_eq!(app.submit(&intact).await.status(), 201);
    let damaged_id = damaged["id"].as_str().unwrap().to_owned();

    app.stop().await;
    rewrite_stored_payload(app.data_path(), &damaged_id, br#"{"id": "cut off here"#);
    let app = app.restart().await;

    let page: Value = app.get_json_as(&app.admin_token, SUBMISSIONS).await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [intact["id"].as_str().unwrap()]);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("survey_unreadable_records_total 1"),
        "{metrics}"
    );

    let zip = app
        .get_as(&analyst, "/api/v1/forms/labour-survey/export.zip")
        .await;
    assert_eq!(zip.status(), 200);
    let files = unzip(zip.bytes().await.unwrap().to_vec());
    let log = &files["cleaning_log.csv"];
    let dropped: Vec<_> = csv_rows(log)
        .into_iter()
        .filter(|row| row["action"] == "dropped_unreadable")
        .collect();
    assert_eq!(dropped.len(), 1, "{log}");
    assert_eq!(dropped[0]["submission_id"], damaged_id);
    assert_eq!(csv_rows(&files["main.csv"]).len(), 1);
}
