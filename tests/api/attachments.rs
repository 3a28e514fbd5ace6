//! Photos, signatures and recordings: tus 1.0 uploads to the real server, and reading them back.
//! (tests/browser/test_uploads.py drives the same server with tuspy, kill -9 included.)

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::helpers::{TestApp, error_code, spawn_app, spawn_app_with};

const FORM: &str = "evidence";

/// A JPEG's first bytes, then `size` bytes of a pattern: enough for the server's magic check.
pub fn jpeg(size: usize, seed: u8) -> Vec<u8> {
    let mut bytes = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01".to_vec();
    bytes.extend((0..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    bytes
}

pub(crate) fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    bytes.extend([7u8; 300]);
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Publishes the evidence form (photo, signature, voice note, ID card photos) as the admin.
pub(crate) async fn publish(app: &TestApp) {
    let schema: Value =
        serde_json::from_str(include_str!("../fixtures/evidence-form.json")).unwrap();
    let body = json!({"id": FORM, "version": "1", "title": "入户核查", "schema": schema});
    let response = app
        .post_json_as(&app.admin_token, "/api/v1/forms", &body)
        .await;
    assert_eq!(response.status(), 201);
}

pub(crate) fn visit() -> Value {
    json!({
        "household_id": "4510220170001",
        "township": "思林镇",
        "house_photo": "house.jpg",
        "consent_signature": "signature.png",
        "members": [{"name": "黄秀英", "id_card_photo": "id-1.jpg"}]
    })
}

/// Submits `data` to the evidence form as `token`; the submission's id.
pub(crate) async fn submit(app: &TestApp, token: &str, data: Value) -> String {
    let id = Uuid::new_v4().to_string();
    let envelope = json!({"id": id, "form_version": "1", "data": data});
    let response = app
        .post_json_as(
            token,
            &format!("/api/v1/forms/{FORM}/submissions"),
            &envelope,
        )
        .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    id
}

/// A tus client in a few lines, so each test says exactly what goes over the wire.
pub(crate) struct Tus<'a> {
    app: &'a TestApp,
    token: String,
}

impl<'a> Tus<'a> {
    pub(crate) fn new(app: &'a TestApp, token: &str) -> Self {
        Self {
            app,
            token: token.to_owned(),
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token)
            .header("tus-resumable", "1.0.0")
    }

    async fn create(&self, submission: &str, name: &str, kind: &str, length: usize) -> Response {
        self.create_with(
            &[
                ("submission", submission),
                ("filename", name),
                ("filetype", kind),
            ],
            length,
        )
        .await
    }

    async fn create_with(&self, metadata: &[(&str, &str)], length: usize) -> Response {
        let metadata: Vec<String> = metadata
            .iter()
            .map(|(key, value)| format!("{key} {}", STANDARD.encode(value)))
            .collect();
        self.request(Method::POST, "/api/v1/uploads")
            .header("upload-length", length.to_string())
            .header("upload-metadata", metadata.join(","))
            .send()
            .await
            .unwrap()
    }

    /// Creates an upload that must succeed; its path.
    async fn start(&self, submission: &str, name: &str, kind: &str, length: usize) -> String {
        let response = self.create(submission, name, kind, length).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        assert_eq!(response.headers()["tus-resumable"], "1.0.0");
        assert!(response.headers().contains_key("upload-expires"));
        response.headers()["location"].to_str().unwrap().to_owned()
    }

    async fn patch(&self, upload: &str, offset: usize, bytes: &[u8]) -> Response {
        self.request(Method::PATCH, upload)
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap()
    }

    async fn head(&self, upload: &str) -> Response {
        self.request(Method::HEAD, upload).send().await.unwrap()
    }

    async fn offset(&self, upload: &str) -> u64 {
        let response = self.head(upload).await;
        assert_eq!(response.status(), 200);
        response.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Uploads `bytes` whole in one PATCH, which must be accepted.
    pub(crate) async fn uploaded(&self, submission: &str, name: &str, kind: &str, bytes: &[u8]) {
        let answer = self.upload(submission, name, kind, bytes).await;
        assert_eq!(
            answer.status(),
            204,
            "{name}: {}",
            answer.text().await.unwrap()
        );
    }

    /// Uploads `bytes` whole in one PATCH; the PATCH's answer.
    async fn upload(&self, submission: &str, name: &str, kind: &str, bytes: &[u8]) -> Response {
        let upload = self.start(submission, name, kind, bytes.len()).await;
        self.patch(&upload, 0, bytes).await
    }
}

#[tokio::test]
async fn a_photo_arrives_in_chunks_and_is_read_back_whole_or_in_ranges() {
    let app = spawn_app().await;
    publish(&app).await;
    let id = submit(&app, &app.token, visit()).await;
    let tus = Tus::new(&app, &app.token);
    let photo = jpeg(300_000, 1);

    let before: Value = app.get_json(&format!("/api/v1/submissions/{id}")).await;
    assert_eq!(
        before["attachments"],
        json!([
            {"name": "house.jpg", "type": "image/jpeg", "size": null, "sha256": null, "present": false},
            {"name": "signature.png", "type": "image/png", "size": null, "sha256": null, "present": false},
            {"name": "id-1.jpg", "type": "image/jpeg", "size": null, "sha256": null, "present": false},
        ])
    );

    let upload = tus.start(&id, "house.jpg", "image/jpeg", photo.len()).await;
    assert_eq!(tus.offset(&upload).await, 0);
    let first = tus.patch(&upload, 0, &photo[..100_000]).await;
    assert_eq!(first.status(), 204);
    assert_eq!(first.headers()["upload-offset"], "100000");
    assert_eq!(tus.offset(&upload).await, 100_000);
    // A chunk with its own checksum, as tus-js-client can send.
    let rest = &photo[100_000..];
    let checked = tus
        .request(Method::PATCH, &upload)
        .header("upload-offset", "100000")
        .header("content-type", "application/offset+octet-stream")
        .header(
            "upload-checksum",
            format!("sha256 {}", STANDARD.encode(Sha256::digest(rest))),
        )
        .body(rest.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 204);
    assert_eq!(checked.headers()["upload-offset"], photo.len().to_string());
    assert_eq!(tus.offset(&upload).await, photo.len() as u64);

    let after: Value = app.get_json(&format!("/api/v1/submissions/{id}")).await;
    assert_eq!(
        after["attachments"][0],
        json!({"name": "house.jpg", "type": "image/jpeg", "size": photo.len(),
               "sha256": sha256_hex(&photo), "present": true})
    );
    assert_eq!(after["attachments"][1]["present"], false);

    let path = format!("/api/v1/submissions/{id}/attachments/house.jpg");
    let whole = app.get(&path).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "image/jpeg");
    assert_eq!(whole.headers()["x-content-type-options"], "nosniff");
    let etag = whole.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&photo)));
    assert_eq!(whole.bytes().await.unwrap(), photo);

    let part = app
        .client
        .get(app.url(&path))
        .bearer_auth(&app.token)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap(), photo[10..20]);
    let unchanged = app
        .client
        .get(app.url(&path))
        .bearer_auth(&app.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);

    let trail = app
        .get_json_as(&app.admin_token, &format!("/api/v1/submissions/{id}/audit"))
        .await;
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["submission_created", "attachment_uploaded"]);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(&format!(
            "survey_attachment_received_bytes_total {}",
            photo.len()
        )),
        "{metrics}"
    );

    // Stored once, by its hash, outside the database.
    let sha = sha256_hex(&photo);
    let object = app
        .data_path()
        .join("attachments/objects")
        .join(&sha[..2])
        .join(&sha[2..]);
    assert_eq!(std::fs::read(object).unwrap(), photo);
}

