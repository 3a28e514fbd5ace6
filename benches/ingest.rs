//! Ingest benchmark: durable, validated labour-survey submissions per second against the real server.
//!
//! `cargo bench --bench ingest` builds the release binary, starts it on a fresh data directory,
//! and drives it over HTTP/1.1 keep-alive with the ~2 KB household fixture at 1, 8, 32 and 64
//! concurrent connections, every request a new submission. Prints submissions/s, p50, p99.
//! `BENCH_SECONDS` sets the time per level (default 5); `BENCH_LEVELS` the levels (e.g. "32,64");
//! `BENCH_ADDRESS` (e.g. `http://127.0.0.1:8080`) drives a server that is already running instead,
//! signed in as `BENCH_USERNAME` with `BENCH_PASSWORD` (a field worker without scope, or an admin);
//! `BENCH_PID`, its process id, adds the server's CPU time per submission (`/proc`, Linux).
//! Every request carries a bearer token, so token checks are part of what is measured.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The server this benchmark started; killed when dropped.
struct Server {
    child: Child,
    /// Held open so the server never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
    data_dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let levels: Vec<usize> = std::env::var("BENCH_LEVELS")
        .unwrap_or_else(|_| "1,8,32,64".into())
        .split(',')
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    token_verification_cost();
    // Either drive a server that is already running, or start the release binary on a fresh data directory.
    let (address, server, where_, username, password) = match std::env::var("BENCH_ADDRESS") {
        Ok(address) => {
            let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("set {name}"));
            let (username, password) = (var("BENCH_USERNAME"), var("BENCH_PASSWORD"));
            let where_ = "an already running server".to_owned();
            (address, None, where_, username, password)
        }
        Err(_) => {
            let (address, server) = start_server();
            let where_ = format!(
                "a fresh server, data in {}",
                server.data_dir.path().display()
            );
            let admin = ("admin".to_owned(), BENCH_ADMIN_PASSWORD.to_owned());
            (address, Some(server), where_, admin.0, admin.1)
        }
    };

    let server_pid = server
        .as_ref()
        .map(|s| s.child.id())
        .or_else(|| std::env::var("BENCH_PID").ok()?.parse().ok());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let template = Arc::new(envelope_template());
    println!(
        "payload: {} bytes; {seconds} s per level; against {where_}",
        template.len() - 8
    );
    println!(
        "{:>11} {:>14} {:>9} {:>9} {:>9} {:>7} {:>16}",
        "connections", "submissions/s", "p50 ms", "p99 ms", "max ms", "errors", "server CPU µs/sub"
    );
    runtime.block_on(async {
        let token = Arc::new(sign_in(&address, &username, &password).await);
        run_level(&address, &token, &template, 8, Duration::from_secs(1)).await; // warm-up
        for connections in levels {
            let length = Duration::from_secs(seconds);
            let before = server_pid.and_then(cpu_seconds);
            let r = run_level(&address, &token, &template, connections, length).await;
            let cpu = match (before, server_pid.and_then(cpu_seconds)) {
                (Some(before), Some(after)) if r.count > 0 => {
                    format!("{:.0}", (after - before) * 1e6 / r.count as f64)
                }
                _ => "-".to_owned(),
            };
            println!(
                "{connections:>11} {:>14.0} {:>9.2} {:>9.2} {:>9.2} {:>7} {cpu:>16}",
                r.per_second, r.p50_ms, r.p99_ms, r.max_ms, r.errors
            );
        }
    });
    drop(server);
}

