//! The real binary as an operator runs it: killed with `kill -9` mid-stream, or stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    admin_token, all_submission_ids, envelope, household, run_binary, server_command,
};

const CYCLES: usize = 3;
const PHONES: usize = 16;

struct Server {
    child: Child,
    address: String,
    /// The admin's access token: the tests submit as the admin.
    token: String,
    /// Held open so the server's later prints never meet a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Drop for Server {
    /// A failing assertion must not leave a server running (it would hold the test's output pipe open).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(data_dir: &Path) -> Server {
    start_server_with(data_dir, &[])
}

/// `start_server` with more environment variables.
fn start_server_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
    let mut child = server_command(data_dir)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the server binary starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("a stdout pipe"));
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("the server prints its address");
    let address = line
        .trim()
        .strip_prefix("survey-server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    Server {
        child,
        address,
        token: String::new(),
        _stdout: stdout,
    }
}

/// Starts the server and signs in as its admin.
async fn start_signed_in(data_dir: &Path) -> Server {
    let mut server = start_server(data_dir);
    server.token = admin_token(&reqwest::Client::new(), &server.address).await;
    server
}

/// Sends submissions from many phones until told to stop; returns what was acknowledged.
async fn load(address: String, token: String, stop: Arc<AtomicBool>) -> Vec<(String, Vec<u8>)> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let client = reqwest::Client::new();
    let phones: Vec<_> = (0..PHONES)
        .map(|_| {
            let (client, address, stop, acked) =
                (client.clone(), address.clone(), stop.clone(), acked.clone());
            let token = token.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let submission = envelope(household());
                    let bytes = serde_json::to_vec(&submission).unwrap();
                    let sent = client
                        .post(format!("{address}/api/v1/forms/labour-survey/submissions"))
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(bytes.clone())
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == 201 => {
                            let id = submission["id"].as_str().unwrap().to_owned();
                            acked.lock().unwrap().push((id, bytes));
                        }
                        Ok(response) => panic!("unexpected status {}", response.status()),
                        // The server was killed under us; anything unanswered was never promised.
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    for phone in phones {
        phone.await.unwrap();
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_submission_survives_kill_9_byte_for_byte() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();

    for cycle in 0..CYCLES {
        let server = start_signed_in(data_dir.path()).await;
        let client = reqwest::Client::new();

        for (id, bytes) in &acked {
            let url = format!("{}/api/v1/submissions/{id}/raw", server.address);
            let stored = client
                .get(url)
                .bearer_auth(&server.token)
                .send()
                .await
                .unwrap();
            assert_eq!(
                stored.status(),
                200,
                "cycle {cycle}: acknowledged submission {id} is lost"
            );
            assert_eq!(
                &stored.bytes().await.unwrap()[..],
                &bytes[..],
                "cycle {cycle}: {id} changed"
            );
        }
        let listed = all_submission_ids(&client, &server.address, &server.token).await;
        for (id, _) in &acked {
            assert!(
                listed.contains(id),
                "cycle {cycle}: {id} is stored but missing from the index"
            );
        }

        let stop = Arc::new(AtomicBool::new(false));
        let sending = tokio::spawn(load(
            server.address.clone(),
            server.token.clone(),
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(600)).await;
        drop(server);
        stop.store(true, Ordering::Relaxed);
        let new = sending.await.unwrap();
        assert!(
            !new.is_empty(),
            "cycle {cycle}: nothing was acknowledged before the kill"
        );
        eprintln!(
            "cycle {cycle}: {} submissions acknowledged before kill -9",
            new.len()
        );
        acked.extend(new);
    }

    let server = start_signed_in(data_dir.path()).await;
    let listed = all_submission_ids(&reqwest::Client::new(), &server.address, &server.token).await;
    for (id, _) in &acked {
        assert!(listed.contains(id), "after the last kill, {id} is missing");
    }
}

#[tokio::test]
async fn sigterm_finishes_cleanly_with_exit_code_0_and_keeps_everything() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut server = start_signed_in(data_dir.path()).await;
    let client = reqwest::Client::new();
    let submission = envelope(household());
    let url = format!("{}/api/v1/forms/labour-survey/submissions", server.address);
    let sent = client
        .post(&url)
        .bearer_auth(&server.token)
        .json(&submission)
        .send()
        .await;
    assert_eq!(sent.unwrap().status(), 201);

    let pid = server.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let exit = server.child.wait().expect("the server exits");

    assert_eq!(exit.code(), Some(0), "graceful shutdown must exit 0");
    let server = start_signed_in(data_dir.path()).await;
    let id = submission["id"].as_str().unwrap();
    let url = format!("{}/api/v1/submissions/{id}", server.address);
    let stored = client
        .get(url)
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);
}

/// Runs `survey-server user ...` on `data_dir` with `stdin` as the password; (success, output).
fn user_command(data_dir: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    let data_dir = data_dir.to_str().expect("a UTF-8 temporary path");
    let store = crate::helpers::store_arg(Path::new(data_dir));
    run_binary(
        &[
            &["user"],
            args,
            &["--data-dir", data_dir, "--store", &store],
        ]
        .concat(),
        stdin,
    )
}

#[tokio::test]
async fn the_user_command_refuses_a_running_server_and_works_on_a_stopped_one() {
    let data_dir = tempfile::tempdir().unwrap();
    let add = [
        "add",
        "wei",
        "--role",
        "field_worker",
        "--display-name",
        "韦秀英",
        "--scope",
        "思林镇",
    ];
    let server = start_signed_in(data_dir.path()).await;

    if crate::helpers::test_cluster().is_none() {
        // sled is one process's: PostgreSQL takes users while servers run.
        let (ok, output) = user_command(data_dir.path(), &add, "siling-2026\n");
        assert!(!ok);
        assert!(output.contains("server running"), "{output}");
    }

    drop(server);
    let (ok, output) = user_command(data_dir.path(), &add, "siling-2026\n");
    assert!(ok, "{output}");
    let (ok, _) = user_command(data_dir.path(), &["set-password", "wei"], "siling-2027\n");
    assert!(ok);
    let server = start_signed_in(data_dir.path()).await;
    let login = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", server.address))
        .json(&serde_json::json!({"username": "wei", "password": "siling-2027"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let session: Value = login.json().await.unwrap();
    assert_eq!(session["user"]["scope"], serde_json::json!(["思林镇"]));
}

#[tokio::test]
async fn a_download_is_on_record_before_its_first_byte_even_if_the_server_dies_then() {
    let data_dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    for (path, action) in [
        (
            "/api/v1/forms/labour-survey/export.zip",
            "export_downloaded",
        ),
        ("/api/v1/admin/backup", "backup_downloaded"),
    ] {
        let server = start_signed_in(data_dir.path()).await;
        let response = client
            .get(format!("{}{path}", server.address))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        // The answer has begun: kill -9 before anything else can reach the disk.
        drop(server);

        let server = start_signed_in(data_dir.path()).await;
        let log: Value = client
            .get(format!("{}/api/v1/audit?action={action}", server.address))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            log["items"].as_array().unwrap().len(),
            1,
            "{path} left no durable record: {log}"
        );
    }
}

#[tokio::test]
async fn kill_9_with_webhook_deliveries_pending_loses_none_of_them() {
    use crate::webhooks::{SECRET, accepted, receiver};
    let data_dir = tempfile::tempdir().unwrap();
    let settings = [
        ("SURVEY_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("SURVEY_WEBHOOK_RETRY_MS", "20"),
    ];
    // The receiver refuses everything until it is told otherwise.
    let (url, seen) = receiver(u32::MAX).await;
    let client = reqwest::Client::new();
    let server = {
        let mut server = start_server_with(data_dir.path(), &settings);
        server.token = admin_token(&client, &server.address).await;
        server
    };
    let hook = json!({"url": url, "events": ["submission.created"], "secret": SECRET});
    let created = client
        .post(format!("{}/api/v1/webhooks", server.address))
        .bearer_auth(&server.token)
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let mut ids = Vec::new();
    for _ in 0..5 {
        let submission = envelope(household());
        let sent = client
            .post(format!(
                "{}/api/v1/forms/labour-survey/submissions",
                server.address
            ))
            .bearer_auth(&server.token)
            .json(&submission)
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 201);
        ids.push(submission["id"].as_str().unwrap().to_owned());
    }
    // Let the first delivery fail a few times, then kill the server while it waits to retry.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    drop(server);

    let _server = start_server_with(data_dir.path(), &settings);
    seen.lock().unwrap().fail_first = 0;
    let delivered = accepted(&seen, 5).await;
    let order: Vec<&str> = delivered
        .iter()
        .map(|c| c["submission_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ids, "every change, once, in the order it committed");
}