#[tokio::test]
async fn the_server_speaks_tus_1_0_and_holds_clients_to_it() {
    let app = spawn_app().await;
    publish(&app).await;
    let id = submit(&app, &app.token, visit()).await;
    let tus = Tus::new(&app, &app.token);

    let options = app
        .client
        .request(Method::OPTIONS, app.url("/api/v1/uploads"))
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), 204);
    let headers = options.headers();
    assert_eq!(headers["tus-resumable"], "1.0.0");
    assert_eq!(headers["tus-version"], "1.0.0");
    assert_eq!(
        headers["tus-extension"],
        "creation,checksum,termination,expiration"
    );
    assert_eq!(headers["tus-max-size"], (2 * 1024 * 1024).to_string());
    assert_eq!(headers["tus-checksum-algorithm"], "sha256");

    let unversioned = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&app.token)
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(unversioned.headers()["tus-version"], "1.0.0");
    assert_eq!(error_code(unversioned).await.1, "tus_version_unsupported");

    let photo = jpeg(5000, 2);
    let upload = tus.start(&id, "house.jpg", "image/jpeg", photo.len()).await;
    assert_eq!(tus.patch(&upload, 0, &photo[..1000]).await.status(), 204);

    let wrong_offset = tus.patch(&upload, 500, &photo[500..1500]).await;
    assert_eq!(wrong_offset.headers()["tus-resumable"], "1.0.0");
    assert_eq!(error_code(wrong_offset).await.1, "upload_offset_mismatch");
    let not_a_stream = tus
        .request(Method::PATCH, &upload)
        .header("upload-offset", "1000")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(not_a_stream).await.0, 415);
    let corrupted = tus
        .request(Method::PATCH, &upload)
        .header("upload-offset", "1000")
        .header("content-type", "application/offset+octet-stream")
        .header(
            "upload-checksum",
            format!("sha256 {}", STANDARD.encode(Sha256::digest(b"other"))),
        )
        .body(photo[1000..2000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(corrupted).await,
        (460, "checksum_mismatch".into(), error_body_of_460())
    );
    let md5 = tus
        .request(Method::PATCH, &upload)
        .header("upload-offset", "1000")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-checksum", "md5 XUFAKrxLKna5cZ2REBfFkg==")
        .body(photo[1000..2000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(md5).await.0, 400);
    let too_long = tus.patch(&upload, 1000, &jpeg(10_000, 2)).await;
    assert_eq!(error_code(too_long).await.1, "body_too_large");
    // None of the refused bytes were added.
    assert_eq!(tus.offset(&upload).await, 1000);

    assert_eq!(tus.patch(&upload, 1000, &photo[1000..]).await.status(), 204);
    // Once finished, the upload answers its full length until it expires.
    assert_eq!(tus.offset(&upload).await, photo.len() as u64);
    let nothing_more = tus.patch(&upload, photo.len(), b"").await;
    assert_eq!(nothing_more.status(), 204);
}

/// What the 460 answer's body says (only its code matters; the message is for a person).
fn error_body_of_460() -> Value {
    json!({"code": "checksum_mismatch",
           "message": "these bytes do not have the Upload-Checksum sent with them; they were not added"})
}

#[tokio::test]
async fn uploads_are_refused_at_creation_when_they_cannot_fit_the_answer() {
    let app = spawn_app().await;
    publish(&app).await;
    let id = submit(&app, &app.token, visit()).await;
    let tus = Tus::new(&app, &app.token);

    let huge = tus
        .create(&id, "house.jpg", "image/jpeg", 2 * 1024 * 1024 + 1)
        .await;
    assert_eq!(error_code(huge).await.1, "attachment_too_large");
    let unnamed = tus.create(&id, "other.jpg", "image/jpeg", 100).await;
    assert_eq!(error_code(unnamed).await.1, "request_invalid");
    let wrong_type = tus.create(&id, "house.jpg", "image/png", 100).await;
    assert_eq!(error_code(wrong_type).await.1, "attachment_type_mismatch");
    let nowhere = tus
        .create(&Uuid::new_v4().to_string(), "house.jpg", "image/jpeg", 100)
        .await;
    assert_eq!(error_code(nowhere).await.1, "submission_not_found");
    let no_name = tus
        .create_with(&[("submission", &id), ("filetype", "image/jpeg")], 100)
        .await;
    assert_eq!(error_code(no_name).await.1, "header_invalid");
    let bad_hash = tus
        .create_with(
            &[
                ("submission", &id),
                ("filename", "house.jpg"),
                ("filetype", "image/jpeg"),
                ("sha256", "abc"),
            ],
            100,
        )
        .await;
    assert_eq!(error_code(bad_hash).await.1, "header_invalid");

    // Another field worker cannot see it; a supervisor sees it but may not add to it; admins may.
    let fw2 = app.user("fw2", "field_worker", None).await;
    let theirs = Tus::new(&app, &fw2)
        .create(&id, "house.jpg", "image/jpeg", 100)
        .await;
    assert_eq!(error_code(theirs).await.1, "submission_not_found");
    let supervisor = app.user("sup", "supervisor", None).await;
    let reviewer = Tus::new(&app, &supervisor)
        .create(&id, "house.jpg", "image/jpeg", 100)
        .await;
    assert_eq!(error_code(reviewer).await.1, "forbidden");
    let admin = Tus::new(&app, &app.admin_token)
        .create(&id, "house.jpg", "image/jpeg", 100)
        .await;
    assert_eq!(admin.status(), 201);

    // Someone else's upload is not there for you.
    let mine = tus.start(&id, "house.jpg", "image/jpeg", 100).await;
    assert_eq!(Tus::new(&app, &fw2).head(&mine).await.status(), 404);
    let patched = Tus::new(&app, &fw2).patch(&mine, 0, &jpeg(80, 0)).await;
    assert_eq!(error_code(patched).await.1, "upload_not_found");
    assert_eq!(
        Tus::new(&app, &app.admin_token).head(&mine).await.status(),
        200
    );
}

#[tokio::test]
async fn a_finished_file_must_be_what_it_claims_and_an_answer_keeps_its_first_file() {
    let app = spawn_app().await;
    publish(&app).await;
    let id = submit(&app, &app.token, visit()).await;
    let tus = Tus::new(&app, &app.token);

    // A Windows program renamed to .jpg.
    let mut program = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00".to_vec();
    program.resize(4000, 0);
    let upload = tus
        .start(&id, "house.jpg", "image/jpeg", program.len())
        .await;
    let refused = tus.patch(&upload, 0, &program).await;
    assert_eq!(
        error_code(refused).await,
        (
            415,
            "attachment_type_mismatch".into(),
            json!({
        "code": "attachment_type_mismatch", "message": "the file's content is not image/jpeg"})
        )
    );
    assert_eq!(
        tus.head(&upload).await.status(),
        404,
        "the refused upload is gone"
    );

    let photo = jpeg(4000, 3);
    let declared = tus
        .create_with(
            &[
                ("submission", &id),
                ("filename", "house.jpg"),
                ("filetype", "image/jpeg"),
                ("sha256", &sha256_hex(&jpeg(4000, 4))),
            ],
            photo.len(),
        )
        .await;
    let upload = declared.headers()["location"].to_str().unwrap().to_owned();
    let mismatch = tus.patch(&upload, 0, &photo).await;
    assert_eq!(error_code(mismatch).await.1, "attachment_checksum_mismatch");

    tus.uploaded(&id, "house.jpg", "image/jpeg", &photo).await;
    // The same bytes again (a phone that lost the answer) are fine; other bytes are not.
    tus.uploaded(&id, "house.jpg", "image/jpeg", &photo).await;
    let other_size = tus.create(&id, "house.jpg", "image/jpeg", 5000).await;
    assert_eq!(error_code(other_size).await.1, "attachment_conflict");
    let same_size = tus
        .upload(&id, "house.jpg", "image/jpeg", &jpeg(4000, 5))
        .await;
    assert_eq!(error_code(same_size).await.1, "attachment_conflict");
    let kept = app
        .get(&format!("/api/v1/submissions/{id}/attachments/house.jpg"))
        .await;
    assert_eq!(kept.bytes().await.unwrap(), photo);

    // The same photo for another answer is stored once.
    let mut data = visit();
    data["house_photo"] = json!("house-again.jpg");
    let second = submit(&app, &app.token, data).await;
    tus.uploaded(&second, "house-again.jpg", "image/jpeg", &photo)
        .await;
    let sha = sha256_hex(&photo);
    let fan = app.data_path().join("attachments/objects").join(&sha[..2]);
    assert_eq!(std::fs::read_dir(fan).unwrap().count(), 1);
    tus.uploaded(&id, "signature.png", "image/png", &png())
        .await;
}

#[tokio::test]
async fn file_names_are_plain_names_unique_within_their_submission() {
    let app = spawn_app().await;
    publish(&app).await;
    let mut data = visit();
    data["house_photo"] = json!("../house.jpg");
    data["members"][0]["id_card_photo"] = json!("signature.png");
    let envelope = json!({"id": Uuid::new_v4().to_string(), "form_version": "1", "data": data});
    let response = app
        .post_json(&format!("/api/v1/forms/{FORM}/submissions"), &envelope)
        .await;
    let (status, code, error) = error_code(response).await;
    assert_eq!((status, code.as_str()), (422, "validation_failed"));
    let problems: Vec<(&str, &str)> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["path"].as_str().unwrap(), d["key"].as_str().unwrap()))
        .collect();
    assert_eq!(
        problems,
        [
            ("/house_photo", "attachment.name"),
            ("/members/0/id_card_photo", "attachment.duplicate")
        ]
    );
}

