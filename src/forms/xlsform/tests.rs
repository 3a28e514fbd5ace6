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

/// Whether the generated schema takes `data`.
fn accepts(schema: &Value, data: Value) -> bool {
    jsonschema::draft202012::options()
        .build(schema)
        .expect("the schema compiles")
        .is_valid(&data)
}

#[test]
fn a_question_in_a_group_is_asked_only_when_its_group_is_too() {
    let schema = converted(&[
        HEADER,
        &["select_one yes_no", "farms", "是否务农", "Farms", "yes", ""],
        &["integer", "plots", "地块数", "Plots", "yes", ""],
        &[
            "begin_group",
            "land",
            "耕地",
            "Land",
            "",
            "${farms} = 'true'",
        ],
        &["decimal", "area", "面积", "Area", "yes", "${plots} > 2"],
        &["end_group", "", "", "", "", ""],
    ]);
    // Not farming: the group is not asked, whatever the number of plots says.
    assert!(accepts(&schema, json!({"farms": false, "plots": 3})));
    assert!(!accepts(
        &schema,
        json!({"farms": false, "plots": 3, "land": {"area": 2}})
    ));
    assert!(
        !accepts(&schema, json!({"farms": true, "plots": 3})),
        "area is required"
    );
    assert!(accepts(
        &schema,
        json!({"farms": true, "plots": 3, "land": {"area": 2}})
    ));
    assert!(accepts(&schema, json!({"farms": true, "plots": 1})));
}

#[test]
fn a_condition_inside_an_optional_group_holds_when_the_group_is_left_out() {
    let schema = converted(&[
        HEADER,
        &["begin_group", "extra", "补充", "Extra", "", ""],
        &["select_one yes_no", "moved", "是否搬迁", "Moved", "", ""],
        &["text", "why", "原因", "Why", "yes", "${moved} != 'true'"],
        &["end_group", "", "", "", "", ""],
    ]);
    // XLSForm reads the unanswered `moved` as '', which is not 'true': `why` is required.
    assert!(!accepts(&schema, json!({})));
    assert!(accepts(&schema, json!({"extra": {"why": "家中有老人"}})));
    assert!(accepts(&schema, json!({"extra": {"moved": true}})));
}

#[test]
fn a_repeat_may_have_no_items_though_a_question_in_it_is_required_when_relevant() {
    let schema = converted(&[
        HEADER,
        &["integer", "size", "人口", "Size", "yes", ""],
        &["begin_repeat", "people", "成员", "People", "", ""],
        &["text", "job", "工作", "Job", "yes", "${size} > 2"],
        &["end_repeat", "", "", "", "", ""],
    ]);
    assert!(accepts(&schema, json!({"size": 5})));
    assert!(!accepts(&schema, json!({"size": 5, "people": [{}]})));
    assert!(accepts(
        &schema,
        json!({"size": 5, "people": [{"job": "工人"}]})
    ));
}

#[test]
fn lengths_and_counts_of_an_unanswered_field_are_zero_as_in_xpath() {
    let schema = converted(&[
        HEADER,
        &["text", "note", "备注", "Note", "", ""],
        &["select_multiple crop", "crops", "作物", "Crops", "", ""],
        &[
            "text",
            "why_none",
            "为何没有",
            "Why none",
            "yes",
            "count-selected(${crops}) = 0",
        ],
        &[
            "text",
            "about_note",
            "备注说明",
            "About the note",
            "yes",
            "string-length(${note}) != 0",
        ],
    ]);
    assert!(
        !accepts(&schema, json!({})),
        "no crops: why_none is asked and required"
    );
    assert!(accepts(&schema, json!({"why_none": "无地"})));
    assert!(!accepts(
        &schema,
        json!({"crops": ["rice"], "why_none": "无地"})
    ));
    assert!(
        !accepts(&schema, json!({"note": "x", "why_none": "无地"})),
        "a note asks about_note"
    );
    assert!(accepts(
        &schema,
        json!({"note": "x", "why_none": "无地", "about_note": "y"})
    ));
}

#[test]
fn calculations_compare_as_the_phone_computed_them() {
    let schema = converted(&[
        &[
            "type",
            "name",
            "label",
            "calculation",
            "relevant",
            "required",
        ],
        &["integer", "income", "收入", "", "", "yes"],
        &["calculate", "per_head", "", "${income} div 4", "", ""],
        &["text", "help", "帮扶", "", "${per_head} < 1000", "yes"],
    ]);
    assert!(!accepts(&schema, json!({"income": 2000, "per_head": 500})));
    assert!(accepts(
        &schema,
        json!({"income": 2000, "per_head": 500, "help": "低保"})
    ));
    assert!(accepts(&schema, json!({"income": 8000, "per_head": 2000})));
}

#[test]
fn columns_and_values_that_would_be_dropped_are_refused() {
    let problems = refused(
        &[
            &[
                "type",
                "name",
                "label",
                "constraint",
                "calculation",
                "read_only",
                "default",
                "x-format",
                "",
            ],
            &["begin_group", "g", "G", ". > 1", "", "", "", "", ""],
            &["text", "a", "A", "", "1 + 1", "", "", "", ""],
            &["text", "b", "B", "", "", "maybe", "", "", ""],
            &["date", "c", "C", "", "", "", "today()", "", ""],
            &["text", "d", "D", "", "", "", "", "cn-residentid", "stray"],
            &["end_group", "", "", "", "", "", "", "", ""],
        ],
        YES_NO,
    );
    let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/survey/6",
            "/survey/2/constraint",
            "/survey/3/calculation",
            "/survey/4/read_only",
            "/survey/5/default",
            "/survey/6/x-format",
        ],
        "{problems:?}"
    );
    // Once the rows are whole, what their expressions and rules say is checked.
    let problems = refused(
        &[
            &["type", "name", "label", "constraint", "x-rules"],
            &["text", "a", "A", "", ""],
            &["text", "e", "E", "", "resident-id-birth-date()"],
            &["text", "f", "F", ". < ${a}", ""],
            &["text", "h", "H", "regex(., '(')", ""],
            &["integer", "i", "I", ". < ${a}", ""],
        ],
        YES_NO,
    );
    let paths: Vec<&str> = problems.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/survey/3/x-rules",
            "/survey/4/constraint",
            "/survey/5/constraint",
            "/survey/6/constraint"
        ],
        "{problems:?}"
    );
}

#[test]
fn groups_nested_too_deep_are_refused_before_the_tree_is_walked() {
    let mut rows: Vec<Vec<String>> = vec![vec!["type".into(), "name".into(), "label".into()]];
    for i in 0..200 {
        rows.push(vec!["begin_group".into(), format!("g{i}"), "G".into()]);
    }
    let rows: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().map(String::as_str).collect())
        .collect();
    let rows: Vec<&[&str]> = rows.iter().map(Vec::as_slice).collect();
    let problems = refused(&rows, YES_NO);
    assert!(
        problems
            .iter()
            .any(|(_, message)| message.contains("nested more than")),
        "{problems:?}"
    );
}
