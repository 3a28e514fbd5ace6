//! Validation messages a field worker can act on, in Chinese or English.
//!
//! A message names the field by its label and position and says what is wrong, never what was
//! typed (ID numbers are personal data): `第2位劳动力 · 身份证号：校验位不正确` /
//! `Labourer 2 · ID number: check digit is wrong`. Labels come from the schema: `title` (Chinese),
//! `x-title-en` (English, else the property name), and for array items `x-item-label`
//! (`{"zh-CN": "第{n}位劳动力", "en": "Labourer {n}"}`, else "title #n").
//!
//! What is wrong is a stable key with parameters (`min_length`, `{"limit": 2}`), and the words
//! are templates in one catalogue per language (`MESSAGES`, `ZH`, `EN`), served at
//! `GET /api/v1/messages`. Every message is the catalogue filled in by `fill`, so the app, which
//! validates offline, can say exactly what the server says from `key`, `params` and the catalogue.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::formats::{IdProblem, resident_id};

/// Every message, by key: (key, Chinese, English). The only place the words are written.
#[rustfmt::skip]
const MESSAGES: &[(&str, &str, &str)] = &[
    ("required", "必须填写", "is required"),
    ("type.string", "类型不对，应为文字", "must be text"),
    ("type.integer", "类型不对，应为整数", "must be a whole number"),
    ("type.number", "类型不对，应为数字", "must be a number"),
    ("type.boolean", "类型不对，应为是/否", "must be yes or no"),
    ("type.array", "类型不对，应为列表", "must be a list"),
    ("type.object", "类型不对，应为一组回答", "must be a group of answers"),
    ("type.other", "类型不对，应为其他类型", "must be of type {type}"),
    ("enum", "不是可选的答案", "is not one of the allowed answers"),
    ("const", "必须选择规定的答案", "must have the required answer"),
    ("pattern", "格式不正确", "has the wrong format"),
    ("format", "不符合格式 {format}", "is not a valid {format}"),
    ("format.date", "不是有效日期（年-月-日）", "is not a valid date (YYYY-MM-DD)"),
    ("format.cn-mobile", "应为以1开头的11位手机号", "must be an 11-digit mobile number starting with 1"),
    ("resident_id.shape", "应为18位，最后一位可以是X", "must be 18 characters, the last may be X"),
    ("resident_id.birth_date", "其中的出生日期无效", "contains an impossible date of birth"),
    ("resident_id.check_digit", "校验位不正确", "check digit is wrong"),
    ("minimum", "不能小于{limit}", "must be at least {limit}"),
    ("maximum", "不能大于{limit}", "must be at most {limit}"),
    ("not_empty", "不能为空", "must not be empty"),
    ("min_length", "至少{limit}个字", "must have at least {limit} characters"),
    ("max_length", "最多{limit}个字", "must have at most {limit} characters"),
    ("min_items", "至少要有{limit}项", "needs at least {limit} entries"),
    ("max_items", "最多{limit}项", "may have at most {limit} entries"),
    ("unique_items", "有重复的选项", "lists a choice twice"),
    ("unknown_fields", "有问卷中没有的字段：{fields}", "has fields the form does not ask: {fields}"),
    ("not_asked", "根据其他回答，此项不应填写", "should not be answered, given the other answers"),
    ("id_birth_date", "与身份证号中的出生日期不一致", "does not match the date of birth in the ID number"),
    ("id_gender", "与身份证号中的性别不一致", "does not match the gender in the ID number"),
    ("compare.lt", "应小于“{other}”", "must be less than “{other}”"),
    ("compare.le", "不能大于“{other}”", "must be at most “{other}”"),
    ("compare.gt", "应大于“{other}”", "must be greater than “{other}”"),
    ("compare.ge", "不能小于“{other}”", "must be at least “{other}”"),
    ("compare.eq", "应与“{other}”相同", "must be the same as “{other}”"),
    ("compare.ne", "不能与“{other}”相同", "must differ from “{other}”"),
    ("attachment.name", "文件名应为1到100个字，不能含有 / \\ 或以 . 开头", "file name must be 1 to 100 characters, without / or \\, not starting with ."),
    ("attachment.duplicate", "与本问卷中另一个文件同名", "names the same file as another answer of this submission"),
    // Anything else, in the validator's own (masked, English) words.
    ("other", "{text}", "{text}"),
];

