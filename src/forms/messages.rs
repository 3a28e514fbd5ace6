//! Validation messages a field worker can act on, in Chinese or English.
//!
//! A message names the field by its label and position and says what is wrong, never what was
//! typed (ID numbers are personal data): `第2位劳动力 · 身份证号：校验位不正确` /
//! `Labourer 2 · ID number: check digit is wrong`. Labels come from the schema: `title` (Chinese),
//! `x-title-en` (English, else the property name), and for array items `x-item-label`
//! (`{"zh-CN": "第{n}位劳动力", "en": "Labourer {n}"}`, else "title #n").

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::formats::{IdProblem, resident_id};

/// The language of messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
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

    fn key(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
}

/// What is wrong with a value, without the value.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    Required,
    Type(String),
    Choice,
    Constant,
    Pattern,
    Format(String),
    ResidentId(IdProblem),
    Minimum(String),
    Maximum(String),
    MinLength(u64),
    MaxLength(u64),
    MinItems(u64),
    MaxItems(u64),
    UniqueItems,
    UnknownFields(Vec<String>),
    /// A question that should not have been answered (a `false` schema, e.g. income when unemployed).
    NotAsked,
    IdBirthDate,
    IdGender,
    /// Anything else, in the validator's masked English words.
    Other(String),
}

impl Problem {
    /// Reads a validation error's kind; `instance` is only looked at to tell ID problems apart.
    pub fn of(
        kind: &ValidationErrorKind,
        instance: &Value,
        masked: impl FnOnce() -> String,
    ) -> Self {
        match kind {
            ValidationErrorKind::Required { .. } => Problem::Required,
            ValidationErrorKind::Type { kind } => Problem::Type(match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => format!("{set:?}"),
            }),
            ValidationErrorKind::Enum { .. } => Problem::Choice,
            ValidationErrorKind::Constant { .. } => Problem::Constant,
            ValidationErrorKind::Pattern { .. } => Problem::Pattern,
            ValidationErrorKind::Format { format } if format == "cn-resident-id" => {
                let problem = instance.as_str().map(resident_id).and_then(Result::err);
                problem.map_or(Problem::Format(format.clone()), Problem::ResidentId)
            }
            ValidationErrorKind::Format { format } => Problem::Format(format.clone()),
            ValidationErrorKind::Minimum { limit }
            | ValidationErrorKind::ExclusiveMinimum { limit } => {
                Problem::Minimum(limit.to_string())
            }
            ValidationErrorKind::Maximum { limit }
            | ValidationErrorKind::ExclusiveMaximum { limit } => {
                Problem::Maximum(limit.to_string())
            }
            ValidationErrorKind::MinLength { limit } => Problem::MinLength(*limit),
            ValidationErrorKind::MaxLength { limit } => Problem::MaxLength(*limit),
            ValidationErrorKind::MinItems { limit } => Problem::MinItems(*limit),
            ValidationErrorKind::MaxItems { limit } => Problem::MaxItems(*limit),
            ValidationErrorKind::UniqueItems => Problem::UniqueItems,
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                Problem::UnknownFields(unexpected.clone())
            }
            ValidationErrorKind::FalseSchema => Problem::NotAsked,
            _ => Problem::Other(masked()),
        }
    }

    /// What is wrong, as a sentence fragment.
    pub fn describe(&self, lang: Lang) -> String {
        let zh = lang == Lang::Zh;
        let pick = |zh_text: String, en_text: String| if zh { zh_text } else { en_text };
        match self {
            Problem::Required => pick("必须填写".into(), "is required".into()),
            Problem::Type(t) => pick(
                format!("类型不对，应为{}", type_zh(t)),
                format!("must be {}", type_en(t)),
            ),
            Problem::Choice => pick(
                "不是可选的答案".into(),
                "is not one of the allowed answers".into(),
            ),
            Problem::Constant => pick(
                "必须选择规定的答案".into(),
                "must have the required answer".into(),
            ),
            Problem::Pattern => pick("格式不正确".into(), "has the wrong format".into()),
            Problem::Format(f) if f == "date" => pick(
                "不是有效日期（年-月-日）".into(),
                "is not a valid date (YYYY-MM-DD)".into(),
            ),
            Problem::Format(f) if f == "cn-mobile" => pick(
                "应为以1开头的11位手机号".into(),
                "must be an 11-digit mobile number starting with 1".into(),
            ),
            Problem::Format(f) => pick(format!("不符合格式 {f}"), format!("is not a valid {f}")),
            Problem::ResidentId(IdProblem::Shape) => pick(
                "应为18位，最后一位可以是X".into(),
                "must be 18 characters, the last may be X".into(),
            ),
            Problem::ResidentId(IdProblem::BirthDate) => pick(
                "其中的出生日期无效".into(),
                "contains an impossible date of birth".into(),
            ),
            Problem::ResidentId(IdProblem::CheckDigit) => {
                pick("校验位不正确".into(), "check digit is wrong".into())
            }
            Problem::Minimum(n) => pick(format!("不能小于{n}"), format!("must be at least {n}")),
            Problem::Maximum(n) => pick(format!("不能大于{n}"), format!("must be at most {n}")),
            Problem::MinLength(1) => pick("不能为空".into(), "must not be empty".into()),
            Problem::MinLength(n) => pick(
                format!("至少{n}个字"),
                format!("must have at least {n} characters"),
            ),
            Problem::MaxLength(n) => pick(
                format!("最多{n}个字"),
                format!("must have at most {n} characters"),
            ),
            Problem::MinItems(n) => pick(
                format!("至少要有{n}项"),
                format!("needs at least {n} entries"),
            ),
            Problem::MaxItems(n) => pick(
                format!("最多{n}项"),
                format!("may have at most {n} entries"),
            ),
            Problem::UniqueItems => pick("有重复的选项".into(), "lists a choice twice".into()),
            Problem::UnknownFields(names) => pick(
                format!("有问卷中没有的字段：{}", names.join("、")),
                format!("has fields the form does not ask: {}", names.join(", ")),
            ),
            Problem::NotAsked => pick(
                "根据其他回答，此项不应填写".into(),
                "should not be answered, given the other answers".into(),
            ),
            Problem::IdBirthDate => pick(
                "与身份证号中的出生日期不一致".into(),
                "does not match the date of birth in the ID number".into(),
            ),
            Problem::IdGender => pick(
                "与身份证号中的性别不一致".into(),
                "does not match the gender in the ID number".into(),
            ),
            Problem::Other(masked) => masked.clone(),
        }
    }
}