#[tokio::test]
async fn unfinished_uploads_expire_and_can_be_ended_early() {
    // Long enough that the first upload is still alive when it is ended, on a busy machine too.
    let app = spawn_app_with(|config| config.upload_expiry = 3).await;
    publish(&app).await;
    let id = submit(&app, &app.token, visit()).await;
    let tus = Tus::new(&app, &app.token);

    let ended = tus.start(&id, "house.jpg", "image/jpeg", 1000).await;
    assert_eq!(tus.patch(&ended, 0, &jpeg(100, 0)).await.status(), 204);
    let terminated = tus.request(Method::DELETE, &ended).send().await.unwrap();
    assert_eq!(terminated.status(), 204);
    assert_eq!(tus.head(&ended).await.status(), 404);

    let lapsing = tus.start(&id, "house.jpg", "image/jpeg", 1000).await;
    tokio::time::sleep(std::time::Duration::from_millis(4100)).await;
    assert_eq!(tus.head(&lapsing).await.status(), 410);
    let late = tus.patch(&lapsing, 0, &jpeg(100, 0)).await;
    assert_eq!(error_code(late).await.1, "upload_expired");

    // The sweep (at start and every ten minutes) removes it and its bytes.
    let app = app.restart().await;
    let tus = Tus::new(&app, &app.token);
    let mut swept = false;
    for _ in 0..50 {
        if tus.head(&lapsing).await.status() == 404 {
            swept = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(swept);
    assert_eq!(
        std::fs::read_dir(app.data_path().join("attachments/uploads"))
            .unwrap()
            .count(),
        0
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("survey_uploads_expired_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bytes_that_arrived_before_a_connection_broke_or_stalled_are_kept() {
    let app = spawn_app_with(|config| config.upload_deadline = 1).await;
    publish(&app).await;
    let id = submit(&app, &app.token, visit()).await;
    let tus = Tus::new(&app, &app.token);
    let photo = jpeg(20_000, 6);

    let upload = tus.start(&id, "house.jpg", "image/jpeg", photo.len()).await;
    // The phone loses its signal 6,000 bytes into a 20,000-byte PATCH.
    raw_patch(&app, &upload, (0, photo.len()), &photo[..6000], true).await;
    let mut offset = 0;
    for _ in 0..50 {
        offset = tus.offset(&upload).await;
        if offset == 6000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(offset, 6000);

    // Another sends 4,000 more and then nothing: after the deadline, 408, and they are kept.
    let rest = (6000, photo.len() - 6000);
    let stalled = raw_patch(&app, &upload, rest, &photo[6000..10_000], false).await;
    assert!(
        stalled.as_deref().is_some_and(|s| s.contains("408")),
        "{stalled:?}"
    );
    assert_eq!(tus.offset(&upload).await, 10_000);
    assert_eq!(
        tus.patch(&upload, 10_000, &photo[10_000..]).await.status(),
        204
    );
    let kept = app
        .get(&format!("/api/v1/submissions/{id}/attachments/house.jpg"))
        .await;
    assert_eq!(kept.bytes().await.unwrap(), photo);
}

/// Sends a PATCH head declaring `declared` body bytes at `offset`, then only `sent`; then
/// either hangs up (`None`) or waits for the server's answer (its status line).
async fn raw_patch(
    app: &TestApp,
    upload: &str,
    (offset, declared): (usize, usize),
    sent: &[u8],
    hang_up: bool,
) -> Option<String> {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "PATCH {upload} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {declared}\r\n\r\n",
        app.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    stream.flush().await.unwrap();
    if hang_up {
        return None;
    }
    let mut answer = vec![0; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer after the deadline")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]).into_owned();
    text.lines().next().map(str::to_owned)
}

/// Every file of a zip, by name, as bytes.
fn unzip_bytes(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a valid zip");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut content = Vec::new();
            file.read_to_end(&mut content).unwrap();
            (file.name().unwrap().into_owned(), content)
        })
        .collect()
}

#[tokio::test]
async fn an_export_with_media_carries_every_file_and_the_log_names_the_missing_ones() {
    let app = spawn_app().await;
    publish(&app).await;
    let id = submit(&app, &app.token, visit()).await;
    let tus = Tus::new(&app, &app.token);
    let photo = jpeg(50_000, 7);
    let id_card = jpeg(20_000, 8);
    tus.uploaded(&id, "house.jpg", "image/jpeg", &photo).await;
    tus.uploaded(&id, "id-1.jpg", "image/jpeg", &id_card).await;

    let export = |query: &'static str| {
        let app = &app;
        async move {
            let response = app
                .get_as(
                    &app.admin_token,
                    &format!("/api/v1/forms/{FORM}/export.zip{query}"),
                )
                .await;
            assert_eq!(response.status(), 200);
            unzip_bytes(&response.bytes().await.unwrap())
        }
    };
    let with_media = export("?media=true").await;
    assert_eq!(with_media[&format!("media/{id}/house.jpg")], photo);
    assert_eq!(with_media[&format!("media/{id}/id-1.jpg")], id_card);
    let main = String::from_utf8(with_media["main.csv"].clone()).unwrap();
    assert!(
        main.contains("house.jpg") && main.contains("signature.png"),
        "{main}"
    );
    let log = String::from_utf8(with_media["cleaning_log.csv"].clone()).unwrap();
    let missing: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("missing_attachment"))
        .collect();
    assert_eq!(missing.len(), 1, "{log}");
    assert!(missing[0].contains("consent_signature") && missing[0].contains("signature.png"));
    let codebook = String::from_utf8(with_media["codebook.csv"].clone()).unwrap();
    assert!(
        codebook.contains("house_photo,住房照片,attachment"),
        "{codebook}"
    );

    let without = export("").await;
    assert!(without.keys().all(|name| !name.starts_with("media/")));
    let table = app
        .get_as(
            &app.admin_token,
            &format!("/api/v1/forms/{FORM}/export/main.csv?media=true"),
        )
        .await;
    assert_eq!(error_code(table).await.1, "query_invalid");
}

#[tokio::test]
async fn a_backup_carries_the_files_and_a_restore_brings_them_back() {
    let app = spawn_app().await;
    publish(&app).await;
    let id = submit(&app, &app.token, visit()).await;
    let photo = jpeg(80_000, 9);
    let tus = Tus::new(&app, &app.token);
    tus.uploaded(&id, "house.jpg", "image/jpeg", &photo).await;
    tus.uploaded(&id, "signature.png", "image/png", &png())
        .await;

    let backup = app.get_as(&app.admin_token, "/api/v1/admin/backup").await;
    assert_eq!(backup.status(), 200);
    let bytes = backup.bytes().await.unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bytes).unwrap();
    let verified = survey_server::store::verify(std::io::Cursor::new(&bytes)).unwrap();
    assert_eq!(
        (verified.files, verified.file_bytes),
        (2, (photo.len() + png().len()) as u64)
    );

    let target = tempfile::tempdir().unwrap();
    let restored = crate::helpers::restore_for_test(file.path(), target.path(), None).unwrap();
    assert_eq!(restored.files, 2);
    let again = crate::helpers::spawn_app_in(target).await;
    let view = again
        .get_json_as(&again.admin_token, &format!("/api/v1/submissions/{id}"))
        .await;
    assert_eq!(view["attachments"][0]["present"], true);
    assert_eq!(view["attachments"][1]["present"], true);
    let kept = again
        .get_as(
            &again.admin_token,
            &format!("/api/v1/submissions/{id}/attachments/house.jpg"),
        )
        .await;
    assert_eq!(kept.bytes().await.unwrap(), photo);

    // Files kept in the data directory itself, beside other files of the operator's: only
    // `objects/` is written, nothing else is touched.
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("notes.txt"), "precious").unwrap();
    let restored =
        survey_server::backup::restore(file.path(), shared.path(), Some(shared.path())).unwrap();
    assert_eq!(restored.files, 2);
    assert_eq!(
        std::fs::read_to_string(shared.path().join("notes.txt")).unwrap(),
        "precious"
    );
    let sha = sha256_hex(&photo);
    let object = shared
        .path()
        .join("objects")
        .join(&sha[..2])
        .join(&sha[2..]);
    assert_eq!(std::fs::read(object).unwrap(), photo);
    // ... but never into the database's own directory, and never over kept files.
    let inside = tempfile::tempdir().unwrap();
    let misplaced = inside.path().join("sled").join("files");
    assert!(survey_server::backup::restore(file.path(), inside.path(), Some(&misplaced)).is_err());
    assert!(
        survey_server::backup::restore(
            file.path(),
            &shared.path().join("again"),
            Some(shared.path())
        )
        .is_err()
    );

    // A backup whose file bytes were damaged restores nothing.
    let mut damaged = bytes.to_vec();
    let at = damaged.len() - 200;
    damaged[at] ^= 1;
    std::fs::write(file.path(), &damaged).unwrap();
    let empty = tempfile::tempdir().unwrap();
    assert!(survey_server::backup::restore(file.path(), empty.path(), None).is_err());
    assert!(!empty.path().join("attachments/objects").exists());
    assert!(!empty.path().join("attachments/objects.restoring").exists());
    assert!(!empty.path().join("sled").exists());
}

