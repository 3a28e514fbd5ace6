//! How a stored submission is shown: its metadata beside the answers exactly as received.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::error::AppError;
use crate::store::{Store, SubmissionRecord};
use crate::submissions::review::REVIEW_STATES;

/// Largest page a client may ask for; a page of full questionnaires is then a few megabytes at most.
pub const MAX_PAGE: usize = 1000;
/// Page size when the client does not say.
pub const DEFAULT_PAGE: usize = 100;

/// A submission for reading: `data` and `meta` are the received bytes, not a re-encoding.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubmissionView<'a> {
    pub id: Uuid,
    pub form: &'a str,
    pub form_version: &'a str,
    pub received_at: &'a str,
    pub submitted_by: &'a str,
    /// The review state.
    pub status: &'a str,
    /// 1 while the answers are as received; each correction adds one (`data` is the latest).
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<&'a crate::store::Deletion>,
    #[schema(value_type = Object)]
    pub data: &'a RawValue,
    #[schema(value_type = Option<Object>)]
    pub meta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Parts<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
    #[serde(borrow, default)]
    meta: Option<&'a RawValue>,
}

impl<'a> SubmissionView<'a> {
    pub fn of(record: &'a SubmissionRecord) -> Result<Self, AppError> {
        // The payload passed envelope parsing before it was stored, so this fails only on corruption.
        let parts: Parts<'a> = serde_json::from_slice(&record.payload).map_err(|e| {
            AppError::Internal(format!("stored submission {} unreadable: {e}", record.id))
        })?;
        Ok(Self {
            id: record.id,
            form: &record.meta.form,
            form_version: &record.meta.form_version,
            received_at: &record.meta.received_at,
            submitted_by: &record.meta.submitted_by,
            status: &record.meta.review_status,
            version: record.meta.version,
            deleted: record.meta.deleted.as_ref(),
            data: match &record.current {
                Some(current) => serde_json::from_slice(current).map_err(|e| {
                    AppError::Internal(format!("stored version of {} unreadable: {e}", record.id))
                })?,
                None => parts.data,
            },
            meta: parts.meta.filter(|m| m.get() != "null"),
        })
    }
}

/// One page of a form's submissions in arrival order, and the cursor for the next one.
pub struct SubmissionPage {
    pub records: Vec<SubmissionRecord>,
    /// Opaque to clients: pass it back as `cursor` to continue; `None` at the end.
    pub next_cursor: Option<String>,
}

/// Reads a page after `cursor` (from a previous page), at most `limit` long.
pub fn page(
    store: &Store,
    form: &str,
    cursor: Option<&str>,
    limit: Option<usize>,
    statuses: Option<&[String]>,
    reader: &Principal,
) -> Result<SubmissionPage, AppError> {
    if !reader.role.allows(Permission::ReadOwnSubmissions)
        && !reader.role.allows(Permission::ReadScopedSubmissions)
    {
        return Err(AppError::Forbidden);
    }
    if let Some(unknown) = statuses.unwrap_or_default().iter().find(|s| {
        !["received", "edited"].contains(&s.as_str()) && !REVIEW_STATES.contains(&s.as_str())
    }) {
        return Err(AppError::QueryInvalid(format!(
            "status: {unknown:?} is not one of received, edited, {}",
            REVIEW_STATES.join(", ")
        )));
    }
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::QueryInvalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let after = cursor
        .map(|c| {
            c.parse::<u64>().map_err(|_| {
                AppError::QueryInvalid("cursor is not one this server gave out".into())
            })
        })
        .transpose()?;
    let mut records = store.submissions_page(
        form,
        after,
        limit + 1,
        |submitter, scope| super::visible_to(reader, submitter, scope),
        |meta| meta.deleted.is_none() && statuses.is_none_or(|s| s.contains(&meta.review_status)),
    )?;
    let next_cursor = if records.len() > limit {
        records.truncate(limit);
        records.last().map(|r| r.meta.seq.to_string())
    } else {
        None
    };
    Ok(SubmissionPage {
        records,
        next_cursor,
    })
}
