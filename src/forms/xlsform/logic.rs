//! `relevant` and `constraint` expressions as JSON Schema: a relevance becomes the `if` of an
//! `if/then/else` placed on the object that holds the question and every field it looks at; a
//! constraint becomes keywords on the question's own schema (`minimum`, `pattern`, ...), and a
//! comparison with another field a `compare` rule in `x-rules`.
//!
//! XPath reads an unanswered field as empty text: `${a} = 'x'` and `${n} > 3` are false for it,
//! `${a} != 'x'` true. The schemas say the same: a comparison requires the field, `!=` is the
//! negation of `=`.

use serde_json::{Map, Value, json};

use super::expr::{Expr, Op};

/// What a question's answer is, as far as conditions on it go.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    Text,
    Integer,
    Decimal,
    Boolean,
    /// One choice of these names.
    One(Vec<String>),
    /// Several choices of these names.
    Many(Vec<String>),
    /// Dates and times: compared only for (in)equality.
    Temporal,
    /// A calculation's value, as the phone sent it (a number or a text).
    Calculated,
    /// A geopoint, a file, a consent: only whether it is there.
    Other,
}

/// A field a condition names: where it is below the object the condition is placed on (property
/// names only), and what it holds.
pub struct FieldAt {
    pub steps: Vec<String>,
    pub kind: ValueKind,
}

/// What an expression is about: the answer itself (constraints) or a named field (relevance).
enum Subject {
    Current,
    Field(FieldAt),
}

/// A translation problem, in English; the caller frames it for the row and column.
pub type Problem = String;

/// `relevant` as the `if` of a condition; `field` resolves `${name}`.
pub fn condition(
    expr: &Expr,
    field: &dyn Fn(&str) -> Result<FieldAt, Problem>,
) -> Result<Value, Problem> {
    Translator {
        field,
        current: None,
    }
    .boolean(expr)
}

/// A constraint's schema keywords for an answer of `kind`, and the comparisons with other
/// fields it makes (`(op, name)`: the answer `op` the field `name`), which become rules.
pub fn constraint(expr: &Expr, kind: &ValueKind) -> Result<(Value, Vec<(Op, String)>), Problem> {
    let mut comparisons = Vec::new();
    let mut parts = Vec::new();
    conjuncts(expr, &mut parts);
    let mut schema = Value::Bool(true);
    for part in parts {
        if let Some(found) = field_comparison(part) {
            comparisons.push(found);
            continue;
        }
        let no_fields = |name: &str| -> Result<FieldAt, Problem> {
            Err(format!(
                "a constraint may compare the answer with ${{{name}}} (. <= ${{{name}}}), but not use it otherwise"
            ))
        };
        let translated = Translator {
            field: &no_fields,
            current: Some(kind),
        }
        .boolean(part)?;
        schema = and(schema, translated);
    }
    Ok((schema, comparisons))
}

fn conjuncts<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    match expr {
        Expr::And(a, b) => {
            conjuncts(a, out);
            conjuncts(b, out);
        }
        other => out.push(other),
    }
}

/// `. op ${name}` or `${name} op .`.
fn field_comparison(expr: &Expr) -> Option<(Op, String)> {
    match expr {
        Expr::Compare(left, op, right) => match (left.as_ref(), right.as_ref()) {
            (Expr::Current, Expr::Field(name)) => Some((*op, name.clone())),
            (Expr::Field(name), Expr::Current) => Some((op.flipped(), name.clone())),
            _ => None,
        },
        _ => None,
    }
}

struct Translator<'a> {
    field: &'a dyn Fn(&str) -> Result<FieldAt, Problem>,
    /// The kind of `.`, in a constraint.
    current: Option<&'a ValueKind>,
}

