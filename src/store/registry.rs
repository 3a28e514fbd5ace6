//! A form's register of households and their people (建档立卡), in versions. An import writes a
//! whole new version beside the current one, in batches, and becomes the register in one small
//! write that names it (`form_registry`); the version it replaces is then removed. Readers only
//! ever see a whole version.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::write::Abort;
use super::{AuditEvent, Pending, Store, StoreError, decode, encode, keys};
use crate::clock::Timestamp;

const HOUSEHOLDS: &str = "formversionhousehold_registryhousehold";
const MEMBERS: &str = "formversionhouseholdline_registrymember";
const REGISTRIES: &str = "form_registry";
const REMOVED: &str = "formversionhousehold_scope";

/// Which version of a form's register is current, and what it holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistryInfo {
    pub version: u64,
    pub households: u64,
    pub members: u64,
    pub imported_at: Timestamp,
    pub imported_by: String,
}

/// One registered household of a version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RegistryHousehold {
    /// Its answers to the form's household questions, as the register gives them.
    pub fields: Map<String, Value>,
    /// The value of the form's scope field (the township), for scoped reading.
    pub scope: Option<String>,
    /// The version in which this household (its fields or its people) last changed.
    pub since: u64,
    /// Hex SHA-256 of its fields and people, to tell the next import what changed.
    pub digest: String,
}

/// What one import batch writes into its (not yet current) version.
pub enum Staged {
    Member {
        household: String,
        line: u32,
        fields: Map<String, Value>,
    },
    Household {
        household: String,
        record: RegistryHousehold,
    },
    /// A household of the version before that this one no longer has, or that left the place
    /// (`scope`) it had there: readers of that place are told to drop it.
    Removed {
        household: String,
        scope: Option<String>,
    },
}

/// Why a version could not become the register.
#[derive(Debug, PartialEq, Eq)]
pub enum PublishRefused {
    /// Another import became the register since this one began.
    Superseded,
}

impl Store {
    /// The current register of `form`, if it has one.
    pub fn registry(&self, form: &str) -> Result<Option<RegistryInfo>, StoreError> {
        self.registries
            .get(form.as_bytes())?
            .map(|bytes| decode(REGISTRIES, &bytes))
            .transpose()
    }

