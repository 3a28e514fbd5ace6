//! Cleaned datasets, read back with a real CSV parser (and Python's `csv` module).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, household, spawn_app, unzip};

/// An 18-character resident ID with a correct GB 11643 check character.
fn resident_id(first17: &str) -> String {
    survey_server::forms::formats::complete_resident_id(first17).expect("17 digits")
}

/// Household number `k` (below 500): its own household id and its own three labourers (births as
/// in the fixture).
fn household_k(k: u32) -> Value {
    let mut data = household();
    data["household_id"] = json!(format!("45102201700{k:02}"));
    let births = ["19850315", "19830708", "19591102"];
    for (i, birth) in births.iter().enumerate() {
        // The 17th digit is odd for men: the fixture's second labourer is the man.
        let serial = (k * 2 + u32::from(i == 1)) % 1000;
        data["members"][i]["id_number"] = json!(resident_id(&format!("452223{birth}{serial:03}")));
    }
    data
}

/// A completion time `minutes` from now: after the form's publication (at test start) and well
/// within the day a phone's clock may run ahead, so it is plausible; larger means later.
fn at_minute(minutes: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes);
    survey_server::clock::format_rfc3339(at)
}

/// A visit's envelope, completed at `completed_at` by the phone's clock.
fn visit(data: Value, completed_at: String) -> Value {
    json!({"id": uuid::Uuid::new_v4().to_string(), "data": data,
           "meta": {"device_id": "phone-9", "completed_at": completed_at}})
}

async fn download(app: &TestApp, token: &str, path: &str) -> Vec<u8> {
    let response = app.get_as(token, path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.bytes().await.unwrap().to_vec()
}

fn rows(text: &str) -> Vec<HashMap<String, String>> {
    crate::helpers::csv_rows(text)
}

fn column<'a>(rows: &'a [HashMap<String, String>], name: &str) -> Vec<&'a str> {
    rows.iter().map(|r| r[name].as_str()).collect()
}

/// The messy field data of domain.md: a re-visit, keyboard quirks, a training submission,
/// a wrong phone clock, and a labourer listed in two households. Returns the envelopes.
async fn messy_survey(app: &TestApp) -> Vec<Value> {
    let first_visit = visit(household_k(1), at_minute(10));
    let mut revisit_data = household_k(1);
    revisit_data["village"] = json!("定阳村二组");
    let revisit = visit(revisit_data, at_minute(60));
    let mut quirks = household_k(2);
    quirks["household_id"] = json!("４５１０２２０１７０００２");
    quirks["village"] = json!("\u{3000}定阳村 ");
    // A check character X typed as a lower-case x, after a stray space.
    quirks["members"][1]["id_number"] = json!(" 45222319830708039x");
    let quirks = visit(quirks, at_minute(30));
    let mut training = visit(household_k(3), at_minute(20));
    training["meta"]["test"] = json!(true);
    let wrong_clock = visit(household_k(4), "1970-01-01T00:00:00Z".to_owned());
    let mut moved = household_k(5);
    moved["members"][0]["id_number"] = household_k(2)["members"][0]["id_number"].clone();
    let moved = visit(moved, at_minute(70));
    let all = vec![first_visit, revisit, quirks, training, wrong_clock, moved];
    for envelope in &all {
        assert_eq!(app.submit(envelope).await.status(), 201, "{envelope}");
    }
    all
}

fn id(envelope: &Value) -> &str {
    envelope["id"].as_str().unwrap()
}

