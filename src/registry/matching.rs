//! The register as an export sees it: which cleaned person is registered (`_registry`), where the
//! register and the survey disagree (the cleaning log), and who was never reached (`_missing`).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::read::{self, Shape};
use crate::error::AppError;
use crate::export::layout::{Column, Layout};
use crate::forms::FormVersion;
use crate::store::Store;

/// The current register of a form, held for one export.
pub struct Register {
    shape: Shape,
    /// Person key → their household and their fields.
    people: HashMap<String, (String, Map<String, Value>)>,
    /// Household id → its fields and place.
    households: HashMap<String, (Map<String, Value>, Option<String>)>,
}

impl Register {
    /// The register of `form`'s current version, if it has one: one whole version (read again
    /// if an import replaced it while it was being read).
    pub fn load(store: &Store, form: &FormVersion) -> Result<Option<Self>, AppError> {
        for _ in 0..3 {
            let loaded = Self::load_once(store, form)?;
            let now = store
                .registry(form.stored.form.as_str())?
                .map(|i| i.version);
            match loaded {
                Some((register, version)) if Some(version) == now => return Ok(Some(register)),
                None if now.is_none() => return Ok(None),
                _ => {}
            }
        }
        Err(AppError::RegistryChanged)
    }

    fn load_once(store: &Store, form: &FormVersion) -> Result<Option<(Self, u64)>, AppError> {
        let schema = &form.stored.schema;
        let Some(shape) = Shape::of(&Layout::of(schema), schema) else {
            return Ok(None);
        };
        let id = form.stored.form.as_str();
        let Some(info) = store.registry(id)? else {
            return Ok(None);
        };
        let mut people = HashMap::new();
        let mut households = HashMap::new();
        let key = shape.people.unique[0].clone();
        store.each_registered(
            id,
            info.version,
            |_| true,
            |household, record, members| {
                for person in members {
                    if let Some(k) = read::text_at(&person, &key) {
                        people.insert(k, (household.clone(), person));
                    }
                }
                households.insert(household, (record.fields, record.scope));
                Ok(())
            },
        )?;
        Ok(Some((
            Self {
                shape,
                people,
                households,
            },
            info.version,
        )))
    }

    /// The export table of people (`members`).
    pub fn people_table(&self) -> &str {
        &self.shape.people.name
    }

    /// The person key in a row of people.
    pub fn person_key(&self) -> &[String] {
        &self.shape.people.unique[0]
    }

    /// A registered person's fields and their household's place.
    pub fn person(&self, key: &str) -> Option<(&Map<String, Value>, Option<&str>)> {
        let (household, fields) = self.people.get(key)?;
        let place = self
            .households
            .get(household)
            .and_then(|(_, p)| p.as_deref());
        Some((fields, place))
    }

    /// The text of a register value at `column` of a person's fields.
    pub fn text(fields: &Map<String, Value>, column: &Column) -> Option<String> {
        let (first, rest) = column.path.split_first()?;
        let value = rest.iter().try_fold(fields.get(first)?, |v, p| v.get(p))?;
        Some(match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(";"),
            other => other.to_string(),
        })
    }

    /// The columns of `_missing.csv`: the household's, then the person's (titles if `labels`).
    pub fn missing_headers(&self, labels: bool) -> Vec<String> {
        self.columns()
            .map(|(_, c)| if labels { &c.label } else { &c.name }.clone())
            .collect()
    }

    fn columns(&self) -> impl Iterator<Item = (bool, &Column)> {
        let household = self.shape.households.columns.iter().map(|c| (true, c));
        let person = self.shape.people.columns.iter().map(|c| (false, c));
        household.chain(person)
    }

    /// Every registered person `visible` (by their household's place) whom `reached` does not
    /// hold, as rows of `_missing.csv`, in household order.
    pub fn missing(
        &self,
        reached: &std::collections::HashSet<String>,
        visible: impl Fn(Option<&str>) -> bool,
        labels: bool,
    ) -> Vec<Vec<String>> {
        let mut rows: Vec<(&String, Vec<String>)> = self
            .people
            .iter()
            .filter(|(key, _)| !reached.contains(*key))
            .filter_map(|(_, (household, person))| {
                let (fields, scope) = self.households.get(household)?;
                visible(scope.as_deref()).then(|| {
                    let row = self
                        .columns()
                        .map(|(of_household, column)| {
                            let source = if of_household { fields } else { person };
                            let text = Self::text(source, column).unwrap_or_default();
                            if labels {
                                // Choices of several answers are `;`-joined codes.
                                let labelled: Vec<String> = text
                                    .split(';')
                                    .map(|code| crate::export::rows::label(column, code))
                                    .collect();
                                labelled.join(";")
                            } else {
                                text
                            }
                        })
                        .collect();
                    (household, row)
                })
            })
            .collect();
        rows.sort();
        rows.into_iter().map(|(_, row)| row).collect()
    }
}
