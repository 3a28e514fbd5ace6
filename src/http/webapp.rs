//! The field workers' app (`src/web/`), embedded in the binary at compile time and served from every
//! path outside `/api/` and the operators' routes, without a token (it holds no data: the app asks
//! the API for everything, with the worker's token).
//!
//! - `/app/<build>/<file>`: the app's files; `<build>` is a hash of all of them, so a URL never
//!   changes meaning and phones may keep each file for a year (`immutable`).
//! - `/sw.js`: the service worker, at the root so it may serve every page offline; it carries the
//!   build and the list of files to keep.
//! - anything else: `index.html`, so deep links open the app. Both are revalidated on every load
//!   (`no-cache` with an ETag: a 304 costs a phone a few hundred bytes).
//!
//! Text files are gzipped once at start-up and sent compressed to clients that accept it.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

use crate::error::AppError;

#[derive(RustEmbed)]
#[folder = "src/web/"]
struct Files;

/// Only our own origin, no inline script or style, no `eval`: answers are user text.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
    worker-src 'self'; \
    manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// Files fetched only when needed, never preloaded or kept by the service worker: the console
/// (staff sign in at the office; field workers' phones never need it) and the tus client (a
/// classic script, loaded when a file is to be uploaded, which needs the network anyway).
const ON_DEMAND: [&str; 2] = ["js/console/", "vendor/tus-js-client/"];

/// Where the app's files are served, with the build in place of the placeholder.
const BUILD_PLACEHOLDER: &str = "__BUILD__";
/// In `sw.js`: the JSON list of every file's URL, for the worker to keep offline.
const ASSETS_PLACEHOLDER: &str = "__ASSETS__";
/// In `index.html`: where every module is announced, so a phone fetches them at once, not import by import.
const PRELOAD_PLACEHOLDER: &str = "<!--__PRELOAD__-->";
const INDEX: &str = "index.html";
const WORKER: &str = "sw.js";

/// Marks an answer of the app's, so the metrics count it under the route `app`.
#[derive(Clone, Copy)]
pub struct Served;

struct Asset {
    bytes: Bytes,
    gzipped: Option<Bytes>,
    content_type: &'static str,
}

impl Asset {
    fn new(path: &str, bytes: Vec<u8>) -> Self {
        let content_type = content_type(path);
        // PNGs are compressed already.
        let gzipped = (content_type != "image/png").then(|| Bytes::from(gzip(&bytes)));
        Asset {
            bytes: Bytes::from(bytes),
            gzipped,
            content_type,
        }
    }
}

/// The app as one build: every file, the build's hash, and the two templated files.
pub struct WebApp {
    build: String,
    files: HashMap<String, Asset>,
    index: Asset,
    worker: Asset,
}

impl WebApp {
    pub fn load() -> Self {
        let mut names: Vec<String> = Files::iter().map(|name| name.into_owned()).collect();
        names.sort();
        let mut hasher = Sha256::new();
        let mut raw = Vec::with_capacity(names.len());
        for name in names {
            let Some(file) = Files::get(&name) else {
                continue;
            };
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(&file.data);
            raw.push((name, file.data.into_owned()));
        }
        let build: String = hasher.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut files = HashMap::new();
        let mut index = Vec::new();
        let mut worker = Vec::new();
        for (name, bytes) in raw {
            match name.as_str() {
                INDEX => index = bytes,
                WORKER => worker = bytes,
                _ if is_shipped(&name) => {
                    files.insert(name.clone(), Asset::new(&name, bytes));
                }
                _ => {}
            }
        }
        // What a field worker's phone loads and keeps: not the console, nor the tus client.
        let mut urls: Vec<String> = files
            .keys()
            .filter(|name| !ON_DEMAND.iter().any(|prefix| name.starts_with(prefix)))
            .map(|n| format!("/app/{build}/{n}"))
            .collect();
        urls.sort();
        let preload: String = urls
            .iter()
            .filter(|url| url.ends_with(".js") && !url.ends_with("/main.js"))
            .map(|url| format!("<link rel=\"modulepreload\" href=\"{url}\">\n"))
            .collect();
        let urls = serde_json::to_string(&urls).unwrap_or_else(|_| "[]".into());
        let fill = |bytes: Vec<u8>| {
            String::from_utf8_lossy(&bytes)
                .replace(ASSETS_PLACEHOLDER, &urls)
                .replace(PRELOAD_PLACEHOLDER, &preload)
                .replace(BUILD_PLACEHOLDER, &build)
                .into_bytes()
        };
        WebApp {
            index: Asset::new(INDEX, fill(index)),
            worker: Asset::new(WORKER, fill(worker)),
            build,
            files,
        }
    }

