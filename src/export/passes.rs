//! The two passes of an export, page by page: settling natural keys, then producing rows.

use std::io;

use super::dedup::{self, KeyDigest, KeyIndex, Winner};
use super::json::{Filter, Json};
use super::layout::{Column, Kind, Table};
use super::rows::{self, Cell};
use super::sinks::{LogLine, MediaFile, Sink, Written};
use super::{Export, MAIN_SYSTEM, Parsed, pipeline, table_rows};
use crate::attachments::MediaType;
use crate::registry::matching::Register;
use crate::store::{Listed, Store};

/// Pass 1's findings on one page: candidates per table, and the main key of each submission.
type PageKeys = (Vec<(usize, KeyDigest, Winner)>, Vec<(u64, KeyDigest)>);

/// Pass 2's output for one page.
#[derive(Default)]
struct PageOutput {
    rows: Vec<(usize, Vec<Cell>)>,
    log: Vec<LogLine>,
    /// Kept files the page's exported answers name (when the export adds media).
    media: Vec<MediaFile>,
    /// Registered people the page's kept rows reached.
    reached: Vec<String>,
    /// Entries that could not be read and were left out.
    unreadable: u64,
}

impl Export {
    fn visible(&self) -> impl Fn(&str, Option<&str>) -> bool + Sync + '_ {
        |by, scope| crate::submissions::visible_to(&self.reader, by, scope)
    }

    /// Pass 1: the winner of every natural key, among submissions that are not test ones, and
    /// (for child tables) among the rows of submissions that won their own key.
    pub(super) fn winners(&self, store: &Store) -> io::Result<Vec<KeyIndex>> {
        let tables = &self.layout.tables;
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
        let mut indexes: Vec<KeyIndex> = tables.iter().map(|_| KeyIndex::default()).collect();
        // (arrival number, main key) of every keyed submission: 24 bytes each.
        let mut main_keys = Vec::new();
        let work = |page: &[Listed]| -> io::Result<PageKeys> {
            let mut found = (Vec::new(), Vec::new());
            // What cannot be read cannot win a key; pass 2 logs it.
            for record in page.iter().filter_map(|entry| entry.as_ref().ok()) {
                let Ok(s) = self.parse(record, Some(&filter)) else {
                    continue;
                };
                if s.test || self.left_out_by_review(&s) {
                    continue;
                }
                for (t, table) in tables
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| !t.unique.is_empty())
                {
                    for (row, (_, _, value)) in table_rows(table, &s).iter().enumerate() {
                        if let Some(key) = dedup::natural_key(table, value) {
                            if t == 0 {
                                found.1.push((s.seq, key));
                            }
                            found.0.push((
                                t,
                                key,
                                Winner {
                                    order: s.order,
                                    seq: s.seq,
                                    row: row as u32,
                                },
                            ));
                        }
                    }
                }
            }
            Ok(found)
        };
        pipeline::run(
            store,
            self.form.as_str(),
            &self.visible(),
            &work,
            |(candidates, keys)| {
                for (t, key, winner) in candidates {
                    indexes[t].offer(key, winner);
                }
                main_keys.extend(keys);
                Ok(())
            },
        )?;
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

    /// Pass 2: every row of the tables `sink` wants, cleaned, and every change and drop logged
    /// (a submission that cannot be read as `dropped_unreadable`, never failing the export).
    pub(crate) fn emit(&self, store: &Store, sink: &mut dyn Sink) -> io::Result<Written> {
        let winners = if self.options.raw {
            None
        } else {
            Some(self.winners(store)?)
        };
        let wants: Vec<bool> = (0..self.layout.tables.len())
            .map(|t| sink.wants(t))
            .collect();
        let wants_log = sink.wants_log();
        let scope = self.scope_column().map(|column| Table {
            name: String::new(),
            arrays: Vec::new(),
            columns: vec![column.clone()],
            unique: Vec::new(),
        });
        let pass = Pass {
            export: self,
            store,
            winners: winners.as_ref(),
            wants: &wants,
            wants_log,
            scope: scope.as_ref(),
        };
        let work = |page: &[Listed]| {
            let mut out = PageOutput::default();
            for entry in page {
                pass.entry(entry, &mut out);
            }
            Ok(out)
        };
        let mut written = Written::default();
        pipeline::run(store, self.form.as_str(), &self.visible(), &work, |out| {
            written.rows += out.rows.len() as u64;
            written.unreadable += out.unreadable;
            for (table, cells) in out.rows {
                sink.row(table, cells)?;
            }
            for file in out.media {
                sink.media(file)?;
            }
            for person in out.reached {
                sink.reached(person)?;
            }
            out.log.into_iter().try_for_each(|line| sink.log(line))
        })?;
        Ok(written)
    }
}

