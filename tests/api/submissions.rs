use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    envelope, error_code, household, spawn_app, spawn_app_with, stored_record_format,
};

#[tokio::test]
async fn a_valid_submission_is_stored_and_answered_with_a_receipt() {
    let app = spawn_app().await;
    let submission = envelope(household());

    let response = app.submit(&submission).await;

    assert_eq!(response.status(), 201);
    assert!(response.headers().get("idempotent-replayed").is_none());
    let receipt: Value = response.json().await.unwrap();
    assert_eq!(receipt["id"], submission["id"]);
    assert_eq!(receipt["form"], "labour-survey");
    assert_eq!(receipt["form_version"], "1");
    assert_eq!(receipt["status"], "received");
    assert!(receipt["received_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn without_a_form_version_the_current_one_is_used() {
    let app = spawn_app().await;
    let mut submission = envelope(household());
    submission.as_object_mut().unwrap().remove("form_version");

    let receipt: Value = app.submit(&submission).await.json().await.unwrap();

    // Version 2 (with presence) is the one published last.
    assert_eq!(receipt["form_version"], "2");
}

#[tokio::test]
async fn a_retried_upload_gets_the_original_receipt_again() {
    let app = spawn_app().await;
    let submission = envelope(household());
    let original: Value = app.submit(&submission).await.json().await.unwrap();

    let retry = app.submit(&submission).await;

    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let replayed: Value = retry.json().await.unwrap();
    assert_eq!(replayed, original);
}

#[tokio::test]
async fn the_same_id_with_other_answers_is_a_conflict_and_the_first_stays() {
    let app = spawn_app().await;
    let submission = envelope(household());
    app.submit(&submission).await;
    let mut changed = submission.clone();
    changed["data"]["village"] = json!("另一个村");

    let (status, code, _) = error_code(app.submit(&changed).await).await;

    assert_eq!((status, code.as_str()), (409, "submission_conflict"));
    let id = submission["id"].as_str().unwrap();
    let stored: Value = app.get_json(&format!("/api/v1/submissions/{id}")).await;
    assert_eq!(stored["data"]["village"], "定阳村");
}

#[tokio::test]
async fn a_submission_with_a_bad_id_number_is_rejected_with_a_pointer_to_the_field() {
    let app = spawn_app().await;
    let mut data = household();
    data["members"][1]["id_number"] = json!("452223198307080391");

    let (status, code, error) = error_code(app.submit(&envelope(data)).await).await;

    assert_eq!((status, code.as_str()), (422, "validation_failed"));
    let detail = &error["details"][0];
    assert_eq!(detail["path"], "/members/1/id_number");
    assert_eq!(detail["keyword"], "format");
    assert!(
        !detail["message"]
            .as_str()
            .unwrap()
            .contains("452223198307080391"),
        "the message echoes personal data"
    );
}

#[tokio::test]
async fn every_problem_in_a_submission_is_reported_at_once() {
    let app = spawn_app().await;
    let mut data = household();
    data.as_object_mut().unwrap().remove("village");
    data["members"][0]["months_worked"] = json!(13);
    data["members"][2]["gender"] = json!("unknown");

    let (_, _, error) = error_code(app.submit(&envelope(data)).await).await;

    let mut paths: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        ["/members/0/months_worked", "/members/2/gender", "/village"]
    );
}

#[tokio::test]
async fn an_envelope_without_a_uuid_is_refused() {
    let app = spawn_app().await;
    let mut submission = envelope(household());
    submission["id"] = json!("household-17");

    let (status, code, error) = error_code(app.submit(&submission).await).await;

    assert_eq!((status, code.as_str()), (422, "request_invalid"));
    assert_eq!(error["details"][0]["path"], "/id");
}

#[tokio::test]
async fn a_submission_to_an_unknown_form_or_version_is_refused() {
    let app = spawn_app().await;
    let (status, code, _) = error_code(
        app.post_json(
            "/api/v1/forms/no-such-form/submissions",
            &envelope(household()),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "form_not_found"));

    let mut submission = envelope(household());
    submission["form_version"] = json!("7");
    let (status, code, _) = error_code(app.submit(&submission).await).await;
    assert_eq!((status, code.as_str()), (422, "form_version_unknown"));
}

#[tokio::test]
async fn a_stored_submission_is_returned_with_its_metadata_and_its_exact_bytes() {
    let app = spawn_app().await;
    let id = Uuid::new_v4();
    // Odd spacing and key order: the server must keep the bytes exactly as sent.
    let raw = format!(
        "{{ \"data\" : {},\n \"id\":\"{id}\", \"meta\": {{\"device_id\": \"p1\"}} }}",
        household()
    );
    let response = app
        .post_raw(
            "/api/v1/forms/labour-survey/submissions",
            "application/json",
            raw.clone(),
        )
        .await;
    assert_eq!(response.status(), 201);

    let one: Value = app.get_json(&format!("/api/v1/submissions/{id}")).await;
    assert_eq!(one["id"], id.to_string());
    assert_eq!(one["form_version"], "2");
    assert_eq!(one["data"], household());
    assert_eq!(one["meta"]["device_id"], "p1");
    assert!(one["received_at"].is_string());

    assert_eq!(raw_of(&app, &id.to_string()).await, raw.as_bytes());
}

/// What `GET /api/v1/submissions/{id}/raw` answers.
async fn raw_of(app: &crate::helpers::TestApp, id: &str) -> Vec<u8> {
    let response = app.get(&format!("/api/v1/submissions/{id}/raw")).await;
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn a_forms_thousandth_submission_brings_it_a_dictionary_and_every_record_reads_back_exactly()
{
    let mut app = spawn_app_with(|config| config.max_batch = 100).await;
    let form = "/api/v1/forms/labour-survey/submissions";
    let mut sent: Vec<(String, String)> = Vec::new();
    let mut post = async |app: &crate::helpers::TestApp, count: usize| {
        let items: Vec<Value> = (0..count)
            .map(|i| {
                let mut data = household();
                data["members"][0]["name"] = json!(format!("第{}号", sent.len() + i));
                envelope(data)
            })
            .collect();
        let body: Value = app
            .post_json(&format!("{form}/batch"), &json!({ "submissions": items }))
            .await
            .json()
            .await
            .unwrap();
        let results = body["results"].as_array().unwrap();
        assert!(results.iter().all(|r| r["status"] == 201), "{body}");
        sent.extend(
            items
                .iter()
                .map(|item| (item["id"].as_str().unwrap().to_owned(), item.to_string())),
        );
    };
    for _ in 0..10 {
        post(&app, 100).await;
    }
    // The thousandth starts the training beside the server's work; it takes well under a second.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    post(&app, 10).await;

    app.stop().await;
    let format_of = |i: usize| stored_record_format(app.data_path(), &sent[i].0);
    assert_eq!(format_of(0), 1, "before the dictionary: compressed alone");
    assert_eq!(
        format_of(sent.len() - 1),
        2,
        "after it: with the dictionary"
    );
    let app = app.restart().await;
    for (id, raw) in sent.iter().step_by(37).chain(sent.iter().rev().take(10)) {
        assert_eq!(raw_of(&app, id).await, raw.as_bytes(), "{id}");
    }
}

#[tokio::test]
async fn an_unknown_submission_is_not_found() {
    let app = spawn_app().await;
    for id in [Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let (status, code, _) =
            error_code(app.get(&format!("/api/v1/submissions/{id}")).await).await;
        assert_eq!((status, code.as_str()), (404, "submission_not_found"));
    }
}

#[tokio::test]
async fn a_batch_is_judged_item_by_item_in_input_order() {
    let app = spawn_app().await;
    let stored = envelope(household());
    app.submit(&stored).await;
    let fresh = envelope(household());
    let mut conflicting = stored.clone();
    conflicting["data"]["village"] = json!("另一个村");
    let mut invalid = envelope(household());
    invalid["data"]["consent"] = json!(false);
    let batch = json!({"submissions": [fresh, stored, conflicting, invalid, "not an object"]});

    let response = app
        .post_json("/api/v1/forms/labour-survey/submissions/batch", &batch)
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 201, 409, 422, 422]);
    assert_eq!(results[0]["id"], fresh["id"]);
    assert_eq!(results[0]["replayed"], false);
    assert_eq!(results[1]["replayed"], true);
    assert_eq!(results[2]["error"]["code"], "submission_conflict");
    assert_eq!(results[3]["error"]["details"][0]["path"], "/consent");
    assert_eq!(results[4]["id"], Value::Null);
    let id = fresh["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/submissions/{id}")).await.status(),
        200
    );
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_whole() {
    let app = spawn_app().await;
    let items: Vec<Value> = (0..=app.config.max_batch)
        .map(|_| envelope(household()))
        .collect();

    let response = app
        .post_json(
            "/api/v1/forms/labour-survey/submissions/batch",
            &json!({"submissions": items}),
        )
        .await;

    let (status, code, _) = error_code(response).await;
    assert_eq!((status, code.as_str()), (413, "batch_too_large"));
    let page: Value = app
        .get_json("/api/v1/forms/labour-survey/submissions")
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn paging_walks_every_submission_once_in_arrival_order() {
    let app = spawn_app().await;
    let mut sent = Vec::new();
    for _ in 0..7 {
        let submission = envelope(household());
        app.submit(&submission).await;
        sent.push(submission["id"].as_str().unwrap().to_owned());
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/forms/labour-survey/submissions?limit=3&cursor={c}"),
            None => "/api/v1/forms/labour-survey/submissions?limit=3".to_owned(),
        };
        let page: Value = app.get_json(&path).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    assert_eq!(seen, sent);
}

#[tokio::test]
async fn a_bad_paging_query_is_refused() {
    let app = spawn_app().await;
    for query in ["limit=0", "limit=100000", "limit=abc", "cursor=xyz"] {
        let response = app
            .get(&format!("/api/v1/forms/labour-survey/submissions?{query}"))
            .await;
        let (status, code, _) = error_code(response).await;
        assert_eq!((status, code.as_str()), (400, "query_invalid"), "{query}");
    }
}

#[tokio::test]
async fn everything_acknowledged_is_still_there_after_a_restart() {
    let app = spawn_app().await;
    let submission = envelope(household());
    let receipt: Value = app.submit(&submission).await.json().await.unwrap();

    let app = app.restart().await;

    let id = submission["id"].as_str().unwrap();
    let stored: Value = app.get_json(&format!("/api/v1/submissions/{id}")).await;
    assert_eq!(stored["received_at"], receipt["received_at"]);
    let retry: Value = app.submit(&submission).await.json().await.unwrap();
    assert_eq!(retry, receipt);
    let after = envelope(household());
    app.submit(&after).await;
    let page: Value = app
        .get_json("/api/v1/forms/labour-survey/submissions")
        .await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id, after["id"].as_str().unwrap()]);
}