    /// Answers a request no API route matched.
    pub fn answer(self: &Arc<Self>, request: &Request) -> Response {
        let mut response = self.route(request);
        if response.status() != StatusCode::NOT_FOUND
            && response.status() != StatusCode::METHOD_NOT_ALLOWED
        {
            response.extensions_mut().insert(Served);
        }
        response
    }

    fn route(&self, request: &Request) -> Response {
        let path = request.uri().path();
        if path == "/api" || path.starts_with("/api/") {
            return AppError::RouteNotFound.into_response();
        }
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return AppError::MethodNotAllowed.into_response();
        }
        let headers = request.headers();
        if path == "/sw.js" {
            return self.revalidated(&self.worker, headers);
        }
        if let Some(rest) = path.strip_prefix("/app/") {
            return match rest.split_once('/') {
                Some((build, name)) if build == self.build => match self.files.get(name) {
                    Some(asset) => send(asset, headers, "public, max-age=31536000, immutable"),
                    None => AppError::RouteNotFound.into_response(),
                },
                // A file of another build: answering today's bytes under it would be kept for a year.
                _ => AppError::RouteNotFound.into_response(),
            };
        }
        self.revalidated(&self.index, headers)
    }

    fn revalidated(&self, asset: &Asset, headers: &HeaderMap) -> Response {
        // The gzipped bytes are another representation, with a tag of their own.
        let gzipped = asset.gzipped.is_some() && accepts_gzip(headers);
        let etag = format!("\"{}{}\"", self.build, if gzipped { "-gz" } else { "" });
        let unchanged = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
        let mut response = if unchanged {
            let mut answer = StatusCode::NOT_MODIFIED.into_response();
            let headers = answer.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            answer
        } else {
            send(asset, headers, "no-cache")
        };
        // The policy governs documents and workers; sent with every module it would only cost bytes.
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        if let Ok(value) = HeaderValue::from_str(&etag) {
            response.headers_mut().insert(header::ETAG, value);
        }
        response
    }
}

/// Whether the client takes gzip: named in `Accept-Encoding`, and not with `q=0`.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|coding| {
                let mut parts = coding.split(';').map(str::trim);
                let refused =
                    |q: &str| q.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0);
                parts.next() == Some("gzip") && !parts.any(refused)
            })
        })
}

fn send(asset: &Asset, request: &HeaderMap, cache: &'static str) -> Response {
    let (body, encoded) = match (&asset.gzipped, accepts_gzip(request)) {
        (Some(gzipped), true) => (gzipped.clone(), true),
        _ => (asset.bytes.clone(), false),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if asset.gzipped.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if encoded {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Licences and notes travel with the source, not to phones.
fn is_shipped(name: &str) -> bool {
    !(name.ends_with(".md") || name.contains("LICENSE") || name == "package.json")
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_file_has_a_known_type() {
        let app = WebApp::load();
        assert!(!app.files.is_empty());
        for name in app.files.keys() {
            assert_ne!(content_type(name), "application/octet-stream", "{name}");
        }
        assert_eq!(app.build.len(), 12);
    }

    #[test]
    fn gzip_is_sent_only_to_clients_that_take_it() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
            accepts_gzip(&headers)
        };
        assert!(with("gzip, deflate, br") && with("br;q=1.0, gzip;q=0.5"));
        assert!(
            !with("gzip;q=0") && !with("gzip; q=0.0, br") && !with("identity") && !with("x-gzip2")
        );
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_templates_carry_the_build_and_the_file_list() {
        let app = WebApp::load();
        let index = String::from_utf8_lossy(&app.index.bytes).into_owned();
        let worker = String::from_utf8_lossy(&app.worker.bytes).into_owned();
        assert!(!index.contains(BUILD_PLACEHOLDER) && index.contains(&app.build));
        assert!(!worker.contains(ASSETS_PLACEHOLDER) && worker.contains("/app/"));
    }
}