/// How a message is put together from the field's name and the problem.
#[derive(Clone, Copy, Debug, Serialize, utoipa::ToSchema)]
pub struct Framing {
    /// Between the labels along a path: `第2位劳动力 · 身份证号`.
    pub separator: &'static str,
    /// The whole message: `{field}：{problem}`.
    pub message: &'static str,
    /// The name of the field at the empty pointer, the whole questionnaire.
    pub questionnaire: &'static str,
    /// An array item whose array has no `x-item-label`: `{label} #{n}` (n counts from 1).
    pub item: &'static str,
    /// Between the entries of a list parameter, such as `{fields}`.
    pub list_separator: &'static str,
}

const ZH: Framing = Framing {
    separator: " · ",
    message: "{field}：{problem}",
    questionnaire: "问卷",
    item: "{label} #{n}",
    list_separator: "、",
};

const EN: Framing = Framing {
    separator: " · ",
    message: "{field}: {problem}",
    questionnaire: "Questionnaire",
    item: "{label} #{n}",
    list_separator: ", ",
};

/// The language of messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Lang {
    #[serde(rename = "zh-CN")]
    Zh,
    #[serde(rename = "en")]
    En,
}

impl Lang {
    /// The caller's preference (`Accept-Language`), else the form's `x-default-language`, else English.
    pub fn negotiate(accept: Option<&str>, form_default: Option<&str>) -> Lang {
        let mut ranges: Vec<(f32, &str)> = accept
            .unwrap_or_default()
            .split(',')
            .filter_map(|range| {
                let mut parts = range.split(';');
                let tag = parts.next()?.trim();
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(1.0);
                (!tag.is_empty()).then_some((q, tag))
            })
            .collect();
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranges
            .iter()
            .chain(form_default.map(|d| (0.0, d)).iter())
            .find_map(|(_, tag)| Lang::of_tag(tag))
            .unwrap_or(Lang::En)
    }

    fn of_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language's key in `x-item-label`.
    fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    fn framing(self) -> Framing {
        match self {
            Lang::Zh => ZH,
            Lang::En => EN,
        }
    }

    /// The template of a message key; `None` for a key the catalogue does not have.
    pub fn template(self, key: &str) -> Option<&'static str> {
        let (_, zh, en) = MESSAGES.iter().find(|(k, ..)| *k == key)?;
        Some(match self {
            Lang::Zh => zh,
            Lang::En => en,
        })
    }
}

/// The words of one language, as `GET /api/v1/messages` serves them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Catalogue {
    pub lang: Lang,
    /// Message key → template; `{name}` stands for the detail's `params.name`.
    #[schema(value_type = std::collections::HashMap<String, String>)]
    pub messages: Map<String, Value>,
    /// How a field is named and a message framed.
    pub field: Framing,
}

/// The catalogue of `lang`, keys in a fixed order.
pub fn catalogue(lang: Lang) -> Catalogue {
    let messages = MESSAGES
        .iter()
        .map(|&(key, ..)| (key.to_owned(), lang.template(key).unwrap_or(key).into()))
        .collect();
    Catalogue {
        lang,
        messages,
        field: lang.framing(),
    }
}

/// What is wrong with a value, without the value: a catalogue key and what its template names.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub key: &'static str,
    /// Empty for most keys; `limit` (a number), `format`, `type`, `fields` (names), `text` or
    /// `other` (the title of the field a compare rule names).
    pub params: Map<String, Value>,
}

impl Problem {
    /// A problem without parameters.
    pub fn new(key: &'static str) -> Self {
        Self {
            key,
            params: Map::new(),
        }
    }

    fn with(key: &'static str, name: &str, value: impl Into<Value>) -> Self {
        let mut problem = Self::new(key);
        problem.params.insert(name.to_owned(), value.into());
        problem
    }

