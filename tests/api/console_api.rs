//! What the console's screens ask of the API: supervisors' figures, filtered lists, progress
//! counts, and downloads by one-time link.

use serde_json::{Value, json};

use crate::helpers::{TestApp, envelope, household, spawn_app};

pub fn household_in(township: &str, household_id: &str) -> Value {
    let mut data = household();
    data["township"] = json!(township);
    data["household_id"] = json!(household_id);
    envelope(data)
}

/// Two households in 思林镇 and one in 平马镇, all sent by fw1.
async fn three_households(app: &TestApp) -> Vec<Value> {
    let sent = vec![
        household_in("思林镇", "4510220001"),
        household_in("思林镇", "4510220002"),
        household_in("平马镇", "4510220003"),
    ];
    for envelope in &sent {
        assert_eq!(app.submit(envelope).await.status(), 201);
    }
    sent
}

#[tokio::test]
async fn a_supervisor_reads_the_figures_of_their_places_only() {
    let app = spawn_app().await;
    three_households(&app).await;
    let supervisor = app
        .user("sup-siling", "supervisor", Some(&["思林镇"]))
        .await;
    let figures = app
        .get_json_as(
            &supervisor,
            "/api/v1/forms/labour-survey/indicators?table=main&by=township",
        )
        .await;
    let groups: Vec<&str> = figures["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["township"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(groups, ["思林镇"], "{figures}");
    assert_eq!(figures["total"]["rows"], 2, "{figures}");
    // Figures, not rows: the dataset stays the analysts'.
    let rows = app
        .get_as(&supervisor, "/api/v1/forms/labour-survey/export.zip")
        .await;
    assert_eq!(rows.status(), 403);
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn lists_are_filtered_by_place_worker_state_time_and_identifier() {
    let app = spawn_app().await;
    let before = time::OffsetDateTime::now_utc();
    let sent = three_households(&app).await;
    let fw2 = app.user("fw2", "field_worker", None).await;
    let theirs = household_in("思林镇", "4510220004");
    assert_eq!(app.submit_as(&fw2, &theirs).await.status(), 201);
    let id = |e: &Value| e["id"].as_str().unwrap().to_owned();
    let list = |query: &str| {
        let app = &app;
        let path = format!("/api/v1/forms/labour-survey/submissions?{query}");
        async move { ids(&app.get_json_as(&app.admin_token, &path).await) }
    };

    assert_eq!(list("township=平马镇").await, [id(&sent[2])]);
    assert_eq!(list("submitted_by=fw2").await, [id(&theirs)]);
    assert_eq!(
        list("township=思林镇&submitted_by=fw1").await,
        [id(&sent[0]), id(&sent[1])]
    );
    // A household number typed with full-width digits and spaces is found as cleaning reads it.
    assert_eq!(
        list("q=%E3%80%80%EF%BC%94510220002%20").await,
        [id(&sent[1])]
    );
    // So is a labourer's ID number, with a lower-case x.
    let labourer = sent[0]["data"]["members"][0]["id_number"]
        .as_str()
        .unwrap()
        .to_lowercase();
    let found = list(&format!("q={labourer}")).await;
    assert_eq!(
        found.len(),
        4,
        "every household of the test carries the same labourer"
    );
    let since = (before - time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(
        list(&format!("since={}", since.replace('+', "%2B")))
            .await
            .len(),
        4
    );
    assert_eq!(
        list(&format!("until={}", since.replace('+', "%2B")))
            .await
            .len(),
        0
    );

    let supervisor = app
        .user("sup-siling", "supervisor", Some(&["思林镇"]))
        .await;
    review(&app, &supervisor, &id(&sent[0]), "has_issues").await;
    assert_eq!(list("status=has_issues").await, [id(&sent[0])]);
    // A filter never widens what a reader may see.
    let theirs_only = app
        .get_json_as(
            &supervisor,
            "/api/v1/forms/labour-survey/submissions?township=平马镇",
        )
        .await;
    assert_eq!(ids(&theirs_only), Vec::<String>::new());
    // Paging goes on through the filter.
    let first = app
        .get_json_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/submissions?township=思林镇&limit=1",
        )
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get_json_as(
            &app.admin_token,
            &format!(
                "/api/v1/forms/labour-survey/submissions?township=思林镇&limit=2&cursor={cursor}"
            ),
        )
        .await;
    assert_eq!(ids(&first), [id(&sent[0])]);
    assert_eq!(ids(&second), [id(&sent[1]), id(&theirs)]);
}

#[tokio::test]
async fn bad_filters_are_named() {
    let app = spawn_app().await;
    for query in [
        "since=yesterday",
        "until=2026-13-01",
        "q=",
        "township=%20",
        "status=lost",
    ] {
        let answer = app
            .get_as(
                &app.admin_token,
                &format!("/api/v1/forms/labour-survey/submissions?{query}"),
            )
            .await;
        let (status, code, _) = crate::helpers::error_code(answer).await;
        assert_eq!((status, code.as_str()), (400, "query_invalid"), "{query}");
    }
}

async fn review(app: &TestApp, token: &str, id: &str, status: &str) {
    let answer = app
        .patch_json_as(
            token,
            &format!("/api/v1/submissions/{id}/review"),
            &json!({"status": status, "comment": "请核实"}),
        )
        .await;
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
}

#[tokio::test]
async fn progress_is_counted_in_the_readers_places_with_names_for_field_workers() {
    let app = spawn_app().await;
    let sent = three_households(&app).await;
    let fw2 = app.user("fw2", "field_worker", None).await;
    assert_eq!(
        app.submit_as(&fw2, &household_in("思林镇", "4510220004"))
            .await
            .status(),
        201
    );
    let supervisor = app
        .user("sup-siling", "supervisor", Some(&["思林镇"]))
        .await;
    review(
        &app,
        &supervisor,
        sent[0]["id"].as_str().unwrap(),
        "approved",
    )
    .await;
    let progress = |token: &str, by: &str| {
        let app = &app;
        let path = format!("/api/v1/forms/labour-survey/progress?by={by}");
        let token = token.to_owned();
        async move { app.get_json_as(&token, &path).await }
    };

    let places = progress(&app.admin_token, "township").await;
    assert_eq!(
        places,
        json!({"groups": [{"key": "平马镇", "count": 1}, {"key": "思林镇", "count": 3}], "total": 4})
    );
    let workers = progress(&supervisor, "submitted_by").await;
    assert_eq!(workers["total"], 3, "{workers}");
    assert_eq!(workers["groups"][0]["key"], "fw1");
    assert_eq!(workers["groups"][0]["count"], 2);
    assert!(
        workers["groups"][0]["display_name"].is_string(),
        "{workers}"
    );
    let states = progress(&supervisor, "review_status").await;
    assert_eq!(
        states["groups"],
        json!([{"key": "received", "count": 2}, {"key": "approved", "count": 1}])
    );
    // Days are the county's: the day of arrival in Asia/Shanghai.
    let stored = app
        .get_json_as(
            &app.admin_token,
            &format!("/api/v1/submissions/{}", sent[0]["id"].as_str().unwrap()),
        )
        .await;
    let today = stored["received_at"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
        .date()
        .to_string();
    let days = progress(&app.admin_token, "day").await;
    assert_eq!(days["groups"], json!([{"key": today, "count": 4}]));

    let unknown = app
        .get_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/progress?by=week",
        )
        .await;
    assert_eq!(crate::helpers::error_code(unknown).await.1, "query_invalid");
}

async fn link_for(app: &TestApp, token: &str, path: &str) -> String {
    let answer = app
        .post_json_as(token, "/api/v1/downloads", &json!({"path": path}))
        .await;
    assert_eq!(answer.status(), 201);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    body["href"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_download_link_works_once_without_a_token_and_is_audited() {
    let app = spawn_app().await;
    three_households(&app).await;
    let analyst = app.user("ana", "analyst", None).await;
    let href = link_for(
        &app,
        &analyst,
        "/api/v1/forms/labour-survey/export.zip?labels=true",
    )
    .await;
    assert!(!href.contains(&analyst) && href.starts_with("/api/v1/downloads/"));

    let first = app.client.get(app.url(&href)).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "application/zip");
    assert!(
        first.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let files = crate::helpers::unzip(first.bytes().await.unwrap().to_vec());
    assert_eq!(crate::helpers::csv_rows(&files["main.csv"]).len(), 3);

    let again = app.client.get(app.url(&href)).send().await.unwrap();
    assert_eq!(crate::helpers::error_code(again).await.1, "link_expired");
    let trail = app
        .get_json_as(
            &app.admin_token,
            "/api/v1/audit?action=export_downloaded&actor=ana",
        )
        .await;
    assert_eq!(trail["items"].as_array().unwrap().len(), 1, "{trail}");
}

#[tokio::test]
async fn a_link_opens_only_what_its_owner_may_download() {
    let app = spawn_app().await;
    let supervisor = app.user("sup", "supervisor", None).await;
    let href = link_for(&app, &supervisor, "/api/v1/forms/labour-survey/export.zip").await;
    let answer = app.client.get(app.url(&href)).send().await.unwrap();
    assert_eq!(crate::helpers::error_code(answer).await.1, "forbidden");
    // Only downloads have links.
    for path in [
        "/api/v1/audit",
        "/api/v1/users",
        "https://elsewhere.example/x",
    ] {
        let refused = app
            .post_json_as(
                &app.admin_token,
                "/api/v1/downloads",
                &json!({"path": path}),
            )
            .await;
        assert_eq!(
            crate::helpers::error_code(refused).await.1,
            "request_invalid",
            "{path}"
        );
    }
    // A login that ended takes its links with it.
    let ana = app.login("admin", crate::helpers::ADMIN_PASSWORD).await;
    let token = ana["access_token"].as_str().unwrap();
    let href = link_for(&app, token, "/api/v1/admin/backup").await;
    let logout = app
        .post_json_as(
            token,
            "/api/v1/auth/logout",
            &json!({"refresh_token": ana["refresh_token"]}),
        )
        .await;
    assert_eq!(logout.status(), 204);
    let answer = app.client.get(app.url(&href)).send().await.unwrap();
    assert_eq!(answer.status(), 401);
}

#[tokio::test]
async fn a_link_is_not_spent_by_a_head_and_must_be_a_path_a_request_can_have() {
    let app = spawn_app().await;
    let href = link_for(&app, &app.admin_token, "/api/v1/admin/backup").await;
    let head = app.client.head(app.url(&href)).send().await.unwrap();
    assert_eq!(head.status(), 405);
    let get = app.client.get(app.url(&href)).send().await.unwrap();
    assert_eq!(get.status(), 200);
    let refused = app
        .post_json_as(
            &app.admin_token,
            "/api/v1/downloads",
            &json!({"path": "/api/v1/forms/labour-survey/export.zip?labels=a b"}),
        )
        .await;
    assert_eq!(
        crate::helpers::error_code(refused).await.1,
        "request_invalid"
    );
}

#[tokio::test]
async fn a_misspelt_filter_is_refused_rather_than_listing_everything() {
    let app = spawn_app().await;
    let answer = app
        .get_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/submissions?townshp=思林镇",
        )
        .await;
    assert_eq!(crate::helpers::error_code(answer).await.1, "query_invalid");
}

#[tokio::test]
async fn the_same_places_in_another_order_do_not_end_a_login() {
    let app = spawn_app().await;
    let token = app
        .user("sup2", "supervisor", Some(&["思林镇", "平马镇"]))
        .await;
    let renamed = app
        .patch_json_as(
            &app.admin_token,
            "/api/v1/users/sup2",
            &json!({"display_name": "两镇督导员", "scope": ["平马镇", "思林镇"]}),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    let still = app
        .get_as(&token, "/api/v1/forms/labour-survey/submissions")
        .await;
    assert_eq!(still.status(), 200);
}

#[tokio::test]
async fn one_user_holds_at_most_twenty_unused_links() {
    let app = spawn_app().await;
    let analyst = app.user("ana", "analyst", None).await;
    for _ in 0..20 {
        link_for(&app, &analyst, "/api/v1/forms/labour-survey/export.zip").await;
    }
    let refused = app
        .post_json_as(
            &analyst,
            "/api/v1/downloads",
            &json!({"path": "/api/v1/forms/labour-survey/export.zip"}),
        )
        .await;
    assert_eq!(
        crate::helpers::error_code(refused).await.1,
        "too_many_attempts"
    );
    // Someone else's links are theirs.
    link_for(&app, &app.admin_token, "/api/v1/admin/backup").await;
}
