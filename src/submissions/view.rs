//! How a stored submission is shown: its metadata beside the answers as received.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{ListFilter, ReviewStatus};
use crate::attachments::AttachmentView;
use crate::auth::{Permission, Principal};
use crate::clock::Timestamp;
use crate::error::AppError;
use crate::forms::ids::FormId;
use crate::store::{Deletion, Store, SubmissionRecord};
use crate::strict_json;

/// Largest page a client may ask for; a page of full questionnaires is then a few megabytes at most.
pub const MAX_PAGE: usize = 1000;
/// Page size when the client does not say.
pub const DEFAULT_PAGE: usize = 100;

/// A submission for reading: `data` and `meta` are the received bytes, not a re-encoding
/// (except for a record stored with a repeated key before such bodies were refused: its
/// answers are shown last-wins, as they were validated).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubmissionView<'a> {
    pub id: Uuid,
    pub form: &'a FormId,
    pub form_version: &'a str,
    pub received_at: Timestamp,
    pub submitted_by: &'a str,
    /// The review state.
    pub status: ReviewStatus,
    /// 1 while the answers are as received; each correction adds one (`data` is the latest).
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<DeletionView>,
    #[schema(value_type = Object)]
    pub data: Cow<'a, RawValue>,
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Cow<'a, RawValue>>,
    /// The files the answers name and whether each has arrived (when one submission is read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Vec<AttachmentView>>,
}

/// Why and by whom a submission was deleted, as the API shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DeletionView {
    pub reason: String,
    pub by: String,
    pub at: Timestamp,
}

impl From<&Deletion> for DeletionView {
    fn from(deletion: &Deletion) -> Self {
        Self {
            reason: deletion.reason.clone(),
            by: deletion.by.clone(),
            at: deletion.at,
        }
    }
}

/// The parts of a stored envelope a view shows, each the last of its name (see `strict_json`).
#[derive(Default)]
struct Parts<'a> {
    data: Option<&'a RawValue>,
    meta: Option<&'a RawValue>,
}

impl<'de> serde::Deserialize<'de> for Parts<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PartsVisitor;
        impl<'de> Visitor<'de> for PartsVisitor {
            type Value = Parts<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a submission envelope")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parts<'de>, A::Error> {
                let mut parts = Parts::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "data" => parts.data = Some(map.next_value()?),
                        "meta" => parts.meta = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(parts)
            }
        }
        deserializer.deserialize_map(PartsVisitor)
    }
}

/// `raw` as stored, or re-encoded last-wins when it repeats a key.
fn last_wins(raw: &RawValue) -> Result<Cow<'_, RawValue>, serde_json::Error> {
    if !strict_json::has_duplicates(raw.get().as_bytes()) {
        return Ok(Cow::Borrowed(raw));
    }
    let value: Value = serde_json::from_str(raw.get())?;
    Ok(Cow::Owned(serde_json::value::to_raw_value(&value)?))
}

impl<'a> SubmissionView<'a> {
    /// The view of a record; an error only when its bytes cannot be read at all (corruption).
    pub fn of(record: &'a SubmissionRecord) -> Result<Self, AppError> {
        let unreadable = |e: &dyn fmt::Display| {
            AppError::Internal(format!("stored submission {} unreadable: {e}", record.id))
        };
        let parts: Parts<'a> =
            serde_json::from_slice(&record.payload).map_err(|e| unreadable(&e))?;
        let data = match &record.current {
            Some(current) => Cow::Borrowed(
                serde_json::from_slice::<&RawValue>(current).map_err(|e| unreadable(&e))?,
            ),
            None => last_wins(parts.data.ok_or_else(|| unreadable(&"no data"))?)
                .map_err(|e| unreadable(&e))?,
        };
        let meta = parts
            .meta
            .filter(|m| m.get() != "null")
            .map(last_wins)
            .transpose()
            .map_err(|e| unreadable(&e))?;
        Ok(Self {
            id: record.id,
            form: &record.meta.form,
            form_version: &record.meta.form_version,
            received_at: record.meta.received_at,
            submitted_by: &record.meta.submitted_by,
            status: record.meta.review_status,
            version: record.meta.version,
            deleted: record.meta.deleted.as_ref().map(DeletionView::from),
            data,
            meta,
            attachments: None,
        })
    }
}

/// One page of a form's submissions in arrival order, and the cursor for the next one.
pub struct SubmissionPage {
    pub records: Vec<SubmissionRecord>,
    /// Opaque to clients: pass it back as `cursor` to continue; `None` at the end.
    pub next_cursor: Option<String>,
    /// Entries in the page's range that could not be read and were left out (each logged).
    pub unreadable: usize,
}

impl SubmissionPage {
    /// The views of the page's records, and how many entries were left out unreadable in all:
    /// a record whose bytes cannot be shown is logged and skipped, so one damaged record never
    /// fails a list.
    pub fn views(&self) -> (Vec<SubmissionView<'_>>, usize) {
        let mut views = Vec::with_capacity(self.records.len());
        let mut unreadable = self.unreadable;
        for record in &self.records {
            match SubmissionView::of(record) {
                Ok(view) => views.push(view),
                Err(error) => {
                    tracing::warn!(id = %record.id, %error, "left an unreadable submission out of a list");
                    unreadable += 1;
                }
            }
        }
        (views, unreadable)
    }
}

/// Reads a page after `cursor` (from a previous page), at most `limit` long, of the submissions
/// `reader` may see that `filter` admits.
pub fn page(
    store: &Store,
    form: &str,
    cursor: Option<&str>,
    limit: Option<usize>,
    filter: &ListFilter,
    reader: &Principal,
) -> Result<SubmissionPage, AppError> {
    if !reader.role.allows(Permission::ReadOwnSubmissions)
        && !reader.role.allows(Permission::ReadScopedSubmissions)
    {
        return Err(AppError::Forbidden);
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
    let mut entries = store.submissions_page(
        form,
        after,
        limit + 1,
        |submitter, scope| {
            super::visible_to(reader, submitter, scope) && filter.admits_entry(submitter, scope)
        },
        |record| filter.admits(record),
    )?;
    let next_cursor = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|entry| match entry {
            Ok(record) => record.meta.seq.to_string(),
            Err(unreadable) => unreadable.seq.to_string(),
        })
    } else {
        None
    };
    let mut records = Vec::with_capacity(entries.len());
    let mut unreadable = 0;
    for entry in entries {
        match entry {
            Ok(record) => records.push(record),
            Err(skipped) => {
                tracing::warn!(form, seq = skipped.seq, id = ?skipped.id, reason = %skipped.reason,
                    "left an unreadable submission out of a list");
                unreadable += 1;
            }
        }
    }
    Ok(SubmissionPage {
        records,
        next_cursor,
        unreadable,
    })
}
