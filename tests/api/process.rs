//! The real binary as an operator runs it: killed with `kill -9` mid-stream, or stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{envelope, household, schemas_dir};

const CYCLES: usize = 3;
const PHONES: usize = 16;

struct Server {
    child: Child,
    address: String,
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_survey-server"))
        .arg("serve")
        .args(["--bind", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--schemas-dir")
        .arg(schemas_dir())
        .env("SURVEY_LOG", "error")
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
        _stdout: stdout,
    }
}

/// Sends submissions from many phones until told to stop; returns what was acknowledged.
async fn load(address: String, stop: Arc<AtomicBool>) -> Vec<(String, Vec<u8>)> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let client = reqwest::Client::new();
    let phones: Vec<_> = (0..PHONES)
        .map(|_| {
            let (client, address, stop, acked) =
                (client.clone(), address.clone(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let submission = envelope(household());
                    let bytes = serde_json::to_vec(&submission).unwrap();
                    let sent = client
                        .post(format!("{address}/api/v1/forms/labour-survey/submissions"))
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

async fn listed_ids(client: &reqwest::Client, address: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!("{address}/api/v1/forms/labour-survey/submissions?limit=1000{cursor}");
        let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_submission_survives_kill_9_byte_for_byte() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();

    for cycle in 0..CYCLES {
        let server = start_server(data_dir.path());
        let client = reqwest::Client::new();

        for (id, bytes) in &acked {
            let url = format!("{}/api/v1/submissions/{id}/raw", server.address);
            let stored = client.get(url).send().await.unwrap();
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
        let listed = listed_ids(&client, &server.address).await;
        for (id, _) in &acked {
            assert!(
                listed.contains(id),
                "cycle {cycle}: {id} is stored but missing from the index"
            );
        }

        let stop = Arc::new(AtomicBool::new(false));
        let sending = tokio::spawn(load(server.address.clone(), stop.clone()));
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

    let server = start_server(data_dir.path());
    let listed = listed_ids(&reqwest::Client::new(), &server.address).await;
    for (id, _) in &acked {
        assert!(listed.contains(id), "after the last kill, {id} is missing");
    }
}

#[tokio::test]
async fn sigterm_finishes_cleanly_with_exit_code_0_and_keeps_everything() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut server = start_server(data_dir.path());
    let client = reqwest::Client::new();
    let submission = envelope(household());
    let url = format!("{}/api/v1/forms/labour-survey/submissions", server.address);
    assert_eq!(
        client
            .post(&url)
            .json(&submission)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );

    let pid = server.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let exit = server.child.wait().expect("the server exits");

    assert_eq!(exit.code(), Some(0), "graceful shutdown must exit 0");
    let server = start_server(data_dir.path());
    let id = submission["id"].as_str().unwrap();
    let stored = client
        .get(format!("{}/api/v1/submissions/{id}", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);
}
