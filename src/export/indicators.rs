//! The county's figures over the cleaned data: counts and rates, grouped by any columns.
//!
//! A form declares its indicators at the schema root, so no code knows any one form:
//!
//! ```json
//! "x-indicators": [{"id": "employment_rate", "title": "就业率", "x-title-en": "Employment rate",
//!                   "table": "members", "column": "employment_status",
//!                   "numerator": ["stable", "flexible", "self_employed"]}]
//! ```
//!
//! For a table, every indicator on it contributes the count of each choice of its column and its
//! rate: rows whose value is in `numerator`, over all rows, as a percentage with two decimals.
//! `"exclude": {"presence": ["moved", "deceased", "other"]}` leaves rows with those values out of
//! an indicator altogether (its counts and its denominator): people no longer in the household.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Export;
use super::layout::Kind;
use super::rows::Cell;
use super::sinks::{CsvOut, LogLine, Sink};
use crate::store::Store;

/// One declared indicator.
#[derive(Clone, Debug, Serialize)]
pub struct Indicator {
    pub id: String,
    pub title: String,
    pub column: String,
    pub numerator: Vec<String>,
    /// Rows whose column (the key) has one of these values are not counted at all.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub exclude: BTreeMap<String, Vec<String>>,
    /// Every code of the column, for the per-choice counts.
    #[serde(skip)]
    codes: Vec<String>,
}

/// The indicators of `table` declared in the newest version's schema.
pub fn declared(schema: &Value, export: &Export, table: &str) -> Vec<Indicator> {
    let Some(list) = schema.get("x-indicators").and_then(Value::as_array) else {
        return Vec::new();
    };
    let columns = export
        .layout
        .table(table)
        .map(|t| t.columns.as_slice())
        .unwrap_or_default();
    list.iter()
        .filter(|i| i.get("table").and_then(Value::as_str) == Some(table))
        .filter_map(|i| {
            let text = |k: &str| i.get(k).and_then(Value::as_str).map(str::to_owned);
            let column = text("column")?;
            let codes = match &columns.iter().find(|c| c.name == column)?.kind {
                Kind::Choice(choices) => choices.iter().map(|(code, _)| code.clone()).collect(),
                _ => Vec::new(),
            };
            let numerator = i
                .get("numerator")?
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            let exclude = i
                .get("exclude")
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .map(|(column, values)| {
                            let values = values.as_array().map(|v| {
                                v.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_owned)
                                    .collect()
                            });
                            (column.clone(), values.unwrap_or_default())
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(Indicator {
                id: text("id")?,
                title: text("title").unwrap_or_default(),
                column,
                numerator,
                exclude,
                codes,
            })
        })
        .collect()
}

/// Counts for one group of rows.
#[derive(Clone, Debug, Default)]
struct Counts {
    rows: u64,
    /// Per indicator, per code of its column.
    choices: Vec<BTreeMap<String, u64>>,
    /// Per indicator, the rows it counts (its denominator): all but those it excludes.
    counted: Vec<u64>,
}

/// The figures: one entry per group (in group order) and the total.
pub struct Figures {
    pub by: Vec<String>,
    pub indicators: Vec<Indicator>,
    groups: BTreeMap<Vec<String>, Counts>,
    total: Counts,
}

/// Computes the figures of `table` grouped by the columns `by`, over the cleaned rows.
pub fn compute(
    export: &Export,
    store: &Store,
    table: &str,
    by: Vec<String>,
    indicators: Vec<Indicator>,
) -> io::Result<Figures> {
    let index = export
        .table_index(table)
        .ok_or_else(|| io::Error::other("no such table"))?;
    let headers = export.headers(index);
    let position = |name: &str| headers.iter().position(|h| h == name);
    let group_columns: Vec<usize> = by
        .iter()
        .map(|b| position(b).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, b.clone())))
        .collect::<io::Result<_>>()?;
    let counted: Vec<Option<usize>> = indicators.iter().map(|i| position(&i.column)).collect();
    // Per indicator, the positions of the columns it excludes by, with the values.
    let excluded: Vec<Vec<(usize, Vec<String>)>> = indicators
        .iter()
        .map(|i| {
            i.exclude
                .iter()
                .filter_map(|(column, values)| Some((position(column)?, values.clone())))
                .collect()
        })
        .collect();
    let mut sink = Aggregate {
        table: index,
        group_columns,
        counted,
        excluded,
        empty: Counts {
            rows: 0,
            choices: vec![BTreeMap::new(); indicators.len()],
            counted: vec![0; indicators.len()],
        },
        groups: BTreeMap::new(),
    };
    export.emit(store, &mut sink)?;
    let mut total = sink.empty.clone();
    for counts in sink.groups.values() {
        add(&mut total, counts);
    }
    Ok(Figures {
        by,
        indicators,
        groups: sink.groups,
        total,
    })
}

fn add(into: &mut Counts, from: &Counts) {
    into.rows += from.rows;
    for (into, from) in into.counted.iter_mut().zip(&from.counted) {
        *into += from;
    }
    for (into, from) in into.choices.iter_mut().zip(&from.choices) {
        for (code, n) in from {
            *into.entry(code.clone()).or_default() += n;
        }
    }
}

struct Aggregate {
    table: usize,
    group_columns: Vec<usize>,
    counted: Vec<Option<usize>>,
    excluded: Vec<Vec<(usize, Vec<String>)>>,
    empty: Counts,
    groups: BTreeMap<Vec<String>, Counts>,
}

