//! Finding F12 of the outside review: the server itself closes connections that send half a
//! request head, or nothing, for too long; a request being served is never cut by either limit.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use survey_server::config::ServeConfig;

use crate::helpers::{TestApp, envelope, household, spawn_app_with};

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.strip_prefix("http://").unwrap())
        .await
        .unwrap()
}

/// Reads until the server closes the connection; how long that took, and what it sent.
async fn until_closed(stream: &mut TcpStream) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buffer = [0; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    });
    read.await.expect("the server closed the connection");
    (started.elapsed(), received)
}

#[tokio::test]
async fn a_half_sent_request_head_is_cut_off_at_the_header_timeout() {
    let app = spawn_app_with(|config| {
        config.header_timeout = 1;
        config.idle_timeout = 30;
    })
    .await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: survey\r\n")
        .await
        .unwrap();

    let (waited, _) = until_closed(&mut stream).await;

    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_idle_timeout() {
    let app = spawn_app_with(|config| {
        config.header_timeout = 30;
        config.idle_timeout = 1;
    })
    .await;
    let mut silent = connect(&app).await;
    let (waited, _) = until_closed(&mut silent).await;
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");

    // And after a request, an idle keep-alive connection goes the same way.
    let mut kept = connect(&app).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: survey\r\n\r\n")
        .await
        .unwrap();
    let (waited, answer) = until_closed(&mut kept).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
}

#[tokio::test]
async fn a_request_being_served_outlasts_both_timeouts() {
    let app = spawn_app_with(|config| {
        config.header_timeout = 1;
        config.idle_timeout = 1;
    })
    .await;
    let body = serde_json::to_vec(&envelope(household())).unwrap();
    let mut stream = connect(&app).await;
    let head = format!(
        "POST /api/v1/forms/labour-survey/submissions HTTP/1.1\r\nhost: survey\r\n\
         authorization: Bearer {}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        app.token,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();

    // A slow phone: the body arrives over 2.5 s, longer than either timeout.
    for chunk in body.chunks(body.len() / 5 + 1) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        stream.write_all(chunk).await.unwrap();
    }
    let (_, answer) = until_closed(&mut stream).await;

    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
}

/// A server whose form `big` answers with `megabytes` (more than every socket buffer on the way:
/// Linux lets a send buffer grow to 4 MB), and a connection asking for it with a small receive
/// window; nothing of the answer is read yet.
async fn asking_for_a_large_answer(
    megabytes: usize,
    adjust: impl FnOnce(&mut ServeConfig),
) -> (TestApp, TcpStream) {
    let app = spawn_app_with(|config| {
        config.max_body_bytes = (megabytes + 1) * 1024 * 1024;
        adjust(config);
    })
    .await;
    // Each 说 is three bytes of UTF-8.
    let text = "说".repeat(megabytes * 1024 * 1024 / 3);
    let schema = serde_json::json!({"type": "object", "description": text});
    let published = app
        .post_json_as(
            &app.admin_token,
            "/api/v1/forms",
            &serde_json::json!({"id": "big", "version": "1", "title": "大", "schema": schema}),
        )
        .await;
    assert_eq!(published.status(), 201);
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let address = app
        .address
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    let head = format!(
        "GET /api/v1/forms/big HTTP/1.1\r\nhost: survey\r\nauthorization: Bearer {}\r\n\r\n",
        app.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    (app, stream)
}

/// Reads an answer `pause` apart per chunk until it is whole (true) or the server closes (false).
async fn read_answer(stream: &mut TcpStream, pause: Duration) -> (bool, usize) {
    let mut received = Vec::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return (false, received.len()),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .and_then(|n| n.trim().parse().ok())
                .expect("a content length");
            if received.len() >= end + 4 + length {
                return (true, received.len());
            }
        }
        tokio::time::sleep(pause).await;
    }
}

#[tokio::test]
async fn a_large_answer_to_a_slow_reader_is_not_cut_off_by_the_idle_timeout() {
    let (_app, mut stream) = asking_for_a_large_answer(6, |config| config.idle_timeout = 1).await;
    // About 0.6 MB/s: some ten seconds for the whole answer, ten idle timeouts.
    let (whole, received) = read_answer(&mut stream, Duration::from_millis(50)).await;
    assert!(whole, "the answer was cut off after {received} bytes");
}

#[tokio::test]
async fn an_answer_nobody_reads_ends_after_the_stall_allowance() {
    let (_app, mut stream) =
        asking_for_a_large_answer(12, |config| config.upload_deadline = 1).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (whole, received) = read_answer(&mut stream, Duration::ZERO).await;
    assert!(
        !whole,
        "a client that stopped reading kept its connection ({received} bytes)"
    );
}
