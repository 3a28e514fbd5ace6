//! Forms from Excel: XLSForm workbooks published, served, downloaded as published, refused cell
//! by cell, and judging answers like a hand-written schema (the workbooks are in tests/xlsform/,
//! written by its make_corpus.py).

use std::collections::BTreeSet;
use std::path::PathBuf;

use reqwest::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use survey_server::AppState;
use survey_server::auth::Principal;
use survey_server::forms::{FormRegistry, NewFormVersion};
use survey_server::store::StoredWorkbook;

use crate::helpers::{
    TestApp, error_code, open_store_when_free, run_binary, spawn_app, spawn_app_in_with,
    spawn_app_with, test_config,
};

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const XLS: &str = "application/vnd.ms-excel";

fn workbook_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/xlsform")
        .join(name)
}

fn workbook(name: &str) -> Vec<u8> {
    std::fs::read(workbook_path(name)).expect("a workbook of tests/xlsform")
}

async fn publish(
    app: &TestApp,
    token: &str,
    content_type: &str,
    bytes: Vec<u8>,
    lang: &str,
) -> Response {
    app.client
        .post(app.url("/api/v1/forms"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .header("accept-language", lang)
        .body(bytes)
        .send()
        .await
        .expect("a response")
}

/// A server with the workbook `name` of tests/xlsform/ published.
async fn app_with_published(name: &str) -> TestApp {
    let app = spawn_app().await;
    let published = publish(&app, &app.admin_token, XLSX, workbook(name), "en").await;
    assert_eq!(published.status(), 201, "{name}");
    app
}

async fn submit(app: &TestApp, form: &str, version: Option<&str>, data: &Value) -> Response {
    let mut envelope = json!({"id": Uuid::new_v4().to_string(), "data": data});
    if let Some(version) = version {
        envelope["form_version"] = json!(version);
    }
    app.post_json(&format!("/api/v1/forms/{form}/submissions"), &envelope)
        .await
}

/// `(path, key, params)` of every problem a submission got, or nothing when it was taken.
async fn judged(response: Response) -> BTreeSet<String> {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    if status == 201 {
        return BTreeSet::new();
    }
    assert_eq!(status, 422, "{body}");
    body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| json!([d["path"], d["key"], d.get("params")]).to_string())
        .collect()
}

#[tokio::test]
async fn an_xlsform_is_published_served_as_its_json_schema_and_downloaded_as_published() {
    let app = spawn_app().await;
    let bytes = workbook("labour-survey.xlsx");

    let first = publish(&app, &app.admin_token, XLSX, bytes.clone(), "zh").await;
    assert_eq!(first.status(), 201);
    let published: Value = first.json().await.unwrap();
    assert_eq!(published["id"], "labour-survey-xls");
    assert_eq!(published["version"], "1");
    assert_eq!(published["title"], "田东县建档立卡贫困劳动力就业情况调查");
    let again = publish(&app, &app.admin_token, XLSX, bytes.clone(), "zh").await;
    assert_eq!(
        again.status(),
        200,
        "the same workbook again changes nothing"
    );

    let form = app.get_json("/api/v1/forms/labour-survey-xls").await;
    let schema = &form["schema"];
    assert_eq!(
        schema["properties"]["members"]["items"]["properties"]["id_number"]["format"],
        "cn-resident-id"
    );
    assert_eq!(schema["x-scope"], "/township");

    let download = app
        .get("/api/v1/forms/labour-survey-xls?version=1&format=xlsx")
        .await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], XLSX);
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("labour-survey-xls-1.xlsx")
    );
    assert_eq!(
        download.bytes().await.unwrap().to_vec(),
        bytes,
        "byte for byte as published"
    );

    let (status, code, _) =
        error_code(app.get("/api/v1/forms/labour-survey?format=xlsx").await).await;
    assert_eq!((status, code.as_str()), (404, "workbook_not_found"));
    let (status, code, _) =
        error_code(app.get("/api/v1/forms/labour-survey?format=pdf").await).await;
    assert_eq!((status, code.as_str()), (422, "request_invalid"));

    // Other content under a published version is a conflict, as for a JSON publish.
    let mut changed = schema.clone();
    changed["title"] = json!("改过的标题");
    let body = json!({"id": "labour-survey-xls", "version": "1", "title": "改过的标题", "schema": changed});
    let (status, code, _) = error_code(
        app.post_json_as(&app.admin_token, "/api/v1/forms", &body)
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (409, "form_version_conflict"));
}

