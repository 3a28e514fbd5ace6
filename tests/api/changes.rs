//! The changes feed: every change of a form's submissions in commit order, once, resumable
//! from its cursor across restarts, scoped to the reader's places.

use serde_json::{Value, json};

use crate::helpers::{TestApp, envelope, error_code, household, spawn_app};

/// Every change after `cursor`, following `next_cursor` `limit` at a time, and the last cursor.
async fn read_all(app: &TestApp, token: &str, cursor: &str, limit: usize) -> (Vec<Value>, String) {
    let mut cursor = cursor.to_owned();
    let mut items = Vec::new();
    loop {
        let mut path = format!("/api/v1/forms/labour-survey/changes?limit={limit}");
        if !cursor.is_empty() {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get_json_as(token, &path).await;
        let got = page["items"].as_array().unwrap().clone();
        cursor = page["next_cursor"].as_str().unwrap().to_owned();
        if got.is_empty() {
            return (items, cursor);
        }
        items.extend(got);
    }
}

/// `(event, submission, version, review_status)` of each change.
fn story(items: &[Value]) -> Vec<(String, String, u64, String)> {
    items
        .iter()
        .map(|c| {
            (
                c["event"].as_str().unwrap().to_owned(),
                c["submission_id"].as_str().unwrap().to_owned(),
                c["version"].as_u64().unwrap(),
                c["review_status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Sends a request that must succeed.
async fn send(request: reqwest::RequestBuilder) {
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

/// Submits `data` as fw1; the submission's id.
async fn submitted(app: &TestApp, data: Value) -> String {
    let submission = envelope(data);
    assert_eq!(app.submit(&submission).await.status(), 201);
    submission["id"].as_str().unwrap().to_owned()
}

/// A supervisor's correction of `id` to `data`.
async fn corrected(app: &TestApp, supervisor: &str, id: &str, data: Value) {
    let path = format!("/api/v1/submissions/{id}");
    let etag = app.get_as(supervisor, &path).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let request = app
        .client
        .put(app.url(&path))
        .bearer_auth(supervisor)
        .header("if-match", etag);
    send(request.json(&json!({"data": data}))).await;
}

#[tokio::test]
async fn every_change_is_listed_once_in_commit_order_and_the_cursor_survives_a_restart() {
    let app = spawn_app().await;
    let analyst = app.user("ana", "analyst", None).await;
    let supervisor = app.user("sup", "supervisor", None).await;
    let first = submitted(&app, household()).await;
    let mut other = household();
    other["household_id"] = json!("4510220002");
    let second = submitted(&app, other).await;
    let review = app
        .client
        .patch(app.url(&format!("/api/v1/submissions/{first}/review")));
    send(
        review
            .bearer_auth(&supervisor)
            .json(&json!({"status": "approved"})),
    )
    .await;
    let mut fixed = household();
    fixed["village"] = json!("百谷村");
    corrected(&app, &supervisor, &second, fixed).await;
    let delete = app
        .client
        .delete(app.url(&format!("/api/v1/submissions/{first}")));
    send(
        delete
            .bearer_auth(&app.admin_token)
            .json(&json!({"reason": "entered twice"})),
    )
    .await;
    let restore = app
        .client
        .post(app.url(&format!("/api/v1/submissions/{first}/restore")));
    send(restore.bearer_auth(&app.admin_token)).await;

    let (items, cursor) = read_all(&app, &analyst, "", 2).await;
    let expected = [
        ("submission.created", &first, 1, "received"),
        ("submission.created", &second, 1, "received"),
        ("submission.reviewed", &first, 1, "approved"),
        ("submission.edited", &second, 2, "edited"),
        ("submission.deleted", &first, 1, "approved"),
        ("submission.restored", &first, 1, "approved"),
    ]
    .map(|(e, id, v, s)| (e.to_owned(), id.clone(), v, s.to_owned()));
    assert_eq!(story(&items), expected);
    // Each change carries the answers of the version it made (none for a deletion).
    assert_eq!(items[1]["data"]["village"], household()["village"]);
    assert_eq!(items[3]["data"]["village"], "百谷村");
    assert!(items[4].get("data").is_none());
    assert_eq!(items[0]["form"], "labour-survey");
    assert_eq!(items[0]["form_version"], "1");

    // Nothing new: the same cursor comes back. A restart changes nothing of that.
    let (none, same) = read_all(&app, &analyst, &cursor, 100).await;
    assert!(none.is_empty());
    assert_eq!(same, cursor);
    let app = app.restart().await;
    let analyst = app.login("ana", crate::helpers::PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let third = submitted(&app, household()).await;
    let (after, _) = read_all(&app, &analyst, &cursor, 100).await;
    assert_eq!(
        story(&after),
        [("submission.created".into(), third, 1, "received".into())]
    );
    // Read from the start again, the feed tells the same story.
    let (again, _) = read_all(&app, &analyst, "", 100).await;
    assert_eq!(story(&again)[..6], expected);

    let meta = app
        .get_json_as(
            &analyst,
            "/api/v1/forms/labour-survey/changes?fields=meta&limit=1",
        )
        .await;
    assert!(meta["items"][0].get("data").is_none());
    assert!(meta["next_cursor"].as_str().unwrap().parse::<u64>().is_ok());
}

#[tokio::test]
async fn a_household_moved_by_a_correction_is_seen_in_both_places() {
    let app = spawn_app().await;
    let siling = app.user("ana-siling", "analyst", Some(&["思林镇"])).await;
    let pingma = app.user("ana-pingma", "analyst", Some(&["平马镇"])).await;
    let supervisor = app.user("sup", "supervisor", None).await;
    let id = submitted(&app, household()).await;
    let mut moved = household();
    moved["township"] = json!("平马镇");
    corrected(&app, &supervisor, &id, moved).await;

    let (in_siling, _) = read_all(&app, &siling, "", 100).await;
    let (in_pingma, _) = read_all(&app, &pingma, "", 100).await;
    let events = |items: &[Value]| {
        items
            .iter()
            .map(|c| c["event"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        events(&in_siling),
        ["submission.created", "submission.edited"]
    );
    assert_eq!(events(&in_pingma), ["submission.edited"]);
    assert_eq!(in_pingma[0]["data"]["township"], "平马镇");
}

#[tokio::test]
async fn only_analysts_and_admins_read_the_feed_and_bad_queries_are_named() {
    let app = spawn_app().await;
    let path = "/api/v1/forms/labour-survey/changes";
    let (status, code, _) = error_code(app.get(path).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"), "field workers");
    let analyst = app.user("ana", "analyst", None).await;
    for (query, expected) in [
        ("?cursor=abc", (400, "query_invalid")),
        ("?limit=0", (400, "query_invalid")),
        ("?limit=1001", (400, "query_invalid")),
        ("?fields=everything", (400, "query_invalid")),
    ] {
        let (status, code, _) =
            error_code(app.get_as(&analyst, &format!("{path}{query}")).await).await;
        assert_eq!((status, code.as_str()), expected, "{query}");
    }
    let (status, code, _) = error_code(
        app.get_as(&analyst, "/api/v1/forms/no-such-form/changes")
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "form_not_found"));
    let empty = app.get_json_as(&analyst, path).await;
    assert_eq!(
        empty,
        json!({"items": [], "next_cursor": empty["next_cursor"].clone()})
    );
}

#[tokio::test]
async fn changes_logged_before_the_feed_existed_are_told_to_their_places_only() {
    use survey_server::audit::AuditAction;
    use survey_server::store::AuditEvent;
    let mut app = spawn_app().await;
    app.user("ana-siling", "analyst", Some(&["思林镇"])).await;
    app.user("ana-pingma", "analyst", Some(&["平马镇"])).await;
    let id = submitted(&app, household()).await;
    // An entry as an older server wrote it: about the submission, without what it made of it.
    app.stop().await;
    let store = crate::helpers::open_store_when_free(app.data_path()).await;
    let event = AuditEvent {
        actor: "sup".into(),
        action: AuditAction::SubmissionReviewed,
        target: format!("submission:{id}"),
        request_id: None,
    };
    store.record_audit(&event).unwrap().durable().await.unwrap();
    drop(store);
    let app = app.restart().await;
    let token = |name: &str| {
        let app = &app;
        let name = name.to_owned();
        async move {
            app.login(&name, crate::helpers::PASSWORD).await["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (siling, pingma) = (token("ana-siling").await, token("ana-pingma").await);
    let (in_siling, _) = read_all(&app, &siling, "", 100).await;
    let (in_pingma, _) = read_all(&app, &pingma, "", 100).await;
    assert_eq!(in_siling.len(), 2, "{in_siling:?}");
    assert_eq!(in_siling[1]["event"], "submission.reviewed");
    assert!(in_pingma.is_empty(), "{in_pingma:?}");
}
