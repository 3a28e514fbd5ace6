//! Cleaned datasets: flatten → clean → write, streamed in two passes over the store.
//!
//! Pass 1 reads every visible submission once to decide which row wins each natural key
//! (`dedup.rs`); pass 2 reads them again and writes rows, cleaned (`rows.rs`, `clean.rs`), with
//! every change and every dropped row reported to the cleaning log. Storage is never changed.

pub mod clean;
pub mod dedup;
pub mod indicators;
pub mod json;
pub mod layout;
mod passes;
mod pipeline;
pub mod rows;
mod sinks;

use std::collections::HashMap;
use std::io;

use time::OffsetDateTime;
use uuid::Uuid;

pub use rows::{Cell, Multiple, Style};
pub use sinks::{Format, LogLine, MediaFile, Sink, Written, write_table, write_zip};

use crate::audit::{self, AuditAction};
use crate::auth::{Permission, Principal};
use crate::error::AppError;
use crate::forms::FormRegistry;
use crate::forms::ids::FormId;
use crate::store::{Store, SubmissionRecord};
use crate::submissions::ReviewStatus;
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
    /// Only submissions in this review state (`approved`: only released data).
    pub status: Option<ReviewStatus>,
    /// Add every file the exported answers name, as `media/<submission id>/<file name>` (zip only).
    pub media: bool,
}

impl Options {
    /// Every submission, cleaned, codes not labels, no byte-order mark: what figures are computed from.
    pub fn cleaned() -> Self {
        Self {
            since: None,
            until: None,
            version: None,
            labels: false,
            multiple: Multiple::Join,
            bom: false,
            raw: false,
            status: None,
            media: false,
        }
    }
}

/// System columns of the main table, before the form's own.
pub const MAIN_SYSTEM: [&str; 7] = [
    "_id",
    "_form_version",
    "_submitted_by",
    "_received_at",
    "_completed_at",
    "_clock_flag",
    "_review_status",
];

/// An export, prepared: the layout is fixed and the reader checked before any byte is sent.
pub struct Export {
    pub form: FormId,
    pub layout: Layout,
    pub options: Options,
    /// RFC 3339 time the export was made, for README.txt.
    pub made_at: String,
    reader: Principal,
    /// Publication time of each version, for judging phone clocks.
    published: HashMap<String, OffsetDateTime>,
    /// The form's register, when the export marks and lists who it reached (`with_register`).
    pub(crate) register: Option<std::sync::Arc<crate::registry::matching::Register>>,
}

