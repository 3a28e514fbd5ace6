//! Export benchmark: loads N labour-survey submissions (3 labourers each) into a fresh release
//! server, then times the zip and the members table and watches the server's memory.
//!
//! `cargo bench --bench export` (`EXPORT_N`, default 200000). Prints rows/s and the peak growth of
//! the server's resident memory during each export over what it used just before.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "bench-admin-password";
const BATCH: usize = 500;

struct Server {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    let n: usize = std::env::var("EXPORT_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let (address, server) = start_server();
    let pid = server.child.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let token = login(&client, &address).await;
        let started = Instant::now();
        load(&client, &address, &token, n).await;
        println!("loaded {n} submissions ({} labourers) in {:.1} s", n * 3, started.elapsed().as_secs_f64());
        for (what, path, rows) in [
            ("export.zip", "/api/v1/forms/labour-survey/export.zip", n * 4),
            ("members.csv", "/api/v1/forms/labour-survey/export/members.csv", n * 3),
        ] {
            let (seconds, bytes, growth) = timed_download(&client, &address, &token, path, pid).await;
            println!(
                "{what:>12}: {rows} rows in {seconds:.2} s = {:.0} rows/s, {:.1} MB, peak RSS growth {:.1} MB",
                rows as f64 / seconds,
                bytes as f64 / 1e6,
                growth as f64 / 1e6
            );
        }
    });
}

fn start_server() -> (String, Server) {
    let data = tempfile::tempdir().expect("a temporary directory");
    let mut child = Command::new(env!("CARGO_BIN_EXE_survey-server"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--schemas-dir",
            concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"),
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("SURVEY_LOG", "warn")
        .env("SURVEY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the listening line");
    let address = line
        .trim()
        .strip_prefix("survey-server listening on ")
        .expect("an address")
        .to_owned();
    (
        address,
        Server {
            child,
            _stdout: stdout,
            _data: data,
        },
    )
}

async fn login(client: &reqwest::Client, address: &str) -> String {
    let session: Value = client
        .post(format!("{address}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("a session");
    session["access_token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

/// Household `k` with three labourers whose ID numbers, births and genders agree.
fn household(k: usize, template: &Value) -> Value {
    let mut data = template.clone();
    data["household_id"] = json!(format!("4510{k:010}"));
    for i in 0..3 {
        let person = k * 3 + i;
        let birth = time::Date::from_calendar_date(1960, time::Month::January, 1).expect("a date")
            + time::Duration::days((person % 15_000) as i64);
        let male = i == 1;
        let serial = (person / 15_000) * 2 + usize::from(male);
        let first17 = format!(
            "452223{:04}{:02}{:02}{serial:03}",
            birth.year(),
            birth.month() as u8,
            birth.day()
        );
        let member = &mut data["members"][i];
        let id = survey_server::forms::formats::complete_resident_id(&first17).expect("17 digits");
        member["id_number"] = json!(id);
        member["birth_date"] = json!(format!(
            "{:04}-{:02}-{:02}",
            birth.year(),
            birth.month() as u8,
            birth.day()
        ));
        member["gender"] = json!(if male { "male" } else { "female" });
    }
    data
}

async fn load(client: &reqwest::Client, address: &str, token: &str, n: usize) {
    let template: Arc<Value> = Arc::new(
        serde_json::from_str(include_str!("../tests/fixtures/household.json")).expect("fixture"),
    );
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (client, template, next) = (client.clone(), template.clone(), next.clone());
            let (url, token) = (format!("{address}/api/v1/forms/labour-survey/submissions/batch"), token.to_owned());
            tokio::spawn(async move {
                loop {
                    let start = next.fetch_add(BATCH as u64, Ordering::Relaxed) as usize;
                    if start >= n {
                        return;
                    }
                    let items: Vec<Value> = (start..(start + BATCH).min(n))
                        .map(|k| json!({"id": uuid::Uuid::new_v4().to_string(), "data": household(k, &template)}))
                        .collect();
                    let response = client.post(&url).bearer_auth(&token).json(&json!({"submissions": items})).send().await.expect("a batch answer");
                    let body: Value = response.json().await.expect("batch results");
                    let results = body["results"].as_array().expect("results");
                    assert!(results.iter().all(|r| r["status"] == 201), "a submission was refused: {body}");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a loader");
    }
}

/// Downloads `path`, returning seconds, bytes and the server's peak RSS growth during it.
async fn timed_download(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    path: &str,
    pid: u32,
) -> (f64, usize, u64) {
    let before = rss(pid);
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(before));
    let watcher = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(pid), Ordering::Relaxed);
                std::thread::park_timeout(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let mut response = client
        .get(format!("{address}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    let mut bytes = 0;
    while let Some(chunk) = response.chunk().await.expect("the body") {
        bytes += chunk.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    watcher.join().expect("the watcher");
    (
        seconds,
        bytes,
        peak.load(Ordering::Relaxed).saturating_sub(before),
    )
}

/// Resident memory of a process, bytes (Linux).
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
