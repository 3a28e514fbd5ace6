//! The `survey` and `choices` sheets: questions, groups and repeats as a tree, then as JSON Schema.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::super::compile;
use super::expr::{self, Op};
use super::logic::{self, FieldAt, ValueKind};
use super::{Columns, Languages, Problem, Settings, Sheet, Texts, at};

/// Survey columns understood (`x-…` are this server's extensions).
const SURVEY_COLUMNS: &[&str] = &[
    "type",
    "name",
    "label",
    "hint",
    "required",
    "relevant",
    "constraint",
    "constraint_message",
    "calculation",
    "repeat_count",
    "appearance",
    "default",
    "read_only",
    "x-format",
    "x-rules",
    "x-item-label",
    "x-unique",
    "x-min-items",
    "x-max-items",
];
const SURVEY_LOCALIZED: &[&str] = &["label", "hint", "constraint_message", "x-item-label"];
/// Columns only a question's row may fill, and only a `begin_repeat` row.
const QUESTION_ONLY: [&str; 7] = [
    "constraint",
    "constraint_message",
    "calculation",
    "default",
    "read_only",
    "x-format",
    "x-rules",
];
const REPEAT_ONLY: [&str; 5] = [
    "x-item-label",
    "x-unique",
    "x-min-items",
    "x-max-items",
    "repeat_count",
];
const CHOICE_COLUMNS: &[&str] = &["list_name", "name", "label"];
/// What `x-format` may say: the county's own formats and the standard ones the validator checks.
const FORMATS: [&str; 9] = [
    "cn-resident-id",
    "cn-mobile",
    "email",
    "uri",
    "date",
    "time",
    "date-time",
    "uuid",
    "ipv4",
];

/// One choice list: names in order with their labels.
pub(super) struct List {
    names: Vec<String>,
    labels: Vec<Texts>,
}

