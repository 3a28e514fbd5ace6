//! Several API nodes on one PostgreSQL database, as behind the shipped load balancing: what one
//! node does, every other node sees. These run only on PostgreSQL (`SURVEY_TEST_STORE=postgres`):
//! sled is held by one process, so on it they return at once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_PASSWORD, PASSWORD, TestApp, envelope, error_code, household, psql, spawn_app,
    spawn_app_with, test_cluster, test_store,
};
use survey_server::config::StoreChoice;

/// A second node on `first`'s database, sharing its attachments directory.
async fn second_node(first: &TestApp) -> TestApp {
    let store = first.config.database.store.clone();
    let attachments = first
        .config
        .attachments_dir
        .clone()
        .unwrap_or_else(|| first.data_path().join("attachments"));
    spawn_app_with(move |config| {
        config.database.store = store;
        config.attachments_dir = Some(attachments);
    })
    .await
}

/// Two nodes on one database, when the tests run on PostgreSQL (else `None`: sled is one process's).
async fn two_nodes() -> Option<(TestApp, TestApp)> {
    test_cluster()?;
    let a = spawn_app().await;
    let b = second_node(&a).await;
    Some((a, b))
}

/// Waits, at most a second (the promise for changes made on another node), until `path`
/// answers `status` on `node` to `token`.
async fn within_a_second(node: &TestApp, token: &str, path: &str, status: u16) {
    let since = Instant::now();
    loop {
        let answer = node.get_as(token, path).await.status().as_u16();
        if answer == status {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "{path} still answers {answer}, not {status}, a second later"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn database_url(app: &TestApp) -> String {
    match &app.config.database.store {
        StoreChoice::Postgres(url) => url.clone(),
        StoreChoice::Sled => unreachable!("only on PostgreSQL"),
    }
}

#[tokio::test]
async fn two_nodes_starting_at_once_on_an_empty_database_share_one_admin_key_and_forms() {
    if test_cluster().is_none() {
        return;
    }
    let fresh = tempfile::tempdir().unwrap();
    let store = test_store(fresh.path());
    let (a, b) = tokio::join!(
        spawn_app_with(|c| c.database.store = store.clone()),
        spawn_app_with(|c| c.database.store = store.clone()),
    );
    // One signing key: a token from either node works on the other.
    let forms: Value = b.get_json_as(&a.admin_token, "/api/v1/forms").await;
    assert_eq!(forms["forms"][0]["current_version"], "2");
    assert_eq!(a.get_as(&b.token, "/api/v1/forms").await.status(), 200);
    // The shipped versions were published once, whoever got there first.
    let url = database_url(&a);
    let versions = psql(&url, "SELECT count(*) FROM formversion_definition");
    assert_eq!(versions.trim(), "2");
}

#[tokio::test]
async fn a_logout_a_role_change_and_a_disabled_account_take_effect_on_every_node() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };

    let session = a.login("fw1", PASSWORD).await;
    let access = session["access_token"].as_str().unwrap();
    assert_eq!(b.get_as(access, "/api/v1/forms").await.status(), 200);
    let out = a
        .post_json_as(
            access,
            "/api/v1/auth/logout",
            &json!({"refresh_token": session["refresh_token"]}),
        )
        .await;
    assert_eq!(out.status(), 204);
    within_a_second(&b, access, "/api/v1/forms", 401).await;

    let supervisor = a.user("sup", "supervisor", None).await;
    assert_eq!(b.get_as(&supervisor, "/api/v1/users").await.status(), 403);
    let reviewer_path = "/api/v1/forms/labour-survey/submissions";
    assert_eq!(b.get_as(&supervisor, reviewer_path).await.status(), 200);
    let demoted = a
        .patch_json_as(
            &a.admin_token,
            "/api/v1/users/sup",
            &json!({"role": "analyst"}),
        )
        .await;
    assert_eq!(demoted.status(), 200);
    // Demotion ends the sessions of the old role (the token version moves): so on the other node.
    within_a_second(&b, &supervisor, reviewer_path, 401).await;

    let disabled = b
        .patch_json_as(
            &b.admin_token,
            "/api/v1/users/fw1",
            &json!({"active": false}),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    within_a_second(&a, &a.token, "/api/v1/forms", 401).await;
    // On the node that made the change, at once.
    assert_eq!(b.get_as(&b.token, "/api/v1/forms").await.status(), 401);
}

#[tokio::test]
async fn a_form_published_on_one_node_is_served_by_the_other_within_a_second() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let form = json!({
        "id": "training-feedback",
        "version": "1",
        "title": "培训反馈",
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5}},
            "required": ["score"]
        }
    });
    let published = a.post_json_as(&a.admin_token, "/api/v1/forms", &form).await;
    assert_eq!(published.status(), 201);
    let since = Instant::now();
    loop {
        if b.get("/api/v1/forms/training-feedback").await.status() == 200 {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "the other node never served the new form"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = b
        .post_json_as(
            &b.token,
            "/api/v1/forms/training-feedback/submissions",
            &json!({"id": uuid::Uuid::new_v4().to_string(), "data": {"score": 4}}),
        )
        .await;
    assert_eq!(answer.status(), 201);
}

#[tokio::test]
async fn the_same_id_sent_to_two_nodes_at_once_is_stored_once() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    for round in 0..10 {
        let same = envelope(household());
        let (one, two) = tokio::join!(a.submit(&same), b.submit(&same));
        assert_eq!(
            [one.status(), two.status()].map(|s| s.as_u16()),
            [201, 201],
            "round {round}"
        );
        let replayed = [&one, &two].map(|r| r.headers().contains_key("idempotent-replayed"));
        assert_eq!(
            replayed.iter().filter(|r| **r).count(),
            1,
            "round {round}: one stored, one replayed"
        );
        let (one, two): (Value, Value) = (one.json().await.unwrap(), two.json().await.unwrap());
        assert_eq!(one, two, "round {round}: the same receipt");

        let first = envelope(household());
        let mut other = first.clone();
        other["data"]["village"] = json!("另一个村");
        let (one, two) = tokio::join!(a.submit(&first), b.submit(&other));
        let mut statuses = [one.status().as_u16(), two.status().as_u16()];
        statuses.sort();
        assert_eq!(
            statuses,
            [201, 409],
            "round {round}: other answers conflict"
        );
    }
    let ids = crate::helpers::all_submission_ids(&a.client, &b.address, &a.admin_token).await;
    assert_eq!(ids.len(), 20);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 20);
}

