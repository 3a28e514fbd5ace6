//! Rules JSON Schema cannot express, declared by name in a schema's `x-rules`.
//!
//! An object schema (the root, or the `items` of an array) may list rules that relate its fields:
//!
//! - `{"rule": "resident-id-birth-date", "id": "/id_number", "birth_date": "/birth_date"}`: the birth
//!   date must be the one digits 7–14 of the ID number encode;
//! - `{"rule": "resident-id-gender", "id": "/id_number", "gender": "/gender", "male": "male",
//!   "female": "female"}`: the gender must match the parity of digit 17 (odd for men);
//! - `{"rule": "compare", "left": "/labourers", "op": "<=", "right": "/household_size"}`: one
//!   answer compared with another (`<`, `<=`, `>`, `>=`, `=`, `!=`), numbers as numbers, texts
//!   (dates, times) as text; reported on `left`, naming `right` by its title. An XLSForm
//!   constraint `. <= ${household_size}` becomes one.
//!
//! Rules run after the schema passed, and only where both fields are present and readable (a
//! malformed ID number is the `format` check's to report). Field references are JSON Pointers
//! into the object.

use serde_json::Value;

use super::formats::resident_id;

/// One rule, bound to its fields.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    IdBirthDate {
        id: String,
        birth_date: String,
    },
    IdGender {
        id: String,
        gender: String,
        male: String,
        female: String,
    },
    Compare {
        left: String,
        op: CompareOp,
        right: String,
        /// How messages name the right-hand field: its `title`, else its property name.
        other: String,
    },
}

/// The comparisons of a `compare` rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CompareOp {
    const ALL: [(&'static str, CompareOp, &'static str); 6] = [
        ("<", CompareOp::Lt, "compare.lt"),
        ("<=", CompareOp::Le, "compare.le"),
        (">", CompareOp::Gt, "compare.gt"),
        (">=", CompareOp::Ge, "compare.ge"),
        ("=", CompareOp::Eq, "compare.eq"),
        ("!=", CompareOp::Ne, "compare.ne"),
    ];

    fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(t, _, _)| *t == text)
            .map(|(_, op, _)| *op)
    }

    /// The message key of a failed comparison.
    fn key(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, op, _)| *op == self)
            .map_or("compare.eq", |(_, _, key)| key)
    }

    fn holds(self, order: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            CompareOp::Lt => order == Less,
            CompareOp::Le => order != Greater,
            CompareOp::Gt => order == Greater,
            CompareOp::Ge => order != Less,
            CompareOp::Eq => order == Equal,
            CompareOp::Ne => order != Equal,
        }
    }
}

impl Rule {
    /// The name a schema uses, also the `keyword` of the failures it reports.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::IdBirthDate { .. } => "resident-id-birth-date",
            Rule::IdGender { .. } => "resident-id-gender",
            Rule::Compare { .. } => "compare",
        }
    }

    /// The message key of a failure, and the field it names (compare rules).
    fn problem(&self) -> (&'static str, Option<&str>) {
        match self {
            Rule::IdBirthDate { .. } => ("id_birth_date", None),
            Rule::IdGender { .. } => ("id_gender", None),
            Rule::Compare { op, other, .. } => (op.key(), Some(other)),
        }
    }

    /// `object` is the schema of the object the rule applies in (to name compared fields).
    fn parse(declaration: &Value, object: &Value) -> Result<Self, String> {
        let field = |key: &str| {
            declaration
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("x-rules: {declaration} needs a string \"{key}\""))
        };
        match declaration.get("rule").and_then(Value::as_str) {
            Some("resident-id-birth-date") => Ok(Rule::IdBirthDate {
                id: field("id")?,
                birth_date: field("birth_date")?,
            }),
            Some("resident-id-gender") => Ok(Rule::IdGender {
                id: field("id")?,
                gender: field("gender")?,
                male: field("male")?,
                female: field("female")?,
            }),
            Some("compare") => {
                let op = field("op")?;
                let right = field("right")?;
                Ok(Rule::Compare {
                    left: field("left")?,
                    op: CompareOp::parse(&op).ok_or_else(|| {
                        format!("x-rules: {declaration}: op is one of <, <=, >, >=, =, !=")
                    })?,
                    other: title_at(object, &right),
                    right,
                })
            }
            _ => Err(format!(
                "x-rules: unknown rule in {declaration}; known: resident-id-birth-date, resident-id-gender, compare"
            )),
        }
    }

    /// The pointer (inside the object) of the field a failure is reported on, if `object` breaks the rule.
    fn check(&self, object: &Value) -> Option<&str> {
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
        match self {
            Rule::IdBirthDate { id, birth_date } => {
                let encoded = resident_id(text(id)?).ok()?.birth_date;
                let given = time::Date::parse(
                    text(birth_date)?,
                    &time::format_description::well_known::Iso8601::DATE,
                )
                .ok()?;
                (encoded != given).then_some(birth_date.as_str())
            }
            Rule::IdGender {
                id,
                gender,
                male,
                female,
            } => {
                let encoded_male = resident_id(text(id)?).ok()?.male;
                let given = text(gender)?;
                let matches = if encoded_male {
                    given == male
                } else {
                    given == female
                };
                (!matches).then_some(gender.as_str())
            }
            Rule::Compare {
                left, op, right, ..
            } => {
                let order = match (object.pointer(left)?, object.pointer(right)?) {
                    (Value::Number(a), Value::Number(b)) => {
                        a.as_f64()?.partial_cmp(&b.as_f64()?)?
                    }
                    (Value::String(a), Value::String(b)) => a.cmp(b),
                    _ => return None,
                };
                (!op.holds(order)).then_some(left.as_str())
            }
        }
    }
}