impl Translator<'_> {
    fn subject(&self, expr: &Expr) -> Result<Option<Subject>, Problem> {
        Ok(match expr {
            Expr::Current if self.current.is_some() => Some(Subject::Current),
            Expr::Current => {
                return Err("'.' means the answer itself, which only a constraint has".into());
            }
            Expr::Field(name) => Some(Subject::Field((self.field)(name)?)),
            _ => None,
        })
    }

    fn kind<'s>(&'s self, subject: &'s Subject) -> &'s ValueKind {
        match subject {
            Subject::Current => self.current.unwrap_or(&ValueKind::Other),
            Subject::Field(field) => &field.kind,
        }
    }

    /// A schema that holds exactly when `expr` is true.
    fn boolean(&self, expr: &Expr) -> Result<Value, Problem> {
        match expr {
            Expr::And(a, b) => Ok(and(self.boolean(a)?, self.boolean(b)?)),
            Expr::Or(a, b) => Ok(or(self.boolean(a)?, self.boolean(b)?)),
            Expr::Call("not", args) => Ok(not(self.boolean(&args[0])?)),
            Expr::Call("true", _) => Ok(Value::Bool(true)),
            Expr::Call("false", _) => Ok(Value::Bool(false)),
            Expr::Call("selected", args) => {
                let subject = self
                    .subject(&args[0])?
                    .ok_or("selected() takes a field or '.' first: selected(${name}, 'choice')")?;
                let choice = literal_text(&args[1]).ok_or(
                    "selected() takes a quoted choice second: selected(${name}, 'choice')",
                )?;
                let value = match self.kind(&subject) {
                    ValueKind::Many(names) => {
                        known_choice(names, &choice)?;
                        json!({"contains": {"const": choice}})
                    }
                    ValueKind::One(names) => {
                        known_choice(names, &choice)?;
                        json!({"const": choice})
                    }
                    _ => {
                        return Err(
                            "selected() is for select_one and select_multiple questions".into()
                        );
                    }
                };
                Ok(about(&subject, value))
            }
            Expr::Call("regex", args) => {
                let subject = self
                    .subject(&args[0])?
                    .ok_or("regex() takes a field or '.' first")?;
                let pattern =
                    literal_text(&args[1]).ok_or("regex() takes a quoted pattern second")?;
                if !matches!(self.kind(&subject), ValueKind::Text) {
                    return Err("regex() is for text questions".into());
                }
                Ok(about(&subject, json!({"pattern": pattern})))
            }
            Expr::Compare(left, op, right) => self.comparison(left, *op, right),
            Expr::Field(_) | Expr::Current => {
                let subject = self
                    .subject(expr)?
                    .ok_or("a condition names a field or '.'")?;
                let truthy = match self.kind(&subject) {
                    ValueKind::Boolean => json!({"const": true}),
                    ValueKind::Calculated => json!({"not": {"enum": ["", 0, false]}}),
                    ValueKind::Integer | ValueKind::Decimal => json!({"not": {"const": 0}}),
                    ValueKind::Text | ValueKind::One(_) | ValueKind::Temporal => {
                        json!({"minLength": 1})
                    }
                    ValueKind::Many(_) => json!({"minItems": 1}),
                    ValueKind::Other => json!(true),
                };
                Ok(about(&subject, truthy))
            }
            Expr::Text(_) | Expr::Number(_) => {
                Err("a literal alone is not a condition: compare it with a field".into())
            }
            Expr::Call(function, _) => Err(format!(
                "{function}() is not a condition by itself: compare it"
            )),
        }
    }

    fn comparison(&self, left: &Expr, op: Op, right: &Expr) -> Result<Value, Problem> {
        // `!=` is not `=`: true for an unanswered field, as XPath reads it as ''.
        let empty = |e: &Expr| literal_text(e).is_some_and(|t| t.is_empty());
        if op == Op::Ne && !empty(left) && !empty(right) {
            return Ok(not(self.comparison(left, Op::Eq, right)?));
        }
        // The field (or function of it) on the left, the literal on the right.
        let (subject_side, op, literal) = if is_literal(right) {
            (left, op, right)
        } else if is_literal(left) {
            (right, op.flipped(), left)
        } else {
            return Err("compare a field with a literal; comparing two fields is only mapped in a constraint (. <= ${other})".into());
        };
        if let Expr::Call(function @ ("string-length" | "count-selected"), args) = subject_side {
            let subject = self
                .subject(&args[0])?
                .ok_or_else(|| format!("{function}() takes a field or '.'"))?;
            let n = literal_number(literal)
                .filter(|n| n.fract() == 0.0 && *n >= 0.0)
                .ok_or_else(|| format!("{function}() is compared with a whole number"))?;
            let (min, max) = if *function == "string-length" {
                let texts = matches!(
                    self.kind(&subject),
                    ValueKind::Text | ValueKind::One(_) | ValueKind::Temporal
                );
                if !texts {
                    return Err(
                        "string-length() is for text, choice, date and time questions".into(),
                    );
                }
                ("minLength", "maxLength")
            } else {
                if !matches!(self.kind(&subject), ValueKind::Many(_)) {
                    return Err("count-selected() is for select_multiple questions".into());
                }
                ("minItems", "maxItems")
            };
            let n = n.min(u32::MAX as f64) as u64;
            let within = bounds(min, max, op, n);
            // XPath measures an unanswered field as 0: where 0 passes, so does no answer.
            let zero_passes = match op {
                Op::Eq | Op::Ge => n == 0,
                Op::Le => true,
                Op::Lt | Op::Ne => n > 0,
                Op::Gt => false,
            };
            return Ok(match &subject {
                Subject::Field(_) if zero_passes => not(about(&subject, not(within))),
                _ => about(&subject, within),
            });
        }
        let subject = self
            .subject(subject_side)?
            .ok_or("one side of a comparison must be a field (${name}) or the answer (.)")?;
        let kind = self.kind(&subject).clone();
        if literal_text(literal).is_some_and(|t| t.is_empty()) {
            // `= ''`: unanswered (or answered with nothing).
            let answered = match &subject {
                Subject::Current => {
                    return Err(
                        "a constraint is only checked on an answer: '. = ''' is never true".into(),
                    );
                }
                Subject::Field(_) => match kind {
                    ValueKind::Text | ValueKind::One(_) | ValueKind::Temporal => {
                        json!({"minLength": 1})
                    }
                    ValueKind::Many(_) => json!({"minItems": 1}),
                    _ => json!(true),
                },
            };
            let is_answered = about(&subject, answered);
            return match op {
                Op::Eq => Ok(not(is_answered)),
                Op::Ne => Ok(is_answered),
                _ => Err("only = and != compare with ''".into()),
            };
        }
        let value = match &kind {
            ValueKind::Integer | ValueKind::Decimal => {
                let n =
                    literal_number(literal).ok_or("a number question is compared with a number")?;
                let n = number(n);
                match op {
                    Op::Eq => json!({"const": n}),
                    Op::Ne => json!({"not": {"const": n}}),
                    Op::Lt => json!({"exclusiveMaximum": n}),
                    Op::Le => json!({"maximum": n}),
                    Op::Gt => json!({"exclusiveMinimum": n}),
                    Op::Ge => json!({"minimum": n}),
                }
            }
            ValueKind::Boolean => {
                let value = match literal_text(literal).as_deref() {
                    Some("true") => true,
                    Some("false") => false,
                    _ => return Err("a yes/no question is compared with 'true' or 'false'".into()),
                };
                equality(op, json!(value))?
            }
            ValueKind::Text | ValueKind::One(_) | ValueKind::Temporal => {
                let text = literal_text(literal).ok_or("compare with a quoted text")?;
                if let ValueKind::One(names) = &kind {
                    known_choice(names, &text)?;
                }
                equality(op, json!(text))?
            }
            ValueKind::Many(_) => {
                return Err("a select_multiple question is tested with selected(${name}, 'choice') or count-selected()".into());
            }
            // A calculation holds what the phone computed: numbers compare as numbers.
            ValueKind::Calculated => match (literal, op) {
                (Expr::Number(n), _) => {
                    let n = number(*n);
                    match op {
                        Op::Eq => json!({"const": n}),
                        Op::Ne => json!({"not": {"const": n}}),
                        Op::Lt => json!({"type": "number", "exclusiveMaximum": n}),
                        Op::Le => json!({"type": "number", "maximum": n}),
                        Op::Gt => json!({"type": "number", "exclusiveMinimum": n}),
                        Op::Ge => json!({"type": "number", "minimum": n}),
                    }
                }
                _ => equality(op, json!(literal_text(literal).unwrap_or_default()))?,
            },
            ValueKind::Other => {
                return Err(
                    "this kind of question can only be tested for an answer (= '' or != '')".into(),
                );
            }
        };
        Ok(about(&subject, value))
    }
}

