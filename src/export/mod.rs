//! Cleaned datasets: flatten → clean → write, streamed in two passes over the store.
//!
//! Pass 1 reads every visible submission once to decide which row wins each natural key
//! (`dedup.rs`); pass 2 reads them again and writes rows, cleaned (`rows.rs`, `clean.rs`), with
//! every change and every dropped row reported to the cleaning log. Storage is never changed.

pub mod clean;
pub mod dedup;
pub mod json;
pub mod layout;
pub mod rows;
mod sinks;

use std::collections::HashMap;
use std::io;

use time::OffsetDateTime;
use uuid::Uuid;

pub use rows::{Cell, Multiple, Style};
pub use sinks::{Format, LogLine, write_table, write_zip};

use crate::auth::{Permission, Principal};
use crate::error::AppError;
use crate::forms::FormRegistry;
use crate::store::{Store, SubmissionRecord};
use dedup::{KeyIndex, Winner};
use json::{Filter, Json};
use layout::{Layout, Table};

/// What the analyst asked for.
#[derive(Clone, Debug)]
pub struct Options {
    /// Only submissions received at or after / before these times.
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// Only this form version (and its columns).
    pub version: Option<String>,
    pub labels: bool,
    pub multiple: Multiple,
    /// Start CSV files with a UTF-8 byte-order mark (Excel and WPS need it to show 中文).
    pub bom: bool,
    /// No cleaning at all: every stored submission as received, for audit.
    pub raw: bool,
}

/// System columns of the main table, before the form's own.
pub const MAIN_SYSTEM: [&str; 6] = [
    "_id",
    "_form_version",
    "_submitted_by",
    "_received_at",
    "_completed_at",
    "_clock_flag",
];

/// An export, prepared: the layout is fixed and the reader checked before any byte is sent.
pub struct Export {
    pub form: String,
    pub layout: Layout,
    pub options: Options,
    /// RFC 3339 time the export was made, for README.txt.
    pub made_at: String,
    reader: Principal,
    /// Publication time of each version, for judging phone clocks.
    published: HashMap<String, OffsetDateTime>,
}

/// A submission as an export sees it.
struct Parsed<'a> {
    id: Uuid,
    seq: u64,
    form_version: &'a str,
    submitted_by: &'a str,
    received_at: &'a str,
    received: OffsetDateTime,
    completed_at: Option<String>,
    /// Why the phone's clock is not trusted, when it is not.
    clock_problem: Option<&'static str>,
    /// Completion time used for "latest wins", Unix milliseconds.
    order: i64,
    test: bool,
    data: Json<'a>,
}

impl Export {
    /// Checks the reader may export `form` and fixes the tables and columns.
    pub fn prepare(
        forms: &FormRegistry,
        form: &str,
        reader: &Principal,
        options: Options,
    ) -> Result<Self, AppError> {
        reader.require(Permission::Export)?;
        let versions = forms.versions(form)?;
        if let Some(wanted) = &options.version {
            forms.resolve(form, Some(wanted))?;
        }
        let layouts = versions
            .iter()
            .rev()
            .filter(|v| {
                options
                    .version
                    .as_ref()
                    .is_none_or(|w| *w == v.stored.version)
            })
            .map(|v| Layout::of(&v.stored.schema));
        let published = versions
            .iter()
            .filter_map(|v| {
                Some((
                    v.stored.version.clone(),
                    clean::instant(&v.stored.published_at)?,
                ))
            })
            .collect();
        Ok(Self {
            form: form.to_owned(),
            layout: Layout::union(layouts),
            options,
            made_at: crate::clock::now_rfc3339(),
            reader: reader.clone(),
            published,
        })
    }

    pub fn table_index(&self, name: &str) -> Option<usize> {
        self.layout.tables.iter().position(|t| t.name == name)
    }

    fn style(&self) -> Style {
        Style {
            labels: self.options.labels,
            multiple: self.options.multiple,
            clean: !self.options.raw,
        }
    }

    /// Headers of a table, system columns first.
    pub fn headers(&self, table: usize) -> Vec<String> {
        let table = &self.layout.tables[table];
        let mut headers: Vec<String> = if table.is_main() {
            MAIN_SYSTEM.iter().map(|s| (*s).to_owned()).collect()
        } else {
            let mut h = vec!["KEY".to_owned(), "PARENT_KEY".to_owned()];
            h.extend(self.scope_column().map(|c| {
                if self.options.labels {
                    c.label.clone()
                } else {
                    c.name.clone()
                }
            }));
            h
        };
        headers.extend(rows::headers(table, self.style()));
        headers
    }

    /// The main table's column for the scope field, copied into child tables.
    fn scope_column(&self) -> Option<&layout::Column> {
        let scope = self.layout.scope.as_ref()?;
        self.layout
            .tables
            .first()?
            .columns
            .iter()
            .find(|c| &c.path == scope)
    }