fn text(cell: Option<&Cell>) -> String {
    match cell {
        Some(Cell::Text(t)) => t.clone(),
        Some(Cell::Number(n)) => n.to_string(),
        Some(Cell::Bool(b)) => b.to_string(),
        Some(Cell::Empty) | None => String::new(),
    }
}

impl Sink for Aggregate {
    fn wants(&self, table: usize) -> bool {
        table == self.table
    }
    fn wants_log(&self) -> bool {
        false
    }
    fn row(&mut self, _table: usize, cells: Vec<Cell>) -> io::Result<()> {
        let key: Vec<String> = self
            .group_columns
            .iter()
            .map(|&c| text(cells.get(c)))
            .collect();
        let counts = self.groups.entry(key).or_insert_with(|| self.empty.clone());
        counts.rows += 1;
        for (i, column) in self.counted.iter().enumerate() {
            let left_out = self.excluded[i]
                .iter()
                .any(|(at, values)| values.contains(&text(cells.get(*at))));
            if left_out {
                continue;
            }
            counts.counted[i] += 1;
            if let Some(column) = column {
                *counts.choices[i]
                    .entry(text(cells.get(*column)))
                    .or_default() += 1;
            }
        }
        Ok(())
    }
    fn log(&mut self, _line: LogLine) -> io::Result<()> {
        Ok(())
    }
}

/// A percentage with two decimals, computed from the counts (never from rounded figures).
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 10_000.0 / whole as f64).round() / 100.0
}

impl Figures {
    /// Column names of the flat form (CSV): the groups, `rows`, each `column=code` count, each rate.
    pub fn headers(&self) -> Vec<String> {
        let mut headers = self.by.clone();
        headers.push("rows".into());
        for indicator in &self.indicators {
            headers.extend(
                indicator
                    .codes
                    .iter()
                    .map(|code| format!("{}={code}", indicator.column)),
            );
            headers.push(indicator.id.clone());
        }
        headers
    }

    /// One flat row per group, then the total (group columns say `total`).
    pub fn rows(&self) -> Vec<Vec<Value>> {
        let row = |key: Vec<String>, counts: &Counts| {
            let mut row: Vec<Value> = key.into_iter().map(Value::String).collect();
            row.push(json!(counts.rows));
            for (i, (indicator, choices)) in self.indicators.iter().zip(&counts.choices).enumerate()
            {
                row.extend(
                    indicator
                        .codes
                        .iter()
                        .map(|c| json!(choices.get(c).copied().unwrap_or(0))),
                );
                let part = indicator
                    .numerator
                    .iter()
                    .map(|c| choices.get(c).copied().unwrap_or(0))
                    .sum();
                row.push(json!(percent(
                    part,
                    counts.counted.get(i).copied().unwrap_or(counts.rows)
                )));
            }
            row
        };
        let mut rows: Vec<Vec<Value>> = self
            .groups
            .iter()
            .map(|(key, counts)| row(key.clone(), counts))
            .collect();
        rows.push(row(vec!["total".into(); self.by.len()], &self.total));
        rows
    }

    /// The flat form as CSV, through the same writer as every export (formula cells made inert:
    /// group names come from the answers). Rates are percentages with two decimals: 58.30.
    pub fn write_csv(&self, out: impl Write, bom: bool) -> io::Result<()> {
        let mut csv = CsvOut::new(out, bom, &self.headers())?;
        for row in self.rows() {
            let cells: Vec<Cell> = row
                .into_iter()
                .map(|value| match value {
                    Value::String(text) => Cell::Text(text),
                    Value::Number(n) if n.is_f64() => {
                        Cell::Text(format!("{:.2}", n.as_f64().unwrap_or_default()))
                    }
                    Value::Number(n) => Cell::Number(n),
                    other => Cell::Text(other.to_string()),
                })
                .collect();
            csv.cells(&cells)?;
        }
        csv.finish()?.flush()
    }

    /// The JSON answer: `{by, indicators, groups: [...], total: {...}}`, each group an object.
    pub fn to_json(&self) -> Value {
        let headers = self.headers();
        let mut rows: Vec<Value> = self
            .rows()
            .into_iter()
            .map(|row| {
                Value::Object(
                    headers
                        .iter()
                        .cloned()
                        .zip(row)
                        .collect::<Map<String, Value>>(),
                )
            })
            .collect();
        let total = rows.pop().unwrap_or(Value::Null);
        json!({"by": self.by, "indicators": self.indicators, "groups": rows, "total": total})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_that_look_like_formulas_are_written_inert() {
        let mut groups = BTreeMap::new();
        let counts = Counts {
            rows: 3,
            choices: vec![],
            counted: vec![],
        };
        groups.insert(
            vec!["=HYPERLINK(\"http://x\",\"y\")".to_owned()],
            counts.clone(),
        );
        let figures = Figures {
            by: vec!["village".into()],
            indicators: vec![],
            groups,
            total: counts,
        };
        let mut out = Vec::new();
        figures.write_csv(&mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"'=HYPERLINK("), "{text}");
        assert!(
            !text.contains(",=HYPERLINK") && !text.starts_with("=HYP"),
            "{text}"
        );
    }

    #[test]
    fn rates_are_computed_from_counts_with_two_decimals() {
        assert_eq!(percent(15_835, 27_211), 58.19);
        assert_eq!(percent(8_033, 27_211), 29.52);
        assert_eq!(percent(1, 3), 33.33);
        assert_eq!(percent(0, 0), 0.0);
    }
}