#[tokio::test]
async fn the_zip_cleans_dedups_and_explains_every_change() {
    let app = spawn_app().await;
    let analyst = app.user("analyst", "analyst", None).await;
    let s = messy_survey(&app).await;

    let files = unzip(download(&app, &analyst, "/api/v1/forms/labour-survey/export.zip").await);

    let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "README.txt",
            "cleaning_log.csv",
            "codebook.csv",
            "main.csv",
            "members.csv"
        ]
    );
    let main = rows(&files["main.csv"]);
    assert_eq!(
        column(&main, "_id"),
        [id(&s[1]), id(&s[2]), id(&s[4]), id(&s[5])],
        "re-visit wins, test left out"
    );
    assert_eq!(
        column(&main, "household_id")[1],
        "4510220170002",
        "full-width digits become ASCII"
    );
    assert_eq!(column(&main, "village")[..2], ["定阳村二组", "定阳村"]);
    assert_eq!(column(&main, "_clock_flag"), ["", "", "implausible", ""]);
    assert_eq!(column(&main, "_submitted_by"), ["fw1"; 4]);

    let members = rows(&files["members.csv"]);
    assert_eq!(
        members.len(),
        4 * 3 - 1,
        "the labourer listed twice is kept once"
    );
    let quirky = members
        .iter()
        .find(|m| m["KEY"] == format!("{}/members/1", id(&s[2])))
        .unwrap();
    assert!(
        quirky["id_number"].ends_with('X') && !quirky["id_number"].starts_with(' '),
        "{}",
        quirky["id_number"]
    );
    assert_eq!(quirky["PARENT_KEY"], id(&s[2]));
    assert_eq!(
        quirky["township"], "思林镇",
        "child rows carry the scope field"
    );

    let log = rows(&files["cleaning_log.csv"]);
    let actions: Vec<(String, &str, &str, &str)> = log
        .iter()
        .map(|l| {
            (
                l["submission_id"].clone(),
                l["table"].as_str(),
                l["column"].as_str(),
                l["action"].as_str(),
            )
        })
        .collect();
    let expect = |sub: &Value, table: &'static str, column: &'static str, action: &'static str| {
        (id(sub).to_owned(), table, column, action)
    };
    assert_eq!(
        actions,
        [
            expect(&s[0], "main", "", "dropped_duplicate"),
            expect(&s[2], "main", "household_id", "normalized"),
            expect(&s[2], "main", "village", "normalized"),
            expect(&s[2], "members", "", "dropped_duplicate"),
            expect(&s[2], "members", "id_number", "normalized"),
            expect(&s[2], "members", "id_number", "canonicalized"),
            expect(&s[3], "main", "", "dropped_test"),
            expect(&s[4], "main", "_completed_at", "flagged_clock"),
        ]
    );
    assert!(
        log[0]["reason"].contains(id(&s[1])),
        "the reason names the winner: {}",
        log[0]["reason"]
    );
    assert_eq!(log[2]["before"], "\u{3000}定阳村 ");
    assert_eq!(log[2]["after"], "定阳村");

    let codebook = rows(&files["codebook.csv"]);
    let status = codebook
        .iter()
        .find(|c| c["column"] == "employment_status")
        .unwrap();
    assert_eq!(status["table"], "members");
    assert_eq!(status["label"], "就业状态");
    assert!(status["allowed_values"].contains("stable=稳定就业"));
    assert_eq!(status["source"], "/members/*/employment_status");
    assert!(files["README.txt"].contains("labour-survey"));
}

#[tokio::test]
async fn one_table_streams_as_csv_or_as_typed_json_lines() {
    let app = spawn_app().await;
    messy_survey(&app).await;

    let csv = String::from_utf8(
        download(
            &app,
            &app.admin_token,
            "/api/v1/forms/labour-survey/export/members.csv",
        )
        .await,
    )
    .unwrap();
    let ndjson = String::from_utf8(
        download(
            &app,
            &app.admin_token,
            "/api/v1/forms/labour-survey/export/main.ndjson",
        )
        .await,
    )
    .unwrap();

    assert!(
        csv.starts_with('\u{FEFF}'),
        "Excel needs the BOM to show 中文"
    );
    assert!(csv.contains("\r\n"), "RFC 4180 line ends");
    assert_eq!(rows(&csv).len(), 11);
    let lines: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["relocated"], true);
    assert_eq!(lines[0]["consent"], true);
    assert!(lines[0]["_id"].is_string());
}