/// Reads the `choices` sheet into lists by name.
pub(super) fn read_choices(
    sheet: Option<&Sheet>,
    languages: &Languages,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, List> {
    let mut lists: BTreeMap<String, List> = BTreeMap::new();
    let Some(sheet) = sheet else {
        return lists;
    };
    let columns = Columns::read(sheet, languages, CHOICE_COLUMNS, &["label"], problems);
    for row in &sheet.rows {
        let list = columns.text(row, "list_name");
        let name = columns.text(row, "name");
        if list.is_empty() || name.is_empty() {
            let missing = if list.is_empty() { "list_name" } else { "name" };
            problems.push(Problem::new(
                at("choices", row.number, &columns.header(missing)),
                format!("a choice needs a {missing}"),
                format!("选项缺少 {missing}"),
            ));
            continue;
        }
        let entry = lists.entry(list.to_owned()).or_insert(List {
            names: Vec::new(),
            labels: Vec::new(),
        });
        if entry.names.iter().any(|n| n == name) {
            problems.push(Problem::new(
                at("choices", row.number, &columns.header("name")),
                format!("the list '{list}' has the choice '{name}' twice"),
                format!("选项列表“{list}”中“{name}”出现了两次"),
            ));
            continue;
        }
        entry.names.push(name.to_owned());
        entry.labels.push(columns.texts(row, "label"));
    }
    lists
}

/// Where a schema is, from the root: property names and the `items` of arrays.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Prop(String),
    Items,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Container {
    Group,
    Repeat,
}

/// A question, group or repeat, with what its row says.
struct Node {
    name: String,
    row: u32,
    /// `None` for a question.
    container: Option<Container>,
    /// The question's own keywords (or the group's annotations).
    schema: Map<String, Value>,
    value: ValueKind,
    children: Vec<Node>,
    required: bool,
    relevant: Option<(String, String)>,
    constraint: Option<(String, String)>,
    rules: Option<(String, String)>,
    unique: Option<(String, String)>,
    min_items: Option<u64>,
    max_items: Option<u64>,
}

impl Node {
    fn container(name: &str, row: u32, container: Option<Container>) -> Self {
        Node {
            name: name.to_owned(),
            row,
            container,
            schema: Map::new(),
            value: ValueKind::Other,
            children: Vec::new(),
            required: false,
            relevant: None,
            constraint: None,
            rules: None,
            unique: None,
            min_items: None,
            max_items: None,
        }
    }
}

/// What a row's `type` says.
enum RowType {
    Begin(Container),
    End(Container),
    Question(Question),
    /// A fact the phone sends in the envelope's `meta`, not in the answers.
    Meta(Option<&'static str>),
    Note,
}

enum Question {
    Text,
    Integer,
    Decimal,
    Date,
    Time,
    DateTime,
    One(String),
    Many(String),
    Geopoint,
    File(&'static str),
    Calculate,
    Acknowledge,
}

fn row_type(text: &str) -> Option<RowType> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    Some(match lower.as_slice() {
        ["begin_group"] | ["begin", "group"] => RowType::Begin(Container::Group),
        ["end_group"] | ["end", "group"] => RowType::End(Container::Group),
        ["begin_repeat"] | ["begin", "repeat"] => RowType::Begin(Container::Repeat),
        ["end_repeat"] | ["end", "repeat"] => RowType::End(Container::Repeat),
        ["select_one", _] | ["select", "one", _] => {
            RowType::Question(Question::One(words.last()?.to_string()))
        }
        ["select_multiple", _] | ["select", "multiple", _] => {
            RowType::Question(Question::Many(words.last()?.to_string()))
        }
        ["text"] | ["string"] => RowType::Question(Question::Text),
        ["integer"] | ["int"] => RowType::Question(Question::Integer),
        ["decimal"] => RowType::Question(Question::Decimal),
        ["date"] => RowType::Question(Question::Date),
        ["time"] => RowType::Question(Question::Time),
        ["datetime"] => RowType::Question(Question::DateTime),
        ["geopoint"] => RowType::Question(Question::Geopoint),
        ["image"] => RowType::Question(Question::File("image/jpeg")),
        ["audio"] => RowType::Question(Question::File("audio/webm")),
        ["file"] => RowType::Question(Question::File("application/pdf")),
        ["calculate"] => RowType::Question(Question::Calculate),
        ["acknowledge"] => RowType::Question(Question::Acknowledge),
        ["note"] => RowType::Note,
        ["start"] => RowType::Meta(Some("started_at")),
        ["end"] => RowType::Meta(Some("completed_at")),
        ["deviceid"] => RowType::Meta(Some("device_id")),
        ["username"] | ["today"] => RowType::Meta(None),
        _ => return None,
    })
}

/// Builds the schema's body (`type`, `properties`, `required`, ...) from the survey sheet.
pub(super) fn build(
    sheet: &Sheet,
    lists: &BTreeMap<String, List>,
    languages: &Languages,
    settings: &Settings,
    problems: &mut Vec<Problem>,
) -> Option<Map<String, Value>> {
    let columns = Columns::read(sheet, languages, SURVEY_COLUMNS, SURVEY_LOCALIZED, problems);
    let before = problems.len();
    let mut reader = Reader {
        too_deep: false,
        columns: &columns,
        languages,
        lists,
        problems,
        meta: Vec::new(),
    };
    let root = reader.tree(sheet);
    let meta = std::mem::take(&mut reader.meta);
    if reader.too_deep {
        return None;
    }
    let mut index = BTreeMap::new();
    index_names(&root, &[], &mut index, problems);
    if problems.len() > before {
        return None;
    }
    let mut emitter = Emitter {
        index: &index,
        placements: Vec::new(),
        problems,
    };
    let mut body = emitter.object(&root, &[], &[]);
    let placements = std::mem::take(&mut emitter.placements);
    for (path, key, value) in placements {
        let Some(object) = object_at(&mut body, &path) else {
            continue;
        };
        match object.get_mut(key) {
            Some(Value::Array(items)) => {
                // Questions shown on the same condition share one `if/then/else`, as a
                // hand-written form has it.
                if let Some(same) = items.iter_mut().find(|rule| same_condition(rule, &value)) {
                    merge_branches(same, &value);
                } else {
                    items.push(value);
                }
            }
            _ => {
                object.insert(key.to_owned(), Value::Array(vec![value]));
            }
        }
    }
    if let Some((row, names)) = &settings.unique {
        let place = at("settings", *row, "x-unique");
        if let Some(pointers) = emitter.pointers(names, &[], &place) {
            body.insert("x-unique".into(), json!(pointers));
        }
    }
    if let Some((row, name)) = &settings.scope {
        let place = at("settings", *row, "x-scope");
        if let Some(mut pointers) = emitter.pointers(name, &[], &place) {
            if pointers.len() == 1 {
                body.insert("x-scope".into(), json!(pointers.remove(0)));
            } else {
                emitter.problems.push(Problem::new(
                    place,
                    "x-scope names one field",
                    "x-scope 只能填写一个字段",
                ));
            }
        }
    }
    if !meta.is_empty() {
        body.insert("x-meta".into(), json!(meta));
    }
    (problems.len() == before).then_some(body)
}

/// Groups and repeats inside each other, at most (JSON Schemas nest at most 32 levels here).
const MAX_NESTING: usize = 10;

struct Reader<'a> {
    /// Groups went deeper than `MAX_NESTING`: the tree is not walked further.
    too_deep: bool,
    columns: &'a Columns,
    languages: &'a Languages,
    lists: &'a BTreeMap<String, List>,
    problems: &'a mut Vec<Problem>,
    meta: Vec<&'static str>,
}

impl Reader<'_> {
    fn problem(&mut self, row: u32, base: &str, en: String, zh: String) {
        let header = self.columns.header(base);
        self.problems
            .push(Problem::new(at("survey", row, &header), en, zh));
    }

    /// The rows as a tree under a root group.
    fn tree(&mut self, sheet: &Sheet) -> Node {
        let mut stack = vec![Node::container("", 0, Some(Container::Group))];
        for row in &sheet.rows {
            let type_text = self.columns.text(row, "type");
            let name = self.columns.text(row, "name");
            if type_text.is_empty() {
                if !name.is_empty() {
                    self.problem(
                        row.number,
                        "type",
                        format!("'{name}' has no type"),
                        format!("“{name}”没有填写题型（type）"),
                    );
                }
                continue;
            }
            let Some(kind) = row_type(type_text) else {
                self.problem(
                    row.number,
                    "type",
                    format!(
                        "the type '{type_text}' is not one this server maps (see docs/xlsform.md)"
                    ),
                    format!("本服务器无法转换题型“{type_text}”（见 docs/xlsform.md）"),
                );
                continue;
            };
            match kind {
                RowType::End(container) => {
                    let open = stack.len() > 1
                        && stack.last().and_then(|n| n.container) == Some(container);
                    if !open {
                        self.problem(
                            row.number,
                            "type",
                            format!("'{type_text}' closes no open {}", noun(container)),
                            format!("“{type_text}”没有对应的开始行"),
                        );
                        continue;
                    }
                    if let Some(done) = stack.pop()
                        && let Some(parent) = stack.last_mut()
                    {
                        parent.children.push(done);
                    }
                    continue;
                }
                RowType::Note => continue,
                RowType::Meta(fact) => {
                    if let Some(fact) = fact.filter(|f| !self.meta.contains(f)) {
                        self.meta.push(fact);
                    }
                    continue;
                }
                _ => {}
            }
            if !valid_name(name) {
                self.problem(
                    row.number,
                    "name",
                    format!("'{name}' is not a usable name: a letter or _, then letters, digits, _, - or ."),
                    format!("名称“{name}”不可用：应以字母或 _ 开头，之后为字母、数字、_、- 或 ."),
                );
                continue;
            }
            let mut node = match kind {
                RowType::Begin(container) => Node::container(name, row.number, Some(container)),
                RowType::Question(question) => {
                    let mut node = Node::container(name, row.number, None);
                    self.question(&mut node, &question, row);
                    node
                }
                _ => continue,
            };
            self.common(&mut node, row);
            if node.container.is_some() {
                // The steps after this walk the tree recursively; forms nest a few levels.
                if stack.len() > MAX_NESTING && !self.too_deep {
                    self.too_deep = true;
                    self.problem(
                        row.number,
                        "type",
                        format!("groups and repeats are nested more than {MAX_NESTING} deep"),
                        format!("组和重复组嵌套超过{MAX_NESTING}层"),
                    );
                }
                stack.push(node);
            } else if let Some(parent) = stack.last_mut() {
                parent.children.push(node);
            }
        }
        while stack.len() > 1 {
            let Some(open) = stack.pop() else { break };
            let container = open.container.unwrap_or(Container::Group);
            self.problem(
                open.row,
                "type",
                format!(
                    "the {} '{}' is never closed with end_{}",
                    noun(container),
                    open.name,
                    noun(container)
                ),
                format!("“{}”没有结束行（end_{}）", open.name, noun(container)),
            );
            // Kept in the tree, so what else is wrong inside it is reported too.
            if let Some(parent) = stack.last_mut() {
                parent.children.push(open);
            }
        }
        stack
            .pop()
            .unwrap_or_else(|| Node::container("", 0, Some(Container::Group)))
    }

    /// What every row may have: labels, hints, relevance, required, the extension columns.
    fn common(&mut self, node: &mut Node, row: &super::Row) {
        let labels = self.columns.texts(row, "label");
        let needs_label = node.container.is_none() && node.schema.get("x-calculation").is_none();
        if labels.default.is_none() && needs_label {
            self.problem(
                row.number,
                "label",
                format!("'{}' has no label in the default language", node.name),
                format!("“{}”缺少默认语言的标签", node.name),
            );
        }
        let mut annotations = Map::new();
        labels.insert(&mut annotations, "title", "x-title");
        self.columns
            .texts(row, "hint")
            .insert(&mut annotations, "x-hint", "x-hint");
        self.columns.texts(row, "constraint_message").insert(
            &mut annotations,
            "x-constraint-message",
            "x-constraint-message",
        );
        let required = self.columns.text(row, "required");
        node.required = match required.to_lowercase().as_str() {
            "" | "no" | "false" | "false()" => false,
            "yes" | "true" | "true()" => true,
            _ => {
                self.problem(
                    row.number,
                    "required",
                    format!(
                        "required must be yes or no, not '{required}' (conditions go in relevant)"
                    ),
                    format!(
                        "required 只能填 yes 或 no，不能是“{required}”（条件请写在 relevant 中）"
                    ),
                );
                false
            }
        };
        if node.required && node.container.is_some() {
            self.problem(
                row.number,
                "required",
                "a group or repeat cannot be required: mark its questions".into(),
                "组或重复组不能设为必填，请标记其中的题目".into(),
            );
        }
        let cell = |base: &str| {
            self.columns
                .get(row, base)
                .map(|(text, header)| (text.to_owned(), header.to_owned()))
        };
        node.relevant = cell("relevant");
        node.constraint = cell("constraint");
        node.rules = cell("x-rules");
        node.unique = cell("x-unique");
        if let Some(appearance) = cell("appearance") {
            annotations.insert("x-appearance".into(), json!(appearance.0));
        }
        let item_labels = self.columns.texts(row, "x-item-label");
        // A column in the wrong kind of row would be dropped: refused instead.
        let (misplaced, rows_for): (&[&str], &str) = match node.container {
            None => (&REPEAT_ONLY, "begin_repeat"),
            Some(Container::Group) => {
                (&[&REPEAT_ONLY[..], &QUESTION_ONLY[..]].concat(), "question")
            }
            Some(Container::Repeat) => (&QUESTION_ONLY, "question"),
        };
        for base in misplaced {
            if let Some(header) = self.columns.used(row, base) {
                let rows_for = if REPEAT_ONLY.contains(base) {
                    "begin_repeat"
                } else {
                    rows_for
                };
                self.problems.push(Problem::new(
                    at("survey", row.number, header),
                    format!("{base} is for {rows_for} rows"),
                    format!("{base} 只能用于 {rows_for} 行"),
                ));
            }
        }
        if node.container == Some(Container::Repeat) {
            let mut item_label = Map::new();
            if let Some(text) = item_labels.default {
                // The app is Chinese first: without a code, the default language's template is `zh-CN`'s.
                let code = self
                    .languages
                    .default_code()
                    .unwrap_or_else(|| "zh-CN".into());
                item_label.insert(code, json!(text));
            }
            for (code, text) in item_labels.others {
                item_label.insert(code, json!(text));
            }
            if !item_label.is_empty() {
                annotations.insert("x-item-label".into(), Value::Object(item_label));
            }
            let count = |reader: &mut Self, base: &str| -> Option<u64> {
                let (text, header) = cell(base)?;
                let parsed = text.parse::<u64>().ok();
                if parsed.is_none() {
                    reader.problems.push(Problem::new(
                        at("survey", row.number, &header),
                        format!("{base} must be a whole number here, not '{text}'"),
                        format!("{base} 应为整数，不能是“{text}”"),
                    ));
                }
                parsed
            };
            let repeat_count = count(self, "repeat_count");
            node.min_items = count(self, "x-min-items").or(repeat_count);
            node.max_items = count(self, "x-max-items").or(repeat_count);
        }
        for (key, value) in node.schema.iter() {
            annotations.insert(key.clone(), value.clone());
        }
        node.schema = annotations;
    }

    /// The keywords of a question's answer.
    fn question(&mut self, node: &mut Node, question: &Question, row: &super::Row) {
        if !matches!(question, Question::Calculate)
            && let Some(header) = self.columns.used(row, "calculation")
        {
            self.problems.push(Problem::new(
                at("survey", row.number, header),
                "calculation is for calculate rows",
                "calculation 只能用于 calculate 行",
            ));
        }
        let schema = &mut node.schema;
        let (value, keywords) = match question {
            Question::Text => (ValueKind::Text, json!({"type": "string"})),
            Question::Integer => (ValueKind::Integer, json!({"type": "integer"})),
            Question::Decimal => (ValueKind::Decimal, json!({"type": "number"})),
            Question::Date => (
                ValueKind::Temporal,
                json!({"type": "string", "format": "date"}),
            ),
            Question::Time => (
                ValueKind::Temporal,
                json!({"type": "string", "format": "time"}),
            ),
            Question::DateTime => (
                ValueKind::Temporal,
                json!({"type": "string", "format": "date-time"}),
            ),
            Question::Geopoint => (
                ValueKind::Other,
                json!({
                    "type": "object",
                    "properties": {
                        "lat": {"title": "纬度", "x-title-en": "Latitude", "type": "number", "minimum": -90, "maximum": 90},
                        "lon": {"title": "经度", "x-title-en": "Longitude", "type": "number", "minimum": -180, "maximum": 180},
                        "alt": {"title": "海拔（米）", "x-title-en": "Altitude (m)", "type": "number"},
                        "accuracy_m": {"title": "精度（米）", "x-title-en": "Accuracy (m)", "type": "number", "minimum": 0},
                    },
                    "required": ["lat", "lon"],
                    "additionalProperties": false,
                }),
            ),
            Question::File(media_type) => (
                ValueKind::Other,
                json!({"type": "string", "contentMediaType": media_type}),
            ),
            Question::Acknowledge => (ValueKind::Boolean, json!({"const": true})),
            Question::Calculate => {
                let calculation = self.columns.text(row, "calculation");
                if calculation.is_empty() {
                    self.problem(
                        row.number,
                        "calculation",
                        format!("the calculate '{}' has no calculation", node.name),
                        format!("计算题“{}”缺少 calculation", node.name),
                    );
                }
                (ValueKind::Calculated, json!({"x-calculation": calculation}))
            }
            Question::One(list) | Question::Many(list) => {
                let Some(found) = self.lists.get(list) else {
                    self.problem(
                        row.number,
                        "type",
                        format!("the choice list '{list}' is not in the choices sheet"),
                        format!("choices 工作表中没有选项列表“{list}”"),
                    );
                    return;
                };
                let mut labels = Map::new();
                let mut other_labels: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
                for (name, texts) in found.names.iter().zip(&found.labels) {
                    if let Some(text) = &texts.default {
                        labels.insert(name.clone(), json!(text));
                    }
                    for (code, text) in &texts.others {
                        other_labels
                            .entry(code.clone())
                            .or_default()
                            .insert(name.clone(), json!(text));
                    }
                }
                let boolean = matches!(question, Question::One(_))
                    && found.names.len() == 2
                    && found.names.iter().all(|n| n == "true" || n == "false");
                let mut choice = if boolean {
                    json!({"type": "boolean"})
                } else {
                    json!({"enum": found.names})
                };
                if let Some(map) = choice.as_object_mut() {
                    map.insert("x-labels".into(), Value::Object(labels));
                    for (code, labels) in other_labels {
                        map.insert(format!("x-labels-{code}"), Value::Object(labels));
                    }
                }
                if boolean {
                    (ValueKind::Boolean, choice)
                } else if matches!(question, Question::One(_)) {
                    (ValueKind::One(found.names.clone()), choice)
                } else {
                    (
                        ValueKind::Many(found.names.clone()),
                        json!({"type": "array", "items": choice, "uniqueItems": true}),
                    )
                }
            }
        };
        if let Value::Object(keywords) = keywords {
            schema.extend(keywords);
        }
        if let Some((format, header)) = self.columns.get(row, "x-format") {
            if !FORMATS.contains(&format) {
                self.problems.push(Problem::new(
                    at("survey", row.number, header),
                    format!(
                        "'{format}' is not a format this server checks: {}",
                        FORMATS.join(", ")
                    ),
                    format!("本服务器不检查格式“{format}”，可用：{}", FORMATS.join("、")),
                ));
            } else if value == ValueKind::Text && !matches!(question, Question::Calculate) {
                schema.insert("format".into(), json!(format));
            } else {
                self.problems.push(Problem::new(
                    at("survey", row.number, header),
                    "x-format is for text questions",
                    "x-format 只能用于文本题",
                ));
            }
        }
        if let Some((text, header)) = self.columns.get(row, "default") {
            match typed_default(&value, text) {
                Some(default) => {
                    schema.insert("default".into(), default);
                }
                None => self.problems.push(Problem::new(
                    at("survey", row.number, header),
                    format!("'{text}' is not a possible answer to this question"),
                    format!("默认值“{text}”不是本题可能的回答"),
                )),
            }
        }
        if let Some((text, header)) = self.columns.get(row, "read_only") {
            match text.to_lowercase().as_str() {
                "yes" | "true" | "true()" => {
                    schema.insert("readOnly".into(), json!(true));
                }
                "no" | "false" | "false()" => {}
                _ => self.problems.push(Problem::new(
                    at("survey", row.number, header),
                    format!("read_only must be yes or no, not '{text}'"),
                    format!("read_only 只能填 yes 或 no，不能是“{text}”"),
                )),
            }
        }
        node.value = value;
    }
}