/// The `title` of the property at `pointer` (through `properties`) in `object`, else its name.
fn title_at(object: &Value, pointer: &str) -> String {
    let mut schema = Some(object);
    let mut name = String::new();
    for segment in pointer.split('/').skip(1) {
        name = segment.replace("~1", "/").replace("~0", "~");
        schema = schema
            .and_then(|s| s.get("properties"))
            .and_then(|p| p.get(&name));
    }
    schema
        .and_then(|s| s.get("title"))
        .and_then(Value::as_str)
        .map_or(name, str::to_owned)
}

/// Every rule of a schema with where it applies: the steps from the root to its objects (empty
/// for the root).
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    at: Vec<(Vec<Step>, Vec<Rule>)>,
}

/// A step towards the objects a rule applies in.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// The object a property holds (a group of questions).
    Object(String),
    /// Each item of the array a property holds (a repeat).
    Each(String),
}

/// One broken rule: the JSON Pointer into `data` of the field, the rule's name, its message key
/// and the field it names (compare rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    pub path: String,
    pub rule: &'static str,
    pub key: &'static str,
    pub other: Option<String>,
}

impl RuleSet {
    /// Reads the `x-rules` of the root, of objects and of arrays' items, at any depth of
    /// `properties` and `items`.
    pub fn of(schema: &Value) -> Result<Self, String> {
        let mut set = RuleSet::default();
        collect(schema, &mut Vec::new(), &mut set)?;
        Ok(set)
    }

    /// Every rule `data` breaks.
    pub fn check(&self, data: &Value) -> Vec<Broken> {
        let mut broken = Vec::new();
        for (arrays, rules) in &self.at {
            let mut objects = Vec::new();
            objects_at(data, arrays, String::new(), &mut objects);
            for (pointer, object) in objects {
                for rule in rules {
                    if let Some(field) = rule.check(object) {
                        let (key, other) = rule.problem();
                        broken.push(Broken {
                            path: format!("{pointer}{field}"),
                            rule: rule.name(),
                            key,
                            other: other.map(str::to_owned),
                        });
                    }
                }
            }
        }
        broken
    }
}

