//! The message catalogue (`GET /api/v1/messages`) and the keys of validation details.

use serde_json::{Value, json};

use crate::helpers::{TestApp, envelope, error_code, household, spawn_app};

/// Every key the README documents, in the catalogue's order.
const KEYS: [&str; 38] = [
    "required",
    "type.string",
    "type.integer",
    "type.number",
    "type.boolean",
    "type.array",
    "type.object",
    "type.other",
    "enum",
    "const",
    "pattern",
    "format",
    "format.date",
    "format.cn-mobile",
    "resident_id.shape",
    "resident_id.birth_date",
    "resident_id.check_digit",
    "minimum",
    "maximum",
    "not_empty",
    "min_length",
    "max_length",
    "min_items",
    "max_items",
    "unique_items",
    "unknown_fields",
    "not_asked",
    "id_birth_date",
    "id_gender",
    "compare.lt",
    "compare.le",
    "compare.gt",
    "compare.ge",
    "compare.eq",
    "compare.ne",
    "attachment.name",
    "attachment.duplicate",
    "other",
];

/// GETs the catalogue without a token.
async fn catalogue(app: &TestApp, query: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.client.get(app.url(&format!("/api/v1/messages{query}")));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_catalogue_is_served_without_a_token_in_either_language() {
    let app = spawn_app().await;

    let zh = catalogue(&app, "?lang=zh-CN", &[]).await;
    assert_eq!(zh.status(), 200);
    assert_eq!(zh.headers()["cache-control"], "no-cache");
    assert!(zh.headers().contains_key("etag"));
    let zh: Value = zh.json().await.unwrap();
    let en: Value = catalogue(&app, "?lang=en", &[]).await.json().await.unwrap();

    assert_eq!(zh["lang"], "zh-CN");
    assert_eq!(zh["messages"]["min_length"], "至少{limit}个字");
    assert_eq!(
        zh["field"],
        json!({"separator": " · ", "message": "{field}：{problem}", "questionnaire": "问卷",
               "item": "{label} #{n}", "list_separator": "、"})
    );
    assert_eq!(en["lang"], "en");
    assert_eq!(
        en["messages"]["min_length"],
        "must have at least {limit} characters"
    );
    assert_eq!(en["field"]["message"], "{field}: {problem}");
    assert_eq!(en["field"]["list_separator"], ", ");
}

#[tokio::test]
async fn without_lang_the_accept_language_header_chooses_and_chinese_is_the_default() {
    let app = spawn_app().await;
    let lang = |response: reqwest::Response| async move {
        let body: Value = response.json().await.unwrap();
        body["lang"].as_str().unwrap().to_owned()
    };

    let english = catalogue(&app, "", &[("accept-language", "en-GB,en;q=0.8")]).await;
    let french = catalogue(&app, "", &[("accept-language", "fr")]).await;
    let unsaid = catalogue(&app, "", &[]).await;

    assert_eq!(english.headers()["vary"], "Accept-Language");
    assert_eq!(lang(english).await, "en");
    assert_eq!(lang(french).await, "zh-CN");
    assert_eq!(lang(unsaid).await, "zh-CN");
}

#[tokio::test]
async fn both_catalogues_have_every_documented_key_and_no_other() {
    let app = spawn_app().await;
    for lang in ["zh-CN", "en"] {
        let body: Value = catalogue(&app, &format!("?lang={lang}"), &[])
            .await
            .json()
            .await
            .unwrap();
        let messages = body["messages"].as_object().unwrap();
        let keys: Vec<&str> = messages.keys().map(String::as_str).collect();
        assert_eq!(keys, KEYS, "{lang}");
        assert!(
            messages.values().all(|t| !t.as_str().unwrap().is_empty()),
            "{lang}"
        );
        let field: Vec<&String> = body["field"].as_object().unwrap().keys().collect();
        assert_eq!(
            field,
            [
                "separator",
                "message",
                "questionnaire",
                "item",
                "list_separator"
            ]
        );
    }
}

#[tokio::test]
async fn an_unchanged_catalogue_is_not_sent_again() {
    let app = spawn_app().await;
    let first = catalogue(&app, "?lang=zh-CN", &[]).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let english = catalogue(&app, "?lang=en", &[]).await;

    let again = catalogue(&app, "?lang=zh-CN", &[("if-none-match", &etag)]).await;
    let other = catalogue(&app, "?lang=en", &[("if-none-match", &etag)]).await;

    assert_ne!(english.headers()["etag"], etag.as_str());
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert_eq!(again.headers()["cache-control"], "no-cache");
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn an_unknown_language_is_a_query_error() {
    let app = spawn_app().await;
    let response = catalogue(&app, "?lang=fr", &[]).await;
    let (status, code, _) = error_code(response).await;
    assert_eq!((status, code.as_str()), (400, "query_invalid"));
}

#[tokio::test]
async fn a_refused_submission_carries_each_problem_as_a_key_with_its_params() {
    let app = spawn_app().await;
    let mut data = household();
    data["members"][0]["months_worked"] = json!(13);
    data["members"][1]["nickname"] = json!("阿强");

    let response = app.submit(&envelope(data)).await;

    let (status, code, error) = error_code(response).await;
    assert_eq!((status, code.as_str()), (422, "validation_failed"));
    let mut details = error["details"].as_array().unwrap().clone();
    details.sort_by_key(|d| d["path"].as_str().unwrap().to_owned());
    assert_eq!(
        details,
        [
            json!({"path": "/members/0/months_worked", "keyword": "maximum",
                   "message": "第1位劳动力 · 本年务工月数：不能大于12",
                   "key": "maximum", "params": {"limit": 12}}),
            json!({"path": "/members/1", "keyword": "additionalProperties",
                   "message": "第2位劳动力：有问卷中没有的字段：nickname",
                   "key": "unknown_fields", "params": {"fields": ["nickname"]}}),
        ]
    );
}