/// A submission as an export sees it.
struct Parsed<'a> {
    id: Uuid,
    seq: u64,
    form_version: &'a str,
    submitted_by: &'a str,
    /// As stored: RFC 3339 text.
    received_at: String,
    received: OffsetDateTime,
    completed_at: Option<String>,
    /// Why the phone's clock is not trusted, when it is not.
    clock_problem: Option<&'static str>,
    /// Completion time used for "latest wins", Unix seconds (ties go to the later arrival).
    order: u32,
    test: bool,
    /// The review state's name, or `deleted` for a deleted submission.
    review: &'static str,
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
        Self::laid_out(forms, form, reader, options)
    }

    /// The same, for figures computed from the cleaned data (indicators): supervisors may read
    /// those for their places without being able to download the rows.
    pub fn prepare_for_figures(
        forms: &FormRegistry,
        form: &str,
        reader: &Principal,
        options: Options,
    ) -> Result<Self, AppError> {
        reader.require(Permission::ReadFigures)?;
        Self::laid_out(forms, form, reader, options)
    }

    fn laid_out(
        forms: &FormRegistry,
        form: &str,
        reader: &Principal,
        options: Options,
    ) -> Result<Self, AppError> {
        let versions = forms.versions(form)?;
        if let Some(wanted) = &options.version {
            forms.resolve(form, Some(wanted))?;
        }
        let selected: Vec<_> = versions
            .iter()
            .rev()
            .filter(|v| {
                options
                    .version
                    .as_ref()
                    .is_none_or(|w| *w == v.stored.version)
            })
            .collect();
        // A version that breaks a rule for schemas (a `$ref` cycle has no layout) is not read.
        for version in &selected {
            version.usable()?;
        }
        let layouts = selected.iter().map(|v| Layout::of(&v.stored.schema));
        let published = versions
            .iter()
            .map(|v| (v.stored.version.clone(), v.stored.published_at.instant()))
            .collect();
        Ok(Self {
            form: versions
                .first()
                .map(|v| v.stored.form.clone())
                .ok_or(AppError::FormNotFound)?,
            layout: Layout::union(layouts),
            options,
            made_at: crate::clock::Timestamp::now().to_string(),
            reader: reader.clone(),
            published,
            register: None,
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
        if self
            .register
            .as_ref()
            .is_some_and(|r| r.people_table() == table.name)
        {
            headers.push("_registry".to_owned());
        }
        headers
    }

    /// Marks the register's people in the export (`_registry`), logs where register and survey
    /// disagree, and lists who was not reached (`_missing.csv` in the zip), if the form has one.
    pub fn with_register(mut self, store: &Store, forms: &FormRegistry) -> Result<Self, AppError> {
        // A raw export is the data as received: nothing is added to it.
        if self.options.raw {
            return Ok(self);
        }
        let newest = forms.resolve(self.form.as_str(), None)?;
        self.register =
            crate::registry::matching::Register::load(store, &newest)?.map(std::sync::Arc::new);
        Ok(self)
    }

    /// The registered people every kept row of people reaches (all of the cleaned data: no
    /// filter, no scope), for `_missing.csv`.
    pub(crate) fn reached(
        &self,
        store: &Store,
    ) -> std::io::Result<std::collections::HashSet<String>> {
        struct Reached(Option<usize>, std::collections::HashSet<String>);
        impl Sink for Reached {
            fn wants(&self, table: usize) -> bool {
                Some(table) == self.0
            }
            fn wants_log(&self) -> bool {
                false
            }
            fn row(&mut self, _table: usize, _cells: Vec<Cell>) -> std::io::Result<()> {
                Ok(())
            }
            fn log(&mut self, _line: LogLine) -> std::io::Result<()> {
                Ok(())
            }
            fn reached(&mut self, person: String) -> std::io::Result<()> {
                self.1.insert(person);
                Ok(())
            }
        }
        let everything = Export {
            form: self.form.clone(),
            layout: self.layout.clone(),
            options: Options::cleaned(),
            made_at: self.made_at.clone(),
            reader: Principal::system(),
            published: self.published.clone(),
            register: self.register.clone(),
        };
        let people = self
            .register
            .as_ref()
            .and_then(|r| self.table_index(r.people_table()));
        let mut sink = Reached(people, std::collections::HashSet::new());
        everything.emit(store, &mut sink)?;
        Ok(sink.1)
    }

    /// Whether a registered household at `place` is one the reader may see.
    pub fn covers(&self, place: Option<&str>) -> bool {
        self.reader.covers(place)
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

    /// Reads a stored submission; with a `filter`, only the parts it keeps are built.
    fn parse<'a>(
        &self,
        record: &'a SubmissionRecord,
        filter: Option<&Filter>,
    ) -> io::Result<Parsed<'a>> {
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
        let received = record.meta.received_at.instant();
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
        let trusted = completed
            .filter(|_| clock_problem.is_none())
            .unwrap_or(received);
        let order = u32::try_from(trusted.unix_timestamp()).unwrap_or(0);
        // A corrected submission's latest version replaces the answers as received.
        let current = match (&record.current, filter) {
            (Some(bytes), Some(filter)) => Some(filter.parse_data(bytes)),
            (Some(bytes), None) => Some(Json::parse(bytes)),
            (None, _) => None,
        }
        .transpose()
        .map_err(io::Error::other)?;
        // The last `data`, as validation read it (a record stored before repeated keys were refused).
        let data = current.or_else(|| match &mut envelope {
            Json::Object(members) => members
                .iter()
                .rposition(|(k, _)| k == "data")
                .map(|i| members.swap_remove(i).1),
            _ => None,
        });
        Ok(Parsed {
            id: record.id,
            seq: record.meta.seq,
            form_version: &record.meta.form_version,
            submitted_by: &record.meta.submitted_by,
            received_at: record.meta.received_at.to_string(),
            received,
            completed_at,
            clock_problem,
            order,
            test,
            review: if record.meta.deleted.is_some() {
                "deleted"
            } else {
                record.meta.review_status.as_str()
            },
            data: data.unwrap_or(Json::Null),
        })
    }

    /// Whether review leaves a submission out of a cleaned export (deleted or rejected), or the
    /// `status` filter does; such submissions neither appear nor win a natural key.
    fn left_out_by_review(&self, s: &Parsed) -> bool {
        self.options
            .status
            .is_some_and(|wanted| wanted.as_str() != s.review)
            || (!self.options.raw && matches!(s.review, "deleted" | "rejected"))
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
}

/// Records who downloaded which file, durably, before its first byte is sent.
pub async fn record_download(
    store: &Store,
    by: &Principal,
    file_name: &str,
) -> Result<(), AppError> {
    let event = audit::by(
        by,
        AuditAction::ExportDownloaded,
        format!("export:{file_name}"),
    );
    store.record_audit(&event)?.durable().await?;
    Ok(())
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
