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
//!
//! In the same run, at the same levels and with the same payload, it drives a bare axum server
//! whose handler only parses the body into `serde_json::Value` (this benchmark's own binary,
//! started again as that server), and prints what share of it the real server keeps. It also
//! measures the disk: `fdatasync` of a 2 KB append in the data directory's file system, the floor
//! under one connection's latency. `BENCH_FILL=1000000` first stores that many submissions
//! through the batch endpoint, to see whether the rate holds on a full store; `BENCH_BARE=0`
//! skips the bare server. `BENCH_WEBHOOK_MS=50` attaches a webhook whose receiver (in this
//! process, on loopback) answers each delivery after 50 ms, to see that a slow receiver does not
//! slow ingest; it prints how many deliveries arrived and how far behind the webhook is.

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
    if std::env::var_os(BARE_SERVER).is_some() {
        bare::serve();
        return;
    }
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
    let probe_dir = server
        .as_ref()
        .map_or_else(std::env::temp_dir, |s| s.data_dir.path().to_owned());
    let fsync_p50 = fdatasync_p50_ms(&probe_dir);
    println!(
        "disk: fdatasync of a 2 KB append in {}: p50 {fsync_p50:.3} ms",
        probe_dir.display()
    );
    let bare = (std::env::var("BENCH_BARE").as_deref() != Ok("0")).then(bare::start);
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
        let webhook = match std::env::var("BENCH_WEBHOOK_MS").ok().and_then(|n| n.parse().ok()) {
            Some(ms) => Some(slow_receiver::attach(&address, &username, &password, ms).await),
            None => None,
        };
        if let Some(fill) = std::env::var("BENCH_FILL").ok().and_then(|n| n.parse().ok()) {
            fill_store(&address, &token, &template, fill).await;
        }
        run_level(&address, &token, &template, 8, Duration::from_secs(1)).await; // warm-up
        let mut ours = Vec::new();
        for connections in levels.iter().copied() {
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
            if connections == 1 {
                println!(
                    "{:>11} one connection's p50 is the disk's fdatasync p50 + {:.3} ms",
                    "", r.p50_ms - fsync_p50
                );
            }
            ours.push((connections, r.per_second));
        }
        if let Some(webhook) = &webhook {
            webhook.report(&address).await;
        }
        let Some(bare) = &bare else {
            return;
        };
        println!("bare axum (parse into serde_json::Value, answer 201), same payload and levels:");
        run_level(&bare.address, &token, &template, 8, Duration::from_secs(1)).await;
        for (connections, per_second) in ours {
            let length = Duration::from_secs(seconds);
            let r = run_level(&bare.address, &token, &template, connections, length).await;
            println!(
                "{connections:>11} {:>14.0} {:>9.2} {:>9.2} {:>9.2} {:>7}   survey-server keeps {:.1}%",
                r.per_second,
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.errors,
                100.0 * per_second / r.per_second.max(1.0)
            );
        }
    });
    drop(bare);
    drop(server);
}

/// Set in the environment of this benchmark's own binary started as the bare server.
const BARE_SERVER: &str = "BENCH_BARE_SERVER";

/// The baseline: the same HTTP stack, a handler that only parses the body.
mod bare {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};

    pub struct Bare {
        pub address: String,
        child: Child,
    }

    impl Drop for Bare {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// This benchmark's binary again, as the bare server; its address.
    pub fn start() -> Bare {
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .env(super::BARE_SERVER, "1")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the bare server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the bare server prints its address");
        Bare {
            address: line.trim().to_owned(),
            child,
        }
    }

    /// Serves every POST by parsing its body into `serde_json::Value`, on two worker threads as
    /// the real server has on this machine.
    pub fn serve() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a port");
            println!("http://{}", listener.local_addr().expect("an address"));
            let app = axum::Router::new().fallback(axum::routing::post(parse));
            axum::serve(listener, app).await.expect("serving");
        });
    }

    async fn parse(body: axum::body::Bytes) -> (axum::http::StatusCode, &'static str) {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(_) => (axum::http::StatusCode::CREATED, "{\"status\":\"stored\"}"),
            Err(_) => (axum::http::StatusCode::BAD_REQUEST, "{}"),
        }
    }
}

