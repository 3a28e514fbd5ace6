//! The next round: a year later, the county surveys the same households again as a new form
//! (`labour-survey-2027`), whose register is built from this round's cleaned data. Each township's
//! field worker reads their roster, visits every household prefilled with last year's answers,
//! marks some labourers as moved away, and submits. The truth says what the second round's
//! cleaned data and coverage must show.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

use super::plan::WORKERS;
use super::{Settings, WORKER_PASSWORD, login};

/// The second round's form.
pub const FORM: &str = "labour-survey-2027";

/// What the second round's cleaned data must show.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Truth {
    /// Registered households, all visited.
    pub households: u64,
    pub labourers: u64,
    /// Labourers marked as moved away: asked nothing about work, out of the employment rate.
    pub moved: u64,
    /// Labourers still there who are employed (stable, flexible or self-employed).
    pub employed: u64,
}

/// Answers a labourer who moved no longer gives.
const WORK: [&str; 13] = [
    "education",
    "labour_capacity",
    "employment_status",
    "work_location",
    "job_type",
    "employer",
    "months_worked",
    "monthly_income",
    "unemployed_reason",
    "willing_to_work",
    "trainings_received",
    "trainings_wanted",
    "support_received",
];

/// Plays the second round against a server the first round was played on; `moved_share` of
/// the labourers have moved away since.
pub async fn run(settings: &Settings, seed: u64, moved_share: f64) -> Result<Truth, String> {
    let client = reqwest::Client::new();
    let server = settings.server.trim_end_matches('/');
    let admin = login(
        &client,
        settings,
        &settings.admin_user,
        &settings.admin_password,
    )
    .await?;
    let call = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    };
    // The new round's form: this year's current questionnaire under a new id.
    let current = call(
        client
            .get(format!("{server}/api/v1/forms/labour-survey"))
            .bearer_auth(&admin),
    )
    .await?;
    let mut schema = current["schema"].clone();
    schema["x-form-id"] = json!(FORM);
    schema["x-form-version"] = json!("1");
    let title = format!(
        "{}（2027年）",
        current["title"].as_str().unwrap_or("就业情况调查")
    );
    call(
        client
            .post(format!("{server}/api/v1/forms"))
            .bearer_auth(&admin)
            .json(&json!({"id": FORM, "version": "1", "title": title, "schema": schema})),
    )
    .await?;
    call(
        client
            .post(format!(
                "{server}/api/v1/forms/{FORM}/registry/from-export?from=labour-survey"
            ))
            .bearer_auth(&admin),
    )
    .await?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut truth = Truth::default();
    for worker in WORKERS {
        let token = login(&client, settings, worker, WORKER_PASSWORD).await?;
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{server}/api/v1/forms/{FORM}/registry?limit=1000");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page = call(client.get(url).bearer_auth(&token)).await?;
            let mut visits = Vec::new();
            for household in page["items"].as_array().into_iter().flatten() {
                visits.push(visit(household.clone(), &mut rng, moved_share, &mut truth));
            }
            for batch in visits.chunks(settings.batch.max(1)) {
                let answer = call(
                    client
                        .post(format!("{server}/api/v1/forms/{FORM}/submissions/batch"))
                        .bearer_auth(&token)
                        .json(&json!({"submissions": batch})),
                )
                .await?;
                let refused: Vec<&Value> = answer["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| r["status"] != 201)
                    .collect();
                if !refused.is_empty() {
                    return Err(format!("the second round was refused: {refused:?}"));
                }
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }
    Ok(truth)
}

/// One household visited again: last year's answers, with some labourers gone.
fn visit(mut household: Value, rng: &mut StdRng, moved_share: f64, truth: &mut Truth) -> Value {
    truth.households += 1;
    for person in household["members"].as_array_mut().into_iter().flatten() {
        truth.labourers += 1;
        if rng.gen_bool(moved_share) {
            truth.moved += 1;
            let Some(answers) = person.as_object_mut() else {
                continue;
            };
            for field in WORK {
                answers.remove(field);
            }
            answers.insert("presence".into(), json!("moved"));
        } else if matches!(
            person["employment_status"].as_str(),
            Some("stable" | "flexible" | "self_employed")
        ) {
            truth.employed += 1;
        }
    }
    json!({
        "id": uuid::Uuid::from_u128(rng.r#gen()).to_string(),
        "form_version": "1",
        "data": household,
        "meta": {"device_id": "simulated-round-2", "app_version": "simulate"}
    })
}
