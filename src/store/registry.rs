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

/// An import that wrote nothing for this long died with its node: a 500,000-row register takes
/// well under a minute between first and last batch.
const IMPORT_ABANDONED_SECS: u64 = 15 * 60;

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
        Ok(self.engine.generate_id()? + 1)
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
        let heartbeat = (crate::clock::unix_now().max(0) as u64).to_be_bytes();
        let pending = self.commit_always(&[], 0, |tx| {
            tx.meta
                .insert(keys::registry_import(form, version), heartbeat)?;
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
            tx.meta.remove(keys::registry_import(form, info.version))?;
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
                let batch: Vec<super::engine::IVec> = tree
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
        if entirely {
            let pending = self.commit_always(&[], 0, |tx| {
                tx.meta.remove(keys::registry_import(form, version))?;
                Ok(())
            })?;
            drop(pending.into_parts());
        }
        Ok(())
    }

    /// Removes what a crash left of registers: versions whose import never became current, and
    /// the households and people of replaced versions whose removal was cut short (their removed
    /// households stay, as after any replacement). Run at start-up. With sled no import can be
    /// under way then; on a database other nodes share, a version whose import wrote a batch in
    /// the last [`IMPORT_ABANDONED_SECS`] is another node's import, and stays. Answers how many
    /// versions it cleaned.
    pub fn sweep_registry_leftovers(&self) -> Result<u64, StoreError> {
        let mut swept = 0;
        for (index, tree) in [
            &self.registry_households,
            &self.registry_members,
            &self.registry_removed,
        ]
        .into_iter()
        .enumerate()
        {
            let mut from = Vec::new();
            while let Some((key, _)) = tree.range(from.as_slice()..).next().transpose()? {
                let Some((form, version)) = keys::registry_version_of(&key) else {
                    break;
                };
                // The heartbeat first: an import that publishes between the two reads has
                // then either a heartbeat seen here or a register that is this version.
                let under_way = self.import_under_way(form, version)?;
                let current = self.registry(form)?.map(|info| info.version);
                // Removed households of replaced versions are kept on purpose; only a version
                // never published loses those.
                let never_published = current.is_none_or(|c| version > c);
                if current != Some(version)
                    && (index < 2 || never_published)
                    && !(never_published && under_way)
                {
                    self.drop_registry_version(form, version, never_published)?;
                    swept += 1;
                }
                from = keys::registry_version(form, version.saturating_add(1));
            }
        }
        Ok(swept)
    }

    /// Whether another node may still be importing `version` (see [`Self::sweep_registry_leftovers`]).
    fn import_under_way(&self, form: &str, version: u64) -> Result<bool, StoreError> {
        if !self.is_shared() {
            return Ok(false);
        }
        let Some(heartbeat) = self.meta.get(keys::registry_import(form, version))? else {
            return Ok(false);
        };
        let at = heartbeat
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        let now = crate::clock::unix_now().max(0) as u64;
        Ok(now.saturating_sub(at) < IMPORT_ABANDONED_SECS)
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

    /// Every household of a version that `keep` accepts, in order, handed to `visit` with its
    /// people: two scans side by side (both trees sort by household), not one read per household.
    pub fn each_registered(
        &self,
        form: &str,
        version: u64,
        keep: impl Fn(&RegistryHousehold) -> bool,
        mut visit: impl FnMut(
            String,
            RegistryHousehold,
            Vec<Map<String, Value>>,
        ) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let prefix = keys::registry_version(form, version);
        let mut members = self.registry_members.scan_prefix(&prefix).peekable();
        for entry in self.registry_households.scan_prefix(&prefix) {
            let (key, value) = entry?;
            let record: RegistryHousehold = decode(HOUSEHOLDS, &value)?;
            let household = &key[prefix.len()..];
            let mut people = Vec::new();
            // A person's key is the household's, then 0xFF and the line (4 bytes).
            loop {
                let ordering = match members.peek() {
                    None => break,
                    Some(Ok((member, _))) => member
                        .get(prefix.len()..member.len().saturating_sub(5))
                        .unwrap_or_default()
                        .cmp(household),
                    Some(Err(_)) => std::cmp::Ordering::Equal,
                };
                if ordering == std::cmp::Ordering::Greater {
                    break;
                }
                let Some((_, person)) = members.next().transpose()? else {
                    break;
                };
                if ordering == std::cmp::Ordering::Equal {
                    people.push(decode(MEMBERS, &person)?);
                }
            }
            if keep(&record) {
                visit(
                    String::from_utf8_lossy(household).into_owned(),
                    record,
                    people,
                )?;
            }
        }
        Ok(())
    }

    /// The people of each of `households` (in key order, as a page gives them) of a version:
    /// one scan over their stretch of the register rather than one read per household.
    pub fn registry_members_of(
        &self,
        form: &str,
        version: u64,
        households: &[String],
    ) -> Result<Vec<Vec<Map<String, Value>>>, StoreError> {
        let (Some(first), Some(last)) = (households.first(), households.last()) else {
            return Ok(Vec::new());
        };
        let place: std::collections::HashMap<&[u8], usize> = households
            .iter()
            .enumerate()
            .map(|(i, h)| (h.as_bytes(), i))
            .collect();
        let prefix = keys::registry_version(form, version).len();
        let mut end = keys::registry_members(form, version, last);
        end.extend_from_slice(&[0xFF; 4]);
        let mut people = vec![Vec::new(); households.len()];
        for entry in self
            .registry_members
            .range(keys::registry_members(form, version, first)..=end)
        {
            let (key, value) = entry?;
            let household = key
                .get(prefix..key.len().saturating_sub(5))
                .unwrap_or_default();
            if let Some(&i) = place.get(household) {
                people[i].push(decode(MEMBERS, &value)?);
            }
        }
        Ok(people)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditAction;

    fn version(store: &Store, number: u64) {
        let household = RegistryHousehold {
            fields: Map::new(),
            scope: Some("思林镇".into()),
            since: number,
            digest: String::new(),
        };
        let staged = [
            Staged::Household {
                household: format!("h{number}"),
                record: household,
            },
            Staged::Member {
                household: format!("h{number}"),
                line: 2,
                fields: Map::new(),
            },
            Staged::Removed {
                household: format!("gone{number}"),
                scope: None,
            },
        ];
        store.stage_registry("f", number, &staged).unwrap();
    }

    fn left(store: &Store, number: u64) -> (usize, usize, usize) {
        let prefix = keys::registry_version("f", number);
        let count = |tree: &super::super::engine::Tree| tree.scan_prefix(&prefix).count();
        (
            count(&store.registry_households),
            count(&store.registry_members),
            count(&store.registry_removed),
        )
    }

    #[tokio::test]
    async fn a_crash_s_leftovers_are_swept_and_the_register_and_its_history_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // 3 was replaced by 5 but not yet removed; 7's import never finished; "g" never had one.
        for number in [3, 5, 7] {
            version(&store, number);
        }
        let info = RegistryInfo {
            version: 5,
            households: 1,
            members: 1,
            imported_at: Timestamp::now(),
            imported_by: "admin".into(),
        };
        let audit = AuditEvent {
            actor: "admin".into(),
            action: AuditAction::RegistryImported,
            target: "form:f".into(),
            request_id: None,
        };
        let published = store.publish_registry("f", &info, None, &audit).unwrap();
        published.unwrap().durable().await.unwrap();
        let orphan = [Staged::Household {
            household: "x".into(),
            record: RegistryHousehold {
                fields: Map::new(),
                scope: None,
                since: 9,
                digest: String::new(),
            },
        }];
        store.stage_registry("g", 9, &orphan).unwrap();

        assert_eq!(store.sweep_registry_leftovers().unwrap(), 3);

        assert_eq!(left(&store, 3), (0, 0, 1), "what 3 removed stays");
        assert_eq!(left(&store, 5), (1, 1, 1), "the register is whole");
        assert_eq!(left(&store, 7), (0, 0, 0));
        assert_eq!(
            store
                .registry_households
                .scan_prefix(keys::registry_version("g", 9))
                .count(),
            0
        );
        assert_eq!(store.sweep_registry_leftovers().unwrap(), 0);
    }
}
