//! The shape of an export, read from the form's JSON Schemas: tables, columns, labels, keys.
//!
//! Columns follow the schema's property order. Nested objects flatten to `a.b`; arrays of choices
//! become one column (`a;b`) or one 0/1 column per choice; arrays of objects become their own
//! table, named by their path (`members`, `members.jobs`). Across versions the columns are the
//! union, the newest version's order first.

use serde_json::{Map, Value};

use crate::forms::refs::Document;

/// What kind of values a column holds; decides cleaning and rendering.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Text,
    /// A resident ID number (`format: cn-resident-id`): a lower-case `x` check character is made upper-case.
    IdNumber,
    /// `format: date`: written as ISO 8601 `YYYY-MM-DD`.
    Date,
    Integer,
    Number,
    Boolean,
    /// One of `choices` (code, label).
    Choice(Vec<(String, String)>),
    /// Any of `choices`: an array of codes.
    Choices(Vec<(String, String)>),
    /// An array of plain values, joined with `;`.
    List,
    /// The name of a file the submission carries (`contentMediaType`, see `attachments`).
    Attachment(crate::attachments::MediaType),
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::IdNumber => "id_number",
            Kind::Date => "date",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
            Kind::Choice(_) => "choice",
            Kind::Choices(_) => "choices",
            Kind::List => "list",
            Kind::Attachment(_) => "attachment",
        }
    }
}

/// One column of a table.
#[derive(Clone, Debug)]
pub struct Column {
    /// Header with codes: the property path inside the row, dot-joined (`household_id`, `address.city`).
    pub name: String,
    /// Header with labels: the schema `title`, else the name.
    pub label: String,
    pub kind: Kind,
    /// Property names from the row's object to the value.
    pub path: Vec<String>,
    /// Where the value comes from in a submission, as a JSON Pointer with `*` for array items.
    pub source: String,
    pub description: String,
}

/// One table of the export.
#[derive(Clone, Debug)]
pub struct Table {
    /// `main`, or the dot-joined path of the array (`members`).
    pub name: String,
    /// Property names of the arrays from the submission root to this table's rows.
    pub arrays: Vec<Vec<String>>,
    pub columns: Vec<Column>,
    /// Natural key of a row: paths inside the row (`x-unique`), compared after cleaning.
    pub unique: Vec<Vec<String>>,
}

impl Table {
    pub fn is_main(&self) -> bool {
        self.arrays.is_empty()
    }
}

/// Every table of a form, main first.
#[derive(Clone, Debug)]
pub struct Layout {
    pub tables: Vec<Table>,
    /// The scope field's path from the root (`x-scope`), copied into child tables.
    pub scope: Option<Vec<String>>,
}

impl Layout {
    /// The layout of one schema.
    pub fn of(schema: &Value) -> Self {
        let mut tables = Vec::new();
        let document = Document::new(schema);
        collect_table(
            &document,
            schema,
            "main".into(),
            Vec::new(),
            "",
            &mut tables,
        );
        let scope = schema
            .get("x-scope")
            .and_then(Value::as_str)
            .map(pointer_segments);
        Self { tables, scope }
    }

    /// The union of several versions' layouts, the first (newest) one's order first.
    pub fn union(layouts: impl IntoIterator<Item = Layout>) -> Self {
        let mut merged: Option<Layout> = None;
        for layout in layouts {
            let Some(into) = merged.as_mut() else {
                merged = Some(layout);
                continue;
            };
            into.scope = into.scope.take().or(layout.scope);
            for table in layout.tables {
                match into.tables.iter_mut().find(|t| t.name == table.name) {
                    Some(existing) => {
                        for column in table.columns {
                            if !existing.columns.iter().any(|c| c.name == column.name) {
                                existing.columns.push(column);
                            }
                        }
                    }
                    None => into.tables.push(table),
                }
            }
        }
        merged.unwrap_or(Layout {
            tables: Vec::new(),
            scope: None,
        })
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// `/a/b~1c` → `["a", "b/c"]`.
pub fn pointer_segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn collect_table<'s>(
    refs: &Document<'s>,
    schema: &'s Value,
    name: String,
    arrays: Vec<Vec<String>>,
    source_prefix: &str,
    tables: &mut Vec<Table>,
) {
    let schema = refs.resolve(schema);
    let unique = schema
        .get("x-unique")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(Value::as_str)
                .map(pointer_segments)
                .collect()
        })
        .unwrap_or_default();
    let index = tables.len();
    tables.push(Table {
        name: name.clone(),
        arrays: arrays.clone(),
        columns: Vec::new(),
        unique,
    });
    let mut columns = Vec::new();
    let mut context = Walk {
        refs,
        table_name: &name,
        arrays: &arrays,
        tables,
    };
    context.columns(schema, &[], source_prefix, &mut columns);
    tables[index].columns = columns;
}

