//! The field app is served by the binary: without a token, from every path outside `/api/`, with
//! caching that lets phones keep each file and a policy that allows no script but its own.

use std::io::Read;

use crate::helpers::{TestApp, error_code, spawn_app};

/// The app's files named by its `index.html`: the stylesheet, the icon and every module.
async fn app_files(app: &TestApp) -> Vec<String> {
    let index = app.client.get(app.url("/")).send().await.unwrap();
    let index = index.text().await.unwrap();
    index
        .split("href=\"")
        .chain(index.split("src=\""))
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|url| url.starts_with("/app/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_address_opens_the_app_and_deep_links_open_it_too() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/fill/0b9d5e52-8c1e-4d55-a0b6-3c4e8f1d2a77",
        "/submissions/x",
    ] {
        let answer = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let headers = answer.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(headers["cache-control"], "no-cache");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("script-src 'self'") && !policy.contains("unsafe"),
            "{policy}"
        );
        let body = answer.text().await.unwrap();
        assert!(body.contains("<div id=\"app\">") && !body.contains("__BUILD__"));
    }
}

#[tokio::test]
async fn api_paths_stay_json_and_other_methods_are_refused() {
    let app = spawn_app().await;
    let unknown = app
        .client
        .get(app.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(unknown).await.1, "not_found");
    let post = app.client.post(app.url("/fill/x")).send().await.unwrap();
    assert_eq!(error_code(post).await.0, 405);
}

#[tokio::test]
async fn files_are_kept_for_a_year_under_their_build_and_sent_gzipped() {
    let app = spawn_app().await;
    let files = app_files(&app).await;
    assert!(
        files.iter().any(|f| f.ends_with("/js/main.js")),
        "{files:?}"
    );
    assert!(files.iter().any(|f| f.ends_with("/app.css")), "{files:?}");
    for file in &files {
        let plain = app.client.get(app.url(file)).send().await.unwrap();
        assert_eq!(plain.status(), 200, "{file}");
        assert_eq!(
            plain.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let expected = plain.bytes().await.unwrap();
        let zipped = app
            .client
            .get(app.url(file))
            .header("accept-encoding", "gzip, deflate, br")
            .send()
            .await
            .unwrap();
        if file.ends_with(".png") {
            // Compressed already.
            assert!(zipped.headers().get("content-encoding").is_none(), "{file}");
            continue;
        }
        assert_eq!(zipped.headers()["content-encoding"], "gzip", "{file}");
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&zipped.bytes().await.unwrap()[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, expected, "{file}");
    }
    // Another build's URL is not answered with this build's bytes (a phone would keep them a year).
    let main = files.iter().find(|f| f.ends_with("/js/main.js")).unwrap();
    let build = main.split('/').nth(2).unwrap();
    let stale = main.replace(build, "000000000000");
    assert_eq!(
        app.client
            .get(app.url(&stale))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn the_service_worker_keeps_every_file_and_revalidates_cheaply() {
    let app = spawn_app().await;
    let worker = app.client.get(app.url("/sw.js")).send().await.unwrap();
    assert_eq!(
        worker.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let etag = worker.headers()["etag"].clone();
    let body = worker.text().await.unwrap();
    assert!(!body.contains("__ASSETS__") && body.contains("/js/main.js"));
    let again = app
        .client
        .get(app.url("/sw.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn licences_and_notes_are_not_served() {
    let app = spawn_app().await;
    let main = app_files(&app)
        .await
        .into_iter()
        .find(|f| f.ends_with("/js/main.js"))
        .unwrap();
    for name in ["vendor/VENDORED.md", "vendor/LICENSE-htm", "package.json"] {
        let url = main.replace("js/main.js", name);
        assert_eq!(
            app.client.get(app.url(&url)).send().await.unwrap().status(),
            404,
            "{name}"
        );
    }
}

#[tokio::test]
async fn the_metrics_count_the_app_as_one_route() {
    let app = spawn_app().await;
    for path in ["/", "/fill/a", "/sw.js"] {
        app.client.get(app.url(path)).send().await.unwrap();
    }
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"survey_http_requests_total{method="GET",route="app",status="200"} 3"#),
        "{text}"
    );
}
