//! The PostgreSQL connection itself: verified TLS, and what the API answers while no database
//! can be reached. These run only on PostgreSQL (`SURVEY_TEST_STORE=postgres`).

use std::time::Duration;

use survey_server::AppState;
use survey_server::config::StoreChoice;

use crate::helpers::{
    envelope, error_code, household, psql, spawn_app, spawn_app_with, test_cluster, test_config,
};

fn database_url(app: &crate::helpers::TestApp) -> String {
    match &app.config.database.store {
        StoreChoice::Postgres(url) => url.clone(),
        StoreChoice::Sled => unreachable!("only on PostgreSQL"),
    }
}

/// The test cluster's certificate authority (scripts/with-postgres makes one).
fn cluster_ca() -> std::path::PathBuf {
    std::env::var("SURVEY_TEST_PG_CA")
        .expect("SURVEY_TEST_PG_CA: the test cluster's certificate authority")
        .into()
}

#[tokio::test]
async fn with_sslmode_require_every_connection_is_tls_to_a_verified_server() {
    if test_cluster().is_none() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let plain = match test_config(&data).database.store {
        StoreChoice::Postgres(url) => url,
        StoreChoice::Sled => unreachable!(),
    };
    let app = spawn_app_with(|config| {
        config.database.store = StoreChoice::Postgres(format!("{plain}?sslmode=require"));
        config.database.pg_ca_file = Some(cluster_ca());
    })
    .await;
    assert_eq!(app.submit(&envelope(household())).await.status(), 201);
    let name = plain.rsplit('/').next().unwrap();
    let connections = psql(
        &test_cluster().unwrap(),
        &format!(
            "SELECT count(*) FILTER (WHERE ssl), count(*) FILTER (WHERE NOT ssl) \
             FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE datname = '{name}'"
        ),
    );
    let counts: Vec<u32> = connections
        .trim()
        .split('|')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(counts[0] > 0 && counts[1] == 0, "tls|plain = {connections}");

    // A server whose certificate no trusted authority signed is refused (here: the system's
    // authorities, which never signed the test cluster's).
    let other = tempfile::tempdir().unwrap();
    let mut config = test_config(&other);
    config.database.store = StoreChoice::Postgres(format!("{plain}?sslmode=require"));
    let refused = AppState::open(&config).await.err().expect("refused");
    assert!(
        refused.to_string().contains("certificate") || refused.to_string().contains("database"),
        "{refused}"
    );
}

#[tokio::test]
async fn without_a_database_the_api_answers_503_with_retry_after_and_recovers() {
    if test_cluster().is_none() {
        return;
    }
    let app = spawn_app().await;
    let url = database_url(&app);
    let name = url.rsplit('/').next().unwrap().to_owned();
    let cluster = test_cluster().unwrap();
    psql(
        &cluster,
        &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
    );
    psql(
        &cluster,
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
    );
    // A statement cut off mid-flight may answer 500 (its outcome unknown); then 503.
    let mut last = (0, String::new());
    for _ in 0..20 {
        let answer = app.get("/api/v1/forms/labour-survey/submissions").await;
        let retry_after = answer.headers().get("retry-after").cloned();
        let (status, code, _) = error_code(answer).await;
        last = (status, code);
        if status == 503 {
            assert_eq!(last.1, "not_ready");
            assert_eq!(retry_after.unwrap(), "5");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last.0, 503, "{last:?}");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));

    psql(
        &cluster,
        &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
    );
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert_eq!(app.submit(&envelope(household())).await.status(), 201);
}
