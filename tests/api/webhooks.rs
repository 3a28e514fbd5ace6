//! Webhooks: registration (admins, checked addresses, a secret never shown again, audited),
//! and deliveries to a receiver on loopback that checks every signature and fails the first
//! attempts: every change arrives, in order per submission, as the changes feed tells it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{TestApp, envelope, error_code, household, spawn_app, spawn_app_with};

pub const SECRET: &str = "a-county-secret-of-at-least-32-bytes!";

/// What the receiver saw.
#[derive(Default)]
pub struct Seen {
    /// Requests per delivery id.
    tries: BTreeMap<String, u32>,
    /// Accepted bodies, in arrival order.
    pub accepted: Vec<Value>,
    /// Requests whose signature or timestamp did not check out.
    forged: u32,
    /// Failed attempts to answer before accepting a delivery.
    pub fail_first: u32,
}

async fn receive(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let timestamp = header("x-survey-timestamp");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let skew = timestamp
        .parse::<i64>()
        .map_or(i64::MAX, |t| (t - survey_server::clock::unix_now()).abs());
    let mut seen = seen.lock().unwrap();
    if header("x-survey-signature") != format!("sha256={expected}") || skew > 300 {
        seen.forged += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let delivery = header("x-survey-delivery");
    let tries = seen.tries.entry(delivery.clone()).or_default();
    *tries += 1;
    if *tries <= seen.fail_first {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["delivery_id"], delivery);
    seen.accepted.push(body);
    StatusCode::NO_CONTENT
}

/// A receiver on loopback failing each delivery's first `fail_first` attempts: its URL.
pub async fn receiver(fail_first: u32) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen {
        fail_first,
        ..Seen::default()
    }));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/hook"), seen)
}

async fn register(app: &TestApp, url: &str) -> Value {
    let body = json!({"url": url, "events": ["submission.created", "submission.edited",
        "submission.reviewed", "submission.deleted", "submission.restored"], "secret": SECRET});
    let created = app
        .post_json_as(&app.admin_token, "/api/v1/webhooks", &body)
        .await;
    assert_eq!(created.status(), 201);
    created.json().await.unwrap()
}