/// The p50 of 200 appends of 2 KB, each followed by `fdatasync`, in a file in `dir`.
fn fdatasync_p50_ms(dir: &std::path::Path) -> f64 {
    use std::io::Write;
    let mut file = tempfile::tempfile_in(dir).expect("a file in the data directory");
    let block = [b'x'; 2048];
    let mut times: Vec<f64> = (0..200)
        .map(|_| {
            let started = Instant::now();
            file.write_all(&block).expect("written");
            file.sync_data().expect("fdatasync");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Stores `count` submissions through the batch endpoint (500 a batch, four at a time) first.
async fn fill_store(address: &str, token: &str, template: &str, count: usize) {
    let client = reqwest::Client::new();
    let url = format!("{address}/api/v1/forms/labour-survey/submissions/batch");
    let started = Instant::now();
    let batches = count.div_ceil(500);
    let mut next = 0;
    while next < batches {
        let round: Vec<_> = (next..batches.min(next + 4))
            .map(|_| {
                let items: Vec<String> = (0..500)
                    .map(|_| template.replace("ID_HERE", &uuid::Uuid::new_v4().to_string()))
                    .collect();
                let body = format!("{{\"submissions\":[{}]}}", items.join(","));
                client
                    .post(&url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
            })
            .collect();
        for answer in futures_util::future::join_all(round).await {
            assert!(answer.expect("the batch answers").status().is_success());
        }
        next += 4;
        if next % 200 == 0 {
            println!("  filled {} of {count}", (next * 500).min(count));
        }
    }
    println!(
        "filled the store with {count} submissions in {:.0} s",
        started.elapsed().as_secs_f64()
    );
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
        // The slow receiver of BENCH_WEBHOOK_MS is on loopback.
        .env("SURVEY_WEBHOOK_ALLOW_PRIVATE", "true")
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

/// An access token of `username`.
async fn login(address: &str, username: &str, password: &str) -> String {
    let session: Value = reqwest::Client::new()
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

/// A field worker's access token: on a fresh server the admin creates one, as a county would.
async fn sign_in(address: &str, username: &str, password: &str) -> String {
    let client = reqwest::Client::new();
    let token = login(address, username, password).await;
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
    login(address, "bench-phone", "bench-phone-password").await
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

/// A webhook receiver that takes its time, attached to the server under test.
mod slow_receiver {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use serde_json::{Value, json};

    pub struct Attached {
        received: Arc<AtomicU64>,
        id: String,
        token: String,
    }

    /// Starts a receiver answering 204 after `ms` and registers it (as the admin `username`).
    pub async fn attach(address: &str, username: &str, password: &str, ms: u64) -> Attached {
        let received = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&received);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let counter = Arc::clone(&counter);
                async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    counter.fetch_add(1, Ordering::Relaxed);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!("http://{}/hook", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let token = super::login(address, username, password).await;
        let webhook: Value = client
            .post(format!("{address}/api/v1/webhooks"))
            .bearer_auth(&token)
            .json(&json!({"url": url, "events": ["submission.created"],
                          "secret": "a-benchmark-secret-of-at-least-32-bytes"}))
            .send()
            .await
            .expect("the webhook is registered")
            .json()
            .await
            .expect("a webhook");
        println!("webhook: a receiver answering each delivery after {ms} ms is attached");
        Attached {
            received,
            id: webhook["id"].as_str().expect("an id").to_owned(),
            token,
        }
    }

    impl Attached {
        /// How many deliveries arrived, and how far behind the webhook is.
        pub async fn report(&self, address: &str) {
            let webhook: Value = reqwest::Client::new()
                .get(format!("{address}/api/v1/webhooks/{}", self.id))
                .bearer_auth(&self.token)
                .send()
                .await
                .expect("the webhook")
                .json()
                .await
                .expect("a webhook");
            println!(
                "webhook: {} deliveries received during the run; its cursor is at log entry {}",
                self.received.load(Ordering::Relaxed),
                webhook["cursor"]
            );
        }
    }
}