#[tokio::test]
async fn an_old_excel_workbook_publishes_too_and_only_admins_may_publish() {
    let app = spawn_app().await;

    let (status, code, _) =
        error_code(publish(&app, &app.token, XLS, workbook("household.xls"), "en").await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    let published = publish(&app, &app.admin_token, XLS, workbook("household.xls"), "en").await;
    assert_eq!(published.status(), 201);
    let download = app.get("/api/v1/forms/household?format=xlsx").await;
    assert_eq!(download.headers()["content-type"], XLS);
    assert_eq!(
        download.bytes().await.unwrap().to_vec(),
        workbook("household.xls")
    );
}

#[tokio::test]
async fn a_broken_workbook_is_refused_at_its_cell_in_the_callers_language() {
    let app = spawn_app().await;
    for (file, path, zh, en) in [
        (
            "broken-missing-list.xlsx",
            "/survey/4/type",
            "choices 工作表中没有选项列表“yes_or_no”",
            "the choice list 'yes_or_no' is not in the choices sheet",
        ),
        (
            "broken-duplicate-names.xlsx",
            "/survey/5/name",
            "名称“household_id”已在第2行使用",
            "the name 'household_id' is used already (row 2)",
        ),
        (
            "broken-unclosed-group.xlsx",
            "/survey/3/type",
            "“details”没有结束行",
            "the group 'details' is never closed",
        ),
    ] {
        for (lang, words) in [("zh-CN", zh), ("en", en)] {
            let response = publish(&app, &app.admin_token, XLSX, workbook(file), lang).await;
            let (status, code, error) = error_code(response).await;
            assert_eq!((status, code.as_str()), (422, "schema_invalid"), "{file}");
            assert_eq!(error["details"][0]["path"], path, "{file}: {error}");
            let message = error["details"][0]["message"].as_str().unwrap();
            assert!(message.contains(words), "{file} in {lang}: {message}");
        }
    }
    let forms = app.get_json("/api/v1/forms").await;
    assert_eq!(
        forms["forms"].as_array().unwrap().len(),
        1,
        "nothing refused was published"
    );

    let (status, code, error) = error_code(
        publish(
            &app,
            &app.admin_token,
            XLSX,
            b"not a workbook".to_vec(),
            "en",
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (422, "schema_invalid"));
    assert!(
        error["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not a readable xlsx workbook"),
        "{error}"
    );
}

#[tokio::test]
async fn a_workbook_that_unpacks_into_more_than_the_bound_is_refused_unread() {
    use std::io::Write;
    let app = spawn_app().await;
    let mut packed = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    packed
        .start_file("xl/worksheets/sheet1.xml", options)
        .unwrap();
    let zeros = vec![b' '; 1024 * 1024];
    for _ in 0..65 {
        packed.write_all(&zeros).unwrap();
    }
    let bytes = packed.finish().unwrap().into_inner();
    assert!(
        bytes.len() < 1024 * 1024,
        "a small upload: {} bytes",
        bytes.len()
    );

    let (status, code, error) =
        error_code(publish(&app, &app.admin_token, XLSX, bytes, "en").await).await;
    assert_eq!((status, code.as_str()), (422, "schema_invalid"));
    assert!(
        error["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unpacks to more than 64 MiB"),
        "{error}"
    );
}

#[tokio::test]
async fn workbooks_made_to_exhaust_a_reader_or_beyond_the_mapping_are_refused_with_a_reason() {
    let app = spawn_app().await;
    for (file, path, words) in [
        (
            "refused/far-cell.xlsx",
            "/survey",
            "reaches beyond row 100000",
        ),
        (
            "refused/string-count.xlsx",
            "",
            "declare more strings than they hold",
        ),
        (
            "refused/entities.xlsx",
            "/entities",
            "not one this server maps",
        ),
    ] {
        let response = publish(&app, &app.admin_token, XLSX, workbook(file), "en").await;
        let (status, code, error) = error_code(response).await;
        assert_eq!((status, code.as_str()), (422, "schema_invalid"), "{file}");
        assert_eq!(error["details"][0]["path"], path, "{file}: {error}");
        let message = error["details"][0]["message"].as_str().unwrap();
        assert!(message.contains(words), "{file}: {message}");
    }
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "the server is still up"
    );
}

/// A household the kitchen-sink workbook takes, to break one rule at a time.
fn kitchen_sink_household() -> Value {
    json!({
        "head_name": "黄德福", "household_size": 5, "labourers": 3, "visit_date": "2026-03-01",
        "phone": "13977641208", "has_land": true, "crops": ["rice"], "land_mu": 4.5,
        "status": "stable", "employer": "平马镇糖厂",
        "dwelling": {"is_safe": true},
        "visits": [{"visit_on": "2026-03-08", "help_asked": "技能培训"}, {"visit_on": "2026-03-15"}],
        "members": [{"member_name": "黄丽", "age": 19, "trainings": ["welding"]}],
        "confirm": true
    })
}

#[tokio::test]
async fn answers_that_break_each_kind_of_xlsform_rule_are_refused_at_their_place() {
    let app = app_with_published("kitchen-sink.xlsx").await;
    let base = kitchen_sink_household();
    assert_eq!(
        submit(&app, "kitchen-sink", None, &base).await.status(),
        201
    );

    let cases: [(&str, Value, &str, &str); 10] = [
        (
            "answered though not relevant",
            json!({"dwelling": {"is_safe": true, "repairs": "屋顶"}}),
            "/dwelling/repairs",
            "not_asked",
        ),
        (
            "required once relevant",
            json!({"dwelling": {"is_safe": false}}),
            "/dwelling/repairs",
            "required",
        ),
        (
            "a condition on the form from inside a repeat",
            json!({"household_size": 2, "labourers": 1}),
            "/visits/0/help_asked",
            "not_asked",
        ),
        (
            "a condition inside a repeat's own item",
            json!({"members": [{"member_name": "黄强", "age": 9, "trainings": ["welding"]}]}),
            "/members/0/trainings",
            "not_asked",
        ),
        (
            "out of range",
            json!({"household_size": 40}),
            "/household_size",
            "maximum",
        ),
        (
            "not matching the regex",
            json!({"phone": "12345"}),
            "/phone",
            "pattern",
        ),
        (
            "too short",
            json!({"head_name": "黄"}),
            "/head_name",
            "min_length",
        ),
        (
            "a choice not in the list",
            json!({"crops": ["wheat"]}),
            "/crops/0",
            "enum",
        ),
        (
            "more than the form's other answer allows",
            json!({"labourers": 9}),
            "/labourers",
            "compare.le",
        ),
        (
            "a repeat of fixed count",
            json!({"visits": [{"visit_on": "2026-03-08"}]}),
            "/visits",
            "min_items",
        ),
    ];
    for (name, change, path, key) in cases {
        let mut data = base.clone();
        for (field, value) in change.as_object().unwrap() {
            data[field] = value.clone();
        }
        let response = submit(&app, "kitchen-sink", None, &data).await;
        let (status, code, error) = error_code(response).await;
        assert_eq!(
            (status, code.as_str()),
            (422, "validation_failed"),
            "{name}"
        );
        let found = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["path"] == path && d["key"] == key);
        assert!(found, "{name}: expected {key} at {path}, got {error}");
    }
}

