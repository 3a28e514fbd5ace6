//! Acceptance: the simulated county, played against a fresh server, comes back exactly from the cleaned data.

use std::io::{Cursor, Read};

use survey_server::simulate::{self, Settings, plan};

use crate::helpers::{ADMIN_PASSWORD, csv_rows, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenth_of_the_county_comes_back_exactly_from_the_cleaned_data() {
    let app = spawn_app_with(|c| c.max_batch = 50).await;
    let plan = plan::generate(2017, 0.1);
    let truth = plan.truth.clone();
    let settings = Settings {
        server: app.address.clone(),
        admin_user: "admin".into(),
        admin_password: ADMIN_PASSWORD.into(),
        phones: 8,
        batch: 50,
        progress: false,
    };

    let report = simulate::run(plan, &settings).await.unwrap();

    assert!(report.errors.is_empty(), "{}", report.summary());
    assert_eq!(
        report.replayed, truth.retries,
        "every retried upload is a replay"
    );
    let response = app
        .get_as(&app.admin_token, "/api/v1/forms/labour-survey/export.zip")
        .await;
    let mut archive =
        zip::ZipArchive::new(Cursor::new(response.bytes().await.unwrap().to_vec())).unwrap();
    let mut read = |name: &str| {
        let mut text = String::new();
        archive
            .by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        csv_rows(&text)
    };
    let (main, members, log) = (
        read("main.csv"),
        read("members.csv"),
        read("cleaning_log.csv"),
    );
    assert_eq!(
        main.len() as u64,
        truth.households,
        "one row per household: no duplicate, no test"
    );
    assert_eq!(members.len() as u64, truth.labourers);
    let count = |status: &str| {
        members
            .iter()
            .filter(|m| m["employment_status"] == status)
            .count() as u64
    };
    assert_eq!(
        (
            count("stable"),
            count("flexible"),
            count("self_employed"),
            count("unemployed")
        ),
        (
            truth.stable,
            truth.flexible,
            truth.self_employed,
            truth.unemployed
        )
    );
    let posts = members
        .iter()
        .filter(|m| m["job_type"] == "public_welfare_post" && m["monthly_income"] == "300")
        .count();
    assert_eq!(posts as u64, truth.public_welfare_posts);
    let actions = |action: &str| log.iter().filter(|l| l["action"] == action).count() as u64;
    assert_eq!(actions("dropped_test"), truth.tests);
    assert_eq!(actions("dropped_duplicate"), truth.revisits);
    assert_eq!(actions("flagged_clock"), truth.wrong_clocks);
    assert_eq!(actions("normalized"), truth.keyboard_quirks);
    assert!(
        main.iter()
            .all(|m| !m["household_id"].chars().any(|c| c > '9')),
        "every household id is ASCII digits"
    );

    let figures: serde_json::Value = app
        .get_json_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/indicators?table=members",
        )
        .await;
    let employed = truth.stable + truth.flexible + truth.self_employed;
    assert_eq!(
        figures["total"]["employment_rate"],
        survey_server::export::indicators::percent(employed, truth.labourers)
    );
}
