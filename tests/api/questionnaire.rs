//! The county's questionnaire: conditional questions, ID-number rules, messages in two languages.

use serde_json::{Value, json};

use crate::helpers::{TestApp, envelope, household, spawn_app};

/// Submits `data` with an optional `Accept-Language`; the 422 details.
async fn refused(app: &TestApp, data: Value, language: Option<&str>) -> Vec<Value> {
    let mut request = app
        .client
        .post(app.url("/api/v1/forms/labour-survey/submissions"))
        .bearer_auth(&app.token)
        .json(&envelope(data));
    if let Some(language) = language {
        request = request.header("accept-language", language);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    body["error"]["details"].as_array().unwrap().clone()
}

#[tokio::test]
async fn each_broken_rule_is_named_in_chinese_by_default_and_in_english_on_request() {
    let app = spawn_app().await;
    type Change = fn(&mut Value);
    let cases: [(Change, &str, &str, &str, &str); 7] = [
        (
            |d| d["members"][1]["id_number"] = json!("452223198307080391"),
            "/members/1/id_number",
            "format",
            "第2位劳动力 · 身份证号：校验位不正确",
            "Labourer 2 · ID number: check digit is wrong",
        ),
        (
            |d| {
                d["members"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("monthly_income");
            },
            "/members/0/monthly_income",
            "required",
            "第1位劳动力 · 月收入(元)：必须填写",
            "Labourer 1 · Monthly income (yuan): is required",
        ),
        (
            |d| d["members"][2]["monthly_income"] = json!(500),
            "/members/2/monthly_income",
            "falseSchema",
            "第3位劳动力 · 月收入(元)：根据其他回答，此项不应填写",
            "Labourer 3 · Monthly income (yuan): should not be answered, given the other answers",
        ),
        (
            |d| {
                d["relocated"] = json!(false);
            },
            "/settlement",
            "falseSchema",
            "安置点：根据其他回答，此项不应填写",
            "Settlement site: should not be answered, given the other answers",
        ),
        (
            |d| d["members"][0]["birth_date"] = json!("1985-03-16"),
            "/members/0/birth_date",
            "resident-id-birth-date",
            "第1位劳动力 · 出生日期：与身份证号中的出生日期不一致",
            "Labourer 1 · Date of birth: does not match the date of birth in the ID number",
        ),
        (
            |d| d["members"][1]["gender"] = json!("female"),
            "/members/1/gender",
            "resident-id-gender",
            "第2位劳动力 · 性别：与身份证号中的性别不一致",
            "Labourer 2 · Gender: does not match the gender in the ID number",
        ),
        (
            |d| d["members"][0]["months_worked"] = json!(13),
            "/members/0/months_worked",
            "maximum",
            "第1位劳动力 · 本年务工月数：不能大于12",
            "Labourer 1 · Months worked this year: must be at most 12",
        ),
    ];
    for (change, path, keyword, zh, en) in cases {
        let mut data = household();
        change(&mut data);
        for (language, expected) in [
            (None, zh),
            (Some("zh-CN,zh;q=0.9"), zh),
            (Some("en-US,en;q=0.9"), en),
        ] {
            let details = refused(&app, data.clone(), language).await;
            assert_eq!(details.len(), 1, "{path}: {details:?}");
            assert_eq!(details[0]["path"], path);
            assert_eq!(details[0]["keyword"], keyword, "{path}");
            assert_eq!(details[0]["message"], expected, "{path} in {language:?}");
        }
    }
}

#[tokio::test]
async fn keyboard_quirks_in_id_and_phone_numbers_are_accepted() {
    let app = spawn_app().await;
    let mut data = household();
    data["members"][1]["id_number"] = json!(" 45222319830708039x");
    data["members"][0]["id_number"] = json!("４５２２２３１９８５０３１５００２５");
    data["members"][0]["phone"] = json!("１３８７７６１２３４５\u{3000}");

    let response = app.submit(&envelope(data)).await;

    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn the_questionnaire_carries_labels_keys_and_scope_for_the_codebook() {
    let app = spawn_app().await;
    let form: Value = app.get_json("/api/v1/forms/labour-survey").await;
    let schema = &form["schema"];
    assert_eq!(schema["x-unique"], json!(["/household_id"]));
    assert_eq!(schema["x-scope"], "/township");
    let members = &schema["properties"]["members"]["items"];
    assert_eq!(members["x-unique"], json!(["/id_number"]));
    assert_eq!(
        members["properties"]["employment_status"]["x-labels"]["stable"],
        "稳定就业"
    );
    for key in [
        "name",
        "id_number",
        "gender",
        "birth_date",
        "phone",
        "education",
        "labour_capacity",
        "employment_status",
        "work_location",
        "job_type",
        "employer",
        "months_worked",
        "monthly_income",
        "unemployed_reason",
        "willing_to_work",
        "trainings_received",
        "trainings_wanted",
        "support_received",
    ] {
        assert!(
            members["properties"][key]["title"].is_string(),
            "members[].{key} has no Chinese title"
        );
    }
}

#[tokio::test]
async fn a_labourer_no_longer_in_the_household_is_asked_nothing_about_work_and_left_out_of_the_rate()
 {
    let app = crate::helpers::spawn_app().await;
    let mut data = crate::helpers::household();
    // The fixture's three labourers: one stable worker, and two more; the third has moved away.
    let moved = serde_json::json!({
        "name": data["members"][2]["name"], "id_number": data["members"][2]["id_number"],
        "gender": data["members"][2]["gender"], "birth_date": data["members"][2]["birth_date"],
        "presence": "moved"
    });
    data["members"][2] = moved.clone();
    let mut envelope = crate::helpers::envelope(data.clone());
    envelope["form_version"] = serde_json::json!("2");
    assert_eq!(app.submit(&envelope).await.status(), 201);

    // Work questions for someone who moved are refused, as any question the answers rule out.
    let mut asked = data.clone();
    asked["members"][2]["employment_status"] = serde_json::json!("stable");
    let mut refused = crate::helpers::envelope(asked);
    refused["form_version"] = serde_json::json!("2");
    let (status, code, error) = crate::helpers::error_code(app.submit(&refused).await).await;
    assert_eq!(
        (status, code.as_str()),
        (422, "validation_failed"),
        "{error}"
    );
    assert_eq!(error["details"][0]["path"], "/members/2/employment_status");

    // The employment rate counts the two still there: the rate is theirs, not diluted.
    let figures: serde_json::Value = app
        .get_json_as(
            &app.admin_token,
            "/api/v1/forms/labour-survey/indicators?table=members",
        )
        .await;
    let total = &figures["total"];
    assert_eq!(total["rows"], 3);
    let employed: u64 = ["stable", "flexible", "self_employed"]
        .iter()
        .map(|c| total[format!("employment_status={c}")].as_u64().unwrap())
        .sum();
    let rate = total["employment_rate"].as_f64().unwrap();
    let expected = (employed as f64 * 10_000.0 / 2.0).round() / 100.0;
    assert_eq!(rate, expected, "{figures}");
}
