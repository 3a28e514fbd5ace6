//! Review: states, comments, soft delete and restore, and what exports make of them.

use serde_json::{Value, json};

use crate::helpers::{TestApp, csv_rows, envelope, error_code, household, spawn_app};

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.patch_json_as(token, path, &body).await
}

async fn delete(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.delete_json_as(token, path, &body).await
}

/// Household `k` with its own household id and labourers, so exports keep every one.
fn household_k(k: u32) -> Value {
    let mut data = household();
    data["household_id"] = json!(format!("45102201799{k:02}"));
    let births = ["19850315", "19830708", "19591102"];
    for (i, birth) in births.iter().enumerate() {
        let serial = k * 2 + u32::from(i == 1) + 600;
        data["members"][i]["id_number"] = json!(
            survey_server::forms::formats::complete_resident_id(&format!(
                "452223{birth}{serial:03}"
            ))
            .expect("17 digits")
        );
    }
    data
}

#[tokio::test]
async fn a_supervisor_sends_a_submission_back_and_the_field_worker_sees_why() {
    let app = spawn_app().await;
    let submission = envelope(household());
    app.submit(&submission).await;
    let supervisor = app.user("sup", "supervisor", None).await;
    let id = submission["id"].as_str().unwrap();

    let reviewed = patch(
        &app,
        &supervisor,
        &format!("/api/v1/submissions/{id}/review"),
        json!({"status": "has_issues", "comment": "请核对第2位劳动力的身份证号"}),
    )
    .await;

    assert_eq!(reviewed.status(), 200);
    let one: Value = app.get_json(&format!("/api/v1/submissions/{id}")).await;
    assert_eq!(one["status"], "has_issues");
    let comments: Value = app
        .get_json(&format!("/api/v1/submissions/{id}/comments"))
        .await;
    assert_eq!(comments["items"][0]["text"], "请核对第2位劳动力的身份证号");
    assert_eq!(comments["items"][0]["author"], "sup");
    let attention: Value = app
        .get_json("/api/v1/forms/labour-survey/submissions?status=has_issues,rejected")
        .await;
    assert_eq!(attention["items"].as_array().unwrap().len(), 1);
    let reply = app
        .post_json(
            &format!("/api/v1/submissions/{id}/comments"),
            &json!({"text": "已核对"}),
        )
        .await;
    assert_eq!(reply.status(), 201);
    let trail: Value = app
        .get_json_as(&supervisor, &format!("/api/v1/submissions/{id}/audit"))
        .await;
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "submission_created",
            "submission_reviewed",
            "comment_added",
            "comment_added"
        ]
    );
}

#[tokio::test]
async fn only_review_states_can_be_set() {
    let app = spawn_app().await;
    let submission = envelope(household());
    app.submit(&submission).await;
    let id = submission["id"].as_str().unwrap();

    for status in ["edited", "received", "great"] {
        let response = patch(
            &app,
            &app.admin_token,
            &format!("/api/v1/submissions/{id}/review"),
            json!({"status": status}),
        )
        .await;
        let (code, _, error) = error_code(response).await;
        assert_eq!(code, 422, "{status}");
        assert_eq!(error["details"][0]["path"], "/status");
    }
}

#[tokio::test]
async fn a_deleted_submission_leaves_lists_and_exports_and_comes_back_on_restore() {
    let app = spawn_app().await;
    let submission = envelope(household());
    app.submit(&submission).await;
    let id = submission["id"].as_str().unwrap();

    let deleted = delete(
        &app,
        &app.admin_token,
        &format!("/api/v1/submissions/{id}"),
        json!({"reason": "entered twice"}),
    )
    .await;

    assert_eq!(deleted.status(), 200);
    let list: Value = app
        .get_json("/api/v1/forms/labour-survey/submissions")
        .await;
    assert!(list["items"].as_array().unwrap().is_empty());
    assert_eq!(
        app.get(&format!("/api/v1/submissions/{id}")).await.status(),
        404,
        "hidden from its author"
    );
    let as_admin: Value = app
        .get_json_as(&app.admin_token, &format!("/api/v1/submissions/{id}"))
        .await;
    assert_eq!(as_admin["deleted"]["reason"], "entered twice");
    let csv = app
        .get_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/export/main.csv",
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(csv_rows(&csv).is_empty());
    let raw = app
        .get_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/export/main.csv?raw=true",
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv_rows(&raw)[0]["_review_status"],
        "deleted",
        "raw exports keep it, flagged"
    );
    let (status, _, _) = error_code(
        delete(
            &app,
            &app.admin_token,
            &format!("/api/v1/submissions/{id}"),
            json!({"reason": " "}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 422, "a deletion needs a reason");

    let restored = app
        .post_json_as(
            &app.admin_token,
            &format!("/api/v1/submissions/{id}/restore"),
            &json!({}),
        )
        .await;

    assert_eq!(restored.status(), 200);
    assert_eq!(
        app.get(&format!("/api/v1/submissions/{id}")).await.status(),
        200
    );
}

#[tokio::test]
async fn the_dataset_follows_review_rejected_and_deleted_left_out_and_logged() {
    let app = spawn_app().await;
    let envelopes: Vec<Value> = (0..4).map(|k| envelope(household_k(k))).collect();
    for e in &envelopes {
        assert_eq!(app.submit(e).await.status(), 201);
    }
    let id = |k: usize| envelopes[k]["id"].as_str().unwrap().to_owned();
    let admin = app.admin_token.clone();
    patch(
        &app,
        &admin,
        &format!("/api/v1/submissions/{}/review", id(0)),
        json!({"status": "approved"}),
    )
    .await;
    patch(
        &app,
        &admin,
        &format!("/api/v1/submissions/{}/review", id(1)),
        json!({"status": "rejected"}),
    )
    .await;
    patch(
        &app,
        &admin,
        &format!("/api/v1/submissions/{}/review", id(2)),
        json!({"status": "has_issues"}),
    )
    .await;
    delete(
        &app,
        &admin,
        &format!("/api/v1/submissions/{}", id(3)),
        json!({"reason": "a test household"}),
    )
    .await;

    let zip = app
        .get_as(&admin, "/api/v1/forms/labour-survey/export.zip")
        .await
        .bytes()
        .await
        .unwrap();
    let approved = app
        .get_as(
            &admin,
            "/api/v1/forms/labour-survey/export/main.csv?status=approved",
        )
        .await
        .text()
        .await
        .unwrap();

    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let mut read = |name: &str| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut archive.by_name(name).unwrap(), &mut text).unwrap();
        csv_rows(&text)
    };
    let main = read("main.csv");
    let kept: Vec<(&str, &str)> = main
        .iter()
        .map(|r| (r["_id"].as_str(), r["_review_status"].as_str()))
        .collect();
    assert_eq!(
        kept,
        [(id(0).as_str(), "approved"), (id(2).as_str(), "has_issues")]
    );
    assert_eq!(read("members.csv").len(), 6);
    let log = read("cleaning_log.csv");
    let dropped: Vec<(&str, &str)> = log
        .iter()
        .filter(|l| l["action"].starts_with("dropped"))
        .map(|l| (l["submission_id"].as_str(), l["action"].as_str()))
        .collect();
    assert_eq!(
        dropped,
        [
            (id(1).as_str(), "dropped_rejected"),
            (id(3).as_str(), "dropped_deleted")
        ]
    );
    let approved = csv_rows(&approved);
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["_id"], id(0));
    let (status, _, _) = error_code(
        app.get_as(&admin, "/api/v1/forms/labour-survey/export.zip?status=fine")
            .await,
    )
    .await;
    assert_eq!(status, 400);
}