fn type_zh(t: &str) -> &'static str {
    match t {
        "string" => "文字",
        "integer" => "整数",
        "number" => "数字",
        "boolean" => "是/否",
        "array" => "列表",
        "object" => "一组回答",
        _ => "其他类型",
    }
}

fn type_en(t: &str) -> String {
    match t {
        "integer" => "a whole number".into(),
        "number" => "a number".into(),
        "boolean" => "yes or no".into(),
        "string" => "text".into(),
        "array" => "a list".into(),
        "object" => "a group of answers".into(),
        other => format!("of type {other}"),
    }
}

/// `第2位劳动力 · 身份证号：校验位不正确`: the field at `pointer`, named from `schema`, and the problem.
pub fn message(schema: &Value, pointer: &str, problem: &Problem, lang: Lang) -> String {
    let field = field_name(schema, pointer, lang);
    match lang {
        Lang::Zh => format!("{field}：{}", problem.describe(lang)),
        Lang::En => format!("{field}: {}", problem.describe(lang)),
    }
}

/// The labels along `pointer`, joined with ` · `; the whole questionnaire when the pointer is empty.
pub fn field_name(schema: &Value, pointer: &str, lang: Lang) -> String {
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
        return match lang {
            Lang::Zh => "问卷".into(),
            Lang::En => "Questionnaire".into(),
        };
    }
    parts.join(" · ")
}

fn label(property: &Value, key: &str, lang: Lang) -> String {
    let text = |k: &str| property.get(k).and_then(Value::as_str).map(str::to_owned);
    match lang {
        Lang::Zh => text("title"),
        Lang::En => text("x-title-en"),
    }
    .unwrap_or_else(|| key.to_owned())
}

fn item_label(array: &Value, label: &str, n: usize, lang: Lang) -> String {
    let template = array
        .get("x-item-label")
        .and_then(|l| l.get(lang.key()))
        .and_then(Value::as_str);
    match template {
        Some(t) => t.replace("{n}", &n.to_string()),
        None => format!("{label} #{n}"),
    }
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
        let id = Problem::ResidentId(IdProblem::CheckDigit);
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

    /// Every problem the labour survey can produce has a message in both languages, none empty,
    /// none the same in both (an untranslated message would be).
    #[test]
    fn every_keyword_has_a_message_in_both_languages() {
        let problems = [
            Problem::Required,
            Problem::Type("integer".into()),
            Problem::Choice,
            Problem::Constant,
            Problem::Pattern,
            Problem::Format("date".into()),
            Problem::Format("cn-mobile".into()),
            Problem::ResidentId(IdProblem::Shape),
            Problem::ResidentId(IdProblem::BirthDate),
            Problem::ResidentId(IdProblem::CheckDigit),
            Problem::Minimum("0".into()),
            Problem::Maximum("12".into()),
            Problem::MinLength(1),
            Problem::MaxLength(50),
            Problem::MinItems(1),
            Problem::MaxItems(20),
            Problem::UniqueItems,
            Problem::UnknownFields(vec!["extra".into()]),
            Problem::NotAsked,
            Problem::IdBirthDate,
            Problem::IdGender,
        ];
        for problem in problems {
            let (zh, en) = (problem.describe(Lang::Zh), problem.describe(Lang::En));
            assert!(!zh.is_empty() && !en.is_empty() && zh != en, "{problem:?}");
            assert!(!zh.is_ascii(), "{problem:?} has no Chinese message: {zh}");
        }
    }
}
