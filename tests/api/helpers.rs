//! Starting the real application on 127.0.0.1 for tests, and building requests the way phones do.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::Response;
use serde_json::{Value, json};
use survey_server::config::{DatabaseSettings, LogFormat, ServeConfig, StoreChoice};
use survey_server::{AppState, serve};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The first admin's password in every test server.
pub const ADMIN_PASSWORD: &str = "county-admin-2026";
/// The password of every user the tests create.
pub const PASSWORD: &str = "field-work-2026";

/// A running server on its own port and data directory.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub config: ServeConfig,
    /// An access token of `admin`.
    pub admin_token: String,
    /// An access token of field worker `fw1` (no scope): what plain `get`/`post_json`/`submit` send.
    pub token: String,
    /// Kept so the directory outlives restarts and is removed at the end.
    data_dir: Arc<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

pub fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

pub fn test_config(data_dir: &TempDir) -> ServeConfig {
    ServeConfig {
        bind: "127.0.0.1:0".parse().expect("a valid address"),
        data_dir: data_dir.path().to_owned(),
        schemas_dir: schemas_dir(),
        max_body_bytes: 64 * 1024,
        max_batch: 20,
        max_batch_bytes: 1024 * 1024,
        max_registry_bytes: 8 * 1024 * 1024,
        upload_deadline: 120,
        header_timeout: 15,
        idle_timeout: 30,
        jwt_key_file: None,
        access_ttl: 900,
        refresh_ttl: 3600,
        refresh_grace: 60,
        admin_password: Some(ADMIN_PASSWORD.to_owned()),
        metrics_bind: None,
        webhook_allow_private: true,
        webhook_ca_file: None,
        webhook_retry_ms: 20,
        trusted_proxies: Default::default(),
        cache_mb: 64,
        log_format: LogFormat::Text,
        timezone: "Asia/Shanghai".parse().expect("a time zone"),
        attachments_dir: None,
        max_attachment_bytes: 2 * 1024 * 1024,
        upload_expiry: 3600,
        attachment_types: Default::default(),
        database: DatabaseSettings {
            store: test_store(data_dir.path()),
            store_file: None,
            pg_pool_size: 8,
            pg_connect_timeout: 5,
            pg_ca_file: None,
        },
    }
}

/// The store a test runs on: sled in `data_dir`, or with `SURVEY_TEST_STORE=postgres` the
/// database of `data_dir` (one per data directory, created when first asked for) on the cluster
/// `SURVEY_TEST_PG` names (a `postgres://` URL of a superuser).
pub fn test_store(data_dir: &std::path::Path) -> StoreChoice {
    match test_cluster() {
        None => StoreChoice::Sled,
        Some(cluster) => StoreChoice::Postgres(database_of(&cluster, data_dir)),
    }
}

/// The PostgreSQL cluster the tests run on, if they run on one.
pub fn test_cluster() -> Option<String> {
    if std::env::var("SURVEY_TEST_STORE").as_deref() != Ok("postgres") {
        return None;
    }
    Some(std::env::var("SURVEY_TEST_PG").expect("SURVEY_TEST_PG: the test cluster's URL"))
}

fn database_of(cluster: &str, data_dir: &std::path::Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    let name = format!("test_{}", survey_server::store::hex(&digest[..10]));
    let exists = psql(
        cluster,
        &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
    );
    if exists.trim().is_empty() {
        psql(cluster, &format!("CREATE DATABASE {name}"));
    }
    let (base, _) = cluster.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{name}")
}

/// Runs one statement with psql; what it printed (unaligned, tuples only).
pub fn psql(url: &str, statement: &str) -> String {
    let output = std::process::Command::new("psql")
        .args([url, "-qXAtc", statement])
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "{statement}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Starts the app on a fresh data directory.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app on a fresh data directory with adjusted settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut ServeConfig)) -> TestApp {
    let data_dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
    let mut config = test_config(&data_dir);
    adjust(&mut config);
    start(config, data_dir).await
}