async fn put(
    app: &TestApp,
    token: &str,
    path: &str,
    if_match: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = app.client.put(app.url(path)).bearer_auth(token).json(&body);
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_correction_is_a_new_version_with_a_diff_and_the_original_stays() {
    let app = spawn_app().await;
    let submission = envelope(household());
    app.submit(&submission).await;
    let supervisor = app.user("sup", "supervisor", None).await;
    let id = submission["id"].as_str().unwrap();
    let path = format!("/api/v1/submissions/{id}");
    let etag = app.get_as(&supervisor, &path).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut corrected = household();
    corrected["members"][0]["monthly_income"] = json!(2500);

    let saved = put(
        &app,
        &supervisor,
        &path,
        Some(&etag),
        json!({"data": corrected}),
    )
    .await;

    assert_eq!(saved.status(), 200);
    assert_ne!(saved.headers()["etag"].to_str().unwrap(), etag);
    let now: Value = app.get_json(&path).await;
    assert_eq!(
        (now["status"].as_str(), now["version"].as_u64()),
        (Some("edited"), Some(2))
    );
    assert_eq!(now["data"]["members"][0]["monthly_income"], 2500);
    let versions: Value = app.get_json(&format!("{path}/versions")).await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 2);
    assert_eq!(versions["items"][1]["edited_by"], "sup");
    let original: Value = app.get_json(&format!("{path}/versions/1")).await;
    assert_eq!(original["data"], household());
    let diff: Value = app.get_json(&format!("{path}/diff?from=1&to=2")).await;
    assert_eq!(
        diff["changes"],
        json!([{"op": "replace", "path": "/members/0/monthly_income", "from": 2000, "to": 2500}])
    );
    let raw = app.get(&format!("{path}/raw")).await.bytes().await.unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&raw).unwrap(),
        submission,
        "the upload is kept as received"
    );
    let members = app
        .get_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/export/members.csv",
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv_rows(&members)[0]["monthly_income"],
        "2500",
        "exports use the latest version"
    );
    let mut changed = submission.clone();
    changed["data"]["village"] = json!("别的村");
    assert_eq!(
        app.submit(&changed).await.status(),
        409,
        "a re-upload is not an edit"
    );
}

#[tokio::test]
async fn a_stale_missing_or_invalid_correction_is_refused() {
    let app = spawn_app().await;
    let submission = envelope(household());
    app.submit(&submission).await;
    let id = submission["id"].as_str().unwrap();
    let path = format!("/api/v1/submissions/{id}");
    let admin = app.admin_token.clone();
    let etag = app.get_as(&admin, &path).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        put(
            &app,
            &admin,
            &path,
            Some(&etag),
            json!({"data": household()})
        )
        .await
        .status(),
        200
    );

    let stale = put(
        &app,
        &admin,
        &path,
        Some(&etag),
        json!({"data": household()}),
    )
    .await;
    let missing = put(&app, &admin, &path, None, json!({"data": household()})).await;
    let fresh = app.get_as(&admin, &path).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut bad = household();
    bad["members"][0]["months_worked"] = json!(13);
    let invalid = put(&app, &admin, &path, Some(&fresh), json!({"data": bad})).await;

    assert_eq!(error_code(stale).await.1, "version_stale");
    assert_eq!(error_code(missing).await.1, "if_match_required");
    let (status, code, error) = error_code(invalid).await;
    assert_eq!((status, code.as_str()), (422, "validation_failed"));
    assert_eq!(error["details"][0]["path"], "/members/0/months_worked");
}
