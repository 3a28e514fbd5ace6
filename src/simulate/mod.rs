//! `survey-server simulate`: the county's field team played against a running server over HTTP.
//!
//! The admin creates one field worker per township (scoped to it), each signs in, and many
//! concurrent "phones" upload the generated households (`plan.rs`), some in offline-queue batches.
//! At the end it prints throughput, latency and error counts, and the truth the cleaned data
//! must show.

pub mod plan;
pub mod round2;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use plan::{Plan, TOWNSHIPS, Truth, Upload, WORKERS};

/// How to reach the server and how hard to push.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    pub admin_user: String,
    pub admin_password: String,
    /// Concurrent phones.
    pub phones: usize,
    /// Submissions per offline-queue batch.
    pub batch: usize,
    /// Print progress lines.
    pub progress: bool,
}

/// What the run saw.
#[derive(Debug, Default)]
pub struct Report {
    pub requests: u64,
    pub submissions: u64,
    pub created: u64,
    /// The JSON bytes of the created submissions, as sent: what storage is measured against.
    pub created_bytes: u64,
    pub replayed: u64,
    /// Refusals and failures by status code (0: no answer).
    pub errors: std::collections::BTreeMap<u16, u64>,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub truth: Truth,
}

/// The password every simulated field worker gets.
const WORKER_PASSWORD: &str = "simulated-phone-2026";

/// Plays `plan` against the server.
pub async fn run(plan: Plan, settings: &Settings) -> Result<Report, String> {
    let client = reqwest::Client::new();
    let admin = login(
        &client,
        settings,
        &settings.admin_user,
        &settings.admin_password,
    )
    .await?;
    let mut tokens = Vec::new();
    for (worker, township) in WORKERS.iter().zip(TOWNSHIPS) {
        ensure_worker(&client, settings, &admin, worker, township).await?;
        tokens.push(login(&client, settings, worker, WORKER_PASSWORD).await?);
    }
    // Each phone takes whole work items: a single upload, or a batch of one township's queue.
    let mut work: Vec<Vec<Upload>> = Vec::new();
    let mut queues: Vec<Vec<Upload>> = vec![Vec::new(); TOWNSHIPS.len()];
    for upload in plan.uploads {
        if upload.batched {
            let queue = &mut queues[upload.township];
            queue.push(upload);
            if queue.len() == settings.batch {
                work.push(std::mem::take(queue));
            }
        } else {
            work.push(vec![upload]);
        }
    }
    work.extend(queues.into_iter().filter(|q| !q.is_empty()));
    let total = work.len();
    let work = Arc::new(Mutex::new(work.into_iter().rev().collect::<Vec<_>>()));
    let report = Arc::new(Mutex::new(Report::default()));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let phones: Vec<_> = (0..settings.phones.max(1))
        .map(|_| {
            let (client, work, report, latencies, tokens) = (
                client.clone(),
                work.clone(),
                report.clone(),
                latencies.clone(),
                tokens.clone(),
            );
            let server = settings.server.clone();
            tokio::spawn(async move {
                loop {
                    let Some(item) = work.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                        return;
                    };
                    let sent = Instant::now();
                    let outcome = send(&client, &server, &tokens[item[0].township], &item).await;
                    latencies
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(sent.elapsed());
                    let mut report = report.lock().unwrap_or_else(|p| p.into_inner());
                    report.requests += 1;
                    report.submissions += item.len() as u64;
                    for (upload, status) in item.iter().zip(outcome) {
                        match status {
                            (201, false) => {
                                report.created += 1;
                                report.created_bytes += upload.body.len() as u64;
                            }
                            (201, true) => report.replayed += 1,
                            (code, _) => *report.errors.entry(code).or_default() += 1,
                        }
                    }
                }
            })
        })
        .collect();
    if settings.progress {
        while !phones.iter().all(|p| p.is_finished()) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let left = work.lock().unwrap_or_else(|p| p.into_inner()).len();
            eprintln!("  {} of {total} uploads sent", total - left);
        }
    }
    for phone in phones {
        phone.await.map_err(|e| e.to_string())?;
    }
    let mut report = Arc::try_unwrap(report)
        .map_err(|_| "phones still running")?
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    let mut latencies = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    report.seconds = started.elapsed().as_secs_f64();
    report.p50_ms = at(0.5);
    report.p99_ms = at(0.99);
    report.truth = plan.truth;
    Ok(report)
}