/// What pass 2 needs for every submission.
struct Pass<'e> {
    export: &'e Export,
    store: &'e Store,
    winners: Option<&'e Vec<KeyIndex>>,
    wants: &'e [bool],
    wants_log: bool,
    /// The scope field as a one-column table, for the copy in child tables.
    scope: Option<&'e Table>,
}

impl Pass<'_> {
    /// One entry of a page: its rows, or a `dropped_unreadable` line when it cannot be read.
    fn entry(&self, entry: &Listed, out: &mut PageOutput) {
        let (id, reason) = match entry {
            Ok(record) => match self.export.parse(record, None) {
                Ok(s) => return self.submission(&s, out),
                Err(error) => (Some(record.id), error.to_string()),
            },
            Err(unreadable) => (unreadable.id, unreadable.reason.clone()),
        };
        tracing::warn!(form = %self.export.form, ?id, %reason, "left an unreadable submission out of an export");
        out.unreadable += 1;
        if self.wants_log {
            out.log.push(LogLine {
                submission_id: id.map(|id| id.to_string()).unwrap_or_default(),
                table: "main".into(),
                row_key: String::new(),
                column: String::new(),
                action: "dropped_unreadable",
                before: String::new(),
                after: String::new(),
                reason: format!("the stored submission cannot be read: {reason}"),
            });
        }
    }

    fn submission(&self, s: &Parsed<'_>, out: &mut PageOutput) {
        let export = self.export;
        if !export.in_filter(s) {
            return;
        }
        let tables = &export.layout.tables;
        let style = export.style();
        let id = s.id.to_string();
        let mut log = |table: &str,
                       row_key: &str,
                       column: &str,
                       action: &'static str,
                       before: &str,
                       after: &str,
                       reason: String| {
            if self.wants_log {
                out.log.push(LogLine {
                    submission_id: id.clone(),
                    table: table.to_owned(),
                    row_key: row_key.to_owned(),
                    column: column.to_owned(),
                    action,
                    before: before.to_owned(),
                    after: after.to_owned(),
                    reason,
                });
            }
        };
        if export
            .options
            .status
            .is_some_and(|wanted| wanted.as_str() != s.review)
        {
            return;
        }
        if let Some(winners) = self.winners {
            if matches!(s.review, "deleted" | "rejected") {
                let action = if s.review == "deleted" {
                    "dropped_deleted"
                } else {
                    "dropped_rejected"
                };
                log(
                    "main",
                    &id,
                    "",
                    action,
                    "",
                    "",
                    format!("the submission was {} in review", s.review),
                );
                return;
            }
            if s.test {
                log(
                    "main",
                    &id,
                    "",
                    "dropped_test",
                    "",
                    "",
                    "a training submission (meta.test is true)".into(),
                );
                return;
            }
            if let Some(key) = dedup::natural_key(&tables[0], &s.data)
                && let Some(w) = winners[0].winner(&key).filter(|w| w.seq != s.seq)
            {
                let reason = format!(
                    "same {} as submission {}, completed later; its rows in other tables are dropped with it",
                    key_names(&tables[0]),
                    self.winner_id(w.seq)
                );
                log("main", &id, "", "dropped_duplicate", "", "", reason);
                return;
            }
            if let Some(problem) = s.clock_problem {
                let before = s.completed_at.as_deref().unwrap_or_default();
                log(
                    "main",
                    &id,
                    "_completed_at",
                    "flagged_clock",
                    before,
                    before,
                    problem.to_owned(),
                );
            }
        }
        let scope_cell = self
            .scope
            .and_then(|single| rows::cells(single, &s.data, style, &mut Vec::new()).pop());
        let mut rows_out = Vec::new();
        for (t, table) in tables.iter().enumerate() {
            if !self.wants[t] && !self.wants_log {
                continue;
            }
            for (row, (key, parent, value)) in table_rows(table, s).iter().enumerate() {
                if let (Some(winners), false) = (self.winners, table.is_main()) {
                    let lost = dedup::natural_key(table, value)
                        .and_then(|k| winners[t].winner(&k))
                        .filter(|w| (w.seq, w.row) != (s.seq, row as u32));
                    if let Some(w) = lost {
                        let reason = format!(
                            "same {} as a row of submission {}, completed later",
                            key_names(table),
                            self.winner_id(w.seq)
                        );
                        log(&table.name, key, "", "dropped_duplicate", "", "", reason);
                        continue;
                    }
                }
                for (column, media_type, name) in attachment_names(table, value) {
                    let reason = match self.store.attachment(s.id, name) {
                        Ok(Some(kept)) => {
                            if export.options.media {
                                out.media.push(MediaFile {
                                    submission: s.id,
                                    name: crate::attachments::saved_name(name, media_type),
                                    sha256: kept.sha256,
                                });
                            }
                            continue;
                        }
                        Ok(None) => {
                            "the answer names a file that has not been uploaded (yet)".into()
                        }
                        Err(error) => {
                            format!("the server could not read whether it was uploaded: {error}")
                        }
                    };
                    log(
                        &table.name,
                        key,
                        &column.name,
                        "missing_attachment",
                        name,
                        "",
                        reason,
                    );
                }
                let mut changes = Vec::new();
                let values = rows::cells(table, value, style, &mut changes);
                let registered = self.registered(table, value);
                // Where the survey and the register disagree, the log says so (the row keeps
                // what was surveyed).
                for column in &table.columns {
                    let Some(person) = registered.as_ref().and_then(|r| r.fields) else {
                        break;
                    };
                    let listed = Register::text(person, column).filter(|l| !l.is_empty());
                    let surveyed = value
                        .at(&column.path)
                        .and_then(json_text)
                        .map(|raw| rows::cleaned(column, &raw, &mut Vec::new()));
                    if let (Some(listed), Some(surveyed)) = (listed, surveyed)
                        && !same_value(&listed, &surveyed)
                    {
                        log(
                            &table.name,
                            key,
                            &column.name,
                            "registry_differs",
                            &listed,
                            &surveyed,
                            "the register has another value for this person; the survey's is kept"
                                .into(),
                        );
                    }
                }
                if let Some(Registration {
                    key: Some(person),
                    matched: true,
                    ..
                }) = &registered
                {
                    out.reached.push(person.clone());
                }
                for c in changes {
                    log(
                        &table.name,
                        key,
                        &c.column,
                        c.action,
                        &c.before,
                        &c.after,
                        c.reason.to_owned(),
                    );
                }
                if !self.wants[t] {
                    continue;
                }
                let mut cells = if table.is_main() {
                    main_system_cells(s, &id)
                } else {
                    let mut c = vec![Cell::Text(key.clone()), Cell::Text(parent.clone())];
                    c.extend(scope_cell.clone());
                    c
                };
                cells.extend(values);
                // Every row of people has the cell its header promises.
                if let Some(registration) = &registered {
                    cells.push(match (&registration.key, registration.matched) {
                        (None, _) => Cell::Empty,
                        (Some(_), true) => Cell::Text("matched".into()),
                        (Some(_), false) => Cell::Text("new".into()),
                    });
                }
                rows_out.push((t, cells));
            }
        }
        out.rows.extend(rows_out);
    }

    /// The id of the submission with arrival number `seq`, for log reasons.
    fn winner_id(&self, seq: u64) -> String {
        self.store
            .submission_id_at(self.export.form.as_str(), seq)
            .ok()
            .flatten()
            .map_or_else(|| format!("#{seq}"), |id| id.to_string())
    }
}

