//! Bodies phones send compressed, bodies built to hurt, and bodies that never finish arriving.

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, envelope, error_code, household, spawn_app, spawn_app_with};

const SUBMISSIONS: &str = "/api/v1/forms/labour-survey/submissions";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

async fn post_encoded(app: &TestApp, encoding: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url(SUBMISSIONS))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .header("content-encoding", encoding)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_gzipped_submission_is_stored_as_its_uncompressed_json() {
    let app = spawn_app().await;
    let submission = envelope(household());
    let plain = serde_json::to_vec(&submission).unwrap();

    let response = post_encoded(&app, "gzip", gzip(&plain)).await;

    assert_eq!(response.status(), 201);
    let id = submission["id"].as_str().unwrap();
    let raw = app.get(&format!("/api/v1/submissions/{id}/raw")).await;
    assert_eq!(&raw.bytes().await.unwrap()[..], &plain[..]);
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_by_its_decompressed_size() {
    let app = spawn_app().await;
    let limit = app.config.max_body_bytes;
    let mut bomb = serde_json::to_vec(&envelope(household())).unwrap();
    bomb.extend(std::iter::repeat_n(b' ', limit * 100));
    let compressed = gzip(&bomb);
    assert!(compressed.len() < limit, "the bomb itself is small");

    let (status, code, _) = error_code(post_encoded(&app, "gzip", compressed).await).await;

    assert_eq!((status, code.as_str()), (413, "body_too_large"));
}

#[tokio::test]
async fn broken_gzip_and_unknown_encodings_are_refused_with_their_codes() {
    let app = spawn_app().await;
    let plain = serde_json::to_vec(&envelope(household())).unwrap();
    let mut broken = gzip(&plain);
    broken.truncate(broken.len() / 2);

    let (status, code, _) = error_code(post_encoded(&app, "gzip", broken).await).await;
    assert_eq!((status, code.as_str()), (400, "body_malformed"));

    let (status, code, _) = error_code(post_encoded(&app, "br", plain).await).await;
    assert_eq!(
        (status, code.as_str()),
        (415, "unsupported_content_encoding")
    );
}

#[tokio::test]
async fn an_upload_that_trickles_in_is_cut_off_at_the_deadline() {
    let app = spawn_app_with(|config| config.upload_deadline = 1).await;
    let address = app.address.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {SUBMISSIONS} HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 5000\r\n\r\n{{\"id\":",
        app.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();

    // One byte every 200 ms would take 1,000 s; the server answers after its 1 s deadline.
    let mut answer = Vec::new();
    let read = async {
        loop {
            tokio::select! {
                n = stream.read_buf(&mut answer) => {
                    if n.unwrap_or(0) == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        return;
                    }
                }
                () = tokio::time::sleep(Duration::from_millis(200)) => {
                    let _ = stream.write_all(b" ").await;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server cut the upload off");

    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_lowercase().contains("connection: close"),
        "{answer}"
    );
}