    /// A version number larger than any before: an import's, before it begins.
    pub fn next_registry_version(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()? + 1)
    }

    /// Writes a batch of a version being imported. It is not durable on its own: the write
    /// that publishes the version is, and covers every batch before it.
    pub fn stage_registry(
        &self,
        form: &str,
        version: u64,
        batch: &[Staged],
    ) -> Result<(), StoreError> {
        let mut entries = Vec::with_capacity(batch.len());
        for staged in batch {
            entries.push(match staged {
                Staged::Member {
                    household,
                    line,
                    fields,
                } => (
                    0,
                    keys::registry_member(form, version, household, *line),
                    encode(MEMBERS, fields)?,
                ),
                Staged::Household { household, record } => (
                    1,
                    keys::registry_household(form, version, household),
                    encode(HOUSEHOLDS, record)?,
                ),
                Staged::Removed { household, scope } => (
                    2,
                    keys::registry_household(form, version, household),
                    encode(REMOVED, scope)?,
                ),
            });
        }
        let pending = self.commit_always(&[], 0, |tx| {
            for (tree, key, value) in &entries {
                let tree = [
                    tx.registry_members,
                    tx.registry_households,
                    tx.registry_removed,
                ][*tree];
                tree.insert(key.as_slice(), value.as_slice())?;
            }
            Ok(())
        })?;
        // Durable with the publication that follows (or removed if the import fails).
        drop(pending.into_parts());
        Ok(())
    }

    /// Makes `info.version` the register of `form`, with `audit`, if the register is still the
    /// version `replacing` (the one the import compared with: `None` for none).
    pub fn publish_registry(
        &self,
        form: &str,
        info: &RegistryInfo,
        replacing: Option<u64>,
        audit: &AuditEvent,
    ) -> Result<Result<Pending<()>, PublishRefused>, StoreError> {
        let value = encode(REGISTRIES, info)?;
        self.commit(std::slice::from_ref(audit), 0, |tx| {
            let current = match tx.registries.get(form.as_bytes())? {
                Some(bytes) => Some(
                    decode::<RegistryInfo>(REGISTRIES, &bytes)
                        .map_err(super::write::broken)?
                        .version,
                ),
                None => None,
            };
            if current != replacing {
                return super::write::refuse(PublishRefused::Superseded);
            }
            tx.registries.insert(form.as_bytes(), value.as_slice())?;
            Ok::<_, Abort<PublishRefused>>(())
        })
    }

    /// Removes the households and people of a version, in batches: one replaced (what it
    /// removed stays, for readers catching up since older versions) or, `entirely`, one whose
    /// import failed.
    pub fn drop_registry_version(
        &self,
        form: &str,
        version: u64,
        entirely: bool,
    ) -> Result<(), StoreError> {
        let prefix = keys::registry_version(form, version);
        let trees = if entirely { 3 } else { 2 };
        for index in 0..trees {
            let tree = [
                &self.registry_households,
                &self.registry_members,
                &self.registry_removed,
            ][index];
            loop {
                let batch: Vec<sled::IVec> = tree
                    .scan_prefix(&prefix)
                    .keys()
                    .take(10_000)
                    .collect::<Result<_, _>>()?;
                if batch.is_empty() {
                    break;
                }
                let pending = self.commit_always(&[], 0, |tx| {
                    let tree = [
                        tx.registry_households,
                        tx.registry_members,
                        tx.registry_removed,
                    ][index];
                    for key in &batch {
                        tree.remove(key)?;
                    }
                    Ok(())
                })?;
                drop(pending.into_parts());
            }
        }
        Ok(())
    }

    /// One household of a version.
    pub fn registry_household(
        &self,
        form: &str,
        version: u64,
        household: &str,
    ) -> Result<Option<RegistryHousehold>, StoreError> {
        self.registry_households
            .get(keys::registry_household(form, version, household))?
            .map(|bytes| decode(HOUSEHOLDS, &bytes))
            .transpose()
    }

    /// Households of a version after `after` in key order that `keep` (given each id and record)
    /// accepts, at most `limit`.
    pub fn registry_households(
        &self,
        form: &str,
        version: u64,
        after: Option<&str>,
        limit: usize,
        keep: impl Fn(&str, &RegistryHousehold) -> bool,
    ) -> Result<Vec<(String, RegistryHousehold)>, StoreError> {
        let prefix = keys::registry_version(form, version);
        let start = match after {
            Some(household) => {
                let mut key = keys::registry_household(form, version, household);
                key.push(0);
                key
            }
            None => prefix.clone(),
        };
        let mut page = Vec::new();
        for entry in self.registry_households.range(start..) {
            let (key, value) = entry?;
            let Some(household) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let record: RegistryHousehold = decode(HOUSEHOLDS, &value)?;
            let household = String::from_utf8_lossy(household).into_owned();
            if keep(&household, &record) {
                page.push((household, record));
                if page.len() == limit {
                    break;
                }
            }
        }
        Ok(page)
    }

    /// Every household of a version, by id (the version before, for an import to compare).
    pub fn registry_household_ids(
        &self,
        form: &str,
        version: u64,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = keys::registry_version(form, version);
        self.registry_households
            .scan_prefix(&prefix)
            .keys()
            .map(|key| Ok(String::from_utf8_lossy(&key?[prefix.len()..]).into_owned()))
            .collect()
    }

    /// The people of one household of a version, in the register's order.
    pub fn registry_members(
        &self,
        form: &str,
        version: u64,
        household: &str,
    ) -> Result<Vec<Map<String, Value>>, StoreError> {
        self.registry_members
            .scan_prefix(keys::registry_members(form, version, household))
            .values()
            .map(|value| decode(MEMBERS, &value?))
            .collect()
    }

    /// Households removed (from the register, or from a place) by versions after `since`, up
    /// to and including `current`, with the place each had, which `keep` accepts.
    pub fn registry_removed_since(
        &self,
        form: &str,
        since: u64,
        current: u64,
        keep: impl Fn(&str, Option<&str>) -> Result<bool, StoreError>,
    ) -> Result<Vec<String>, StoreError> {
        let start = keys::registry_version(form, since.saturating_add(1));
        let end = keys::registry_version(form, current.saturating_add(1));
        let prefix = keys::registry_version(form, 0).len();
        let mut removed = std::collections::BTreeSet::new();
        for entry in self.registry_removed.range(start..end) {
            let (key, value) = entry?;
            let household = String::from_utf8_lossy(&key[prefix..]).into_owned();
            let scope: Option<String> = if value.is_empty() {
                None
            } else {
                decode(REMOVED, &value)?
            };
            if keep(&household, scope.as_deref())? {
                removed.insert(household);
            }
        }
        Ok(removed.into_iter().collect())
    }
}