struct Walk<'a, 's> {
    refs: &'a Document<'s>,
    table_name: &'a str,
    arrays: &'a [Vec<String>],
    tables: &'a mut Vec<Table>,
}

impl<'s> Walk<'_, 's> {
    fn columns(&mut self, schema: &'s Value, path: &[String], source: &str, out: &mut Vec<Column>) {
        let Some(properties) = self
            .refs
            .resolve(schema)
            .get("properties")
            .and_then(Value::as_object)
        else {
            return;
        };
        for (key, property) in properties {
            let property = self.refs.resolve(property);
            let mut here = path.to_vec();
            here.push(key.clone());
            let source_here = format!("{source}/{}", key.replace('~', "~0").replace('/', "~1"));
            if is_object(property) {
                self.columns(property, &here, &source_here, out);
                continue;
            }
            let items = property.get("items").map(|i| self.refs.resolve(i));
            if let (true, Some(items)) = (json_type(property) == Some("array"), items) {
                if is_object(items) {
                    let mut arrays = self.arrays.to_vec();
                    arrays.push(here.clone());
                    let name = if self.table_name == "main" {
                        here.join(".")
                    } else {
                        format!("{}.{}", self.table_name, here.join("."))
                    };
                    let prefix = format!("{source_here}/*");
                    collect_table(self.refs, items, name, arrays, &prefix, self.tables);
                    continue;
                }
                let kind = match choices(items) {
                    Some(choices) => Kind::Choices(choices),
                    None => Kind::List,
                };
                out.push(column(property, here, source_here, kind));
                continue;
            }
            let kind = scalar_kind(property);
            out.push(column(property, here, source_here, kind));
        }
    }
}

fn column(schema: &Value, path: Vec<String>, source: String, kind: Kind) -> Column {
    let name = path.join(".");
    let text = |key: &str| schema.get(key).and_then(Value::as_str).map(str::to_owned);
    Column {
        label: text("title").unwrap_or_else(|| name.clone()),
        description: text("description").unwrap_or_default(),
        name,
        kind,
        path,
        source,
    }
}

fn scalar_kind(schema: &Value) -> Kind {
    if let Some(choices) = choices(schema) {
        return Kind::Choice(choices);
    }
    let media_type = schema.get("contentMediaType").and_then(Value::as_str);
    if let Some(media_type) = media_type.and_then(crate::attachments::MediaType::parse) {
        return Kind::Attachment(media_type);
    }
    match schema.get("format").and_then(Value::as_str) {
        Some("cn-resident-id") => return Kind::IdNumber,
        Some("date") => return Kind::Date,
        _ => {}
    }
    if let Some(constant) = schema.get("const") {
        return match constant {
            Value::Bool(_) => Kind::Boolean,
            Value::Number(n) if n.is_i64() || n.is_u64() => Kind::Integer,
            Value::Number(_) => Kind::Number,
            _ => Kind::Text,
        };
    }
    match json_type(schema) {
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        _ => Kind::Text,
    }
}

/// Codes and labels of a choice: `enum` (labels from `x-labels`), or `oneOf`/`anyOf` of `const` + `title`.
fn choices(schema: &Value) -> Option<Vec<(String, String)>> {
    if let Some(codes) = schema.get("enum").and_then(Value::as_array) {
        let labels = schema.get("x-labels").and_then(Value::as_object);
        return Some(codes.iter().map(|code| labelled(code, labels)).collect());
    }
    let options = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))?
        .as_array()?;
    options
        .iter()
        .map(|option| {
            let code = option.get("const")?;
            let code_text = code_text(code);
            let label = option
                .get("title")
                .and_then(Value::as_str)
                .map_or_else(|| code_text.clone(), str::to_owned);
            Some((code_text, label))
        })
        .collect()
}

