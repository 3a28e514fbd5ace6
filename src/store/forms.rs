//! Published form versions: immutable once written.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{AuditEvent, Store, StoreError, decode, encode, keys};

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
        audit: &AuditEvent,
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
        let _order = self.write_order();
        let entry = self.prepare_audit(audit)?;
        let outcome = (&self.form_versions, &self.audit, &self.audit_index).transaction(
            |(forms, log, index)| {
                if let Some(existing) = forms.get(&key)? {
                    return Err(ConflictableTransactionError::Abort(existing));
                }
                forms.insert(key.as_slice(), bytes.as_slice())?;
                entry.write(log, index)
            },
        );
        match outcome {
            Ok(()) => Ok(FormInsert::Created(record)),
            Err(TransactionError::Abort(existing)) => {
                Ok(FormInsert::Exists(decode(TREE, &existing)?))
            }
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }
}