fn equality(op: Op, value: Value) -> Result<Value, Problem> {
    match op {
        Op::Eq => Ok(json!({"const": value})),
        Op::Ne => Ok(json!({"not": {"const": value}})),
        _ => Err("text, dates and choices are compared only with = and !=".into()),
    }
}

fn bounds(min: &str, max: &str, op: Op, n: u64) -> Value {
    match op {
        Op::Eq => json!({min: n, max: n}),
        Op::Ne => json!({"not": {min: n, max: n}}),
        // Nothing is shorter than nothing.
        Op::Lt if n == 0 => Value::Bool(false),
        Op::Lt => json!({max: n - 1}),
        Op::Le => json!({max: n}),
        Op::Gt => json!({min: n.saturating_add(1)}),
        Op::Ge => json!({min: n}),
    }
}

fn known_choice(names: &[String], choice: &str) -> Result<(), Problem> {
    if names.iter().any(|n| n == choice) {
        Ok(())
    } else {
        Err(format!(
            "'{choice}' is not a choice of this question's list"
        ))
    }
}

fn is_literal(expr: &Expr) -> bool {
    matches!(expr, Expr::Text(_) | Expr::Number(_))
        || matches!(expr, Expr::Call("true" | "false", _))
}

fn literal_text(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Text(text) => Some(text.clone()),
        Expr::Number(n) => Some(number(*n).to_string()),
        Expr::Call(name @ ("true" | "false"), _) => Some((*name).to_owned()),
        _ => None,
    }
}

