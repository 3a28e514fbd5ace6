//! From one submission to table rows: cells in column order, cleaned, with every change reported.

use serde_json::Number;

use super::json::Json;

use super::clean;
use super::layout::{Column, Kind, Table};

/// One value of a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(Number),
    Bool(bool),
}

/// How arrays of choices are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Multiple {
    /// One column, codes joined with `;`.
    Join,
    /// One 0/1 column per choice, named `column/code`.
    Split,
}

/// How values are shown.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub labels: bool,
    pub multiple: Multiple,
    /// `raw=true`: values exactly as stored, no cleaning.
    pub clean: bool,
}

/// A change the cleaning made to one value.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub column: String,
    pub action: &'static str,
    pub before: String,
    pub after: String,
    pub reason: &'static str,
}

/// The headers of a table's value columns (after any system columns).
pub fn headers(table: &Table, style: Style) -> Vec<String> {
    let mut headers = Vec::new();
    for column in &table.columns {
        let header = if style.labels {
            &column.label
        } else {
            &column.name
        };
        match (&column.kind, style.multiple) {
            (Kind::Choices(choices), Multiple::Split) => {
                for (code, label) in choices {
                    let suffix = if style.labels { label } else { code };
                    headers.push(format!("{header}/{suffix}"));
                }
            }
            _ => headers.push(header.clone()),
        }
    }
    headers
}

/// The value cells of one row object, aligned with `headers`; cleaning changes go to `changes`.
pub fn cells(table: &Table, row: &Json<'_>, style: Style, changes: &mut Vec<Change>) -> Vec<Cell> {
    let mut out = Vec::with_capacity(table.columns.len());
    for column in &table.columns {
        let value = row.at(&column.path);
        match (&column.kind, style.multiple) {
            (Kind::Choices(choices), Multiple::Split) => {
                let chosen: Vec<&str> = value
                    .and_then(Json::as_array)
                    .map(|a| a.iter().filter_map(Json::as_str).collect())
                    .unwrap_or_default();
                for (code, _) in choices {
                    out.push(match value {
                        None | Some(Json::Null) => Cell::Empty,
                        Some(_) => {
                            Cell::Number(Number::from(u8::from(chosen.contains(&code.as_str()))))
                        }
                    });
                }
            }
            _ => out.push(cell(column, value, style, changes)),
        }
    }
    out
}

/// A single cell: cleaned text, canonical forms, labels.
fn cell(
    column: &Column,
    value: Option<&Json<'_>>,
    style: Style,
    changes: &mut Vec<Change>,
) -> Cell {
    let Some(value) = value else {
        return Cell::Empty;
    };
    match value {
        Json::Null => Cell::Empty,
        Json::Bool(b) => Cell::Bool(*b),
        Json::Number(n) => Cell::Number(n.clone()),
        Json::String(s) => Cell::Text(shown(column, s, style, changes)),
        Json::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Json::String(s) => shown(column, s, style, changes),
                    other => other.to_json_string(),
                })
                .collect();
            Cell::Text(parts.join(";"))
        }
        Json::Object(_) => Cell::Text(value.to_json_string()),
    }
}

/// A text value (or one choice of an array) as shown: cleaned unless raw, labelled if asked.
fn shown(column: &Column, raw: &str, style: Style, changes: &mut Vec<Change>) -> String {
    let text = if style.clean {
        cleaned(column, raw, changes)
    } else {
        raw.to_owned()
    };
    match (&column.kind, style.labels) {
        (Kind::Choice(choices) | Kind::Choices(choices), true) => label_of(choices, &text),
        _ => text,
    }
}