/// Opens the store of a server that just stopped: sled's own background thread may hold the
/// directory's lock for a moment after the last handle is dropped.
pub async fn open_store_when_free(data_dir: &std::path::Path) -> survey_server::store::Store {
    use survey_server::store::{PgOptions, Store, StoreError};
    if let StoreChoice::Postgres(url) = test_store(data_dir) {
        let options = PgOptions {
            url,
            pool_size: 4,
            connect_timeout: std::time::Duration::from_secs(5),
            ca_file: None,
        };
        return Store::open_postgres(&options).expect("the store opens");
    }
    for _ in 0..50 {
        match Store::open(data_dir) {
            Err(StoreError::Locked) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            opened => return opened.expect("the store opens"),
        }
    }
    panic!("the data directory stayed locked");
}

/// Starts the app on a data directory that already holds a database (e.g. a restored backup).
pub async fn spawn_app_in(data_dir: TempDir) -> TestApp {
    spawn_app_in_with(data_dir, |_| {}).await
}

/// `spawn_app_in`, with the configuration adjusted first.
pub async fn spawn_app_in_with(
    data_dir: TempDir,
    adjust: impl FnOnce(&mut ServeConfig),
) -> TestApp {
    let mut config = test_config(&data_dir);
    adjust(&mut config);
    start(config, Arc::new(data_dir)).await
}

async fn start(config: ServeConfig, data_dir: Arc<TempDir>) -> TestApp {
    // A restarted server may find the old one's last connection task still dropping its share
    // of the store (axum's graceful shutdown returns as connections close, not after every drop).
    let mut attempts = 0;
    let state = loop {
        match AppState::open(&config).await {
            Ok(state) => break state,
            Err(e) if e.to_string().contains("in use") && attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the app does not start: {e}"),
        }
    };
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .expect("a free port");
    let address = format!("http://{}", listener.local_addr().expect("an address"));
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = rx.await;
    }));
    let mut app = TestApp {
        address,
        client: reqwest::Client::new(),
        config,
        admin_token: String::new(),
        token: String::new(),
        data_dir,
        shutdown: Some(tx),
        server: Some(server),
    };
    app.admin_token = app.login("admin", ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    app.token = app.user("fw1", "field_worker", None).await;
    app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Stops the server gracefully and starts a new one on the same data directory.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let mut config = self.config.clone();
        config.bind = "127.0.0.1:0".parse().expect("a valid address");
        start(config, self.data_dir.clone()).await
    }

    /// Stops the server gracefully (the data directory stays until the app is dropped).
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task ends")
                .expect("the server stops cleanly");
        }
    }

    /// Signs in; the session body (panics unless 200).
    pub async fn login(&self, username: &str, password: &str) -> Value {
        let response = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), 200, "login of {username} failed");
        response.json().await.expect("a session")
    }

    /// Creates a user (if new) with `PASSWORD` and returns an access token for them.
    pub async fn user(&self, username: &str, role: &str, scope: Option<&[&str]>) -> String {
        let body = json!({"username": username, "password": PASSWORD, "role": role,
                          "display_name": username, "scope": scope});
        let created = self
            .post_json_as(&self.admin_token, "/api/v1/users", &body)
            .await;
        let status = created.status().as_u16();
        assert!(matches!(status, 201 | 409), "creating {username}: {status}");
        let session = self.login(username, PASSWORD).await;
        session["access_token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    /// GETs `path` as `fw1` and reads the JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get_json_as(&self.token, path).await
    }

    /// GETs `path` with `token` and reads the JSON body.
    pub async fn get_json_as(&self, token: &str, path: &str) -> Value {
        self.get_as(token, path)
            .await
            .json()
            .await
            .expect("a JSON body")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.get_as(&self.token, path).await
    }

    pub async fn get_as(&self, token: &str, path: &str) -> Response {
        let request = self.client.get(self.url(path)).bearer_auth(token);
        request.send().await.expect("a response")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post_json_as(&self.token, path, body).await
    }

    pub async fn post_json_as(&self, token: &str, path: &str, body: &Value) -> Response {
        let request = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body);
        request.send().await.expect("a response")
    }

    pub async fn patch_json_as(&self, token: &str, path: &str, body: &Value) -> Response {
        let request = self.client.patch(self.url(path)).bearer_auth(token);
        request.json(body).send().await.expect("a response")
    }

    pub async fn delete_json_as(&self, token: &str, path: &str, body: &Value) -> Response {
        let request = self.client.delete(self.url(path)).bearer_auth(token);
        request.json(body).send().await.expect("a response")
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let request = self.client.post(self.url(path)).bearer_auth(&self.token);
        let request = request.header("content-type", content_type).body(body);
        request.send().await.expect("a response")
    }

    /// Submits one envelope to the labour survey as `fw1`.
    pub async fn submit(&self, envelope: &Value) -> Response {
        self.submit_as(&self.token, envelope).await
    }

    pub async fn submit_as(&self, token: &str, envelope: &Value) -> Response {
        let path = "/api/v1/forms/labour-survey/submissions";
        self.post_json_as(token, path, envelope).await
    }

    /// Where the server keeps its files.
    pub fn data_path(&self) -> &std::path::Path {
        self.data_dir.path()
    }
}