/// Every kept file on disk.
fn kept_files(app: &TestApp) -> usize {
    let objects = app.data_path().join("attachments/objects");
    std::fs::read_dir(objects)
        .unwrap()
        .map(|fan| std::fs::read_dir(fan.unwrap().path()).unwrap().count())
        .sum()
}

#[tokio::test]
async fn refused_uploads_leave_nothing_behind_and_nobody_hoards_unfinished_ones() {
    let app = spawn_app().await;
    publish(&app).await;
    let id = submit(&app, &app.token, visit()).await;
    let tus = Tus::new(&app, &app.token);
    tus.uploaded(&id, "house.jpg", "image/jpeg", &jpeg(5000, 1))
        .await;
    // Other bytes for the same answer, five times: refused, and not one more file on disk.
    for seed in 2..7 {
        let other = tus
            .upload(&id, "house.jpg", "image/jpeg", &jpeg(5000, seed))
            .await;
        assert_eq!(error_code(other).await.1, "attachment_conflict");
    }
    assert_eq!(kept_files(&app), 1);
    // Bytes after the end of a finished upload are refused, not dropped in silence.
    let done = tus
        .start(&id, "signature.png", "image/png", png().len())
        .await;
    assert_eq!(tus.patch(&done, 0, &png()).await.status(), 204);
    let beyond = tus.patch(&done, png().len(), b"more").await;
    assert_eq!(error_code(beyond).await.1, "body_too_large");

    // A phone that lost the answer to its creation makes another: the first one ends.
    let first = tus.start(&id, "id-1.jpg", "image/jpeg", 1000).await;
    let second = tus.start(&id, "id-1.jpg", "image/jpeg", 1000).await;
    assert_eq!(tus.head(&first).await.status(), 404);
    assert_eq!(tus.head(&second).await.status(), 200);
    // Unfinished uploads for other answers count against a limit.
    let mut data = visit();
    let names: Vec<String> = (0..20).map(|i| format!("id-{i}.jpg")).collect();
    data["members"] = json!(
        names
            .iter()
            .map(|n| json!({"name": "韦", "id_card_photo": n}))
            .collect::<Vec<_>>()
    );
    let many = submit(&app, &app.token, data).await;
    for name in &names[..19] {
        tus.start(&many, name, "image/jpeg", 1000).await;
    }
    let one_too_many = tus.create(&many, &names[19], "image/jpeg", 1000).await;
    assert_eq!(
        error_code(one_too_many).await,
        (
            429,
            "too_many_uploads".into(),
            json!({
        "code": "too_many_uploads",
        "message": "you have 20 unfinished uploads; finish or end one (DELETE) before starting another"})
        )
    );
    let signed_out = app
        .client
        .head(app.url(&second))
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            signed_out.status().as_u16(),
            signed_out.headers()["tus-resumable"].to_str().unwrap()
        ),
        (401, "1.0.0")
    );
    let anonymous = app
        .client
        .post(app.url("/api/v1/uploads"))
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.headers()["tus-resumable"], "1.0.0");
    assert_eq!(error_code(anonymous).await.1, "unauthorized");
    let signed = tus
        .request(Method::POST, "/api/v1/uploads")
        .header("upload-length", "+1000")
        .header("upload-metadata", "filename aG91c2UuanBn")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(signed).await.1, "header_invalid");

    // An upload under way ends with its submission.
    assert_eq!(tus.patch(&second, 0, &jpeg(100, 0)).await.status(), 204);
    let deleted = app
        .delete_json_as(
            &app.admin_token,
            &format!("/api/v1/submissions/{id}"),
            &json!({"reason": "entered twice"}),
        )
        .await;
    assert_eq!(deleted.status(), 200);
    let orphan = tus.patch(&second, 113, &jpeg(100, 0)[..100]).await;
    assert_eq!(error_code(orphan).await.1, "upload_not_found");
}