#[tokio::test]
async fn a_reader_following_the_cursor_misses_nothing_while_two_nodes_take_submissions() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let writer = |node: &TestApp| {
        let node_client = node.client.clone();
        let url = node.url("/api/v1/forms/labour-survey/submissions");
        let token = node.token.clone();
        async move {
            let mut stored = Vec::new();
            for _ in 0..40 {
                let submission = envelope(household());
                let answer = node_client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&submission)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), 201);
                stored.push(submission["id"].as_str().unwrap().to_owned());
            }
            stored
        }
    };
    let reader = async {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut quiet_pages = 0;
        // Pages of 3 while writes land; afterwards, until two reads find nothing new.
        while quiet_pages < 2 {
            let path = match &cursor {
                Some(c) => format!("/api/v1/forms/labour-survey/submissions?limit=3&cursor={c}"),
                None => "/api/v1/forms/labour-survey/submissions?limit=3".to_owned(),
            };
            let page: Value = a.get_json_as(&a.admin_token, &path).await;
            let mut new = 0;
            for item in page["items"].as_array().unwrap() {
                let id = item["id"].as_str().unwrap().to_owned();
                if !seen.contains(&id) {
                    seen.push(id);
                    new += 1;
                }
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                // The end for now: read again from the same cursor later.
                None => {
                    if new == 0 {
                        quiet_pages += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        seen
    };
    let (from_a, from_b, seen) = tokio::join!(writer(&a), writer(&b), async {
        // Start reading once writing is under way.
        tokio::time::sleep(Duration::from_millis(50)).await;
        reader.await
    });
    let stored: HashSet<String> = from_a.into_iter().chain(from_b).collect();
    let seen_set: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), seen_set.len(), "nothing twice");
    let missed: Vec<_> = stored.difference(&seen_set).collect();
    assert!(missed.is_empty(), "the reader missed {missed:?}");
}

#[tokio::test]
async fn login_failures_on_every_node_count_towards_one_limit() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let wrong = json!({"username": "fw1", "password": "not-the-password"});
    for (i, node) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
        let answer = node.post_json("/api/v1/auth/login", &wrong).await;
        assert_eq!(answer.status(), 401, "failure {i}");
    }
    let right = json!({"username": "fw1", "password": PASSWORD});
    let (status, code, _) = error_code(b.post_json("/api/v1/auth/login", &right).await).await;
    assert_eq!((status, code.as_str()), (429, "too_many_attempts"));
    // Another name is not held up.
    b.login("admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn a_download_link_made_on_one_node_works_once_on_any() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let made = a
        .post_json_as(
            &a.admin_token,
            "/api/v1/downloads",
            &json!({"path": "/api/v1/forms/labour-survey/export.zip"}),
        )
        .await;
    assert_eq!(made.status(), 201);
    let href = made.json::<Value>().await.unwrap()["href"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = b.client.get(b.url(&href)).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "application/zip");
    let again = a.client.get(a.url(&href)).send().await.unwrap();
    assert_eq!(error_code(again).await.1, "link_expired");
}