    /// Reads a validation error's kind; `instance` is only looked at to tell ID problems apart.
    pub fn of(
        kind: &ValidationErrorKind,
        instance: &Value,
        masked: impl FnOnce() -> String,
    ) -> Self {
        use ValidationErrorKind as Kind;
        match kind {
            Kind::Required { .. } => Self::new("required"),
            Kind::Type {
                kind: TypeKind::Single(t),
            } => match t.to_string().as_str() {
                "string" => Self::new("type.string"),
                "integer" => Self::new("type.integer"),
                "number" => Self::new("type.number"),
                "boolean" => Self::new("type.boolean"),
                "array" => Self::new("type.array"),
                "object" => Self::new("type.object"),
                other => Self::with("type.other", "type", other),
            },
            Kind::Type {
                kind: TypeKind::Multiple(set),
            } => Self::with("type.other", "type", format!("{set:?}")),
            Kind::Enum { .. } => Self::new("enum"),
            Kind::Constant { .. } => Self::new("const"),
            Kind::Pattern { .. } => Self::new("pattern"),
            Kind::Format { format } => {
                match (format.as_str(), instance.as_str().map(resident_id)) {
                    ("cn-resident-id", Some(Err(IdProblem::Shape))) => {
                        Self::new("resident_id.shape")
                    }
                    ("cn-resident-id", Some(Err(IdProblem::BirthDate))) => {
                        Self::new("resident_id.birth_date")
                    }
                    ("cn-resident-id", Some(Err(IdProblem::CheckDigit))) => {
                        Self::new("resident_id.check_digit")
                    }
                    ("date", _) => Self::new("format.date"),
                    ("cn-mobile", _) => Self::new("format.cn-mobile"),
                    (other, _) => Self::with("format", "format", other),
                }
            }
            Kind::Minimum { limit } | Kind::ExclusiveMinimum { limit } => {
                Self::with("minimum", "limit", limit.clone())
            }
            Kind::Maximum { limit } | Kind::ExclusiveMaximum { limit } => {
                Self::with("maximum", "limit", limit.clone())
            }
            Kind::MinLength { limit: 1 } => Self::new("not_empty"),
            Kind::MinLength { limit } => Self::with("min_length", "limit", *limit),
            Kind::MaxLength { limit } => Self::with("max_length", "limit", *limit),
            Kind::MinItems { limit } => Self::with("min_items", "limit", *limit),
            Kind::MaxItems { limit } => Self::with("max_items", "limit", *limit),
            Kind::UniqueItems => Self::new("unique_items"),
            Kind::AdditionalProperties { unexpected } => {
                Self::with("unknown_fields", "fields", unexpected.clone())
            }
            // A question that should not have been answered, e.g. income when unemployed.
            Kind::FalseSchema => Self::new("not_asked"),
            _ => Self::with("other", "text", masked()),
        }
    }

    /// What is wrong, as a sentence fragment: the key's template filled with the parameters.
    pub fn describe(&self, lang: Lang) -> String {
        let template = lang.template(self.key).unwrap_or(self.key);
        let separator = lang.framing().list_separator;
        fill(template, |name| {
            self.params.get(name).map(|value| text(value, separator))
        })
    }
}