/// User and system CPU time a process has used, in seconds (Linux `/proc/<pid>/stat`, fields
/// 14 and 15, in clock ticks of 1/100 s, the kernel's `USER_HZ` on every common platform).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// Starts the release binary on a fresh data directory; returns its address.
fn start_server() -> (String, Server) {
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");
    let mut child = Command::new(env!("CARGO_BIN_EXE_survey-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--schemas-dir", schemas])
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("SURVEY_LOG", "warn")
        .env("SURVEY_ADMIN_PASSWORD", BENCH_ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("the server prints its address");
    let address = line
        .trim()
        .strip_prefix("survey-server listening on ")
        .expect("the listening line")
        .to_owned();
    (
        address,
        Server {
            child,
            _stdout: stdout,
            data_dir,
        },
    )
}

/// What checking one access token's signature and claims costs without the server's cache.
fn token_verification_cost() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let keys =
        survey_server::auth::tokens::TokenKeys::load_or_create(&dir.path().join("key.pem"), true)
            .expect("a key");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let grant = survey_server::auth::tokens::Grant {
        username: "bench-phone",
        role: survey_server::auth::Role::FieldWorker,
        version: 0,
        session: "bench-session",
        issued_at: now,
    };
    let token = keys.issue(&grant, 900).expect("a token");
    let rounds = 2_000;
    let started = Instant::now();
    for _ in 0..rounds {
        assert!(keys.verify(&token).is_some());
    }
    let micros = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    println!("access token check (EdDSA signature + claims, uncached): {micros:.1} µs");
}

/// The first admin's password on a server this benchmark starts.
const BENCH_ADMIN_PASSWORD: &str = "bench-admin-password";

/// A field worker's access token: on a fresh server the admin creates one, as a county would.
async fn sign_in(address: &str, username: &str, password: &str) -> String {
    let client = reqwest::Client::new();
    let login = |username: String, password: String| {
        let client = client.clone();
        async move {
            let session: Value = client
                .post(format!("{address}/api/v1/auth/login"))
                .json(&serde_json::json!({"username": username, "password": password}))
                .send()
                .await
                .expect("login answers")
                .json()
                .await
                .expect("a session");
            session["access_token"]
                .as_str()
                .expect("signed in")
                .to_owned()
        }
    };
    let token = login(username.to_owned(), password.to_owned()).await;
    if username != "admin" {
        return token;
    }
    let phone = serde_json::json!({"username": "bench-phone", "password": "bench-phone-password",
                                   "role": "field_worker", "display_name": "基准测试"});
    let created = client
        .post(format!("{address}/api/v1/users"))
        .bearer_auth(&token)
        .json(&phone)
        .send()
        .await
        .expect("user creation answers");
    assert!(created.status().is_success() || created.status() == 409);
    login("bench-phone".into(), "bench-phone-password".into()).await
}

/// The envelope as text with `ID_HERE` where each request's UUID goes.
fn envelope_template() -> String {
    let data: Value =
        serde_json::from_str(include_str!("../tests/fixtures/household.json")).expect("fixture");
    let envelope = serde_json::json!({
        "id": "ID_HERE",
        "form_version": "1",
        "data": data,
        "meta": {"device_id": "bench-phone", "app_version": "1.0.0",
                 "started_at": "2026-03-01T08:10:00+08:00", "completed_at": "2026-03-01T08:31:12+08:00",
                 "location": {"lat": 23.6, "lon": 107.1, "accuracy_m": 12}}
    });
    envelope.to_string()
}

struct LevelResult {
    /// Submissions acknowledged with 201.
    count: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: usize,
}

async fn run_level(
    address: &str,
    token: &Arc<String>,
    template: &Arc<String>,
    connections: usize,
    length: Duration,
) -> LevelResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .expect("a client");
    let url = Arc::new(format!("{address}/api/v1/forms/labour-survey/submissions"));
    let started = Instant::now();
    let deadline = started + length;
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, template) = (client.clone(), url.clone(), template.clone());
            let token = token.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while Instant::now() < deadline {
                    let body = template.replace("ID_HERE", &uuid::Uuid::new_v4().to_string());
                    let sent = Instant::now();
                    let response = client
                        .post(url.as_str())
                        .bearer_auth(token.as_str())
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    match response {
                        Ok(r) if r.status() == 201 => {
                            let _ = r.bytes().await;
                            latencies.push(sent.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (l, e) = worker.await.expect("a worker");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    LevelResult {
        count: latencies.len(),
        per_second: latencies.len() as f64 / elapsed,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        errors,
    }
}