    /// Visits every submission the reader may see, oldest first, in bounded pages.
    fn scan(
        &self,
        store: &Store,
        mut visit: impl FnMut(SubmissionRecord) -> io::Result<()>,
    ) -> io::Result<()> {
        const PAGE: usize = 256;
        let mut after = None;
        loop {
            let page = store
                .submissions_page(&self.form, after, PAGE, |by, scope| {
                    crate::submissions::visible_to(&self.reader, by, scope)
                })
                .map_err(io::Error::other)?;
            let done = page.len() < PAGE;
            after = page.last().map(|r| r.meta.seq).or(after);
            for record in page {
                visit(record)?;
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Reads a stored submission; with a `filter`, only the parts it keeps are built.
    fn parse<'a>(&self, record: &'a SubmissionRecord, filter: Option<&Filter>) -> io::Result<Parsed<'a>> {
        let mut envelope = match filter {
            Some(filter) => filter.parse(&record.payload),
            None => Json::parse(&record.payload),
        }
        .map_err(io::Error::other)?;
        let meta = envelope.get("meta");
        let completed_at = meta
            .and_then(|m| m.get("completed_at"))
            .and_then(Json::as_str)
            .map(str::to_owned);
        let test = meta
            .and_then(|m| m.get("test"))
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let received = clean::instant(&record.meta.received_at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let published = self
            .published
            .get(&record.meta.form_version)
            .copied()
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let completed = completed_at.as_deref().and_then(clean::instant);
        let clock_problem = match completed {
            Some(at) => clean::clock_problem(at, received, published),
            None if completed_at.is_some() => Some("completed_at is not an RFC 3339 time"),
            None => None,
        };
        let trusted = completed.filter(|_| clock_problem.is_none()).unwrap_or(received);
        let order = (trusted.unix_timestamp_nanos() / 1_000_000) as i64;
        let data = match &mut envelope {
            Json::Object(members) => members
                .iter()
                .position(|(k, _)| k == "data")
                .map(|i| members.swap_remove(i).1),
            _ => None,
        };
        Ok(Parsed {
            id: record.id,
            seq: record.meta.seq,
            form_version: &record.meta.form_version,
            submitted_by: &record.meta.submitted_by,
            received_at: &record.meta.received_at,
            received,
            completed_at,
            clock_problem,
            order,
            test,
            data: data.unwrap_or(Json::Null),
        })
    }

    fn in_filter(&self, s: &Parsed) -> bool {
        self.options.since.is_none_or(|since| s.received >= since)
            && self.options.until.is_none_or(|until| s.received < until)
            && self
                .options
                .version
                .as_ref()
                .is_none_or(|v| *v == s.form_version)
    }

    /// Pass 1: the winner of every natural key, among submissions that are not test ones, and
    /// (for child tables) among the rows of submissions that won their own key.
    fn winners(&self, store: &Store) -> io::Result<Vec<KeyIndex>> {
        let tables = &self.layout.tables;
        let mut indexes: Vec<KeyIndex> = tables.iter().map(|_| KeyIndex::default()).collect();
        // (arrival number, main key) of every keyed submission: 24 bytes each.
        let mut main_keys = Vec::new();
        // Only the keys and the phone's facts are needed here: skip building the rest.
        let mut filter = Filter::default();
        filter.keep(&["meta".to_owned()]);
        for table in tables {
            for key in &table.unique {
                let mut path = vec!["data".to_owned()];
                path.extend(table.arrays.iter().flatten().cloned());
                path.extend(key.iter().cloned());
                filter.keep(&path);
            }
        }
        self.scan(store, |record| {
            let s = self.parse(&record, Some(&filter))?;
            if s.test {
                return Ok(());
            }
            for (t, table) in tables.iter().enumerate() {
                if table.unique.is_empty() {
                    continue;
                }
                for (row, (_, _, value)) in table_rows(table, &s).iter().enumerate() {
                    if let Some(key) = dedup::natural_key(table, value) {
                        if t == 0 {
                            main_keys.push((s.seq, key));
                        }
                        indexes[t].offer(
                            key,
                            Winner {
                                order: s.order,
                                seq: s.seq,
                                row: row as u32,
                            },
                        );
                    }
                }
            }
            Ok(())
        })?;
        let Some((main, children)) = indexes.split_first_mut() else {
            return Ok(indexes);
        };
        main.settle();
        // Rows of a submission that lost its own key go with it; they must not win theirs.
        let mut losers: Vec<u64> = main_keys
            .into_iter()
            .filter(|(seq, key)| main.winner(key).is_some_and(|w| w.seq != *seq))
            .map(|(seq, _)| seq)
            .collect();
        losers.sort_unstable();
        for child in children {
            child.retain_submissions(|seq| losers.binary_search(&seq).is_err());
            child.settle();
        }
        Ok(indexes)
    }

    /// Pass 2: every row of the tables `sink` wants, cleaned, and every change and drop logged.
    fn emit(&self, store: &Store, sink: &mut dyn sinks::Sink) -> io::Result<()> {
        let winners = if self.options.raw {
            None
        } else {
            Some(self.winners(store)?)
        };
        let style = self.style();
        let tables = &self.layout.tables;
        let scope = self.scope_column().cloned();
        let winner_id = |seq: u64| {
            store
                .submission_id_at(&self.form, seq)
                .ok()
                .flatten()
                .map_or_else(|| format!("#{seq}"), |id| id.to_string())
        };
        self.scan(store, |record| {
            let s = self.parse(&record, None)?;
            if !self.in_filter(&s) {
                return Ok(());
            }
            let id = s.id.to_string();
            let line = |table: &str, row_key: &str, column: &str, action: &'static str, before: &str, after: &str, reason: String| LogLine {
                submission_id: id.clone(),
                table: table.to_owned(),
                row_key: row_key.to_owned(),
                column: column.to_owned(),
                action,
                before: before.to_owned(),
                after: after.to_owned(),
                reason,
            };
            if let Some(winners) = &winners {
                if s.test {
                    return sink.log(line("main", &id, "", "dropped_test", "", "", "a training submission (meta.test is true)".into()));
                }
                if let Some(key) = dedup::natural_key(&tables[0], &s.data) {
                    if let Some(w) = winners[0].winner(&key).filter(|w| w.seq != s.seq) {
                        let reason = format!(
                            "same {} as submission {}, completed later; its rows in other tables are dropped with it",
                            key_names(&tables[0]),
                            winner_id(w.seq)
                        );
                        return sink.log(line("main", &id, "", "dropped_duplicate", "", "", reason));
                    }
                }
                if let Some(problem) = s.clock_problem {
                    let before = s.completed_at.as_deref().unwrap_or_default();
                    sink.log(line("main", &id, "_completed_at", "flagged_clock", before, before, problem.to_owned()))?;
                }
            }
            let scope_cell = match &scope {
                Some(column) => {
                    let single = Table { name: String::new(), arrays: Vec::new(), columns: vec![column.clone()], unique: Vec::new() };
                    rows::cells(&single, &s.data, style, &mut Vec::new()).pop()
                }
                None => None,
            };
            for (t, table) in tables.iter().enumerate() {
                if !sink.wants(t) && !sink.wants_log() {
                    continue;
                }
                for (row, (key, parent, value)) in table_rows(table, &s).iter().enumerate() {
                    if let (Some(winners), false) = (&winners, table.is_main()) {
                        let lost = dedup::natural_key(table, value)
                            .and_then(|k| winners[t].winner(&k))
                            .filter(|w| (w.seq, w.row) != (s.seq, row as u32));
                        if let Some(w) = lost {
                            let reason = format!(
                                "same {} as a row of submission {}, completed later",
                                key_names(table),
                                winner_id(w.seq)
                            );
                            sink.log(line(&table.name, key, "", "dropped_duplicate", "", "", reason))?;
                            continue;
                        }
                    }
                    let mut changes = Vec::new();
                    let values = rows::cells(table, value, style, &mut changes);
                    for change in changes {
                        let reason = change.reason.to_owned();
                        sink.log(line(&table.name, key, &change.column, change.action, &change.before, &change.after, reason))?;
                    }
                    if !sink.wants(t) {
                        continue;
                    }
                    let mut cells = if table.is_main() {
                        let text = |t: &str| Cell::Text(t.to_owned());
                        vec![
                            text(&id),
                            text(&s.form_version),
                            text(&s.submitted_by),
                            text(&s.received_at),
                            s.completed_at.as_deref().map_or(Cell::Empty, text),
                            if s.clock_problem.is_some() { text("implausible") } else { Cell::Empty },
                        ]
                    } else {
                        let mut c = vec![Cell::Text(key.clone()), Cell::Text(parent.clone())];
                        c.extend(scope_cell.clone());
                        c
                    };
                    cells.extend(values);
                    sink.row(t, cells)?;
                }
            }
            Ok(())
        })
    }
}

/// "household_id" or "a + b": the natural key's fields, for log reasons.
fn key_names(table: &Table) -> String {
    table
        .unique
        .iter()
        .map(|p| p.join("."))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The rows of `table` in one submission: (KEY, PARENT_KEY, row object).
fn table_rows<'p, 'a>(table: &Table, s: &'p Parsed<'a>) -> Vec<(String, String, &'p Json<'a>)> {
    let mut out = Vec::new();
    if table.is_main() {
        out.push((s.id.to_string(), String::new(), &s.data));
    } else {
        collect_rows(&s.data, &table.arrays, s.id.to_string(), &mut out);
    }
    out
}

fn collect_rows<'p, 'a>(
    at: &'p Json<'a>,
    arrays: &[Vec<String>],
    key: String,
    out: &mut Vec<(String, String, &'p Json<'a>)>,
) {
    let Some((path, rest)) = arrays.split_first() else {
        return;
    };
    let Some(items) = path
        .iter()
        .try_fold(at, |v, k| v.get(k))
        .and_then(Json::as_array)
    else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let item_key = format!("{key}/{}/{i}", path.join("/"));
        if rest.is_empty() {
            out.push((item_key, key.clone(), item));
        } else {
            collect_rows(item, rest, item_key, out);
        }
    }
}