/// Replaces each `{name}` (no braces inside) that `value` knows, in one pass from the left; the
/// rest of the template, other braces included, is kept as written. Filled-in text is never
/// looked at again. (In JavaScript: `t.replace(/\{([^{}]*)\}/g, (m, n) => n in p ? p[n] : m)`.)
pub fn fill(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(['{', '}']) {
            Some(close) if after[close..].starts_with('}') => {
                let name = &after[..close];
                match value(name) {
                    Some(text) => out.push_str(&text),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A parameter as text: a string as it is, a list joined by `separator`, a number as JSON writes it.
fn text(value: &Value, separator: &str) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| text(item, separator))
            .collect::<Vec<_>>()
            .join(separator),
        other => other.to_string(),
    }
}

/// `第2位劳动力 · 身份证号：校验位不正确`: the field at `pointer`, named from `schema`, and the problem.
pub fn message(schema: &Value, pointer: &str, problem: &Problem, lang: Lang) -> String {
    let field = field_name(schema, pointer, lang);
    let problem = problem.describe(lang);
    fill(lang.framing().message, |name| match name {
        "field" => Some(field.clone()),
        "problem" => Some(problem.clone()),
        _ => None,
    })
}

/// The labels along `pointer`, joined by the separator; the whole questionnaire when the pointer is empty.
pub fn field_name(schema: &Value, pointer: &str, lang: Lang) -> String {
    let framing = lang.framing();
    let mut parts = Vec::new();
    let mut current = Some(schema);
    let segments: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut i = 0;
    while i < segments.len() {
        let segment = &segments[i];
        let property = current
            .and_then(|s| s.get("properties"))
            .and_then(|p| p.get(segment));
        let label = property.map_or_else(|| segment.clone(), |p| label(p, segment, lang));
        let index = segments.get(i + 1).and_then(|s| s.parse::<usize>().ok());
        match (property.and_then(|p| p.get("items")), index) {
            (Some(items), Some(index)) => {
                parts.push(item_label(
                    property.unwrap_or(&Value::Null),
                    &label,
                    index + 1,
                    lang,
                ));
                current = Some(items);
                i += 2;
            }
            _ => {
                parts.push(label);
                current = property;
                i += 1;
            }
        }
    }
    if parts.is_empty() {
        return framing.questionnaire.to_owned();
    }
    parts.join(framing.separator)
}

fn label(property: &Value, key: &str, lang: Lang) -> String {
    let text = |k: &str| property.get(k).and_then(Value::as_str).map(str::to_owned);
    match lang {
        Lang::Zh => text("title"),
        Lang::En => text("x-title-en"),
    }
    .unwrap_or_else(|| key.to_owned())
}

/// Item `n` (from 1) of an array: its `x-item-label` in `lang`, else `{label} #{n}`.
fn item_label(array: &Value, label: &str, n: usize, lang: Lang) -> String {
    let template = array
        .get("x-item-label")
        .and_then(|l| l.get(lang.tag()))
        .and_then(Value::as_str)
        .unwrap_or(lang.framing().item);
    fill(template, |name| match name {
        "label" => Some(label.to_owned()),
        "n" => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"properties": {
            "village": {"title": "村(社区)", "x-title-en": "Village"},
            "members": {"title": "劳动力", "x-item-label": {"zh-CN": "第{n}位劳动力", "en": "Labourer {n}"},
                        "items": {"properties": {"id_number": {"title": "身份证号", "x-title-en": "ID number"}}}},
            "tags": {"title": "标签", "items": {"type": "string"}}
        }})
    }

    #[test]
    fn fields_are_named_by_label_and_position() {
        let id = Problem::new("resident_id.check_digit");
        assert_eq!(
            message(&schema(), "/members/1/id_number", &id, Lang::Zh),
            "第2位劳动力 · 身份证号：校验位不正确"
        );
        assert_eq!(
            message(&schema(), "/members/1/id_number", &id, Lang::En),
            "Labourer 2 · ID number: check digit is wrong"
        );
        assert_eq!(field_name(&schema(), "/tags/0", Lang::Zh), "标签 #1");
        assert_eq!(field_name(&schema(), "/unknown", Lang::En), "unknown");
        assert_eq!(field_name(&schema(), "", Lang::Zh), "问卷");
    }

    #[test]
    fn the_language_follows_accept_language_then_the_form() {
        assert_eq!(
            Lang::negotiate(Some("en-US,en;q=0.9"), Some("zh-CN")),
            Lang::En
        );
        assert_eq!(
            Lang::negotiate(Some("fr, zh-CN;q=0.8, en;q=0.5"), None),
            Lang::Zh
        );
        assert_eq!(Lang::negotiate(Some("fr"), Some("zh-CN")), Lang::Zh);
        assert_eq!(Lang::negotiate(None, None), Lang::En);
    }

    /// Every key has words in both languages, none empty, none the same in both (an
    /// untranslated message would be) but the validator's own text; keys are never repeated.
    #[test]
    fn every_key_has_a_message_in_both_languages() {
        let mut keys: Vec<&str> = MESSAGES.iter().map(|(key, ..)| *key).collect();
        for &(key, zh, en) in MESSAGES.iter().filter(|(key, ..)| *key != "other") {
            assert!(!zh.is_empty() && !en.is_empty() && zh != en, "{key}");
            assert!(!zh.is_ascii(), "{key} has no Chinese message: {zh}");
        }
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), MESSAGES.len(), "a key is listed twice");
    }

    #[test]
    fn parameters_fill_the_template_as_json_writes_them() {
        let limit = |limit: Value| Problem::with("minimum", "limit", limit).describe(Lang::En);
        assert_eq!(limit(json!(0)), "must be at least 0");
        assert_eq!(limit(json!(0.5)), "must be at least 0.5");
        let fields = Problem::with("unknown_fields", "fields", vec!["a", "b"]);
        assert_eq!(fields.describe(Lang::Zh), "有问卷中没有的字段：a、b");
        assert_eq!(
            fields.describe(Lang::En),
            "has fields the form does not ask: a, b"
        );
        assert_eq!(
            Problem::with("min_length", "limit", 2u64).describe(Lang::Zh),
            "至少2个字"
        );
    }

    #[test]
    fn filling_is_one_pass_and_keeps_what_it_does_not_know() {
        let value = |name: &str| (name == "a").then(|| "{b}".to_owned());
        assert_eq!(fill("{a}{b}", value), "{b}{b}");
        assert_eq!(fill("x{a", value), "x{a");
        assert_eq!(fill("{{a}}", value), "{{b}}");
        assert_eq!(fill("}{}{c}", value), "}{}{c}");
    }
}
