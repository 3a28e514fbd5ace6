//! Online backup and restore with the real binary: a backup taken while phones keep submitting
//! restores into a new directory where the server starts with every submission, user and form.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::helpers::{
    ADMIN_PASSWORD, PASSWORD, TestApp, all_submission_ids, envelope, household, run_binary,
    spawn_app, spawn_app_in,
};

const PHONES: usize = 4;

/// What the phones were told was received: (id, the bytes they sent).
type Acked = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// `run_binary` on a blocking thread, for commands that talk to the server this test runtime serves.
async fn run_beside(args: &[&str], stdin: String) -> (bool, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        run_binary(&args.iter().map(String::as_str).collect::<Vec<_>>(), &stdin)
    })
    .await
    .unwrap()
}

/// Phones submitting until `stop`; every acknowledged (id, bytes) lands in `acked`.
fn phones(
    app: &TestApp,
    stop: &Arc<AtomicBool>,
    acked: &Acked,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..PHONES)
        .map(|_| {
            let (client, url, token) = (
                app.client.clone(),
                app.url("/api/v1/forms/labour-survey/submissions"),
                app.token.clone(),
            );
            let (stop, acked) = (stop.clone(), acked.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let submission = envelope(household());
                    let bytes = serde_json::to_vec(&submission).unwrap();
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(bytes.clone())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 201);
                    let id = submission["id"].as_str().unwrap().to_owned();
                    acked.lock().unwrap().push((id, bytes));
                }
            })
        })
        .collect()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_to_a_server_with_everything_acknowledged_before_it() {
    let app = spawn_app().await;
    app.user("sup", "supervisor", None).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let phones = phones(&app, &stop, &acked);
    while acked.lock().unwrap().len() < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before: BTreeSet<String> = acked
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| id.clone())
        .collect();

    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("county.backup");
    let server = app.url("");
    let args = ["backup", "--out", path_str(&file), "--server", &server];
    let (taken, summary) = run_beside(&args, format!("{ADMIN_PASSWORD}\n")).await;
    assert!(taken, "{summary}");
    let acked_during = acked.lock().unwrap().len() - before.len();
    stop.store(true, Ordering::Relaxed);
    for phone in phones {
        phone.await.unwrap();
    }
    let all: BTreeSet<String> = acked
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        acked_during > 0,
        "phones kept submitting while the backup ran"
    );
    assert!(!file.with_extension("backup.partial").exists());

    let restored_dir = tempfile::tempdir().unwrap();
    let store = crate::helpers::store_arg(restored_dir.path());
    let restore = [
        "restore",
        path_str(&file),
        "--data-dir",
        path_str(restored_dir.path()),
        "--store",
        &store,
    ];
    let (ok, output) = run_binary(&restore, "");
    assert!(ok, "{output}");
    let (ok, output) = run_binary(&restore, "");
    assert!(!ok, "a second restore into the same directory is refused");
    assert!(output.contains("already holds a database"), "{output}");

    let mut app = app;
    app.stop().await;
    let restored_app = spawn_app_in(restored_dir).await;
    let ids = all_submission_ids(
        &restored_app.client,
        &restored_app.address,
        &restored_app.admin_token,
    )
    .await;
    let listed: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(listed.len(), ids.len(), "no submission is listed twice");
    assert!(
        before.is_subset(&listed),
        "a submission acknowledged before the backup is missing"
    );
    assert!(
        listed.is_subset(&all),
        "the backup holds a submission nobody sent"
    );
    assert!(
        summary.contains(&format!("{} submissions", listed.len())),
        "every stored submission is listed through its index: {summary}"
    );
    let sent = std::mem::take(&mut *acked.lock().unwrap());
    for (id, bytes) in sent.iter().filter(|(id, _)| listed.contains(id)) {
        let raw = restored_app
            .get_as(
                &restored_app.admin_token,
                &format!("/api/v1/submissions/{id}/raw"),
            )
            .await;
        assert_eq!(raw.status(), 200);
        assert_eq!(
            &raw.bytes().await.unwrap()[..],
            &bytes[..],
            "{id} restored byte for byte"
        );
    }
    restored_app.login("sup", PASSWORD).await;
    let forms = restored_app.get_json("/api/v1/forms").await;
    assert!(forms.to_string().contains("labour-survey"));
    let log = restored_app
        .get_json_as(
            &restored_app.admin_token,
            "/api/v1/audit?action=backup_downloaded",
        )
        .await;
    assert_eq!(
        log["items"].as_array().unwrap().len(),
        1,
        "the backup records its own taking"
    );
}

#[tokio::test]
async fn backup_needs_an_admin_and_a_damaged_file_restores_nothing() {
    let app = spawn_app().await;
    app.user("ana", "analyst", None).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.backup");
    let server = app.url("");
    let args = [
        "backup",
        "--out",
        path_str(&file),
        "--server",
        &server,
        "--username",
        "ana",
    ];
    let (ok, output) = run_beside(&args, format!("{PASSWORD}\n")).await;
    assert!(!ok);
    assert!(output.contains("403"), "{output}");
    assert!(!file.exists());

    let response = app.get_as(&app.admin_token, "/api/v1/admin/backup").await;
    assert_eq!(response.status(), 200);
    let mut bytes = response.bytes().await.unwrap().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&file, &bytes).unwrap();
    let target = tempfile::tempdir().unwrap();
    let (ok, output) = run_binary(
        &[
            "restore",
            path_str(&file),
            "--data-dir",
            path_str(target.path()),
        ],
        "",
    );
    assert!(!ok);
    assert!(output.contains("checksum"), "{output}");
    assert!(!target.path().join("sled").exists());
}