/// A realistic household visit (three labourers), valid for labour-survey version 1.
pub fn household() -> Value {
    serde_json::from_str(include_str!("../fixtures/household.json")).expect("the fixture is JSON")
}

/// A phone's envelope around `data`, with a fresh UUID.
pub fn envelope(data: Value) -> Value {
    json!({
        "id": Uuid::new_v4().to_string(),
        "form_version": "1",
        "data": data,
        "meta": {
            "device_id": "phone-17",
            "app_version": "1.0.0",
            "started_at": "2026-03-01T08:10:00+08:00",
            "completed_at": "2026-03-01T08:31:12+08:00"
        }
    })
}

/// The `error.code` of an error response, after checking the body has the documented shape.
pub async fn error_code(response: Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    let error = &body["error"];
    assert!(
        error["message"].is_string(),
        "error body without a message: {body}"
    );
    let code = error["code"].as_str().expect("an error code").to_owned();
    (status, code, error.clone())
}

/// The server's token signing key (PKCS#8 PEM): its file, or with PostgreSQL its row.
pub fn server_key_pem(app: &TestApp) -> String {
    match test_cluster() {
        // psql ends its output with a newline of its own.
        Some(cluster) => psql(
            &database_of(&cluster, app.data_path()),
            "SELECT value FROM survey_secrets WHERE name = 'jwt-ed25519'",
        )
        .trim_end()
        .to_owned(),
        None => {
            std::fs::read_to_string(app.data_path().join("jwt-ed25519.pem")).expect("the key file")
        }
    }
}

/// Signs arbitrary claims with the server's own key, as a forger who stole nothing cannot.
pub fn sign_with_server_key(app: &TestApp, claims: &Value) -> String {
    use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    let pem = server_key_pem(app);
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).expect("an Ed25519 key");
    let der = key.to_pkcs8_der().expect("DER");
    let encoding = jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes());
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    jsonwebtoken::encode(&header, claims, &encoding).expect("a token")
}

/// Claims as the server issues them for `username` (version 0, in a login that was never
/// ended), valid for `ttl` seconds from now.
pub fn claims_for(username: &str, role: &str, ttl: i64) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    json!({"sub": username, "role": role, "iat": now, "exp": now + ttl,
           "iss": "survey-server", "aud": "survey-server-api", "ver": 0, "sid": "a-login"})
}

