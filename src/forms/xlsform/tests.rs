//! The mapping on sheets written out in the test (docs/xlsform.md has the table).

use serde_json::{Value, json};

use super::sheets::{Sheet, Workbook};
use super::*;

fn workbook(survey: &[&[&str]], choices: &[&[&str]]) -> Workbook {
    Workbook {
        survey: Some(Sheet::from_rows("survey", survey)),
        choices: Some(Sheet::from_rows("choices", choices)),
        settings: Some(Sheet::from_rows(
            "settings",
            &[
                &["form_id", "version", "form_title", "default_language"],
                &["visit", "3", "入户走访", "中文 (zh-CN)"],
            ],
        )),
    }
}

const YES_NO: &[&[&str]] = &[
    &[
        "list_name",
        "name",
        "label::中文 (zh-CN)",
        "label::English (en)",
    ],
    &["yes_no", "true", "是", "Yes"],
    &["yes_no", "false", "否", "No"],
    &["crop", "rice", "水稻", "Rice"],
    &["crop", "mango", "芒果", "Mango"],
];

fn converted(survey: &[&[&str]]) -> Value {
    match convert_workbook(&workbook(survey, YES_NO)) {
        Ok(converted) => converted.schema,
        Err(problems) => panic!("{problems:?}"),
    }
}

fn refused(survey: &[&[&str]], choices: &[&[&str]]) -> Vec<(String, String)> {
    match convert_workbook(&workbook(survey, choices)) {
        Ok(converted) => panic!("converted: {}", converted.schema),
        Err(problems) => problems.into_iter().map(|p| (p.path, p.en)).collect(),
    }
}

const HEADER: &[&str] = &[
    "type",
    "name",
    "label::中文 (zh-CN)",
    "label::English (en)",
    "required",
    "relevant",
];

#[test]
fn settings_name_the_form_and_languages_become_titles_and_labels() {
    let schema = converted(&[
        HEADER,
        &["select_one crop", "crop", "作物", "Crop", "yes", ""],
        &[
            "select_one yes_no",
            "irrigated",
            "是否灌溉",
            "Irrigated",
            "",
            "",
        ],
    ]);
    assert_eq!(schema["x-form-id"], "visit");
    assert_eq!(schema["x-form-version"], "3");
    assert_eq!(schema["title"], "入户走访");
    assert_eq!(schema["x-default-language"], "zh-CN");
    assert_eq!(
        schema["properties"]["crop"],
        json!({"title": "作物", "x-title-en": "Crop", "enum": ["rice", "mango"],
               "x-labels": {"rice": "水稻", "mango": "芒果"}, "x-labels-en": {"rice": "Rice", "mango": "Mango"}})
    );
    // A list of exactly `true` and `false` is a yes/no question.
    assert_eq!(schema["properties"]["irrigated"]["type"], "boolean");
    assert_eq!(schema["required"], json!(["crop"]));
    assert_eq!(schema["additionalProperties"], false);
}

#[test]
fn a_condition_on_a_field_outside_a_group_sits_on_the_object_holding_both() {
    let schema = converted(&[
        HEADER,
        &["select_one yes_no", "farms", "是否务农", "Farms", "yes", ""],
        &["begin_group", "land", "耕地", "Land", "", ""],
        &[
            "decimal",
            "area",
            "面积",
            "Area",
            "yes",
            "${farms} = 'true'",
        ],
        &["end_group", "", "", "", "", ""],
    ]);
    assert_eq!(
        schema["allOf"],
        json!([{
            "if": {"properties": {"farms": {"const": true}}, "required": ["farms"]},
            "then": {"properties": {"land": {"required": ["area"]}}, "required": ["land"]},
            "else": {"properties": {"land": {"properties": {"area": false}}}},
        }])
    );
    // Nothing in the group is always required, so the group itself is not.
    assert_eq!(schema["required"], json!(["farms"]));
}

#[test]
fn a_repeat_question_may_depend_on_its_own_item_or_on_the_form_above() {
    let schema = converted(&[
        HEADER,
        &["integer", "size", "人口", "Size", "yes", ""],
        &["begin_repeat", "people", "成员", "People", "", ""],
        &["integer", "age", "年龄", "Age", "yes", ""],
        &["text", "school", "学校", "School", "", "${age} < 18"],
        &["text", "job", "工作", "Job", "", "${size} > 2"],
        &["end_repeat", "", "", "", "", ""],
    ]);
    let item = &schema["properties"]["people"]["items"];
    assert_eq!(
        item["allOf"][0]["if"],
        json!({"properties": {"age": {"exclusiveMaximum": 18}}, "required": ["age"]})
    );
    assert_eq!(
        schema["allOf"][0]["else"],
        json!({"properties": {"people": {"items": {"properties": {"job": false}}}}})
    );
}

#[test]
fn what_cannot_be_mapped_is_refused_at_its_cell() {
    let problems = refused(
        &[
            &[
                "type",
                "name",
                "label",
                "relevant",
                "constraint",
                "choice_filter",
            ],
            &["text", "a", "A", "", "", ""],
            &["range", "b", "B", "", "", ""],
            &["integer", "c", "C", "${a} + 1 > 2", "", ""],
            &["select_one crop", "d", "D", "", "", "${a} = 'x'"],
            &["integer", "e", "E", "", ". > ${nobody}", ""],
            &["begin_group", "g", "G", "", "", ""],
            &["text", "a", "A again", "", "", ""],
        ],
        YES_NO,
    );
    let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/survey/1/choice_filter",
            "/survey/3/type",
            "/survey/7/type",
            "/survey/8/name",
        ],
        "{problems:?}"
    );
    assert!(problems[2].1.contains("never closed"), "{problems:?}");
    // With the tree whole, the expressions are read and refused where they are.
    let problems = refused(
        &[
            &["type", "name", "label", "relevant", "constraint"],
            &["text", "a", "A", "", ""],
            &["integer", "c", "C", "${a} + 1 > 2", ""],
            &["integer", "e", "E", "", ". > ${nobody}"],
            &["select_one crop", "f", "F", "${a} = ${c}", ""],
        ],
        YES_NO,
    );
    let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/survey/3/relevant",
            "/survey/4/constraint",
            "/survey/5/relevant"
        ],
        "{problems:?}"
    );
}

#[test]
fn a_workbook_without_id_version_or_labels_is_refused_with_each_reason() {
    let mut book = workbook(
        &[&["type", "name", "label::English"], &["text", "a", "A"]],
        YES_NO,
    );
    book.settings = Some(Sheet::from_rows(
        "settings",
        &[&["form_title"], &["无编号"]],
    ));
    let problems: Vec<String> = convert_workbook(&book)
        .unwrap_err()
        .into_iter()
        .map(|p| format!("{} {}", p.path, p.en))
        .collect();
    assert!(
        problems[0].starts_with("/settings/2/form_id"),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("/settings/2/version"),
        "{problems:?}"
    );
    assert!(
        problems[2].starts_with("/survey/1/label::English name the language's code"),
        "{problems:?}"
    );
}

#[test]
fn messages_are_in_both_languages() {
    let book = workbook(
        &[
            &["type", "name", "label"],
            &["select_one nothing", "a", "A"],
        ],
        YES_NO,
    );
    let problem = &convert_workbook(&book).unwrap_err()[0];
    assert_eq!(problem.path, "/survey/2/type");
    assert!(
        problem
            .message(Lang::En)
            .contains("'nothing' is not in the choices sheet")
    );
    assert!(
        problem
            .message(Lang::Zh)
            .contains("choices 工作表中没有选项列表“nothing”")
    );
}