/// Waits until the receiver has accepted `count` deliveries.
pub async fn accepted(seen: &Arc<Mutex<Seen>>, count: usize) -> Vec<Value> {
    for _ in 0..300 {
        {
            let seen = seen.lock().unwrap();
            if seen.accepted.len() >= count {
                return seen.accepted.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "only {} deliveries arrived",
        seen.lock().unwrap().accepted.len()
    );
}

#[tokio::test]
async fn admins_register_webhooks_whose_secret_is_never_shown_again() {
    let app = spawn_app().await;
    let (url, _) = receiver(0).await;
    let created = register(&app, &url).await;
    assert!(created.get("secret").is_none(), "{created}");
    assert_eq!(created["active"], true);
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/webhooks/{id}");

    let analyst = app.user("ana", "analyst", None).await;
    let (status, code, _) = error_code(app.get_as(&analyst, "/api/v1/webhooks").await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    let listed = app.get_json_as(&app.admin_token, "/api/v1/webhooks").await;
    assert_eq!(listed["items"][0]["id"], id);
    assert!(!listed.to_string().contains(SECRET));

    for (body, pointer) in [
        (
            json!({"url": url, "events": ["submission.created"], "secret": "short"}),
            "/secret",
        ),
        (
            json!({"url": url, "events": ["submission.burned"], "secret": SECRET}),
            "/events",
        ),
        (
            json!({"url": url, "events": [], "secret": SECRET}),
            "/events",
        ),
        (
            json!({"url": url, "events": ["submission.created"], "forms": ["nope"], "secret": SECRET}),
            "/forms/0",
        ),
        (
            json!({"url": "http://169.254.169.254/latest", "events": ["submission.created"], "secret": SECRET}),
            "/url",
        ),
        (
            json!({"url": "ftp://127.0.0.1/", "events": ["submission.created"], "secret": SECRET}),
            "/url",
        ),
    ] {
        let response = app
            .post_json_as(&app.admin_token, "/api/v1/webhooks", &body)
            .await;
        let (status, code, error) = error_code(response).await;
        assert_eq!((status, code.as_str()), (422, "request_invalid"), "{body}");
        assert_eq!(error["details"][0]["path"], pointer, "{error}");
    }

    let patched = app
        .patch_json_as(
            &app.admin_token,
            &path,
            &json!({"events": ["submission.created"], "active": false}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(
        (patched["events"].clone(), patched["active"].clone()),
        (json!(["submission.created"]), json!(false))
    );
    assert!(patched["paused_reason"].as_str().unwrap().contains("admin"));

    let deleted = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, code, _) = error_code(app.get_as(&app.admin_token, &path).await).await;
    assert_eq!((status, code.as_str()), (404, "webhook_not_found"));

    for action in ["webhook_created", "webhook_updated", "webhook_deleted"] {
        let log = app
            .get_json_as(&app.admin_token, &format!("/api/v1/audit?action={action}"))
            .await;
        assert_eq!(
            log["items"][0]["target"],
            format!("webhook:{id}"),
            "{action}"
        );
        assert!(!log.to_string().contains(SECRET));
    }
}

#[tokio::test]
async fn without_the_intranet_setting_only_public_https_receivers_are_taken() {
    let app = spawn_app_with(|config| config.webhook_allow_private = false).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "https://127.0.0.1:9/hook",
        "https://10.0.0.7/hook",
        "https://[::1]/hook",
    ] {
        let body = json!({"url": url, "events": ["submission.created"], "secret": SECRET});
        let (status, code, error) = error_code(
            app.post_json_as(&app.admin_token, "/api/v1/webhooks", &body)
                .await,
        )
        .await;
        assert_eq!((status, code.as_str()), (422, "request_invalid"), "{url}");
        assert_eq!(error["details"][0]["path"], "/url");
    }
}

#[tokio::test]
async fn every_change_is_delivered_signed_in_order_through_failures_as_the_feed_tells_it() {
    let app = spawn_app().await;
    let (url, seen) = receiver(2).await;
    let webhook = register(&app, &url).await;
    let id = webhook["id"].as_str().unwrap().to_owned();
    let supervisor = app.user("sup", "supervisor", None).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let mut data = household();
        data["household_id"] = json!(format!("451022000{n}"));
        let submission = envelope(data);
        assert_eq!(app.submit(&submission).await.status(), 201);
        ids.push(submission["id"].as_str().unwrap().to_owned());
    }
    let review = app
        .client
        .patch(app.url(&format!("/api/v1/submissions/{}/review", ids[0])));
    let reviewed = review
        .bearer_auth(&supervisor)
        .json(&json!({"status": "approved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reviewed.status(), 200);

    let delivered = accepted(&seen, 4).await;
    let story: Vec<(String, String)> = delivered
        .iter()
        .map(|c| {
            (
                c["event"].as_str().unwrap().to_owned(),
                c["submission_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = vec![
        ("submission.created".into(), ids[0].clone()),
        ("submission.created".into(), ids[1].clone()),
        ("submission.created".into(), ids[2].clone()),
        ("submission.reviewed".into(), ids[0].clone()),
    ];
    assert_eq!(story, expected);
    assert_eq!(delivered[0]["data"]["household_id"], "4510220000");
    assert_eq!(delivered[3]["review_status"], "approved");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.forged, 0);
        assert!(seen.tries.values().all(|&n| n == 3), "{:?}", seen.tries);
    }
    // The feed, read from the start, tells the same story.
    let analyst = app.user("ana", "analyst", None).await;
    let feed = app
        .get_json_as(&analyst, "/api/v1/forms/labour-survey/changes")
        .await;
    let told: Vec<(String, String)> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["event"].as_str().unwrap().to_owned(),
                c["submission_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(told, expected);

    // The deliveries show the two failures before each success.
    let deliveries = app
        .get_json_as(
            &app.admin_token,
            &format!("/api/v1/webhooks/{id}/deliveries"),
        )
        .await;
    let first = deliveries["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(first["state"], "delivered");
    let statuses: Vec<Value> = first["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(503), json!(503), json!(204)]);
    assert_eq!(first["attempts"][0]["error"], "answered 503");

    // Sent again on request, with the same delivery id.
    let delivery = first["delivery_id"].as_str().unwrap();
    let again = app
        .post_json_as(
            &app.admin_token,
            &format!("/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver"),
            &json!({}),
        )
        .await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["attempts"].as_array().unwrap().len(), 4);
    let resent = accepted(&seen, 5).await;
    assert_eq!(resent[4]["delivery_id"], delivery);
    let log = app
        .get_json_as(&app.admin_token, "/api/v1/audit?action=webhook_redelivered")
        .await;
    assert_eq!(log["items"][0]["target"], format!("webhook:{id}"));
    let (status, code, _) = error_code(
        app.post_json_as(
            &app.admin_token,
            &format!("/api/v1/webhooks/{id}/deliveries/nope/redeliver"),
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "delivery_not_found"));
}

#[tokio::test]
async fn a_delivery_the_webhook_no_longer_wants_is_dropped_and_the_next_goes() {
    let app = spawn_app().await;
    let form = json!({"id": "visit", "version": "1", "title": "回访",
        "schema": {"type": "object", "properties": {"note": {"type": "string"}}}});
    assert_eq!(
        app.post_json_as(&app.admin_token, "/api/v1/forms", &form)
            .await
            .status(),
        201
    );
    let (url, seen) = receiver(u32::MAX).await;
    let webhook = register(&app, &url).await;
    let path = format!("/api/v1/webhooks/{}", webhook["id"].as_str().unwrap());
    assert_eq!(app.submit(&envelope(household())).await.status(), 201);
    for _ in 0..100 {
        if app.get_json_as(&app.admin_token, &path).await["failures"].as_u64() > Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The receiver refuses the labour survey's change: the admin narrows the webhook to visits.
    let narrowed = app
        .patch_json_as(&app.admin_token, &path, &json!({"forms": ["visit"]}))
        .await;
    assert_eq!(narrowed.status(), 200);
    seen.lock().unwrap().fail_first = 0;
    let visit = json!({"id": uuid::Uuid::new_v4().to_string(), "form_version": "1", "data": {"note": "复查"}});
    assert_eq!(
        app.post_json("/api/v1/forms/visit/submissions", &visit)
            .await
            .status(),
        201
    );

    let delivered = accepted(&seen, 1).await;
    assert_eq!(delivered[0]["form"], "visit");
    assert_eq!(
        delivered.len(),
        1,
        "the labour survey's change was dropped, not sent"
    );
}

/// A certificate authority and a certificate for 127.0.0.1 it signed, made with `openssl`:
/// (the CA's PEM file, the server's certificate chain and key in PEM).
fn intranet_ca(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>, Vec<u8>) {
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=county intranet CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    (
        dir.join("ca.pem"),
        std::fs::read(dir.join("server.pem")).unwrap(),
        std::fs::read(dir.join("server.key")).unwrap(),
    )
}

/// An HTTPS receiver on 127.0.0.1 answering 204 to each request: its URL and the bodies it got.
async fn tls_receiver(chain: &[u8], key: &[u8]) -> (String, Arc<Mutex<Vec<Value>>>) {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain)
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (acceptor, kept) = (acceptor.clone(), Arc::clone(&kept));
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // One request: the head, then Content-Length bytes of body.
                loop {
                    let Ok(n) = tls.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        kept.lock().unwrap().push(
                            serde_json::from_slice(&request[end + 4..end + 4 + length]).unwrap(),
                        );
                        let _ = tls
                            .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                            .await;
                        let _ = tls.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    (url, bodies)
}

#[tokio::test]
async fn an_https_receiver_is_reached_only_through_a_certificate_the_server_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, chain, key) = intranet_ca(dir.path());
    let (url, bodies) = tls_receiver(&chain, &key).await;

    // Without the intranet CA the receiver's certificate is not trusted: nothing is delivered.
    let untrusting = spawn_app().await;
    let webhook = register(&untrusting, &url).await;
    assert_eq!(
        untrusting.submit(&envelope(household())).await.status(),
        201
    );
    let path = format!(
        "/api/v1/webhooks/{}/deliveries",
        webhook["id"].as_str().unwrap()
    );
    let mut error = Value::Null;
    for _ in 0..100 {
        let deliveries = untrusting.get_json_as(&untrusting.admin_token, &path).await;
        error = deliveries["items"][0]["attempts"][0]["error"].clone();
        if !error.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        error
            .as_str()
            .is_some_and(|e| e.contains("certificate") || e.contains("UnknownIssuer")),
        "{error}"
    );
    assert!(bodies.lock().unwrap().is_empty());

    // With SURVEY_WEBHOOK_CA_FILE naming it, deliveries go over TLS.
    let trusting = spawn_app_with(|config| config.webhook_ca_file = Some(ca)).await;
    register(&trusting, &url).await;
    assert_eq!(trusting.submit(&envelope(household())).await.status(), 201);
    for _ in 0..100 {
        if !bodies.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = bodies.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "delivered over TLS");
    assert_eq!(got[0]["event"], "submission.created");
}