fn typed_default(kind: &ValueKind, text: &str) -> Option<Value> {
    match kind {
        ValueKind::Integer => text.parse::<i64>().ok().map(|n| json!(n)),
        ValueKind::Decimal => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(|n| json!(n)),
        ValueKind::Boolean => match text {
            "true" => Some(json!(true)),
            "false" => Some(json!(false)),
            _ => None,
        },
        ValueKind::One(names) => names.iter().any(|n| n == text).then(|| json!(text)),
        ValueKind::Many(names) => {
            let picked: Vec<&str> = text.split_whitespace().collect();
            picked
                .iter()
                .all(|p| names.iter().any(|n| n == p))
                .then(|| json!(picked))
        }
        // A default computed from an expression (`today()`, `${other}`) is not mapped.
        ValueKind::Text | ValueKind::Temporal if !text.contains(['(', '$']) => Some(json!(text)),
        ValueKind::Text | ValueKind::Temporal | ValueKind::Calculated | ValueKind::Other => None,
    }
}

fn noun(container: Container) -> &'static str {
    match container {
        Container::Group => "group",
        Container::Repeat => "repeat",
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Where each name is and what it holds.
struct Entry {
    path: Vec<Step>,
    value: ValueKind,
    row: u32,
    container: Option<Container>,
    /// It has a relevance of its own.
    conditional: bool,
    /// A group that is there whenever the object it is in is.
    always: bool,
}

fn index_names(
    node: &Node,
    parent: &[Step],
    index: &mut BTreeMap<String, Entry>,
    problems: &mut Vec<Problem>,
) {
    for child in &node.children {
        let mut path = parent.to_vec();
        path.push(Step::Prop(child.name.clone()));
        if let Some(first) = index.get(&child.name) {
            problems.push(Problem::new(
                at("survey", child.row, "name"),
                format!("the name '{}' is used already (row {}): names are unique in a form, so ${{{}}} means one field", child.name, first.row, child.name),
                format!("名称“{}”已在第{}行使用：问卷中的名称不能重复", child.name, first.row),
            ));
            continue;
        }
        index.insert(
            child.name.clone(),
            Entry {
                path: path.clone(),
                value: child.value.clone(),
                row: child.row,
                container: child.container,
                conditional: child.relevant.is_some(),
                always: child.relevant.is_none() && must_be_there(child),
            },
        );
        let inner = object_path(&path, child.container);
        index_names(child, &inner, index, problems);
    }
}

/// The path of the object a container's children are in.
fn object_path(path: &[Step], container: Option<Container>) -> Vec<Step> {
    let mut inner = path.to_vec();
    if container == Some(Container::Repeat) {
        inner.push(Step::Items);
    }
    inner
}

/// The nearest object `x-rules` live in: the root or an item of a repeat.
fn rule_site(path: &[Step]) -> Vec<Step> {
    let end = path
        .iter()
        .rposition(|s| *s == Step::Items)
        .map_or(0, |i| i + 1);
    path[..end].to_vec()
}

struct Emitter<'a> {
    index: &'a BTreeMap<String, Entry>,
    /// (object path, `allOf` or `x-rules`, entry): conditions and rules placed on objects above.
    placements: Vec<(Vec<Step>, &'static str, Value)>,
    problems: &'a mut Vec<Problem>,
}

impl Emitter<'_> {
    /// The object schema of `node`'s children (the root or a group or repeat item);
    /// `inherited` are the relevances of the groups the object is in, up to a repeat's item.
    fn object(&mut self, node: &Node, path: &[Step], inherited: &[&str]) -> Map<String, Value> {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for child in &node.children {
            let mut child_path = path.to_vec();
            child_path.push(Step::Prop(child.name.clone()));
            let schema = self.node(child, &child_path, inherited);
            let always = child.relevant.is_none() && (child.required || must_be_there(child));
            if always {
                required.push(json!(child.name));
            }
            properties.insert(child.name.clone(), schema);
        }
        let mut object = Map::new();
        object.insert("type".into(), json!("object"));
        object.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            object.insert("required".into(), Value::Array(required));
        }
        object.insert("additionalProperties".into(), json!(false));
        object
    }

    fn node(&mut self, node: &Node, path: &[Step], inherited: &[&str]) -> Value {
        let mut schema = node.schema.clone();
        match node.container {
            Some(Container::Group) => {
                let mut within = inherited.to_vec();
                within.extend(node.relevant.as_ref().map(|(text, _)| text.as_str()));
                schema.extend(self.object(node, path, &within));
            }
            Some(Container::Repeat) => {
                let item_path = object_path(path, node.container);
                // A repeat that is not relevant has no items: its questions need not know why.
                let mut item = self.object(node, &item_path, &[]);
                if let Some((names, header)) = &node.unique {
                    let place = at("survey", node.row, header);
                    if let Some(pointers) = self.pointers(names, &item_path, &place) {
                        item.insert("x-unique".into(), json!(pointers));
                    }
                }
                schema.insert("type".into(), json!("array"));
                if let Some(min) = node.min_items {
                    schema.insert("minItems".into(), json!(min));
                }
                if let Some(max) = node.max_items {
                    schema.insert("maxItems".into(), json!(max));
                }
                schema.insert("items".into(), Value::Object(item));
            }
            None => {
                if let Some((text, header)) = &node.constraint {
                    self.constraint(node, path, &mut schema, text, header);
                }
                if let Some((text, header)) = &node.rules {
                    self.rules(node, path, text, header);
                }
            }
        }
        if let Some((text, header)) = &node.relevant {
            self.relevant(node, path, text, header, inherited);
        }
        Value::Object(schema)
    }

    fn frame(&mut self, row: u32, header: &str, column: &str, problem: String) {
        let zh = format!("{column} 无法转换为 JSON Schema：{problem}");
        self.problems
            .push(Problem::new(at("survey", row, header), problem, zh));
    }

    /// `relevant`: an `if/then/else`, its `if` also holding the relevances of the groups the
    /// question is in (XLSForm shows a question only when its groups are shown too).
    fn relevant(
        &mut self,
        node: &Node,
        path: &[Step],
        text: &str,
        header: &str,
        inherited: &[&str],
    ) {
        let own = match expr::parse(text) {
            Ok(parsed) => parsed,
            Err(error) => return self.frame(node.row, header, "relevant", error.to_string()),
        };
        // A group's own expression that does not parse is reported on the group's row.
        let with_groups = inherited
            .iter()
            .filter_map(|text| expr::parse(text).ok())
            .fold(own.clone(), |all, group| {
                expr::Expr::And(Box::new(group), Box::new(all))
            });
        let placed = self
            .placed(&with_groups, path)
            .map(|placed| (placed, false));
        // Groups whose condition looks outside the repeat the question's looks into: their own
        // conditions forbid them; the question's then only requires it where its group is.
        let placed = match placed {
            Err(_) if !inherited.is_empty() => self.placed(&own, path).map(|placed| (placed, true)),
            other => other,
        };
        let ((context, condition), lenient) = match placed {
            Ok(placed) => placed,
            Err(problem) => return self.frame(node.row, header, "relevant", problem),
        };
        let below = &path[context.len()..];
        let mut rule = Map::new();
        rule.insert("if".into(), condition);
        if node.required || must_be_there(node) {
            let index = self.index;
            let optional = |name: &str| lenient && index.get(name).is_some_and(|e| e.conditional);
            rule.insert("then".into(), nested_required(below, &optional));
        }
        rule.insert("else".into(), nested_forbidden(below));
        self.placements
            .push((context, "allOf", Value::Object(rule)));
    }

    /// Where a condition on the question at `path` sits, and its `if` there: the deepest object
    /// holding the question and every field named that is there whenever its repeat item (or the
    /// form) is, so that a group left out cannot skip the condition.
    fn placed(&self, parsed: &expr::Expr, path: &[Step]) -> Result<(Vec<Step>, Value), String> {
        let parent = &path[..path.len() - 1];
        let mut context: Vec<Step> = parent.to_vec();
        let mut names = Vec::new();
        referenced(parsed, &mut names);
        for name in &names {
            if let Some(entry) = self.index.get(name) {
                let theirs = &entry.path[..entry.path.len() - 1];
                let common = context
                    .iter()
                    .zip(theirs)
                    .take_while(|(a, b)| a == b)
                    .count();
                context.truncate(common);
            }
        }
        while let Some(Step::Prop(_)) = context.last() {
            if path.get(context.len()) == Some(&Step::Items) {
                context.pop();
            } else {
                break;
            }
        }
        let site = rule_site(&context).len();
        let optional_group = context[site..].iter().position(|step| match step {
            Step::Prop(name) => self.index.get(name).is_none_or(|e| !e.always),
            Step::Items => false,
        });
        if let Some(at) = optional_group {
            context.truncate(site + at);
        }
        let index = self.index;
        let resolve = |name: &str| -> Result<FieldAt, String> {
            let entry = index
                .get(name)
                .ok_or_else(|| format!("${{{name}}} names no question of this form"))?;
            if entry.container.is_some() {
                return Err(format!("${{{name}}} is a group or repeat, not a question"));
            }
            let below = &entry.path[context.len()..];
            let steps = below
                .iter()
                .map(|step| match step {
                    Step::Prop(name) => Ok(name.clone()),
                    Step::Items => Err(format!(
                        "${{{name}}} is inside a repeat this question is not in"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(FieldAt {
                steps,
                kind: entry.value.clone(),
            })
        };
        let condition = logic::condition(parsed, &resolve)?;
        Ok((context, condition))
    }

    fn constraint(
        &mut self,
        node: &Node,
        path: &[Step],
        schema: &mut Map<String, Value>,
        text: &str,
        header: &str,
    ) {
        let parsed = match expr::parse(text) {
            Ok(parsed) => parsed,
            Err(error) => return self.frame(node.row, header, "constraint", error.to_string()),
        };
        let (keywords, comparisons) = match logic::constraint(&parsed, &node.value) {
            Ok(found) => found,
            Err(problem) => return self.frame(node.row, header, "constraint", problem),
        };
        match keywords {
            Value::Bool(true) => {}
            Value::Object(keywords) if keywords.keys().all(|k| !schema.contains_key(k)) => {
                schema.extend(keywords);
            }
            other => {
                let all = schema.entry("allOf").or_insert_with(|| json!([]));
                if let Value::Array(all) = all {
                    all.push(other);
                }
            }
        }
        if let Some(problem) = schema_patterns(schema).find_map(|p| compile::pattern_problem(&p)) {
            return self.frame(
                node.row,
                header,
                "constraint",
                format!("the regular expression cannot be used: {problem}"),
            );
        }
        let site = rule_site(path);
        for (op, name) in comparisons {
            let place = at("survey", node.row, header);
            let Some(right) = self
                .pointers(&name, &site, &place)
                .and_then(|mut p| p.pop())
            else {
                continue;
            };
            let other = self.index.get(&name).map(|e| &e.value);
            if !comparable(op, &node.value, other) {
                self.frame(node.row, header, "constraint", format!(
                    "'. {} ${{{name}}}' compares answers that are not both numbers, both dates or times, or (with = and !=) both texts or choices",
                    op.as_str()
                ));
                continue;
            }
            let left = pointer(&path[site.len()..]);
            self.placements.push((
                site.clone(),
                "x-rules",
                json!({"rule": "compare", "left": left, "op": op.as_str(), "right": right}),
            ));
        }
    }

    /// `x-rules` on a question: `resident-id-birth-date(${birth_date}); resident-id-gender(${gender}, male, female)`.
    fn rules(&mut self, node: &Node, path: &[Step], text: &str, header: &str) {
        let site = rule_site(path);
        let place = at("survey", node.row, header);
        let this = pointer(&path[site.len()..]);
        for declaration in text.split(';').map(str::trim).filter(|d| !d.is_empty()) {
            let (name, args) = match declaration.split_once('(') {
                Some((name, rest)) => (
                    name.trim(),
                    rest.trim_end()
                        .trim_end_matches(')')
                        .split(',')
                        .map(str::trim)
                        .collect::<Vec<_>>(),
                ),
                None => (declaration, Vec::new()),
            };
            let field = |emitter: &mut Self, arg: Option<&&str>| -> Option<String> {
                let arg = arg?.trim_start_matches("${").trim_end_matches('}');
                emitter
                    .pointers(arg, &site, &place)
                    .and_then(|mut p| p.pop())
            };
            let rule = match (name, args.len()) {
                ("resident-id-birth-date", 1) => field(self, args.first()).map(|birth_date| json!({"rule": name, "id": this, "birth_date": birth_date})),
                ("resident-id-gender", 3) => field(self, args.first()).map(|gender| json!({"rule": name, "id": this, "gender": gender, "male": args[1], "female": args[2]})),
                _ => {
                    self.problems.push(Problem::new(
                        place.clone(),
                        format!("'{declaration}' is not a rule: write resident-id-birth-date(${{birth_date}}) or resident-id-gender(${{gender}}, male, female) on the ID number's row"),
                        format!("“{declaration}”不是可用的规则：请在身份证号一行写 resident-id-birth-date(${{birth_date}}) 或 resident-id-gender(${{gender}}, male, female)"),
                    ));
                    None
                }
            };
            if let Some(rule) = rule {
                self.placements.push((site.clone(), "x-rules", rule));
            }
        }
    }

    /// The JSON Pointers (inside the object at `site`) of the questions named in `names`
    /// (separated by commas or spaces, with or without `${}`).
    fn pointers(&mut self, names: &str, site: &[Step], place: &str) -> Option<Vec<String>> {
        if names.trim().is_empty() {
            self.problems.push(Problem::new(
                place.to_owned(),
                "a question's name is missing here",
                "此处缺少题目名称",
            ));
            return None;
        }
        let mut pointers = Vec::new();
        for name in names
            .split([',', ' '])
            .map(|n| n.trim().trim_start_matches("${").trim_end_matches('}'))
            .filter(|n| !n.is_empty())
        {
            let found = self.index.get(name).filter(|e| e.container.is_none());
            let below = found.and_then(|entry| {
                let inside = entry.path.starts_with(site)
                    && !entry.path[site.len()..].contains(&Step::Items);
                inside.then(|| pointer(&entry.path[site.len()..]))
            });
            match below {
                Some(pointer) => pointers.push(pointer),
                None => {
                    self.problems.push(Problem::new(
                        place.to_owned(),
                        format!("'{name}' is not a question of the same object (the form, or the same repeat)"),
                        format!("“{name}”不是同一层级（问卷或同一重复组）中的题目"),
                    ));
                    return None;
                }
            }
        }
        Some(pointers)
    }
}

/// Whether a compare rule can judge two answers of these kinds as XLSForm would: numbers as
/// numbers, dates and times as ISO text, other texts only for (in)equality.
fn comparable(op: Op, left: &ValueKind, right: Option<&ValueKind>) -> bool {
    use ValueKind::{Calculated, Decimal, Integer, One, Temporal, Text};
    let number = |k: &ValueKind| matches!(k, Integer | Decimal | Calculated);
    let text = |k: &ValueKind| matches!(k, Text | One(_));
    match right {
        Some(right) if number(left) && number(right) => true,
        Some(Temporal) => *left == Temporal,
        Some(right) => text(left) && text(right) && matches!(op, Op::Eq | Op::Ne),
        None => false,
    }
}

/// Every `pattern` in a question's keywords (at any depth: `anyOf`, `not`, ...).
fn schema_patterns(schema: &Map<String, Value>) -> impl Iterator<Item = String> {
    let mut found = Vec::new();
    let mut stack: Vec<&Value> = schema.values().collect();
    if let Some(Value::String(p)) = schema.get("pattern") {
        found.push(p.clone());
    }
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(p)) = map.get("pattern") {
                    found.push(p.clone());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found.into_iter()
}

fn pointer(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|step| match step {
            Step::Prop(name) => format!("/{}", name.replace('~', "~0").replace('/', "~1")),
            Step::Items => String::new(),
        })
        .collect()
}

fn referenced(parsed: &expr::Expr, out: &mut Vec<String>) {
    match parsed {
        expr::Expr::Field(name) => out.push(name.clone()),
        expr::Expr::Compare(a, _, b) | expr::Expr::And(a, b) | expr::Expr::Or(a, b) => {
            referenced(a, out);
            referenced(b, out);
        }
        expr::Expr::Call(_, args) => args.iter().for_each(|a| referenced(a, out)),
        _ => {}
    }
}

/// `then`: the question required, and the groups it is in (not a repeat, which may have no
/// items, nor a group `optional` says may be left out).
fn nested_required(below: &[Step], optional: &dyn Fn(&str) -> bool) -> Value {
    let Some((Step::Prop(name), above)) = below.split_last() else {
        return json!(true);
    };
    let mut inner = json!({"required": [name]});
    for (i, step) in above.iter().enumerate().rev() {
        inner = match step {
            Step::Items => json!({"items": inner}),
            Step::Prop(p) if above.get(i + 1) == Some(&Step::Items) || optional(p) => {
                json!({"properties": {p: inner}})
            }
            Step::Prop(p) => json!({"properties": {p: inner}, "required": [p]}),
        };
    }
    inner
}

/// A group is there when something in it must be; a repeat when it needs items.
fn must_be_there(node: &Node) -> bool {
    match node.container {
        Some(Container::Repeat) => node.min_items.unwrap_or(0) > 0,
        Some(Container::Group) => node
            .children
            .iter()
            .any(|c| c.relevant.is_none() && (c.required || must_be_there(c))),
        None => false,
    }
}

/// `else`: the question must not be answered.
fn nested_forbidden(below: &[Step]) -> Value {
    let Some((Step::Prop(name), above)) = below.split_last() else {
        return json!(false);
    };
    above.iter().rev().fold(
        json!({"properties": {name: false}}),
        |inner, step| match step {
            Step::Prop(p) => json!({"properties": {p: inner}}),
            Step::Items => json!({"items": inner}),
        },
    )
}

/// The object schema at `path` inside `body` (the root's keywords); paths come from the tree
/// the body was built from, so one is always found.
fn object_at<'v>(
    body: &'v mut Map<String, Value>,
    path: &[Step],
) -> Option<&'v mut Map<String, Value>> {
    let Some((step, rest)) = path.split_first() else {
        return Some(body);
    };
    let next = match step {
        Step::Prop(name) => body
            .get_mut("properties")
            .and_then(Value::as_object_mut)
            .and_then(|p| p.get_mut(name)),
        Step::Items => body.get_mut("items"),
    };
    object_at(next?.as_object_mut()?, rest)
}

fn same_condition(rule: &Value, other: &Value) -> bool {
    rule.get("if")
        .is_some_and(|condition| Some(condition) == other.get("if"))
}

/// `then` and `else` of `other` into `rule` (same `if`); each branch only requires or forbids.
fn merge_branches(rule: &mut Value, other: &Value) {
    for branch in ["then", "else"] {
        let Some(theirs) = other.get(branch).and_then(Value::as_object) else {
            continue;
        };
        let Some(rule) = rule.as_object_mut() else {
            return;
        };
        let both = match rule.get(branch).and_then(Value::as_object) {
            Some(mine) => logic::merged(mine, theirs)
                .map_or_else(|| json!({"allOf": [mine, theirs]}), Value::Object),
            None => Value::Object(theirs.clone()),
        };
        rule.insert(branch.into(), both);
    }
}