#[tokio::test]
async fn a_batch_may_be_larger_than_one_submission_but_each_item_is_held_to_the_single_limit() {
    let app = crate::helpers::spawn_app_with(|c| c.max_body_bytes = 4 * 1024).await;
    let items: Vec<Value> = (0..10).map(|_| envelope(household())).collect();
    let mut oversized = envelope(household());
    oversized["data"]["village"] = json!("村".repeat(2000));
    let mut batch = items.clone();
    batch.push(oversized.clone());

    let response = app
        .post_json(
            "/api/v1/forms/labour-survey/submissions/batch",
            &json!({"submissions": batch}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let statuses: Vec<u64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses[..10], [201; 10]);
    assert_eq!(statuses[10], 413);
    assert_eq!(body["results"][10]["error"]["code"], "body_too_large");
    let id = oversized["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/submissions/{id}")).await.status(),
        404
    );
}

#[tokio::test]
async fn an_unknown_review_state_in_the_list_filter_is_a_bad_query() {
    let app = spawn_app().await;
    for status in ["nonsense", "", "approved,"] {
        let response = app
            .get(&format!(
                "/api/v1/forms/labour-survey/submissions?status={status}"
            ))
            .await;
        let (code, error, _) = error_code(response).await;
        assert_eq!((code, error.as_str()), (400, "query_invalid"), "{status:?}");
    }
    let fine = app
        .get("/api/v1/forms/labour-survey/submissions?status=received,edited")
        .await;
    assert_eq!(fine.status(), 200);
}
