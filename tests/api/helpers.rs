//! Starting the real application on 127.0.0.1 for tests, and building requests the way phones do.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::Response;
use serde_json::{Value, json};
use survey_server::config::ServeConfig;
use survey_server::{AppState, serve};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A running server on its own port and data directory.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub config: ServeConfig,
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
    }
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

async fn start(config: ServeConfig, data_dir: Arc<TempDir>) -> TestApp {
    let state = AppState::open(&config).await.expect("the app starts");
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .expect("a free port");
    let address = format!("http://{}", listener.local_addr().expect("an address"));
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = rx.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        config,
        data_dir,
        shutdown: Some(tx),
        server: Some(server),
    }
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

    async fn stop(&mut self) {
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

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("a response")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("a response")
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("a response")
    }

    /// Submits one envelope to the labour survey.
    pub async fn submit(&self, envelope: &Value) -> Response {
        self.post_json("/api/v1/forms/labour-survey/submissions", envelope)
            .await
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
