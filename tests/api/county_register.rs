//! Acceptance: the county's register of its 27,211 labourers, exported by a government system in
//! GB18030 from `simulate --seed 2017`'s plan, imported whole; every township's roster; coverage
//! and the missing lists exact when half the county has been surveyed, then all of it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use survey_server::export::indicators::percent;
use survey_server::simulate::{self, plan};
use unicode_normalization::UnicodeNormalization;

use crate::helpers::{TestApp, detail_paths, error_code, simulate_settings, spawn_app_with};

const REGISTRY: &str = "/api/v1/forms/labour-survey/registry";
const HEADER: [&str; 7] = [
    "household_id",
    "township",
    "village",
    "name",
    "id_number",
    "gender",
    "birth_date",
];

/// A household as the register knows it: its township, and its people's ID numbers.
struct Registered {
    township: String,
    people: BTreeSet<String>,
}

/// Values as cleaning leaves them (the plan types some with full-width digits or stray spaces).
fn clean(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_default()
        .nfkc()
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The households the plan's uploads describe (training submissions are no household).
fn households(uploads: &[plan::Upload]) -> BTreeMap<String, (Value, bool)> {
    uploads
        .iter()
        .map(|u| serde_json::from_str::<Value>(&u.body).unwrap())
        .map(|envelope| {
            let test = envelope["meta"]["test"] == true;
            (
                clean(&envelope["data"]["household_id"]),
                (envelope["data"].clone(), test),
            )
        })
        .collect()
}

/// The register, one row per person, as the county's system exports it: GB18030, genders as
/// Chinese labels, the values typed as they were.
fn register_csv(households: &BTreeMap<String, (Value, bool)>) -> String {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(HEADER).unwrap();
    for (data, _) in households.values().filter(|(_, test)| !test) {
        for person in data["members"].as_array().unwrap() {
            let gender = if person["gender"] == "male" {
                "男"
            } else {
                "女"
            };
            csv.write_record([
                data["household_id"].as_str().unwrap(),
                data["township"].as_str().unwrap(),
                data["village"].as_str().unwrap(),
                person["name"].as_str().unwrap(),
                person["id_number"].as_str().unwrap(),
                gender,
                person["birth_date"].as_str().unwrap(),
            ])
            .unwrap();
        }
    }
    String::from_utf8(csv.into_inner().unwrap()).unwrap()
}

fn gb18030(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GB18030.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

async fn put_register(app: &TestApp, body: Vec<u8>) -> reqwest::Response {
    app.client
        .put(app.url(REGISTRY))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Every page of a paged list (`items`, `next_cursor`).
async fn all_pages(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor = String::new();
    let separator = if path.contains('?') { '&' } else { '?' };
    loop {
        let page: Value = app
            .get_json_as(token, &format!("{path}{separator}limit=1000{cursor}"))
            .await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return items,
        }
    }
}

/// What coverage must say, township by township, once `surveyed` households have been reached.
fn expected_coverage(
    register: &BTreeMap<String, Registered>,
    surveyed: &BTreeSet<String>,
) -> BTreeMap<String, Value> {
    let mut counts: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for (id, household) in register {
        let c = counts.entry(household.township.clone()).or_default();
        let people = household.people.len() as u64;
        c[0] += 1;
        c[2] += people;
        if surveyed.contains(id) {
            c[1] += 1;
            c[3] += people;
        }
    }
    counts
        .into_iter()
        .map(|(township, [rh, sh, rm, sm])| {
            let row = json!({
                "key": township, "registered_households": rh, "surveyed_households": sh,
                "registered_members": rm, "surveyed_members": sm,
                "household_coverage": percent(sh, rh), "member_coverage": percent(sm, rm),
            });
            (township, row)
        })
        .collect()
}

async fn check_coverage(
    app: &TestApp,
    register: &BTreeMap<String, Registered>,
    surveyed: &BTreeSet<String>,
) {
    let coverage: Value = app
        .get_json_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/coverage?by=township",
        )
        .await;
    let groups: BTreeMap<String, Value> = coverage["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].as_str().unwrap().to_owned(), g.clone()))
        .collect();
    assert_eq!(groups, expected_coverage(register, surveyed));
    for township in plan::TOWNSHIPS {
        let missing = all_pages(
            app,
            &app.admin_token,
            &format!("/api/v1/forms/labour-survey/coverage/missing?township={township}"),
        )
        .await;
        let listed: BTreeSet<String> = missing
            .iter()
            .map(|h| h["household_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(listed.len(), missing.len(), "each household listed once");
        let unvisited: BTreeSet<String> = register
            .iter()
            .filter(|(id, h)| h.township == township && !surveyed.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(listed, unvisited, "{township}'s missing households");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_county_register_is_imported_and_coverage_is_exact_as_the_survey_goes() {
    let app = spawn_app_with(|c| c.max_batch = 50).await;
    let plan::Plan { uploads, truth } = plan::generate(2017, 1.0);
    let all = households(&uploads);
    let csv = register_csv(&all);
    let register: BTreeMap<String, Registered> = all
        .iter()
        .filter(|(_, (_, test))| !test)
        .map(|(id, (data, _))| {
            let people = data["members"].as_array().unwrap().iter();
            let registered = Registered {
                township: clean(&data["township"]),
                people: people.map(|p| clean(&p["id_number"])).collect(),
            };
            (id.clone(), registered)
        })
        .collect();

    // A broken register is refused whole, whichever rows are wrong.
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    let id = lines[17].split(',').nth(4).unwrap().to_owned();
    let wrong_digit = if id.ends_with('0') { "1" } else { "0" };
    lines[17] = lines[17].replace(&id, &format!("{}{wrong_digit}", &id[..17]));
    lines.push(lines[20].clone());
    let refused = put_register(&app, gb18030(&(lines.join("\r\n") + "\r\n"))).await;
    let (status, code, body) = error_code(refused).await;
    assert_eq!((status, code.as_str()), (422, "registry_invalid"));
    assert_eq!(
        detail_paths(&body),
        [
            "/line/18/id_number".to_owned(),
            format!("/line/{}/id_number", lines.len())
        ]
    );
    let none = app
        .get_as(&app.admin_token, &format!("{REGISTRY}?limit=1"))
        .await;
    assert_eq!(
        error_code(none).await.1,
        "registry_not_found",
        "nothing half loaded"
    );

    // The county's own export, in GB18030 and not declared as such.
    let imported = put_register(&app, gb18030(&csv)).await;
    assert_eq!(imported.status(), 200);
    let imported: Value = imported.json().await.unwrap();
    assert_eq!(
        (imported["households"].clone(), imported["members"].clone()),
        (json!(truth.households), json!(truth.labourers))
    );

    // Each township's field worker has that township's households and nobody else's.
    for (township, worker) in plan::TOWNSHIPS.into_iter().zip(plan::WORKERS) {
        let token = app
            .user(
                &format!("roster-{worker}"),
                "field_worker",
                Some(&[township]),
            )
            .await;
        let roster = all_pages(&app, &token, REGISTRY).await;
        let ids: BTreeSet<String> = roster
            .iter()
            .map(|h| h["household_id"].as_str().unwrap().to_owned())
            .collect();
        let theirs: BTreeSet<String> = register
            .iter()
            .filter(|(_, h)| h.township == township)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(ids, theirs, "{township}'s roster");
        let people: usize = roster
            .iter()
            .map(|h| h["members"].as_array().unwrap().len())
            .sum();
        let registered: usize = theirs.iter().map(|id| register[id].people.len()).sum();
        assert_eq!(people, registered);
    }

    // Half the county surveyed, then all of it.
    let settings = simulate_settings(&app);
    check_coverage(&app, &register, &BTreeSet::new()).await;
    let (first, second) = uploads.split_at(uploads.len() / 2);
    let mut surveyed = BTreeSet::new();
    for half in [first, second] {
        let played = plan::Plan {
            uploads: half.to_vec(),
            truth: plan::Truth::default(),
        };
        let report = simulate::run(played, &settings).await.unwrap();
        assert!(report.errors.is_empty(), "{}", report.summary());
        surveyed.extend(
            households(half)
                .into_iter()
                .filter(|(_, (_, test))| !test)
                .map(|(id, _)| id),
        );
        check_coverage(&app, &register, &surveyed).await;
    }
    assert_eq!(surveyed.len(), register.len());
}
