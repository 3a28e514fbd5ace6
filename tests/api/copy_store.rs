//! `survey-server copy-store`: a county moves from sled (or a backup file) to PostgreSQL whole,
//! verified, and a second run changes nothing. Runs only beside a PostgreSQL cluster
//! (`SURVEY_TEST_STORE=postgres`); the county starts on sled there.

use survey_server::config::StoreChoice;

use crate::attachments::{Tus, jpeg, publish, submit, visit};
use crate::helpers::{
    all_submission_ids, envelope, household, psql, run_binary, spawn_app_with, test_cluster,
    test_store,
};

/// A new, empty database of the test cluster.
fn empty_database() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let StoreChoice::Postgres(url) = test_store(dir.path()) else {
        unreachable!("only on PostgreSQL")
    };
    (dir, url)
}

#[tokio::test]
async fn a_county_moves_from_a_data_directory_or_a_backup_into_postgresql_whole() {
    if test_cluster().is_none() {
        return;
    }
    let mut county = spawn_app_with(|c| c.database.store = StoreChoice::Sled).await;
    publish(&county).await;
    let visit_id = submit(&county, &county.token, visit()).await;
    let photo = jpeg(50_000, 3);
    Tus::new(&county, &county.token)
        .uploaded(&visit_id, "house.jpg", "image/jpeg", &photo)
        .await;
    for _ in 0..5 {
        assert_eq!(county.submit(&envelope(household())).await.status(), 201);
    }
    let before = all_submission_ids(&county.client, &county.address, &county.admin_token).await;
    let backup = county
        .get_as(&county.admin_token, "/api/v1/admin/backup")
        .await
        .bytes()
        .await
        .unwrap();
    let backup_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(backup_file.path(), &backup).unwrap();
    county.stop().await;

    // From the stopped data directory.
    let (_db, url) = empty_database();
    let shared = tempfile::tempdir().unwrap();
    let data = county.data_path().to_str().unwrap().to_owned();
    let files = shared.path().to_str().unwrap().to_owned();
    let copy = [
        "copy-store",
        "--from",
        &data,
        "--to",
        &url,
        "--attachments-dir",
        &files,
    ];
    let (ok, said) = run_binary(&copy, "");
    assert!(ok, "{said}");
    assert!(said.contains("copied into PostgreSQL"), "{said}");
    assert!(
        said.contains("checked against their hashes") && said.contains(": 1"),
        "{said}"
    );
    // Again: the target holds this very copy, so nothing is written.
    let (ok, again) = run_binary(&copy, "");
    assert!(ok, "{again}");
    assert!(again.contains("already held this very copy"), "{again}");

    // A node on PostgreSQL serves the county as it was: sign-in, submissions, the photo.
    let node = spawn_app_with(|c| {
        c.database.store = StoreChoice::Postgres(url.clone());
        c.attachments_dir = Some(shared.path().to_owned());
    })
    .await;
    let after = all_submission_ids(&node.client, &node.address, &node.admin_token).await;
    assert_eq!(after, before);
    let kept = node
        .get_as(
            &node.admin_token,
            &format!("/api/v1/submissions/{visit_id}/attachments/house.jpg"),
        )
        .await;
    assert_eq!(kept.bytes().await.unwrap(), photo);
    // New numbers go on above the copied ones: a new submission lists last.
    let fresh = envelope(household());
    assert_eq!(node.submit(&fresh).await.status(), 201);
    let listed = all_submission_ids(&node.client, &node.address, &node.admin_token).await;
    assert_eq!(listed.last().unwrap(), fresh["id"].as_str().unwrap());

    // Once the county has moved on there, a copy would overwrite its work: refused.
    let (ok, refused) = run_binary(&copy, "");
    assert!(
        !ok && refused.contains("other than this source"),
        "{refused}"
    );

    // From the backup file, into another empty database.
    let (_db2, url2) = empty_database();
    let shared2 = tempfile::tempdir().unwrap();
    let from_backup = [
        "copy-store",
        "--from",
        backup_file.path().to_str().unwrap(),
        "--to",
        &url2,
        "--attachments-dir",
        shared2.path().to_str().unwrap(),
    ];
    let (ok, said) = run_binary(&from_backup, "");
    assert!(ok, "{said}");
    assert!(said.contains("6 submissions"), "{said}");
    let rows = psql(&url2, "SELECT count(*) FROM submissionid_record");
    assert_eq!(rows.trim(), "6");
}

#[tokio::test]
async fn copy_store_refuses_a_sled_target_and_a_directory_without_a_database() {
    if test_cluster().is_none() {
        return;
    }
    let nothing = tempfile::tempdir().unwrap();
    let (_db, url) = empty_database();
    let (ok, said) = run_binary(
        &[
            "copy-store",
            "--from",
            nothing.path().to_str().unwrap(),
            "--to",
            &url,
            "--attachments-dir",
            nothing.path().to_str().unwrap(),
        ],
        "",
    );
    assert!(
        !ok && said.contains("holds no survey-server database"),
        "{said}"
    );
    let (ok, said) = run_binary(
        &[
            "copy-store",
            "--from",
            nothing.path().to_str().unwrap(),
            "--to",
            "sled",
            "--attachments-dir",
            nothing.path().to_str().unwrap(),
        ],
        "",
    );
    assert!(!ok && said.contains("copies into PostgreSQL"), "{said}");
}