#[tokio::test]
async fn labels_split_choices_and_no_bom_change_the_shape_as_asked() {
    let app = spawn_app().await;
    app.submit(&visit(household_k(1), at_minute(70))).await;

    let path =
        "/api/v1/forms/labour-survey/export/members.csv?labels=true&multiple=split&bom=false";
    let text = String::from_utf8(download(&app, &app.admin_token, path).await).unwrap();

    assert!(!text.starts_with('\u{FEFF}'));
    let members = rows(&text);
    assert_eq!(members[0]["就业状态"], "稳定就业");
    assert_eq!(members[0]["已参加培训/中式烹调"], "1");
    assert_eq!(members[0]["已参加培训/电工"], "0");
}

#[tokio::test]
async fn a_raw_export_keeps_every_submission_exactly_as_received() {
    let app = spawn_app().await;
    let s = messy_survey(&app).await;

    let text = String::from_utf8(
        download(
            &app,
            &app.admin_token,
            "/api/v1/forms/labour-survey/export/main.csv?raw=true",
        )
        .await,
    )
    .unwrap();

    let main = rows(&text);
    assert_eq!(main.len(), s.len());
    assert_eq!(main[2]["household_id"], "４５１０２２０１７０００２");
}

#[tokio::test]
async fn an_unknown_table_or_a_bad_query_value_is_named() {
    let app = spawn_app().await;
    let (status, code, _) = error_code(
        app.get_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/export/nope.csv",
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "table_not_found"));
    let (status, code, _) = error_code(
        app.get_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/export/main.xlsx",
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "table_not_found"));
    for (query, parameter) in [
        ("since=yesterday", "since"),
        ("multiple=both", "multiple"),
        ("labels=yes", "labels"),
        ("version=9", ""),
    ] {
        let response = app
            .get_as(
                &app.admin_token,
                &format!("/api/v1/forms/labour-survey/export.zip?{query}"),
            )
            .await;
        let (status, code, error) = error_code(response).await;
        if parameter.is_empty() {
            assert_eq!((status, code.as_str()), (422, "form_version_unknown"));
        } else {
            assert_eq!((status, code.as_str()), (400, "query_invalid"), "{query}");
            let message = error["message"].as_str().unwrap();
            assert!(message.contains(&format!("{parameter}:")), "{error}");
        }
    }
}

#[tokio::test]
async fn a_scoped_analyst_exports_only_their_townships() {
    let app = spawn_app().await;
    let mut pingma = household_k(1);
    pingma["township"] = json!("平马镇");
    app.submit(&visit(pingma, at_minute(70))).await;
    app.submit(&visit(household_k(2), at_minute(70))).await;
    let analyst = app.user("ana-pingma", "analyst", Some(&["平马镇"])).await;

    let text = String::from_utf8(
        download(
            &app,
            &analyst,
            "/api/v1/forms/labour-survey/export/members.csv",
        )
        .await,
    )
    .unwrap();

    let members = rows(&text);
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|m| m["township"] == "平马镇"));
}

#[tokio::test]
async fn cells_that_a_spreadsheet_would_run_are_made_inert() {
    let app = spawn_app().await;
    let mut data = household_k(1);
    data["village"] = json!("=HYPERLINK(\"http://evil\")");
    app.submit(&visit(data, at_minute(70))).await;

    let text = String::from_utf8(
        download(
            &app,
            &app.admin_token,
            "/api/v1/forms/labour-survey/export/main.csv",
        )
        .await,
    )
    .unwrap();

    assert_eq!(rows(&text)[0]["village"], "'=HYPERLINK(\"http://evil\")");
}