#[tokio::test]
async fn the_county_survey_written_as_an_xlsform_judges_every_shared_household_like_labour_survey_json()
 {
    let app = app_with_published("labour-survey.xlsx").await;
    let vectors: Value =
        serde_json::from_str(include_str!("../vectors/labour-survey.json")).unwrap();
    let mut differences = Vec::new();
    for case in vectors["cases"].as_array().unwrap() {
        let hand_written =
            judged(submit(&app, "labour-survey", Some("1"), &case["data"]).await).await;
        let from_excel = judged(submit(&app, "labour-survey-xls", None, &case["data"]).await).await;
        if hand_written != from_excel {
            differences.push(format!(
                "{}: {hand_written:?} / {from_excel:?}",
                case["name"]
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[tokio::test]
async fn workbooks_in_the_schemas_directory_are_published_at_start() {
    let schemas = tempfile::tempdir().unwrap();
    std::fs::copy(
        workbook_path("household.xls"),
        schemas.path().join("household.xls"),
    )
    .unwrap();
    let dir = schemas.path().to_owned();
    let app = spawn_app_with(|config| config.schemas_dir = dir).await;

    let form = app.get_json("/api/v1/forms/household").await;
    assert_eq!(form["title"], "农户登记");
    assert_eq!(form["schema"]["properties"]["size"]["minimum"], 1);
    let download = app.get("/api/v1/forms/household?format=xlsx").await;
    assert_eq!(
        download.bytes().await.unwrap().to_vec(),
        workbook("household.xls")
    );
}

#[tokio::test]
async fn a_refused_workbook_in_the_schemas_directory_stops_the_start_unless_published_before() {
    let schemas = tempfile::tempdir().unwrap();
    let file = schemas.path().join("household.xlsx");
    std::fs::copy(workbook_path("broken-missing-list.xlsx"), &file).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(&data);
    config.schemas_dir = schemas.path().to_owned();

    let error = AppState::open(&config)
        .await
        .err()
        .expect("the start fails")
        .to_string();
    assert!(
        error.contains("household.xlsx") && error.contains("/survey/4/type"),
        "{error}"
    );

    // The same bytes, published when an older converter took them: that version stands, and
    // the server starts (a converter reading a workbook anew never changes a published form).
    let store = open_store_when_free(data.path()).await;
    let empty = tempfile::tempdir().unwrap();
    let registry = FormRegistry::load(&store, empty.path()).await.unwrap();
    let earlier = NewFormVersion {
        id: "household".into(),
        version: "1".into(),
        title: "农户登记".into(),
        schema: json!({"type": "object", "properties": {"household_id": {"type": "string"}}}),
        workbook: Some(StoredWorkbook {
            media_type: XLSX.into(),
            bytes: std::fs::read(&file).unwrap(),
        }),
    };
    registry
        .publish(&store, earlier, &Principal::system())
        .await
        .unwrap();
    drop(registry);
    drop(store);
    let dir = schemas.path().to_owned();
    let app = spawn_app_in_with(data, |config| config.schemas_dir = dir).await;
    let form = app.get_json("/api/v1/forms/household").await;
    assert_eq!(
        form["schema"]["properties"]["household_id"]["type"],
        "string"
    );
}

#[test]
fn the_command_line_prints_a_workbooks_schema_or_why_it_cannot_be_published() {
    let file = workbook_path("household.xls");
    let (ok, output) = run_binary(&["xlsform", file.to_str().unwrap()], "");
    assert!(ok, "{output}");
    let schema: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(schema["x-form-id"], "household");

    let broken = workbook_path("broken-missing-list.xlsx");
    let (ok, output) = run_binary(&["xlsform", broken.to_str().unwrap(), "--lang", "en"], "");
    assert!(!ok);
    assert!(
        output.contains("/survey/4/type: the choice list 'yes_or_no' is not in the choices sheet"),
        "{output}"
    );
}