fn literal_number(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Number(n) => Some(*n),
        Expr::Text(text) => text.trim().parse().ok().filter(|n: &f64| n.is_finite()),
        _ => None,
    }
}

/// Whole numbers as JSON integers, so `const` and messages read `16`, not `16.0`.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// `value` applied to the subject: to the answer itself, or to a field that must be there.
fn about(subject: &Subject, value: Value) -> Value {
    match subject {
        Subject::Current => value,
        Subject::Field(field) => field.steps.iter().rev().fold(
            value,
            |inner, step| json!({"properties": {step: inner}, "required": [step]}),
        ),
    }
}

fn not(schema: Value) -> Value {
    match schema {
        Value::Bool(b) => Value::Bool(!b),
        Value::Object(map) if map.len() == 1 && map.contains_key("not") => map
            .into_iter()
            .next()
            .map_or(Value::Bool(false), |(_, inner)| inner),
        other => json!({"not": other}),
    }
}

/// Both: merged into one object when their keywords do not disagree (so the app sees which
/// fields a condition looks at), else `allOf`.
fn and(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Bool(true), other) | (other, Value::Bool(true)) => other,
        (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
        (Value::Object(a), Value::Object(b)) => match merged(&a, &b) {
            Some(both) => Value::Object(both),
            None => {
                let mut all = Vec::new();
                for part in [a, b] {
                    match part.get("allOf") {
                        Some(Value::Array(items)) if part.len() == 1 => {
                            all.extend(items.iter().cloned())
                        }
                        _ => all.push(Value::Object(part)),
                    }
                }
                json!({"allOf": all})
            }
        },
        (a, _) => a,
    }
}