fn labelled(code: &Value, labels: Option<&Map<String, Value>>) -> (String, String) {
    let text = code_text(code);
    let label = labels
        .and_then(|l| l.get(&text))
        .and_then(Value::as_str)
        .map_or_else(|| text.clone(), str::to_owned);
    (text, label)
}

fn code_text(code: &Value) -> String {
    match code {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json_type(schema: &Value) -> Option<&str> {
    match schema.get("type")? {
        Value::String(t) => Some(t),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    }
}

fn is_object(schema: &Value) -> bool {
    json_type(schema) == Some("object")
        || (json_type(schema).is_none() && schema.get("properties").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn survey() -> Value {
        json!({
            "x-unique": ["/household_id"],
            "x-scope": "/township",
            "$defs": {"yes": {"type": "boolean", "title": "是否"}},
            "properties": {
                "household_id": {"type": "string", "title": "户编号"},
                "township": {"enum": ["平马镇", "思林镇"]},
                "address": {"type": "object", "properties": {"village": {"type": "string"}, "group": {"type": "integer"}}},
                "relocated": {"$ref": "#/$defs/yes"},
                "members": {"type": "array", "items": {
                    "type": "object", "x-unique": ["/id_number"],
                    "properties": {
                        "id_number": {"type": "string", "format": "cn-resident-id"},
                        "status": {"enum": ["stable", "unemployed"], "x-labels": {"stable": "稳定就业"}},
                        "trainings": {"type": "array", "items": {"oneOf": [{"const": "welding", "title": "电焊工"}]}},
                        "jobs": {"type": "array", "items": {"type": "object", "properties": {"employer": {"type": "string"}}}}
                    }}},
                "tags": {"type": "array", "items": {"type": "string"}}
            }
        })
    }

    #[test]
    fn tables_and_columns_follow_the_schema_order() {
        let layout = Layout::of(&survey());
        let names: Vec<&str> = layout.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["main", "members", "members.jobs"]);
        let main: Vec<&str> = layout.tables[0]
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            main,
            [
                "household_id",
                "township",
                "address.village",
                "address.group",
                "relocated",
                "tags"
            ]
        );
        assert_eq!(layout.scope, Some(vec!["township".to_owned()]));
        assert_eq!(layout.tables[1].unique, vec![vec!["id_number".to_owned()]]);
        assert_eq!(
            layout.tables[2].arrays,
            vec![vec!["members".to_owned()], vec!["jobs".to_owned()]]
        );
    }

    #[test]
    fn kinds_labels_and_sources_come_from_the_schema() {
        let layout = Layout::of(&survey());
        let main = &layout.tables[0];
        assert_eq!(main.columns[0].label, "户编号");
        assert_eq!(
            main.columns[4].kind,
            Kind::Boolean,
            "a local $ref is followed"
        );
        assert_eq!(main.columns[5].kind, Kind::List);
        let members = &layout.tables[1].columns;
        assert_eq!(members[0].kind, Kind::IdNumber);
        assert_eq!(members[0].source, "/members/*/id_number");
        assert_eq!(
            members[1].kind,
            Kind::Choice(vec![
                ("stable".into(), "稳定就业".into()),
                ("unemployed".into(), "unemployed".into())
            ])
        );
        assert_eq!(
            members[2].kind,
            Kind::Choices(vec![("welding".into(), "电焊工".into())])
        );
    }

    #[test]
    fn the_union_of_versions_keeps_the_newest_order_then_adds_old_columns() {
        let new =
            Layout::of(&json!({"properties": {"b": {"type": "string"}, "a": {"type": "string"}}}));
        let old = Layout::of(
            &json!({"properties": {"a": {"type": "string"}, "gone": {"type": "string"}}}),
        );
        let union = Layout::union([new, old]);
        let names: Vec<&str> = union.tables[0]
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["b", "a", "gone"]);
    }
}
