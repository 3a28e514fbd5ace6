//! Published form versions: immutable once written.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::write::refuse;
use super::{AuditEvent, Pending, Store, StoreError, decode, encode, keys};
use crate::clock::Timestamp;
use crate::forms::ids::FormId;

const TREE: &str = "formversion_definition";

/// One published version of a form, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredFormVersion {
    /// Form id, e.g. `labour-survey`.
    pub form: FormId,
    /// Version label, unique within the form.
    pub version: String,
    /// Human title shown to field workers.
    pub title: String,
    /// The JSON Schema exactly as published.
    pub schema: Value,
    /// First publication.
    pub published_at: Timestamp,
    /// Publication order across all forms; the newest version of a form is its current one.
    pub seq: u64,
    /// The XLSForm workbook the schema was made from, when it was published as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workbook: Option<StoredWorkbook>,
}

/// A workbook exactly as published, with its media type (`.xlsx` or `.xls`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredWorkbook {
    pub media_type: String,
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
}

/// Bytes in a JSON record as standard base64 (a third larger, not four times as numbers).
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
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

    /// How many versions are published, of every form: cheap, so nodes can poll it to learn of
    /// versions another node published.
    pub fn form_version_count(&self) -> Result<u64, StoreError> {
        self.form_versions.count()
    }

    /// Writes a new version unless that form id and version exist already (then returns the
    /// stored one, once everything written before is durable: its publisher may still be
    /// waiting for the flush). The caller decides whether an existing version is "the same".
    pub fn insert_form_version(
        &self,
        form: &FormId,
        version: &str,
        title: &str,
        schema: &Value,
        workbook: Option<&StoredWorkbook>,
        audit: &AuditEvent,
    ) -> Result<Pending<FormInsert>, StoreError> {
        let key = keys::form_version(form.as_str(), version);
        let published_at = Timestamp::now();
        let outcome = self.commit(std::slice::from_ref(audit), 1, |tx| {
            if let Some(existing) = tx.form_versions.get(&key)? {
                return refuse(existing);
            }
            let record = StoredFormVersion {
                form: form.clone(),
                version: version.to_owned(),
                title: title.to_owned(),
                schema: schema.clone(),
                published_at,
                seq: tx.number(0),
                workbook: workbook.cloned(),
            };
            let bytes = encode(TREE, &record).map_err(super::write::broken)?;
            tx.form_versions.insert(key.as_slice(), bytes)?;
            Ok(record)
        })?;
        match outcome {
            Ok(pending) => Ok(pending.map(FormInsert::Created)),
            Err(existing) => {
                Ok(self.after_earlier_writes(FormInsert::Exists(decode(TREE, &existing)?)))
            }
        }
    }
}
