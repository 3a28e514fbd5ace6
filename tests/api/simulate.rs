//! Acceptance: the simulated county, played against a fresh server, comes back exactly from the cleaned data.

use std::io::{Cursor, Read};

use survey_server::simulate::{self, plan};

use crate::helpers::{TestApp, csv_rows, simulate_settings, spawn_app_with, unzip};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenth_of_the_county_comes_back_exactly_from_the_cleaned_data() {
    let app = spawn_app_with(|c| c.max_batch = 50).await;
    let plan = plan::generate(2017, 0.1);
    let truth = plan.truth.clone();
    let settings = simulate_settings(&app);

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

    // A year later: the same households again, prefilled from this round's cleaned data.
    let second = simulate::round2::run(&settings, 2018, 0.05).await.unwrap();
    assert_eq!(
        (second.households, second.labourers),
        (truth.households, truth.labourers),
        "every registered household and labourer was on a roster"
    );
    assert!(second.moved > 0 && second.moved < second.labourers / 5);
    let form = simulate::round2::FORM;
    let coverage: serde_json::Value = app
        .get_json_as(
            &app.admin_token,
            &format!("/api/v1/forms/{form}/coverage?by=township"),
        )
        .await;
    assert_eq!(coverage["total"]["household_coverage"], 100.0, "{coverage}");
    assert_eq!(coverage["total"]["member_coverage"], 100.0, "{coverage}");
    assert_eq!(coverage["total"]["registered_members"], truth.labourers);
    let figures: serde_json::Value = app
        .get_json_as(
            &app.admin_token,
            &format!("/api/v1/forms/{form}/indicators?table=members"),
        )
        .await;
    assert_eq!(
        figures["total"]["employment_rate"],
        survey_server::export::indicators::percent(
            second.employed,
            second.labourers - second.moved
        ),
        "who moved away is left out of the employment rate"
    );
    let members = cleaned_people(&app, form).await;
    assert_eq!(members.len() as u64, truth.labourers);
    assert!(members.iter().all(|m| m["_registry"] == "matched"));
    let moved = members.iter().filter(|m| m["presence"] == "moved").count() as u64;
    assert_eq!(moved, second.moved);
    assert_eq!(
        cleaned_people(&app, "labour-survey").await.len() as u64,
        truth.labourers,
        "the two rounds' datasets stay apart"
    );
}

/// The cleaned table of people of `form`'s export.
async fn cleaned_people(
    app: &TestApp,
    form: &str,
) -> Vec<std::collections::HashMap<String, String>> {
    let path = format!("/api/v1/forms/{form}/export.zip");
    let response = app.get_as(&app.admin_token, &path).await;
    csv_rows(&unzip(response.bytes().await.unwrap().to_vec())["members.csv"])
}