/// `_id`, `_form_version`, `_submitted_by`, `_received_at`, `_completed_at`, `_clock_flag`, `_review_status`.
fn main_system_cells(s: &Parsed<'_>, id: &str) -> Vec<Cell> {
    let text = |t: &str| Cell::Text(t.to_owned());
    let clock = if s.clock_problem.is_some() {
        text("implausible")
    } else {
        Cell::Empty
    };
    // One cell per system column: the array's length is checked by the compiler.
    let cells: [Cell; MAIN_SYSTEM.len()] = [
        text(id),
        text(s.form_version),
        text(s.submitted_by),
        text(&s.received_at),
        s.completed_at.as_deref().map_or(Cell::Empty, text),
        clock,
        text(s.review),
    ];
    cells.into()
}

/// A row of people as the register sees it.
struct Registration<'r> {
    key: Option<String>,
    matched: bool,
    /// Their register fields, to compare with (only for households of the reader's places).
    fields: Option<&'r serde_json::Map<String, serde_json::Value>>,
}

/// Whether a register value and a surveyed one say the same: numbers as numbers (`2000.0` is
/// `2000`), several choices as a set, in any order.
fn same_value(listed: &str, surveyed: &str) -> bool {
    if let (Ok(a), Ok(b)) = (listed.parse::<f64>(), surveyed.parse::<f64>()) {
        return a == b;
    }
    choice_set(listed) == choice_set(surveyed)
}