/// Rows of a CSV as header → value maps (a UTF-8 byte-order mark is removed first).
pub fn csv_rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("a header row").clone();
    reader
        .records()
        .map(|r| {
            let record = r.expect("a CSV record");
            headers
                .iter()
                .map(str::to_owned)
                .zip(record.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// Runs the server binary with `args` and `stdin` as its standard input; (success, stdout + stderr).
pub fn run_binary(args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_survey-server"))
        .args(args)
        .env("SURVEY_LOG", "error")
        .env_remove("SURVEY_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child
        .stdin
        .take()
        .expect("a stdin pipe")
        .write_all(stdin.as_bytes())
        .expect("the binary reads its input");
    let output = child.wait_with_output().expect("the binary ends");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// Every labour-survey submission id the server lists to `token`, following the cursor.
pub async fn all_submission_ids(
    client: &reqwest::Client,
    address: &str,
    token: &str,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!("{address}/api/v1/forms/labour-survey/submissions?limit=1000{cursor}");
        let page: Value = client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("a response")
            .json()
            .await
            .expect("a page");
        ids.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| i["id"].as_str().expect("an id").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return ids,
        }
    }
}

/// Restores a backup file as `survey-server restore` would for the store the tests run on:
/// into `data_dir`, or into `data_dir`'s PostgreSQL database.
pub fn restore_for_test(
    file: &std::path::Path,
    data_dir: &std::path::Path,
    attachments_dir: Option<&std::path::Path>,
) -> Result<survey_server::store::BackupSummary, String> {
    match test_store(data_dir) {
        StoreChoice::Sled => survey_server::backup::restore(file, data_dir, attachments_dir),
        StoreChoice::Postgres(url) => {
            let options = survey_server::store::PgOptions {
                url,
                pool_size: 2,
                connect_timeout: std::time::Duration::from_secs(5),
                ca_file: None,
            };
            survey_server::backup::restore_to_postgres(file, &options, data_dir, attachments_dir)
        }
    }
}

/// `--store` for a command of the binary on `data_dir`, as the tests run.
pub fn store_arg(data_dir: &std::path::Path) -> String {
    match test_store(data_dir) {
        StoreChoice::Postgres(url) => url,
        StoreChoice::Sled => "sled".into(),
    }
}

/// The server binary set to serve on a free loopback port from `data_dir`, logging only errors,
/// its first admin's password set; callers add what their test needs and spawn it.
pub fn server_command(data_dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_survey-server"));
    command
        .arg("serve")
        .args(["--bind", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--schemas-dir")
        .arg(schemas_dir())
        .env("SURVEY_LOG", "error")
        .env("SURVEY_ADMIN_PASSWORD", ADMIN_PASSWORD);
    if let StoreChoice::Postgres(url) = test_store(data_dir) {
        command.env("SURVEY_STORE", url);
    }
    command
}

/// Signs in as the first admin of the server at `address`; its access token.
pub async fn admin_token(client: &reqwest::Client, address: &str) -> String {
    let session: Value = client
        .post(format!("{address}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("a session");
    session["access_token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

/// Sends `body` exactly as written (JSON a `serde_json::Value` cannot hold, such as a repeated key).
pub async fn post_text_as(app: &TestApp, token: &str, path: &str, body: String) -> Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("a response")
}

/// The database of a stopped server, opened directly, as an older server version (or a damaged
/// disk) left it: for planting records today's server would never write.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn open_raw(data_dir: &std::path::Path) -> sled::Db {
    for _ in 0..50 {
        match sled::Config::new().path(data_dir.join("sled")).open() {
            Ok(db) => return db,
            // sled's background thread may hold the lock a moment after the server stopped.
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
    panic!("the data directory stayed locked");
}

/// Replaces the stored bytes of submission `id` (server stopped), keeping its metadata.
pub fn rewrite_stored_payload(data_dir: &std::path::Path, id: &str, payload: &[u8]) {
    let key = *Uuid::parse_str(id).unwrap().as_bytes();
    let old = read_raw(data_dir, "submissionid_record", &key).expect("the submission is stored");
    let length_at = |at: usize| u32::from_be_bytes(old[at..at + 4].try_into().unwrap()) as usize;
    // The stored metadata: uncompressed (the store's format 1), or compressed without a
    // dictionary (a test stores too few submissions for one); see src/store/compression.rs.
    let meta = match old[0] {
        0 => old[4..4 + length_at(0)].to_vec(),
        1 => zstd::decode_all(&old[5..5 + length_at(1)]).unwrap(),
        format => panic!("a record of format {format}: compressed with a dictionary"),
    };
    // Written back uncompressed, which the server reads as well.
    let mut record = (meta.len() as u32).to_be_bytes().to_vec();
    record.extend_from_slice(&meta);
    record.extend_from_slice(payload);
    write_raw(data_dir, "submissionid_record", &key, &record);
}

/// The format byte of submission `id`'s stored record (server stopped): 1 compressed alone, 2
/// with the form's dictionary (src/store/compression.rs).
pub fn stored_record_format(data_dir: &std::path::Path, id: &str) -> u8 {
    let key = *Uuid::parse_str(id).unwrap().as_bytes();
    read_raw(data_dir, "submissionid_record", &key).expect("the submission is stored")[0]
}

/// Stores a published form version directly (server stopped), as a server from before today's
/// rules for schemas could have published it.
pub fn plant_form_version(data_dir: &std::path::Path, form: &str, version: &str, schema: Value) {
    let seq = next_number_raw(data_dir);
    let record = json!({"form": form, "version": version, "title": "旧版问卷",
        "schema": schema, "published_at": "2026-01-01T00:00:00Z", "seq": seq});
    let mut key = form.as_bytes().to_vec();
    key.push(0xFF);
    key.extend_from_slice(version.as_bytes());
    write_raw(
        data_dir,
        "formversion_definition",
        &key,
        &serde_json::to_vec(&record).unwrap(),
    );
}

/// A number the store has not handed out, drawn beside the server (stopped).
#[allow(clippy::disallowed_types)]
fn next_number_raw(data_dir: &std::path::Path) -> u64 {
    if let Some(cluster) = test_cluster() {
        let drawn = psql(
            &database_of(&cluster, data_dir),
            "SELECT nextval('survey_numbers')",
        );
        return drawn.trim().parse().unwrap();
    }
    let db = open_raw(data_dir);
    db.generate_id().unwrap()
}

/// An entry of a tree, read beside the server (stopped), from sled or PostgreSQL.
#[allow(clippy::disallowed_types)]
fn read_raw(data_dir: &std::path::Path, tree: &str, key: &[u8]) -> Option<Vec<u8>> {
    if let Some(cluster) = test_cluster() {
        let database = database_of(&cluster, data_dir);
        let sql = format!(
            "SELECT encode(value, 'hex') FROM \"{tree}\" WHERE key = '\\x{}'",
            survey_server::store::hex(key)
        );
        let hex = psql(&database, &sql);
        let hex = hex.trim();
        return (!hex.is_empty()).then(|| {
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect()
        });
    }
    let db = open_raw(data_dir);
    let value = db.open_tree(tree).unwrap().get(key).unwrap();
    value.map(|v| v.to_vec())
}

/// Writes an entry of a tree beside the server (stopped), in sled or PostgreSQL.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
fn write_raw(data_dir: &std::path::Path, tree: &str, key: &[u8], value: &[u8]) {
    if let Some(cluster) = test_cluster() {
        let database = database_of(&cluster, data_dir);
        let hex = survey_server::store::hex;
        psql(
            &database,
            &format!(
                "INSERT INTO \"{tree}\" VALUES ('\\x{}', '\\x{}') \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                hex(key),
                hex(value)
            ),
        );
        return;
    }
    let db = open_raw(data_dir);
    db.open_tree(tree).unwrap().insert(key, value).unwrap();
    db.flush().unwrap();
}

/// Every file of a zip, by name, as text.
pub fn unzip(bytes: Vec<u8>) -> std::collections::HashMap<String, String> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a valid zip");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut text = String::new();
            file.read_to_string(&mut text).unwrap();
            (file.name().unwrap().into_owned(), text)
        })
        .collect()
}

/// The `path` of each of an error body's details, in order.
pub fn detail_paths(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["path"].as_str().expect("a path").to_owned())
        .collect()
}

/// How `simulate` reaches a test server: as its admin, eight phones, batches of 50.
pub fn simulate_settings(app: &TestApp) -> survey_server::simulate::Settings {
    survey_server::simulate::Settings {
        server: app.address.clone(),
        admin_user: "admin".into(),
        admin_password: ADMIN_PASSWORD.into(),
        phones: 8,
        batch: 50,
        progress: false,
    }
}