/// Cleans one text value of `column`, reporting each step that changed it.
pub fn cleaned(column: &Column, raw: &str, changes: &mut Vec<Change>) -> String {
    let normalized = crate::text::normalize(raw);
    if normalized != raw {
        changes.push(Change {
            column: column.name.clone(),
            action: "normalized",
            before: raw.to_owned(),
            after: normalized.clone(),
            reason: "full-width characters or surrounding spaces (Unicode NFKC, trimmed)",
        });
    }
    let (canonical, reason) = match column.kind {
        Kind::IdNumber => (
            clean::id_number(&normalized),
            "ID number check character written upper-case",
        ),
        Kind::Date => (
            clean::date(&normalized),
            "date written as ISO 8601 (YYYY-MM-DD)",
        ),
        _ => return normalized,
    };
    if canonical != normalized {
        changes.push(Change {
            column: column.name.clone(),
            action: "canonicalized",
            before: normalized,
            after: canonical.clone(),
            reason,
        });
    }
    canonical
}

/// A choice's label (a code of no choice column stays as it is).
pub(crate) fn label(column: &Column, code: &str) -> String {
    match &column.kind {
        Kind::Choice(choices) | Kind::Choices(choices) => label_of(choices, code),
        _ => code.to_owned(),
    }
}

fn label_of(choices: &[(String, String)], code: &str) -> String {
    choices
        .iter()
        .find(|(c, _)| c == code)
        .map_or_else(|| code.to_owned(), |(_, label)| label.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::layout::Layout;
    use serde_json::{Value, json};

    fn cells_of(row: Value, style: Style, changes: &mut Vec<Change>) -> Vec<Cell> {
        let text = row.to_string();
        cells(
            &table(),
            &Json::parse(text.as_bytes()).unwrap(),
            style,
            changes,
        )
    }

    fn table() -> Table {
        Layout::of(&json!({"properties": {
            "id": {"type": "string", "format": "cn-resident-id"},
            "status": {"enum": ["stable", "unemployed"], "x-labels": {"stable": "稳定就业", "unemployed": "未就业"}},
            "trainings": {"type": "array", "items": {"enum": ["welding", "cooking"], "x-labels": {"welding": "电焊工"}}},
            "income": {"type": "number"},
            "place": {"type": "object", "properties": {"village": {"type": "string"}}}
        }}))
        .tables
        .remove(0)
    }

    const CODES: Style = Style {
        labels: false,
        multiple: Multiple::Join,
        clean: true,
    };

    #[test]
    fn a_row_is_flattened_cleaned_and_every_change_reported() {
        let row = json!({"id": " 45222319830708001ｘ", "status": "stable", "trainings": ["welding", "cooking"],
                         "income": 3200, "place": {"village": "定阳村\u{3000}"}});
        let mut changes = Vec::new();

        let cells = cells_of(row, CODES, &mut changes);

        assert_eq!(
            cells,
            [
                Cell::Text("45222319830708001X".into()),
                Cell::Text("stable".into()),
                Cell::Text("welding;cooking".into()),
                Cell::Number(3200.into()),
                Cell::Text("定阳村".into()),
            ]
        );
        let actions: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.column.as_str(), c.action))
            .collect();
        assert_eq!(
            actions,
            [
                ("id", "normalized"),
                ("id", "canonicalized"),
                ("place.village", "normalized")
            ]
        );
        assert_eq!(changes[1].before, "45222319830708001x");
    }

    #[test]
    fn labels_and_split_choices_change_headers_and_cells_together() {
        let style = Style {
            labels: true,
            multiple: Multiple::Split,
            clean: true,
        };
        let row = json!({"status": "unemployed", "trainings": ["welding"]});
        let headers = headers(&table(), style);
        let cells = cells_of(row, style, &mut Vec::new());
        assert_eq!(headers.len(), cells.len());
        assert_eq!(
            headers[2..4],
            [
                "trainings/电焊工".to_owned(),
                "trainings/cooking".to_owned()
            ]
        );
        assert_eq!(cells[1], Cell::Text("未就业".into()));
        assert_eq!(
            cells[2..4],
            [Cell::Number(1.into()), Cell::Number(0.into())]
        );
    }

    #[test]
    fn raw_style_changes_nothing() {
        let style = Style {
            labels: false,
            multiple: Multiple::Join,
            clean: false,
        };
        let mut changes = Vec::new();
        let cells = cells_of(json!({"id": " ４５ "}), style, &mut changes);
        assert_eq!(cells[0], Cell::Text(" ４５ ".into()));
        assert!(changes.is_empty());
    }
}