/// The parts of a `;`-joined value, in order.
fn choice_set(text: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = text
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    parts.sort_unstable();
    parts
}

/// A value as text, as the register holds it (choices joined with `;`).
fn json_text(value: &Json<'_>) -> Option<String> {
    Some(match value {
        Json::String(s) => s.to_string(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        Json::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_json_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(";"),
        Json::Null | Json::Object(_) => return None,
    })
}

impl Pass<'_> {
    /// For a row of the register's people (`None` for other tables, or forms without a
    /// register): its person key, cleaned as the register's is (if it has one), whether they are
    /// registered, and their register fields if their household is in the reader's places.
    fn registered<'r>(&'r self, table: &Table, row: &Json<'_>) -> Option<Registration<'r>> {
        let register = self.export.register.as_deref()?;
        if table.name != register.people_table() {
            return None;
        }
        let key = register.person_key();
        let column = table.columns.iter().find(|c| c.path == key);
        let key = row
            .at(key)
            .and_then(json_text)
            .zip(column)
            .map(|(raw, column)| rows::cleaned(column, &raw, &mut Vec::new()));
        let found = key.as_deref().and_then(|k| register.person(k));
        Some(Registration {
            matched: found.is_some(),
            fields: found
                .filter(|(_, place)| self.export.covers(*place))
                .map(|(fields, _)| fields),
            key,
        })
    }
}

/// The attachment columns of `table` with their type and the file name each holds in `row`.
fn attachment_names<'r>(
    table: &'r Table,
    row: &'r Json<'_>,
) -> impl Iterator<Item = (&'r Column, MediaType, &'r str)> {
    table.columns.iter().filter_map(|column| match column.kind {
        Kind::Attachment(media_type) => Some((column, media_type, row.at(&column.path)?.as_str()?)),
        _ => None,
    })
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
