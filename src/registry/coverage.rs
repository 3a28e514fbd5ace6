//! Coverage: how much of the register the cleaned data has reached, by a household field of the
//! register (township, village) or by field worker, and the registered households still missing.
//!
//! A household is surveyed when a cleaned submission has its `household_id`; a person when a
//! cleaned row of people, in any household, has their `id_number`. Registered counts group by the
//! register's own values, surveyed ones by the register row they matched, so the two always
//! describe the same households.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;

use serde::Serialize;

use super::read::{self, Shape};
use super::{RosterHousehold, hex_decode, hex_encode};
use crate::auth::Principal;
use crate::error::AppError;
use crate::export::Export;
use crate::export::indicators::percent;
use crate::export::layout::Layout;
use crate::export::rows::Cell;
use crate::export::{LogLine, MAIN_SYSTEM};
use crate::forms::FormVersion;
use crate::store::{RegistryInfo, Store};

/// What coverage is grouped by: a household field of the register, or the field worker.
pub enum By {
    Field(String),
    SubmittedBy,
}

/// The counts of one group.
#[derive(Clone, Debug, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Counts {
    /// The group: a township, a village, a field worker's username; `total` for the whole.
    pub key: String,
    /// Absent when grouped by field worker: the register knows no field workers.
    pub registered_households: Option<u64>,
    pub surveyed_households: u64,
    pub registered_members: Option<u64>,
    pub surveyed_members: u64,
    /// Per cent, two decimals, from the counts.
    pub household_coverage: Option<f64>,
    pub member_coverage: Option<f64>,
}

/// Coverage of the register, per group and in total.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Coverage {
    pub by: String,
    /// The register version counted.
    pub version: u64,
    pub groups: Vec<Counts>,
    pub total: Counts,
}

/// What the cleaned data reached: households (by id, with who surveyed them) and people.
struct Surveyed {
    households: HashMap<String, String>,
    /// Person key → the household's submitter.
    people: HashMap<String, String>,
}

/// Reads the cleaned data's household and person keys.
struct Reach {
    people_table: usize,
    household_column: usize,
    person_column: usize,
    /// Submission id → (household id, submitter).
    submissions: HashMap<String, (String, String)>,
    /// (Submission id, person key) of each cleaned person.
    people: Vec<(String, String)>,
}