/// One schema that holds exactly when both do, if keyword by keyword they do not disagree:
/// `required` lists join, a property in both is merged the same way, a keyword in both must be
/// equal.
pub(super) fn merged(a: &Map<String, Value>, b: &Map<String, Value>) -> Option<Map<String, Value>> {
    let mut out = a.clone();
    for (key, value) in b {
        match (key.as_str(), out.get_mut(key)) {
            (_, None) => {
                out.insert(key.clone(), value.clone());
            }
            ("required", Some(Value::Array(mine))) => {
                for name in value.as_array()? {
                    if !mine.contains(name) {
                        mine.push(name.clone());
                    }
                }
            }
            ("properties", Some(Value::Object(mine))) => {
                for (name, theirs) in value.as_object()? {
                    let both = match mine.get(name) {
                        None => theirs.clone(),
                        Some(Value::Object(own)) => {
                            Value::Object(merged(own, theirs.as_object()?)?)
                        }
                        Some(own) if own == theirs => continue,
                        Some(_) => return None,
                    };
                    mine.insert(name.clone(), both);
                }
            }
            (_, Some(own)) if own == value => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Either: equalities of one field with several values become one `enum` (as a hand-written
/// form says it), anything else `anyOf`.
fn or(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Bool(true), _) | (_, Value::Bool(true)) => Value::Bool(true),
        (Value::Bool(false), other) | (other, Value::Bool(false)) => other,
        (a, b) => {
            if let (Some((path_a, values_a)), Some((path_b, values_b))) = (one_of(&a), one_of(&b))
                && path_a == path_b
            {
                let mut values = values_a;
                values.extend(
                    values_b
                        .into_iter()
                        .filter(|v| !values.contains(v))
                        .collect::<Vec<_>>(),
                );
                return path_a.iter().rev().fold(
                    json!({"enum": values}),
                    |inner, step| json!({"properties": {step: inner}, "required": [step]}),
                );
            }
            let mut any = Vec::new();
            for part in [a, b] {
                match part.get("anyOf") {
                    Some(Value::Array(items)) if part.as_object().is_some_and(|m| m.len() == 1) => {
                        any.extend(items.iter().cloned())
                    }
                    _ => any.push(part),
                }
            }
            json!({"anyOf": any})
        }
    }
}

/// The field path and values of `{"properties": {a: {"const": x}}, "required": [a]}` (nested
/// through groups) or of an `enum` there.
fn one_of(schema: &Value) -> Option<(Vec<String>, Vec<Value>)> {
    let map = schema.as_object()?;
    if let Some(value) = map.get("const").filter(|_| map.len() == 1) {
        return Some((Vec::new(), vec![value.clone()]));
    }
    if let Some(Value::Array(values)) = map.get("enum").filter(|_| map.len() == 1) {
        return Some((Vec::new(), values.clone()));
    }
    let properties = map.get("properties")?.as_object()?;
    let required = map.get("required")?.as_array()?;
    if map.len() != 2 || properties.len() != 1 || required.len() != 1 {
        return None;
    }
    let (name, inner) = properties.iter().next()?;
    if required[0].as_str() != Some(name) {
        return None;
    }
    let (mut path, values) = one_of(inner)?;
    path.insert(0, name.clone());
    Some((path, values))
}

#[cfg(test)]
mod tests {
    use super::super::expr::parse;
    use super::*;

    fn fields(name: &str) -> Result<FieldAt, Problem> {
        let kind = match name {
            "age" => ValueKind::Integer,
            "status" => ValueKind::One(vec![
                "stable".into(),
                "flexible".into(),
                "unemployed".into(),
            ]),
            "trainings" => ValueKind::Many(vec!["welding".into(), "none".into()]),
            "relocated" => ValueKind::Boolean,
            "note" => ValueKind::Text,
            _ => return Err(format!("no field {name}")),
        };
        let steps = if name == "note" {
            vec!["extra".into(), name.into()]
        } else {
            vec![name.into()]
        };
        Ok(FieldAt { steps, kind })
    }

    fn relevant(text: &str) -> Result<Value, Problem> {
        condition(&parse(text).unwrap(), &fields)
    }

    #[test]
    fn equalities_of_one_field_read_as_a_hand_written_enum() {
        assert_eq!(
            relevant("${status} = 'stable' or selected(${status}, 'flexible')").unwrap(),
            json!({"properties": {"status": {"enum": ["stable", "flexible"]}}, "required": ["status"]})
        );
    }

    #[test]
    fn conditions_on_several_fields_merge_and_negations_stay_negations() {
        assert_eq!(
            relevant(
                "${age} >= 16 and ${relocated} = 'true' and not(selected(${trainings}, 'none'))"
            )
            .unwrap(),
            json!({
                "properties": {"age": {"minimum": 16}, "relocated": {"const": true}},
                "required": ["age", "relocated"],
                "not": {"properties": {"trainings": {"contains": {"const": "none"}}}, "required": ["trainings"]},
            })
        );
        assert_eq!(
            relevant("${status} != 'unemployed'").unwrap(),
            json!({"not": {"properties": {"status": {"const": "unemployed"}}, "required": ["status"]}})
        );
        assert_eq!(
            relevant("${note} = ''").unwrap(),
            json!({"not": {"properties": {"extra": {"properties": {"note": {"minLength": 1}}, "required": ["note"]}}, "required": ["extra"]}})
        );
        assert_eq!(
            relevant("${age} or 18 < ${age}").unwrap(),
            json!({"anyOf": [
                {"properties": {"age": {"not": {"const": 0}}}, "required": ["age"]},
                {"properties": {"age": {"exclusiveMinimum": 18}}, "required": ["age"]},
            ]})
        );
    }

    #[test]
    fn what_cannot_be_said_is_refused() {
        for (text, words) in [
            ("${status} = 'retired'", "not a choice"),
            ("${age} = ${status}", "comparing two fields"),
            ("${trainings} = 'welding'", "selected("),
            ("${age} > 'old'", "compared with a number"),
            ("${missing} = 1", "no field missing"),
            (". > 3", "only a constraint"),
            ("${note} < 'b'", "only with = and !="),
        ] {
            let problem = relevant(text).unwrap_err();
            assert!(problem.contains(words), "{text}: {problem}");
        }
    }

    #[test]
    fn constraints_become_keywords_and_field_comparisons_rules() {
        let (schema, compared) = constraint(
            &parse(". >= 16 and . <= 65 and . <= ${months}").unwrap(),
            &ValueKind::Integer,
        )
        .unwrap();
        assert_eq!(schema, json!({"minimum": 16, "maximum": 65}));
        assert_eq!(compared, vec![(Op::Le, "months".to_owned())]);
        let (schema, _) = constraint(
            &parse("regex(., '^1[0-9]{10}$') and string-length(.) = 11").unwrap(),
            &ValueKind::Text,
        )
        .unwrap();
        assert_eq!(
            schema,
            json!({"pattern": "^1[0-9]{10}$", "minLength": 11, "maxLength": 11})
        );
        let (schema, _) = constraint(
            &parse("not(selected(., 'none') and count-selected(.) > 1)").unwrap(),
            &ValueKind::Many(vec!["none".into(), "welding".into()]),
        )
        .unwrap();
        assert_eq!(
            schema,
            json!({"not": {"contains": {"const": "none"}, "minItems": 2}})
        );
        let (schema, _) =
            constraint(&parse(". < 0 or . > 10").unwrap(), &ValueKind::Decimal).unwrap();
        assert_eq!(
            schema,
            json!({"anyOf": [{"exclusiveMaximum": 0}, {"exclusiveMinimum": 10}]})
        );
        assert!(constraint(&parse(". > ${a} or . < 3").unwrap(), &ValueKind::Integer).is_err());
    }
}
