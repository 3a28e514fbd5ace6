//! The register (建档立卡): the households and people a form's survey is to reach, as the county
//! holds them. An admin imports it as CSV (`import`); phones read their places' roster
//! (`roster`) to find a household and open its questionnaire prefilled.
//!
//! An import is all or nothing: every row is checked with the form's own rules for the fields
//! it gives, rows of one household must agree, a person appears once; one bad row refuses the
//! whole register (the first 100 problems named by CSV line). It is written as a new version
//! beside the current one and becomes the register in one write (`store/registry.rs`).

pub mod coverage;
pub mod matching;
mod read;

use std::collections::HashMap;
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::audit::{self, AuditAction};
use crate::auth::{Permission, Principal};
use crate::clock::Timestamp;
use crate::error::{AppError, Detail};
use crate::export::layout::Layout;
use crate::forms::FormVersion;
use crate::forms::messages::Lang;
use crate::store::{Pending, PublishRefused, RegistryHousehold, RegistryInfo, Staged, Store};
use read::{Level, Shape};

/// Problems named in one refusal; the rest add nothing a person can act on before fixing these.
const MAX_PROBLEMS: usize = 100;
/// Longest row: a register's row is a person, not a document.
const MAX_ROW_BYTES: usize = 64 * 1024;
/// Entries written per store batch while importing.
const BATCH: usize = 2_000;

/// What an import made.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Imported {
    /// The register's new version (larger than every one before).
    pub version: u64,
    pub households: u64,
    pub members: u64,
}

/// One household of a roster: its fields and its people, in the shape of the form's answers.
pub type RosterHousehold = Map<String, Value>;

/// A page of a roster.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Roster {
    pub version: u64,
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<RosterHousehold>,
    /// Households gone from the reader's places since `since_version` (on the first page only).
    pub removed: Vec<String>,
    pub next_cursor: Option<String>,
}

/// Imports `file` (CSV, in `charset` or detected) as the new register of `form`'s current
/// version; the answer counts once the returned write is durable.
pub fn import(
    store: &Store,
    form: &FormVersion,
    mut file: File,
    charset: Option<&str>,
    by: &Principal,
) -> Result<Pending<Imported>, AppError> {
    by.require(Permission::ManageRegistry)?;
    let schema = &form.stored.schema;
    let shape = Shape::of(&Layout::of(schema), schema).ok_or_else(|| {
        AppError::invalid_field(
            "",
            "this form has no register: it needs a household key (x-unique) and a repeated group of people with one",
        )
    })?;
    let encoding = read::encoding(charset, &mut file)
        .map_err(io_error)?
        .ok_or_else(|| AppError::invalid_field("", "charset: not an encoding this server reads"))?;
    let id = form.stored.form.as_str();
    let previous = store.registry(id)?;
    let version = store.next_registry_version()?;
    let mut import = Import {
        store,
        form,
        shape: &shape,
        id,
        version,
        households: HashMap::new(),
        people: HashMap::new(),
        problems: Vec::new(),
        batch: Vec::new(),
        members: 0,
        most_people: most_people(schema, &shape),
    };
    let read = import.rows(read::decoded(file, encoding));
    let result = read
        .and_then(|()| {
            if import.members == 0 && import.problems.is_empty() {
                import.problem(
                    2,
                    "",
                    "a register needs at least one person: an empty one would wipe the one before",
                );
            }
            if import.problems.is_empty() {
                import.households(previous.as_ref())
            } else {
                Ok(())
            }
        })
        .and_then(|()| match import.problems.is_empty() {
            true => Ok(()),
            false => Err(AppError::RegistryInvalid(std::mem::take(
                &mut import.problems,
            ))),
        });
    if let Err(error) = result {
        store.drop_registry_version(id, version, true)?;
        return Err(error);
    }
    let info = RegistryInfo {
        version,
        households: import.households.len() as u64,
        members: import.members,
        imported_at: Timestamp::now(),
        imported_by: by.username.clone(),
    };
    let event = audit::by(
        by,
        AuditAction::RegistryImported,
        audit::registry_target(id),
    );
    let replacing = previous.as_ref().map(|p| p.version);
    let published = match store.publish_registry(id, &info, replacing, &event)? {
        Ok(pending) => pending,
        Err(PublishRefused::Superseded) => {
            store.drop_registry_version(id, version, true)?;
            return Err(AppError::RegistrySuperseded);
        }
    };
    // The import counts already; what is left of the version before is only space.
    if let Some(previous) = previous
        && let Err(error) = store.drop_registry_version(id, previous.version, false)
    {
        tracing::warn!(%error, form = id, version = previous.version, "removing a replaced register version failed");
    }
    Ok(published.map(|()| Imported {
        version,
        households: info.households,
        members: info.members,
    }))
}