fn text(cell: Option<&Cell>) -> String {
    match cell {
        Some(Cell::Text(t)) => t.clone(),
        Some(Cell::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

impl crate::export::Sink for Reach {
    fn wants(&self, table: usize) -> bool {
        table == 0 || table == self.people_table
    }
    fn wants_log(&self) -> bool {
        false
    }
    fn row(&mut self, table: usize, cells: Vec<Cell>) -> io::Result<()> {
        if table == 0 {
            let id = text(cells.first());
            let by = text(cells.get(2));
            self.submissions
                .insert(id, (text(cells.get(self.household_column)), by));
        } else {
            let person = text(cells.get(self.person_column));
            if !person.is_empty() {
                self.people.push((text(cells.get(1)), person));
            }
        }
        Ok(())
    }
    fn log(&mut self, _line: LogLine) -> io::Result<()> {
        Ok(())
    }
}

/// The register's shape and current version for `form`.
fn register(store: &Store, form: &FormVersion) -> Result<(Shape, RegistryInfo), AppError> {
    let schema = &form.stored.schema;
    let shape = Shape::of(&Layout::of(schema), schema).ok_or(AppError::RegistryNotFound)?;
    let info = store
        .registry(form.stored.form.as_str())?
        .ok_or(AppError::RegistryNotFound)?;
    Ok((shape, info))
}

fn surveyed(export: &Export, store: &Store, shape: &Shape) -> Result<Surveyed, AppError> {
    let position = |table: usize, name: &str| {
        export
            .headers(table)
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| AppError::Internal(format!("export has no column {name}")))
    };
    let people_table = export
        .table_index(&shape.people.name)
        .ok_or(AppError::RegistryNotFound)?;
    let mut reach = Reach {
        people_table,
        household_column: position(0, &shape.households.unique[0].join("."))?,
        person_column: position(people_table, &shape.people.unique[0].join("."))?,
        submissions: HashMap::new(),
        people: Vec::new(),
    };
    debug_assert_eq!(MAIN_SYSTEM[2], "_submitted_by");
    export
        .emit(store, &mut reach)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let people = reach
        .people
        .into_iter()
        .filter_map(|(submission, person)| {
            let (_, by) = reach.submissions.get(&submission)?;
            Some((person, by.clone()))
        })
        .collect();
    let households = reach.submissions.into_values().collect();
    Ok(Surveyed { households, people })
}

/// Coverage of `form`'s register in the places `reader` may see, over `export`'s cleaned data.
pub fn coverage(
    store: &Store,
    form: &FormVersion,
    export: &Export,
    by: &By,
    reader: &Principal,
) -> Result<Coverage, AppError> {
    // Counted again if an import replaced the register while it was being counted.
    for _ in 0..2 {
        match count(store, form, export, by, reader) {
            Err(AppError::RegistryChanged) => continue,
            answer => return answer,
        }
    }
    count(store, form, export, by, reader)
}

fn count(
    store: &Store,
    form: &FormVersion,
    export: &Export,
    by: &By,
    reader: &Principal,
) -> Result<Coverage, AppError> {
    let (shape, info) = register(store, form)?;
    let field = match by {
        By::Field(name) => Some(
            shape
                .households
                .columns
                .iter()
                .find(|c| &c.name == name)
                .ok_or_else(|| {
                    AppError::QueryInvalid(format!(
                        "by: {name} is not a household field of the register"
                    ))
                })?
                .path
                .clone(),
        ),
        By::SubmittedBy => None,
    };
    let reached = surveyed(export, store, &shape)?;
    let id = form.stored.form.as_str();
    let mut groups: BTreeMap<String, Counts> = BTreeMap::new();
    let person_key = &shape.people.unique[0];
    let keep = |h: &crate::store::RegistryHousehold| reader.covers(h.scope.as_deref());
    store.each_registered(id, info.version, keep, |household, record, people| {
        match &field {
            Some(path) => {
                let key = read::text_at(&record.fields, path).unwrap_or_default();
                let counts = groups.entry(key).or_default();
                *counts.registered_households.get_or_insert(0) += 1;
                counts.surveyed_households +=
                    u64::from(reached.households.contains_key(&household));
                *counts.registered_members.get_or_insert(0) += people.len() as u64;
                counts.surveyed_members += people
                    .iter()
                    .filter(|p| {
                        read::text_at(p, person_key)
                            .is_some_and(|k| reached.people.contains_key(&k))
                    })
                    .count() as u64;
            }
            None => {
                if let Some(by) = reached.households.get(&household) {
                    groups.entry(by.clone()).or_default().surveyed_households += 1;
                }
                for person in &people {
                    let Some(by) =
                        read::text_at(person, person_key).and_then(|k| reached.people.get(&k))
                    else {
                        continue;
                    };
                    groups.entry(by.clone()).or_default().surveyed_members += 1;
                }
            }
        }
        Ok(())
    })?;
    super::still_current(store, id, info.version)?;
    let mut total = Counts {
        key: "total".into(),
        ..Counts::default()
    };
    let mut out = Vec::with_capacity(groups.len());
    for (key, mut counts) in groups {
        counts.key = key;
        add(&mut total, &counts);
        out.push(finished(counts));
    }
    Ok(Coverage {
        by: match by {
            By::Field(name) => name.clone(),
            By::SubmittedBy => "submitted_by".into(),
        },
        version: info.version,
        groups: out,
        total: finished(total),
    })
}

fn add(total: &mut Counts, counts: &Counts) {
    if let Some(n) = counts.registered_households {
        *total.registered_households.get_or_insert(0) += n;
    }
    if let Some(n) = counts.registered_members {
        *total.registered_members.get_or_insert(0) += n;
    }
    total.surveyed_households += counts.surveyed_households;
    total.surveyed_members += counts.surveyed_members;
}

fn finished(mut counts: Counts) -> Counts {
    counts.household_coverage = counts
        .registered_households
        .map(|whole| percent(counts.surveyed_households, whole));
    counts.member_coverage = counts
        .registered_members
        .map(|whole| percent(counts.surveyed_members, whole));
    counts
}

/// A page of the registered households in `reader`'s places that the cleaned data has not
/// reached, those whose register fields equal `filters` (`township=思林镇`), with their people.
pub fn missing(
    store: &Store,
    form: &FormVersion,
    export: &Export,
    filters: &[(String, String)],
    (limit, cursor): (usize, Option<&str>),
    reader: &Principal,
) -> Result<(Vec<RosterHousehold>, Option<String>), AppError> {
    let (shape, info) = register(store, form)?;
    let mut paths = Vec::with_capacity(filters.len());
    for (name, value) in filters {
        let column = shape
            .households
            .columns
            .iter()
            .find(|c| &c.name == name)
            .ok_or_else(|| {
                AppError::QueryInvalid(format!("{name}: not a household field of the register"))
            })?;
        paths.push((column.path.clone(), value.clone()));
    }
    let reached: HashSet<String> = surveyed(export, store, &shape)?
        .households
        .into_keys()
        .collect();
    let after = cursor
        .map(|c| {
            hex_decode(c)
                .ok_or_else(|| AppError::QueryInvalid("cursor: not one this server gave".into()))
        })
        .transpose()?;
    let id = form.stored.form.as_str();
    // Only the page asked for is read (its households' people too).
    let page =
        store.registry_households(id, info.version, after.as_deref(), limit, |household, h| {
            !reached.contains(household)
                && reader.covers(h.scope.as_deref())
                && paths.iter().all(|(path, value)| {
                    read::text_at(&h.fields, path).as_deref() == Some(value.as_str())
                })
        })?;
    let last = page.last().map(|(household, _)| household.clone());
    let items = super::with_people(store, (id, info.version), &shape, page)?;
    super::still_current(store, id, info.version)?;
    let next = (items.len() == limit)
        .then(|| last.map(|h| hex_encode(&h)))
        .flatten();
    Ok((items, next))
}
