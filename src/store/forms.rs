//! Published form versions: immutable once written.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Store, StoreError, decode, encode, keys};

const TREE: &str = "formversion_definition";

/// One published version of a form, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredFormVersion {
    /// Form id, e.g. `labour-survey`.
    pub form: String,
    /// Version label, unique within the form.
    pub version: String,
    /// Human title shown to field workers.
    pub title: String,
    /// The JSON Schema exactly as published.
    pub schema: Value,
    /// RFC 3339 UTC time of first publication.
    pub published_at: String,
    /// Publication order across all forms; the newest version of a form is its current one.
    pub seq: u64,
}

/// What publishing found.
pub enum FormInsert {
    /// Newly written.
    Created(StoredFormVersion),
    /// This id and version already existed; the stored one is returned untouched.
    Exists(StoredFormVersion),
}

impl Store {
    /// Every published version, in publication order.
    pub fn form_versions(&self) -> Result<Vec<StoredFormVersion>, StoreError> {
        let mut all = self
            .form_versions
            .iter()
            .values()
            .map(|v| decode::<StoredFormVersion>(TREE, &v?))
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by_key(|v| v.seq);
        Ok(all)
    }

    /// Writes a new version unless that form id and version exist already (then returns the stored one).
    /// The caller decides whether an existing version is "the same"; the stored one is never changed.
    pub fn insert_form_version(
        &self,
        form: &str,
        version: &str,
        title: &str,
        schema: &Value,
        published_at: String,
    ) -> Result<FormInsert, StoreError> {
        let key = keys::form_version(form, version);
        let record = StoredFormVersion {
            form: form.to_owned(),
            version: version.to_owned(),
            title: title.to_owned(),
            schema: schema.clone(),
            published_at,
            seq: self.db.generate_id()?,
        };
        let bytes = encode(TREE, &record)?;
        match self
            .form_versions
            .compare_and_swap(&key, None as Option<&[u8]>, Some(bytes))?
        {
            Ok(()) => Ok(FormInsert::Created(record)),
            Err(existing) => {
                let current = existing.current.ok_or_else(|| StoreError::Corrupt {
                    tree: TREE,
                    reason: "compare_and_swap reported a conflict with no value".into(),
                })?;
                Ok(FormInsert::Exists(decode(TREE, &current)?))
            }
        }
    }
}
