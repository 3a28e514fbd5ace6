//! Rules JSON Schema cannot express, declared by name in a schema's `x-rules`.
//!
//! An object schema (the root, or the `items` of an array) may list rules that relate its fields:
//!
//! - `{"rule": "resident-id-birth-date", "id": "/id_number", "birth_date": "/birth_date"}`: the birth
//!   date must be the one digits 7–14 of the ID number encode;
//! - `{"rule": "resident-id-gender", "id": "/id_number", "gender": "/gender", "male": "male",
//!   "female": "female"}`: the gender must match the parity of digit 17 (odd for men).
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
}

impl Rule {
    /// The name a schema uses, also the `keyword` of the failures it reports.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::IdBirthDate { .. } => "resident-id-birth-date",
            Rule::IdGender { .. } => "resident-id-gender",
        }
    }

    fn parse(declaration: &Value) -> Result<Self, String> {
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
            _ => Err(format!(
                "x-rules: unknown rule in {declaration}; known: resident-id-birth-date, resident-id-gender"
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
        }
    }
}

/// Every rule of a schema with where it applies: the property names of the arrays leading to
/// the objects (empty for the root).
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    at: Vec<(Vec<String>, Vec<Rule>)>,
}

/// One broken rule: the JSON Pointer into `data` of the field, and the rule's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    pub path: String,
    pub rule: &'static str,
}

impl RuleSet {
    /// Reads the `x-rules` of the root and of arrays of objects (at any depth of `properties`).
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
                        broken.push(Broken {
                            path: format!("{pointer}{field}"),
                            rule: rule.name(),
                        });
                    }
                }
            }
        }
        broken
    }
}

fn collect(schema: &Value, arrays: &mut Vec<String>, set: &mut RuleSet) -> Result<(), String> {
    if let Some(declared) = schema.get("x-rules").and_then(Value::as_array) {
        let rules = declared
            .iter()
            .map(Rule::parse)
            .collect::<Result<Vec<_>, _>>()?;
        set.at.push((arrays.clone(), rules));
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    for (name, property) in properties {
        if let Some(items) = property.get("items") {
            arrays.push(name.clone());
            collect(items, arrays, set)?;
            arrays.pop();
        }
    }
    Ok(())
}

/// The objects reached by following `arrays` from `value`, with their JSON Pointers.
fn objects_at<'a>(
    value: &'a Value,
    arrays: &[String],
    pointer: String,
    out: &mut Vec<(String, &'a Value)>,
) {
    let Some((first, rest)) = arrays.split_first() else {
        out.push((pointer, value));
        return;
    };
    let Some(items) = value.get(first).and_then(Value::as_array) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        objects_at(item, rest, format!("{pointer}/{first}/{i}"), out);
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
                    rule: "resident-id-birth-date"
                },
                Broken {
                    path: "/members/1/sex".into(),
                    rule: "resident-id-gender"
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
    fn unknown_rules_are_refused_when_the_schema_is_compiled() {
        let schema = json!({"x-rules": [{"rule": "astrology"}]});
        assert!(RuleSet::of(&schema).unwrap_err().contains("unknown rule"));
    }
}
