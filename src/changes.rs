//! The changes of a form's submissions in commit order: what the changes feed lists and what
//! webhooks deliver. Each change is an entry of the audit log (which records them in the order
//! they committed, with what each made of its submission) and the version of the answers it made.
//! Nothing extra is written per submission: a reader or a webhook keeps a cursor into the log.

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::audit::AuditAction;
use crate::auth::{Permission, Principal};
use crate::clock::Timestamp;
use crate::error::AppError;
use crate::store::{AuditRecord, ChangeFacts, Store, StoreError};
use crate::submissions::{ReviewStatus, visible_to};

/// The largest page a reader may ask for, and the default.
pub const MAX_LIMIT: usize = 1_000;
pub const DEFAULT_LIMIT: usize = 100;

/// One change, as the feed lists it and a webhook's body carries it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Change {
    /// `submission.created`, `submission.edited`, `submission.reviewed`, `submission.deleted`
    /// or `submission.restored`.
    pub event: &'static str,
    /// Only in webhook bodies: the delivery's id (the same on every attempt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// When the change committed.
    pub at: Timestamp,
    pub form: String,
    pub form_version: String,
    pub submission_id: Uuid,
    /// The version of the answers after the change (1 as received).
    pub version: u32,
    pub review_status: ReviewStatus,
    /// The answers of that version; left out with `fields=meta`, for deletions, and when a
    /// webhook body would be too large (then `data_omitted` is true).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub data_omitted: bool,
}

/// Whether a change carries the answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fields {
    All,
    Meta,
}

impl Fields {
    pub fn parse(text: Option<&str>) -> Result<Self, AppError> {
        match text {
            None | Some("all") => Ok(Self::All),
            Some("meta") => Ok(Self::Meta),
            Some(_) => Err(AppError::QueryInvalid("fields: all or meta".into())),
        }
    }
}

/// `submission.created`, ... for a submission's audited change.
pub fn event_name(action: AuditAction) -> Option<&'static str> {
    Some(match action {
        AuditAction::SubmissionCreated => "submission.created",
        AuditAction::SubmissionEdited => "submission.edited",
        AuditAction::SubmissionReviewed => "submission.reviewed",
        AuditAction::SubmissionDeleted => "submission.deleted",
        AuditAction::SubmissionRestored => "submission.restored",
        _ => return None,
    })
}

/// A cursor as clients send it back: the log position of the last change they saw.
pub fn parse_cursor(text: Option<&str>) -> Result<u64, AppError> {
    text.map_or(Ok(0), |text| {
        text.parse().map_err(|_| {
            AppError::QueryInvalid("cursor: send back the next_cursor of an earlier page".into())
        })
    })
}

/// One page of the changes of `form` that `reader` may see, after `after` up to the log
/// position `through` (which the caller knows to be durable), with the position to go on from.
/// A correction that moved a household is seen by the readers of both places.
pub fn page(
    store: &Store,
    form: &str,
    after: u64,
    through: u64,
    limit: usize,
    fields: Fields,
    reader: &Principal,
) -> Result<(Vec<Change>, u64), AppError> {
    reader.require(Permission::ReadChanges)?;
    let (entries, looked_at) = store.audit_through(after, through, limit, |entry| {
        entry.action.changes_a_submission()
            && entry
                .change
                .as_ref()
                .is_none_or(|facts| facts.form == form && visible(reader, facts))
    })?;
    let mut changes = Vec::with_capacity(entries.len());
    for entry in &entries {
        let Some((change, facts)) = told(store, entry, fields)? else {
            continue;
        };
        // Entries from before the log kept what a change made: today's facts decide.
        if entry.change.is_none() && !(facts.form == form && visible(reader, &facts)) {
            continue;
        }
        changes.push(change);
    }
    Ok((changes, looked_at))
}

fn visible(reader: &Principal, facts: &ChangeFacts) -> bool {
    if facts.scopes.is_empty() {
        return visible_to(reader, &facts.submitted_by, None);
    }
    facts
        .scopes
        .iter()
        .any(|scope| visible_to(reader, &facts.submitted_by, Some(scope)))
}

/// The submission an audit entry is about, if it is about one.
fn submission_of(entry: &AuditRecord) -> Option<Uuid> {
    entry
        .target
        .strip_prefix("submission:")
        .and_then(|id| Uuid::try_parse(id).ok())
}

/// The change at log position `seq`, if that entry is one.
pub fn at(store: &Store, seq: u64, fields: Fields) -> Result<Option<Change>, StoreError> {
    let (entries, _) = store.audit_through(seq.saturating_sub(1), seq, 1, |e| e.seq == seq)?;
    entries
        .first()
        .map(|entry| of_entry(store, entry, fields))
        .transpose()
        .map(Option::flatten)
}

/// The change an audit entry records, or `None` if it is not a submission's change (or the
/// submission is not stored: it never is removed, so only a damaged store).
pub fn of_entry(
    store: &Store,
    entry: &AuditRecord,
    fields: Fields,
) -> Result<Option<Change>, StoreError> {
    Ok(told(store, entry, fields)?.map(|(change, _)| change))
}

/// `of_entry`, with the facts it was told by (the entry's, or today's for an older entry).
fn told(
    store: &Store,
    entry: &AuditRecord,
    fields: Fields,
) -> Result<Option<(Change, ChangeFacts)>, StoreError> {
    let Some(event) = event_name(entry.action) else {
        return Ok(None);
    };
    let Some(id) = submission_of(entry) else {
        return Ok(None);
    };
    let Some(record) = store.submission(id)? else {
        return Ok(None);
    };
    let facts = entry
        .change
        .clone()
        .unwrap_or_else(|| ChangeFacts::current(&record.meta));
    let wants_data = fields == Fields::All && entry.action != AuditAction::SubmissionDeleted;
    let data = if !wants_data {
        None
    } else if facts.version <= 1 {
        serde_json::from_slice::<Value>(&record.payload)
            .ok()
            .and_then(|mut envelope| envelope.get_mut("data").map(Value::take))
    } else {
        store.version(id, facts.version)?.map(|v| v.data)
    };
    let change = Change {
        event,
        delivery_id: None,
        at: entry.at,
        form: facts.form.clone(),
        form_version: facts.form_version.clone(),
        submission_id: id,
        version: facts.version,
        review_status: facts.review_status,
        data,
        data_omitted: false,
    };
    Ok(Some((change, facts)))
}