fn collect(schema: &Value, steps: &mut Vec<Step>, set: &mut RuleSet) -> Result<(), String> {
    if let Some(declared) = schema.get("x-rules").and_then(Value::as_array) {
        let rules = declared
            .iter()
            .map(|declaration| Rule::parse(declaration, schema))
            .collect::<Result<Vec<_>, _>>()?;
        set.at.push((steps.clone(), rules));
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    for (name, property) in properties {
        let (step, inner) = match (property.get("items"), property.get("properties")) {
            (Some(items), _) => (Step::Each(name.clone()), items),
            (None, Some(_)) => (Step::Object(name.clone()), property),
            (None, None) => continue,
        };
        steps.push(step);
        collect(inner, steps, set)?;
        steps.pop();
    }
    Ok(())
}

/// The objects reached by following `steps` from `value`, with their JSON Pointers.
fn objects_at<'a>(
    value: &'a Value,
    steps: &[Step],
    pointer: String,
    out: &mut Vec<(String, &'a Value)>,
) {
    let Some((first, rest)) = steps.split_first() else {
        out.push((pointer, value));
        return;
    };
    let escape = |name: &str| name.replace('~', "~0").replace('/', "~1");
    match first {
        Step::Object(name) => {
            if let Some(object) = value.get(name).filter(|v| v.is_object()) {
                objects_at(object, rest, format!("{pointer}/{}", escape(name)), out);
            }
        }
        Step::Each(name) => {
            let Some(items) = value.get(name).and_then(Value::as_array) else {
                return;
            };
            for (i, item) in items.iter().enumerate() {
                objects_at(item, rest, format!("{pointer}/{}/{i}", escape(name)), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> RuleSet {
        RuleSet::of(&json!({"properties": {"members": {"items": {"x-rules": [
            {"rule": "resident-id-birth-date", "id": "/id", "birth_date": "/born"},
            {"rule": "resident-id-gender", "id": "/id", "gender": "/sex", "male": "m", "female": "f"}
        ]}}}}))
        .unwrap()
    }

    #[test]
    fn birth_date_and_gender_must_agree_with_the_id_number() {
        let data = json!({"members": [
            {"id": "45222319830708039X", "born": "1983-07-08", "sex": "m"},
            {"id": "45222319830708039X", "born": "1983-07-09", "sex": "f"}
        ]});
        let broken = rules().check(&data);
        assert_eq!(
            broken,
            [
                Broken {
                    path: "/members/1/born".into(),
                    rule: "resident-id-birth-date",
                    key: "id_birth_date",
                    other: None,
                },
                Broken {
                    path: "/members/1/sex".into(),
                    rule: "resident-id-gender",
                    key: "id_gender",
                    other: None,
                },
            ]
        );
    }

    #[test]
    fn a_malformed_id_number_is_left_to_the_format_check() {
        let data = json!({"members": [{"id": "123", "born": "1983-07-08", "sex": "m"}]});
        assert!(rules().check(&data).is_empty());
    }

    #[test]
    fn comparisons_hold_for_numbers_and_texts_and_name_the_other_field() {
        let rules = RuleSet::of(&json!({
            "properties": {"size": {"title": "家庭人口"}, "visits": {"items": {
                "x-rules": [{"rule": "compare", "left": "/from", "op": "<=", "right": "/to"}]}}},
            "x-rules": [{"rule": "compare", "left": "/labourers", "op": "<=", "right": "/size"}],
        }))
        .unwrap();
        let data = json!({"labourers": 5, "size": 4.5, "visits": [
            {"from": "2026-03-01", "to": "2026-03-02"},
            {"from": "2026-03-02", "to": "2026-03-01"},
            {"from": "2026-03-02", "to": 7},
        ]});
        assert_eq!(
            rules.check(&data),
            [
                Broken {
                    path: "/labourers".into(),
                    rule: "compare",
                    key: "compare.le",
                    other: Some("家庭人口".into()),
                },
                Broken {
                    path: "/visits/1/from".into(),
                    rule: "compare",
                    key: "compare.le",
                    other: Some("to".into()),
                },
            ]
        );
        assert!(rules.check(&json!({"labourers": 4, "size": 4})).is_empty());
        // Through a group of questions to a repeat inside it.
        let nested = RuleSet::of(
            &json!({"properties": {"farm": {"properties": {"plots": {"items": {
            "x-rules": [{"rule": "compare", "left": "/sown", "op": "<=", "right": "/area"}]}}}}}}),
        )
        .unwrap();
        let broken = nested.check(&json!({"farm": {"plots": [{"sown": 3, "area": 2}]}}));
        assert_eq!(broken[0].path, "/farm/plots/0/sown");
        let bad =
            json!({"x-rules": [{"rule": "compare", "left": "/a", "op": "=<", "right": "/b"}]});
        assert!(RuleSet::of(&bad).unwrap_err().contains("op is one of"));
    }

    #[test]
    fn unknown_rules_are_refused_when_the_schema_is_compiled() {
        let schema = json!({"x-rules": [{"rule": "astrology"}]});
        assert!(RuleSet::of(&schema).unwrap_err().contains("unknown rule"));
    }
}