/// Sends one work item; (status, replayed) per submission.
async fn send(
    client: &reqwest::Client,
    server: &str,
    token: &str,
    item: &[Upload],
) -> Vec<(u16, bool)> {
    let form = format!("{server}/api/v1/forms/labour-survey/submissions");
    if let [single] = item
        && !single.batched
    {
        let sent = client
            .post(&form)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(single.body.clone())
            .send()
            .await;
        return vec![match sent {
            Ok(r) => (
                r.status().as_u16(),
                r.headers().contains_key("idempotent-replayed"),
            ),
            Err(_) => (0, false),
        }];
    }
    let items = item
        .iter()
        .map(|u| u.body.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let sent = client
        .post(format!("{form}/batch"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(format!("{{\"submissions\":[{items}]}}"))
        .send()
        .await;
    let Ok(response) = sent else {
        return vec![(0, false); item.len()];
    };
    let status = response.status().as_u16();
    match response.json::<Value>().await {
        Ok(body) if status == 200 => body["results"]
            .as_array()
            .map(|results| {
                results
                    .iter()
                    .map(|r| {
                        (
                            r["status"].as_u64().unwrap_or(0) as u16,
                            r["replayed"] == json!(true),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![(status, false); item.len()],
    }
}

async fn login(
    client: &reqwest::Client,
    settings: &Settings,
    username: &str,
    password: &str,
) -> Result<String, String> {
    let response = client
        .post(format!("{}/api/v1/auth/login", settings.server))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", settings.server))?;
    if !response.status().is_success() {
        return Err(format!(
            "signing in as {username} failed: {}",
            response.status()
        ));
    }
    let session: Value = response.json().await.map_err(|e| e.to_string())?;
    session["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no access token".into())
}

/// Creates the field worker, or resets the password and scope of one left by an earlier run.
async fn ensure_worker(
    client: &reqwest::Client,
    settings: &Settings,
    admin: &str,
    worker: &str,
    township: &str,
) -> Result<(), String> {
    let user = json!({"username": worker, "password": WORKER_PASSWORD, "role": "field_worker",
                      "display_name": format!("{township}调查员"), "scope": [township]});
    let created = client
        .post(format!("{}/api/v1/users", settings.server))
        .bearer_auth(admin)
        .json(&user)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    match created.status().as_u16() {
        201 => Ok(()),
        409 => {
            let patch = json!({"password": WORKER_PASSWORD, "scope": [township], "role": "field_worker", "active": true});
            let patched = client
                .patch(format!("{}/api/v1/users/{worker}", settings.server))
                .bearer_auth(admin)
                .json(&patch)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            patched
                .status()
                .is_success()
                .then_some(())
                .ok_or_else(|| format!("updating {worker}: {}", patched.status()))
        }
        other => Err(format!("creating {worker}: {other}")),
    }
}

impl Report {
    /// The summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let t = &self.truth;
        format!(
            "sent {} submissions in {} requests in {:.1} s: {:.0} submissions/s, p50 {:.1} ms, p99 {:.1} ms\n\
             created {} ({} bytes of JSON), replayed {}, errors {:?}\n\
             the cleaned data must show: {} households, {} labourers: {} stable, {} flexible, {} self-employed, \
             {} not employed (employment rate {:.2}%); {} public-welfare posts, {} workshop workers\n\
             mess made on purpose: {} re-visits, {} retried uploads, {} keyboard quirks, {} wrong clocks, {} training submissions",
            self.submissions,
            self.requests,
            self.seconds,
            self.submissions as f64 / self.seconds.max(1e-9),
            self.p50_ms,
            self.p99_ms,
            self.created,
            self.created_bytes,
            self.replayed,
            self.errors,
            t.households,
            t.labourers,
            t.stable,
            t.flexible,
            t.self_employed,
            t.unemployed,
            crate::export::indicators::percent(
                t.stable + t.flexible + t.self_employed,
                t.labourers
            ),
            t.public_welfare_posts,
            t.workshop_workers,
            t.revisits,
            t.retries,
            t.keyboard_quirks,
            t.wrong_clocks,
            t.tests,
        )
    }
}