#[tokio::test]
async fn pythons_csv_module_reads_the_export() {
    let app = spawn_app().await;
    messy_survey(&app).await;
    let bytes = download(
        &app,
        &app.admin_token,
        "/api/v1/forms/labour-survey/export/members.csv",
    )
    .await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();

    let script = "import csv,sys\nrows=list(csv.DictReader(open(sys.argv[1],encoding='utf-8-sig',newline='')))\n\
                  print(len(rows), rows[0]['KEY'].count('/'), sorted(set(r['township'] for r in rows))[0])";
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(file.path())
        .output()
        .expect("python3 runs");

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "11 2 思林镇"
    );
}

#[tokio::test]
async fn a_large_export_keeps_arrival_order_across_pages() {
    let app = spawn_app().await;
    let mut sent = Vec::new();
    for batch in 0..16 {
        let items: Vec<Value> = (0..20)
            .map(|i| visit(household_k(batch * 20 + i), at_minute(1)))
            .collect();
        sent.extend(items.iter().map(|e| id(e).to_owned()));
        let response = app
            .post_json(
                "/api/v1/forms/labour-survey/submissions/batch",
                &json!({"submissions": items}),
            )
            .await;
        let body: Value = response.json().await.unwrap();
        assert!(
            body["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["status"] == 201),
            "{body}"
        );
    }

    let text = String::from_utf8(
        download(
            &app,
            &app.admin_token,
            "/api/v1/forms/labour-survey/export/main.csv",
        )
        .await,
    )
    .unwrap();

    let main = rows(&text);
    assert_eq!(
        column(&main, "_id"),
        sent.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn indicators_count_each_status_and_the_employment_rate_per_township_over_cleaned_data() {
    let app = spawn_app().await;
    let s = messy_survey(&app).await;
    let mut pingma = household_k(7);
    pingma["township"] = json!("平马镇");
    pingma["members"][2]["employment_status"] = json!("self_employed");
    for (field, value) in [
        ("work_location", json!("township")),
        ("job_type", json!("own_business")),
        ("monthly_income", json!(1500)),
    ] {
        pingma["members"][2][field] = value;
    }
    for field in ["unemployed_reason", "willing_to_work"] {
        pingma["members"][2].as_object_mut().unwrap().remove(field);
    }
    assert_eq!(app.submit(&visit(pingma, at_minute(5))).await.status(), 201);
    assert_eq!(s.len(), 6);

    let path = "/api/v1/forms/labour-survey/indicators?table=members&by=township";
    let figures: Value = app.get_json_as(&app.admin_token, path).await;

    let groups = figures["groups"].as_array().unwrap();
    let group = |town: &str| {
        groups
            .iter()
            .find(|g| g["township"] == town)
            .unwrap()
            .clone()
    };
    // 思林镇: 4 kept households × 3 labourers, one labourer listed twice → 11 rows; each household
    // has one stable, one flexible, one unemployed labourer; the duplicate was a stable one.
    assert_eq!(group("思林镇")["rows"], 11);
    assert_eq!(group("思林镇")["employment_status=stable"], 3);
    assert_eq!(group("思林镇")["employment_status=unemployed"], 4);
    assert_eq!(group("思林镇")["employment_rate"], 63.64);
    assert_eq!(group("平马镇")["employment_rate"], 100.0);
    assert_eq!(figures["total"]["rows"], 14);
    assert_eq!(figures["total"]["employment_rate"], 71.43);

    let csv = String::from_utf8(
        download(
            &app,
            &app.admin_token,
            "/api/v1/forms/labour-survey/indicators.csv?table=members&by=township",
        )
        .await,
    )
    .unwrap();
    let table = rows(&csv);
    assert_eq!(table.last().unwrap()["township"], "total");
    assert_eq!(table.last().unwrap()["employment_rate"], "71.43");
    let response = app
        .get_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/indicators?table=members&by=nothing",
        )
        .await;
    assert_eq!(error_code(response).await.1, "query_invalid");
}
