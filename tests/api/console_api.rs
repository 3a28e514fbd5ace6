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