/// The most people a household may list (`maxItems` of the form's group of people).
fn most_people(schema: &Value, shape: &Shape) -> usize {
    let document = crate::forms::refs::Document::new(schema);
    let group = shape.people_path().iter().try_fold(schema, |at, name| {
        document.resolve(at).get("properties")?.get(name)
    });
    group
        .map(|g| document.resolve(g))
        .and_then(|g| g.get("maxItems"))
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// An import under way.
struct Import<'a> {
    store: &'a Store,
    form: &'a FormVersion,
    shape: &'a Shape,
    id: &'a str,
    version: u64,
    /// Household id → the fingerprint of its fields and the first line that gave them (the
    /// fields themselves are staged at once: memory stays small for half a million rows).
    households: HashMap<String, (u64, u32)>,
    /// Person key (its 128-bit hash) → the line that gave it.
    people: HashMap<u128, u32>,
    problems: Vec<Detail>,
    batch: Vec<Staged>,
    members: u64,
    /// The form's `maxItems` for a household's people.
    most_people: usize,
}

impl Import<'_> {
    fn problem(&mut self, line: u32, column: &str, message: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Detail {
                path: if column.is_empty() {
                    format!("/line/{line}")
                } else {
                    format!(
                        "/line/{line}/{}",
                        column.replace('~', "~0").replace('/', "~1")
                    )
                },
                keyword: None,
                message: message.into(),
                key: None,
                params: None,
            });
        }
    }

    fn stage(&mut self, entry: Staged) -> Result<(), AppError> {
        // A register with a problem is refused whole: what is left is only checking.
        if !self.problems.is_empty() {
            self.batch.clear();
            return Ok(());
        }
        self.batch.push(entry);
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), AppError> {
        let batch = std::mem::take(&mut self.batch);
        Ok(self.store.stage_registry(self.id, self.version, &batch)?)
    }

    /// Reads, checks and stages every row (its person); households are staged after all rows.
    fn rows(&mut self, input: impl std::io::Read) -> Result<(), AppError> {
        let (input, lines) = read::LineIndex::new(input);
        let mut csv = csv::ReaderBuilder::new().flexible(false).from_reader(input);
        let headers: Vec<String> = csv
            .headers()
            .map_err(|e| AppError::invalid_field("/line/1", &format!("not CSV: {e}")))?
            .iter()
            .map(crate::text::normalize)
            .collect();
        let mut columns = Vec::with_capacity(headers.len());
        for (i, header) in headers.iter().enumerate() {
            if headers[..i].contains(header) {
                self.problem(1, header, "this column is given twice");
                continue;
            }
            match self.shape.column(header) {
                Some((level, column)) => columns.push((level, column.clone())),
                None => self.problem(1, header, "not a field of this form's households or people"),
            }
        }
        let household_key = self.shape.households.unique[0].clone();
        let person_key = self.shape.people.unique[0].clone();
        // A household without its place would be every scoped reader's (and nobody's to visit).
        let place = self
            .shape
            .scope
            .as_deref()
            .map(crate::export::layout::pointer_segments);
        for wanted in [Some(&household_key), Some(&person_key), place.as_ref()]
            .into_iter()
            .flatten()
        {
            if !columns.iter().any(|(_, c)| &c.path == wanted) {
                self.problem(1, &wanted.join("."), "this column is required");
            }
        }
        if !self.problems.is_empty() {
            return Ok(());
        }
        let mut record = csv::StringRecord::new();
        loop {
            let more = match csv.read_record(&mut record) {
                Ok(more) => more,
                Err(e) => {
                    // What the problems so far say stays; the CSV's own words name no line of ours.
                    let line = lines.line_of(e.position().map_or(0, |p| p.byte()));
                    let what = match e.kind() {
                        csv::ErrorKind::UnequalLengths {
                            expected_len, len, ..
                        } => {
                            format!("this row has {len} cells, the header {expected_len}")
                        }
                        _ => "not CSV (a quote left open, or bytes that are no text)".to_owned(),
                    };
                    self.problem(line, "", what);
                    break;
                }
            };
            if !more || self.problems.len() >= MAX_PROBLEMS {
                break;
            }
            let line = lines.line_of(record.position().map_or(0, |p| p.byte()));
            if record.as_slice().len() > MAX_ROW_BYTES {
                self.problem(
                    line,
                    "",
                    format!("a row may hold at most {MAX_ROW_BYTES} bytes"),
                );
                continue;
            }
            if record.as_slice().contains('\u{FFFD}') {
                self.problem(line, "", "bytes that are not text in this encoding: is charset= right (GB18030 or UTF-8)?");
                continue;
            }
            let place_given = place.as_ref().is_none_or(|path| {
                columns
                    .iter()
                    .zip(record.iter())
                    .any(|((_, c), text)| &c.path == path && !text.trim().is_empty())
            });
            if !place_given {
                let name = place.as_ref().map(|p| p.join(".")).unwrap_or_default();
                self.problem(line, &name, "every registered household needs its place");
                continue;
            }
            self.row(line, &record, &columns, (&household_key, &person_key))?;
        }
        self.flush()
    }

    fn row(
        &mut self,
        line: u32,
        record: &csv::StringRecord,
        columns: &[(Level, crate::export::layout::Column)],
        (household_key, person_key): (&[String], &[String]),
    ) -> Result<(), AppError> {
        let mut household = Map::new();
        let mut person = Map::new();
        // The JSON Pointer in a one-person submission of each column given → its header.
        let mut given = HashMap::new();
        for ((level, column), text) in columns.iter().zip(record.iter()) {
            let value = match read::value_of(column, text) {
                Ok(Some(value)) => value,
                Ok(None) => continue,
                Err(message) => {
                    self.problem(line, &column.name, message);
                    continue;
                }
            };
            match level {
                Level::Household => {
                    given.insert(read::pointer(&column.path), column.name.clone());
                    read::place(&mut household, &column.path, value);
                }
                Level::Person => {
                    let mut at = self.shape.people_path().to_vec();
                    at.push("0".into());
                    at.extend(column.path.iter().cloned());
                    given.insert(read::pointer(&at), column.name.clone());
                    read::place(&mut person, &column.path, value);
                }
            }
        }
        let (Some(household_id), Some(person_id)) = (
            read::text_at(&household, household_key),
            read::text_at(&person, person_key),
        ) else {
            let missing = if read::text_at(&household, household_key).is_none() {
                household_key
            } else {
                person_key
            };
            self.problem(
                line,
                &missing.join("."),
                "a register row needs its household and person keys",
            );
            return Ok(());
        };
        // The form's own rules for what the row gives; what it does not give is no problem.
        let mut data = household.clone();
        read::place(
            &mut data,
            self.shape.people_path(),
            Value::Array(vec![Value::Object(person.clone())]),
        );
        let problems = self
            .form
            .problems_where(&Value::Object(data), Lang::Zh, |d| {
                d.keyword.as_deref() != Some("required") && given.contains_key(&d.path)
            })?;
        for found in problems {
            let column = given.get(&found.path).cloned().unwrap_or_default();
            self.problem(line, &column, found.message);
        }
        let fingerprint = {
            let mut hasher = DefaultHasher::new();
            Value::Object(household.clone())
                .to_string()
                .hash(&mut hasher);
            hasher.finish()
        };
        match self.households.get(&household_id) {
            Some((known, first)) if *known != fingerprint => {
                let first = *first;
                self.problem(
                    line,
                    &household_key.join("."),
                    format!("this household's fields differ from line {first}"),
                );
            }
            Some(_) => {}
            None => {
                self.households
                    .insert(household_id.clone(), (fingerprint, line));
                // Provisional: its version of change and digest follow once its people are in.
                self.stage(Staged::Household {
                    household: household_id.clone(),
                    record: RegistryHousehold {
                        fields: household,
                        scope: None,
                        since: 0,
                        digest: String::new(),
                    },
                })?;
            }
        }
        let person_hash = u128::from_be_bytes(
            Sha256::digest(person_id.as_bytes())[..16]
                .try_into()
                .unwrap_or_default(),
        );
        if let Some(first) = self.people.insert(person_hash, line) {
            self.problem(
                line,
                &person_key.join("."),
                format!("the same person as line {first}"),
            );
        }
        self.members += 1;
        self.stage(Staged::Member {
            household: household_id,
            line,
            fields: person,
        })
    }

    /// Stages every household with the version it last changed in, and what the version before
    /// had that this one does not.
    fn households(&mut self, previous: Option<&RegistryInfo>) -> Result<(), AppError> {
        self.flush()?;
        let mut ids: Vec<String> = self.households.keys().cloned().collect();
        ids.sort();
        for household in ids {
            let Some(staged) = self
                .store
                .registry_household(self.id, self.version, &household)?
            else {
                continue;
            };
            let fields = staged.fields;
            let mut hash = Sha256::new();
            hash.update(Value::Object(fields.clone()).to_string());
            let people = self
                .store
                .registry_members(self.id, self.version, &household)?;
            // The form's own bound on a household's people: more could never be submitted.
            if people.len() > self.most_people {
                let first = self.households.get(&household).map_or(0, |(_, line)| *line);
                let most = self.most_people;
                self.problem(
                    first,
                    &self.shape.households.unique[0].join("."),
                    format!(
                        "this household has {} people; the form takes at most {most}",
                        people.len()
                    ),
                );
                continue;
            }
            for person in people {
                hash.update(Value::Object(person).to_string());
            }
            let digest = crate::store::hex(&hash.finalize());
            let before = match previous {
                Some(p) => self
                    .store
                    .registry_household(self.id, p.version, &household)?,
                None => None,
            };
            let since = before
                .as_ref()
                .filter(|b| b.digest == digest)
                .map_or(self.version, |b| b.since);
            let scope = self.shape.scope.as_deref().and_then(|pointer| {
                Value::Object(fields.clone())
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            // A household that left a place is gone for that place's readers.
            if let Some(left) = before.as_ref().filter(|b| b.scope != scope) {
                self.stage(Staged::Removed {
                    household: household.clone(),
                    scope: left.scope.clone(),
                })?;
            }
            let record = RegistryHousehold {
                fields,
                scope,
                since,
                digest,
            };
            self.stage(Staged::Household { household, record })?;
        }
        if let Some(previous) = previous {
            for household in self
                .store
                .registry_household_ids(self.id, previous.version)?
            {
                if !self.households.contains_key(&household) {
                    let scope = self
                        .store
                        .registry_household(self.id, previous.version, &household)?
                        .and_then(|h| h.scope);
                    self.stage(Staged::Removed { household, scope })?;
                }
            }
        }
        self.flush()
    }
}

/// A page of `form`'s roster for `by`: the households of their places after `cursor`, only those
/// changed after `since_version` if given, each with its people.
pub fn roster(
    store: &Store,
    form: &FormVersion,
    by: &Principal,
    limit: usize,
    cursor: Option<&str>,
    since_version: Option<u64>,
) -> Result<Roster, AppError> {
    by.require(Permission::ReadForms)?;
    let id = form.stored.form.as_str();
    let info = store.registry(id)?.ok_or(AppError::RegistryNotFound)?;
    let schema = &form.stored.schema;
    let shape = Shape::of(&Layout::of(schema), schema).ok_or(AppError::RegistryNotFound)?;
    // A cursor names the version it pages through: another version may have other households.
    let after = cursor
        .map(|c| {
            let (version, household) = c
                .split_once('.')
                .and_then(|(v, h)| Some((u64::from_str_radix(v, 16).ok()?, hex_decode(h)?)))
                .ok_or_else(|| AppError::QueryInvalid("cursor: not one this server gave".into()))?;
            if version == info.version {
                Ok(household)
            } else {
                Err(AppError::RegistryChanged)
            }
        })
        .transpose()?;
    let since = since_version.unwrap_or(0);
    let page = store.registry_households(id, info.version, after.as_deref(), limit, |_, h| {
        h.since > since && by.covers(h.scope.as_deref())
    })?;
    let next_cursor = (page.len() == limit)
        .then(|| {
            page.last()
                .map(|(household, _)| format!("{:x}.{}", info.version, hex_encode(household)))
        })
        .flatten();
    let items = with_people(store, (id, info.version), &shape, page)?;
    still_current(store, id, info.version)?;
    let removed = match (since_version, cursor) {
        // Removed for this reader: it was in their places, and is not (there) now.
        (Some(since), None) => {
            store.registry_removed_since(id, since, info.version, |household, was| {
                if !by.covers(was) {
                    return Ok(false);
                }
                let now = store.registry_household(id, info.version, household)?;
                Ok(!now.is_some_and(|h| by.covers(h.scope.as_deref())))
            })?
        }
        _ => Vec::new(),
    };
    Ok(Roster {
        version: info.version,
        items,
        removed,
        next_cursor,
    })
}

/// A page of households as the form's answers, each with its people.
pub(crate) fn with_people(
    store: &Store,
    (form, version): (&str, u64),
    shape: &Shape,
    page: Vec<(String, crate::store::RegistryHousehold)>,
) -> Result<Vec<RosterHousehold>, AppError> {
    let ids: Vec<String> = page
        .iter()
        .map(|(household, _)| household.clone())
        .collect();
    let people = store.registry_members_of(form, version, &ids)?;
    Ok(page
        .into_iter()
        .zip(people)
        .map(|((_, record), people)| {
            let mut item = record.fields;
            read::place(
                &mut item,
                shape.people_path(),
                Value::Array(people.into_iter().map(Value::Object).collect()),
            );
            item
        })
        .collect())
}

/// Refuses what was read of `version` if it is no longer the register: the version an import
/// replaces is removed right after, so a read that overlapped may have missed some of it.
pub(crate) fn still_current(store: &Store, form: &str, version: u64) -> Result<(), AppError> {
    match store.registry(form)? {
        Some(info) if info.version == version => Ok(()),
        _ => Err(AppError::RegistryChanged),
    }
}

fn hex_encode(text: &str) -> String {
    crate::store::hex(text.as_bytes())
}

fn hex_decode(text: &str) -> Option<String> {
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

fn io_error(error: std::io::Error) -> AppError {
    AppError::Internal(format!("reading the register: {error}"))
}

/// Builds `form`'s register from `previous`'s cleaned data (the last round's truth): every kept
/// person with their household, in the columns the two forms share, then imported as any
/// register is (the same checks, a new version).
pub fn from_export(
    store: &Store,
    form: &FormVersion,
    previous: &crate::export::Export,
    by: &Principal,
) -> Result<Pending<Imported>, AppError> {
    by.require(Permission::ManageRegistry)?;
    let schema = &form.stored.schema;
    let shape = Shape::of(&Layout::of(schema), schema).ok_or_else(|| {
        AppError::invalid_field("", "this form has no register: it needs a household key (x-unique) and a repeated group of people with one")
    })?;
    let people_table = previous.table_index(&shape.people.name).ok_or_else(|| {
        AppError::invalid_field("/from", "the earlier form has no such group of people")
    })?;
    let pick = |table: usize, wanted: &crate::export::layout::Table| -> Vec<(usize, String)> {
        previous
            .headers(table)
            .iter()
            .enumerate()
            .filter(|(_, h)| wanted.columns.iter().any(|c| &c.name == *h))
            .map(|(i, h)| (i, h.clone()))
            .collect()
    };
    let household_columns = pick(0, &shape.households);
    let person_columns = pick(people_table, &shape.people);
    let spool = tempfile::tempfile().map_err(io_error)?;
    let mut out = Rows {
        csv: csv::Writer::from_writer(std::io::BufWriter::new(spool)),
        people_table,
        household_columns,
        person_columns,
        household: (String::new(), Vec::new()),
    };
    let header: Vec<&str> = out
        .household_columns
        .iter()
        .chain(&out.person_columns)
        .map(|(_, h)| h.as_str())
        .collect();
    out.csv.write_record(&header).map_err(csv_error)?;
    previous.emit(store, &mut out).map_err(io_error)?;
    let mut file = out
        .csv
        .into_inner()
        .map_err(|e| io_error(e.into_error()))?
        .into_inner()
        .map_err(|e| io_error(e.into_error()))?;
    std::io::Seek::rewind(&mut file).map_err(io_error)?;
    import(store, form, file, Some("utf-8"), by)
}

/// Writes each cleaned person of an export as a register row, their household's fields first.
struct Rows {
    csv: csv::Writer<std::io::BufWriter<File>>,
    people_table: usize,
    household_columns: Vec<(usize, String)>,
    person_columns: Vec<(usize, String)>,
    /// The submission being written (its id) and its household's cells.
    household: (String, Vec<String>),
}

fn cell_text(cell: Option<&crate::export::Cell>) -> String {
    use crate::export::Cell;
    match cell {
        Some(Cell::Text(t)) => t.clone(),
        Some(Cell::Number(n)) => n.to_string(),
        Some(Cell::Bool(b)) => b.to_string(),
        Some(Cell::Empty) | None => String::new(),
    }
}

impl crate::export::Sink for Rows {
    fn wants(&self, table: usize) -> bool {
        table == 0 || table == self.people_table
    }
    fn wants_log(&self) -> bool {
        false
    }
    fn row(&mut self, table: usize, cells: Vec<crate::export::Cell>) -> std::io::Result<()> {
        if table == 0 {
            let fields = self
                .household_columns
                .iter()
                .map(|(i, _)| cell_text(cells.get(*i)))
                .collect();
            self.household = (cell_text(cells.first()), fields);
            return Ok(());
        }
        // A person's PARENT_KEY is their submission's id: its main row came just before.
        if cell_text(cells.get(1)) != self.household.0 {
            return Ok(());
        }
        let person = self
            .person_columns
            .iter()
            .map(|(i, _)| cell_text(cells.get(*i)));
        let row: Vec<String> = self.household.1.iter().cloned().chain(person).collect();
        self.csv.write_record(&row).map_err(std::io::Error::other)
    }
    fn log(&mut self, _line: crate::export::LogLine) -> std::io::Result<()> {
        Ok(())
    }
}

fn csv_error(error: csv::Error) -> AppError {
    AppError::Internal(format!("writing the register: {error}"))
}
