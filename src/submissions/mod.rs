//! Submissions: from raw bytes to a validated, durably stored record, with idempotent retries.
//!
//! `ValidSubmission` can only be built by passing the form's schema, so the store is never handed
//! unchecked answers. The client's UUID is the idempotency key: the same id with the same content
//! is a replay (the original receipt again), with other content a conflict.

pub mod edit;
mod envelope;
mod filter;
pub mod progress;
pub mod review;
mod status;
mod view;

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

pub use envelope::{Envelope, same_content};
pub use filter::{ListFilter, Search, statuses};
pub use status::ReviewStatus;
pub use view::{SubmissionPage, SubmissionView, page};

use crate::audit::{self, AuditAction};
use crate::auth::{Permission, Principal};
use crate::clock::Timestamp;
use crate::error::AppError;
use crate::forms::FormRegistry;
use crate::forms::ids::FormId;
use crate::store::{Pending, Store, SubmissionInsert, SubmissionMeta, SubmissionRecord, Ticket};

/// A submission that passed its form version's schema. Built only by [`validate`].
pub struct ValidSubmission {
    id: Uuid,
    form: FormId,
    form_version: String,
    payload: Vec<u8>,
    submitted_by: String,
    scope: Option<String>,
}

impl ValidSubmission {
    pub fn id(&self) -> Uuid {
        self.id
    }
    pub fn form(&self) -> &FormId {
        &self.form
    }
    pub fn form_version(&self) -> &str {
        &self.form_version
    }
    /// The bytes exactly as received.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
    pub fn submitted_by(&self) -> &str {
        &self.submitted_by
    }
    /// The value of the form's scope field, e.g. the township.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}

/// What the phone gets back for a stored submission.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    pub id: Uuid,
    pub form: FormId,
    pub form_version: String,
    pub received_at: Timestamp,
    /// `received`: stored and durable. Review states come later and are not part of the receipt.
    pub status: ReviewStatus,
}

impl Receipt {
    fn new(id: Uuid, meta: &SubmissionMeta) -> Self {
        Self {
            id,
            form: meta.form.clone(),
            form_version: meta.form_version.clone(),
            received_at: meta.received_at,
            status: ReviewStatus::Received,
        }
    }
}

/// A stored submission's receipt, and whether this request only replayed it.
pub struct Accepted {
    pub receipt: Receipt,
    /// True when the same id and content had been received before; nothing new was stored.
    pub replayed: bool,
}

/// Checks raw bytes against the envelope rules, the form version's schema, and `by`'s scope;
/// messages follow `accept_language` (else the form's default language).
pub fn validate(
    forms: &FormRegistry,
    form: &str,
    raw: &[u8],
    by: &Principal,
    accept_language: Option<&str>,
) -> Result<ValidSubmission, AppError> {
    let envelope = Envelope::parse(raw)?;
    let version = forms.resolve(form, envelope.form_version.as_deref())?;
    version.validate(&envelope.data, version.language(accept_language))?;
    let scope = version.scope_of(&envelope.data);
    if !by.covers(scope.as_deref()) {
        return Err(AppError::OutOfScope);
    }
    Ok(ValidSubmission {
        form: version.stored.form.clone(),
        form_version: version.stored.version.clone(),
        payload: raw.to_vec(),
        id: envelope.id,
        submitted_by: by.username.clone(),
        scope,
    })
}

/// Whether `reader` may see a submission made by `submitter` at `scope`: their own always (if
/// their role reads its own), anyone's inside their scope if their role reads scoped submissions.
pub fn visible_to(reader: &Principal, submitter: &str, scope: Option<&str>) -> bool {
    if reader.role.allows(Permission::ReadScopedSubmissions) && reader.covers(scope) {
        return true;
    }
    reader.role.allows(Permission::ReadOwnSubmissions) && submitter == reader.username
}

/// Stores a validated submission, or decides replay vs conflict for a known id. The answer
/// counts once the pending write is durable (a replay or a conflict too: the original may still
/// be on its way to disk, and neither may be told before it is there).
pub fn record(
    store: &Store,
    submission: &ValidSubmission,
    by: &Principal,
) -> Result<Pending<Result<Accepted, AppError>>, AppError> {
    let event = audit::by(
        by,
        AuditAction::SubmissionCreated,
        audit::submission_target(submission.id()),
    );
    let (inserted, ticket) = store.insert_submission(submission, &event)?.into_parts();
    let accepted = match inserted {
        SubmissionInsert::Created(meta) => Accepted {
            receipt: Receipt::new(submission.id(), &meta),
            replayed: false,
        },
        SubmissionInsert::Exists(earlier) => {
            let same = earlier.meta.form == submission.form
                && same_content(&earlier.payload, &submission.payload);
            if !same {
                return Ok(Pending::from_parts(
                    Err(AppError::SubmissionConflict),
                    ticket,
                ));
            }
            Accepted {
                receipt: Receipt::new(earlier.id, &earlier.meta),
                replayed: true,
            }
        }
    };
    Ok(Pending::from_parts(Ok(accepted), ticket))
}

/// One submission: validate, store, and answer only once it is on disk.
pub async fn submit(
    store: &Arc<Store>,
    forms: &FormRegistry,
    form: &str,
    raw: &[u8],
    by: &Principal,
    accept_language: Option<&str>,
) -> Result<Accepted, AppError> {
    by.require(Permission::Submit)?;
    forms.resolve(form, None)?;
    let submission = validate(forms, form, raw, by, accept_language)?;
    let pending = record(store, &submission, by)?;
    train_dictionary_when_due(store, submission.form().as_str());
    pending.durable().await?
}

/// Records compress far better with a dictionary of the form's own: once a form has enough
/// submissions, one is trained off the async workers while submissions keep coming.
fn train_dictionary_when_due(store: &Arc<Store>, form: &str) {
    if !store.dictionary_due(form) {
        return;
    }
    let (store, form) = (Arc::clone(store), form.to_owned());
    tokio::spawn(async move {
        let trainer = (Arc::clone(&store), form.clone());
        let trained =
            tokio::task::spawn_blocking(move || trainer.0.train_dictionary(&trainer.1)).await;
        let outcome = match trained {
            Ok(Ok(Some(pending))) => pending.durable().await.map(drop),
            Ok(Ok(None)) => Ok(()),
            Ok(Err(error)) => Err(error),
            Err(panicked) => {
                tracing::error!(%panicked, "training a compression dictionary panicked");
                store.dictionary_abandoned(&form);
                Ok(())
            }
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "no compression dictionary was stored");
        }
    });
}

/// The outcome of one item of a batch.
pub struct BatchItem {
    /// The item's id when it had a readable one.
    pub id: Option<Uuid>,
    pub outcome: Result<Accepted, AppError>,
}

/// A phone's offline queue: each item judged on its own, all accepted ones durable before returning.
pub async fn submit_batch(
    store: Arc<Store>,
    forms: Arc<FormRegistry>,
    form: String,
    items: Vec<Box<RawValue>>,
    max_item_bytes: usize,
    by: Principal,
    accept_language: Option<String>,
) -> Result<Vec<BatchItem>, AppError> {
    by.require(Permission::Submit)?;
    forms.resolve(&form, None)?;
    // Validating hundreds of questionnaires is CPU work: keep it off the async workers.
    let (results, last) = tokio::task::spawn_blocking(move || {
        let mut last: Option<Ticket> = None;
        let results = items
            .iter()
            .map(|item| {
                let raw = item.get().as_bytes();
                let outcome = if raw.len() > max_item_bytes {
                    Err(AppError::BodyTooLarge)
                } else {
                    validate(&forms, &form, raw, &by, accept_language.as_deref())
                        .and_then(|s| record(&store, &s, &by))
                        .and_then(|pending| {
                            let (outcome, ticket) = pending.into_parts();
                            last = Some(match last.take() {
                                Some(earlier) => earlier.later(ticket),
                                None => ticket,
                            });
                            outcome
                        })
                };
                BatchItem {
                    id: id_of(raw),
                    outcome,
                }
            })
            .collect::<Vec<_>>();
        train_dictionary_when_due(&store, &form);
        (results, last)
    })
    .await
    .map_err(|e| AppError::Internal(format!("batch worker: {e}")))?;
    // One flush settles every item: the latest ticket covers all earlier writes.
    if let Some(ticket) = last {
        ticket.wait().await?;
    }
    Ok(results)
}

/// The id of an item that may be invalid, so a phone can match results to its queue.
fn id_of(raw: &[u8]) -> Option<Uuid> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    let id = serde_json::from_slice::<IdOnly>(raw).ok()?.id?;
    Uuid::try_parse(&id).ok()
}

/// The answers a record holds now: the latest correction, else as received.
pub fn current_data(record: &SubmissionRecord) -> Result<serde_json::Value, AppError> {
    let view = SubmissionView::of(record)?;
    serde_json::from_str(view.data.get()).map_err(|e| AppError::Internal(e.to_string()))
}

/// One submission with its metadata, if `reader` may see it (else it is "not found": no hint it
/// exists). Deleted submissions are seen only by those who may restore them.
pub fn find(store: &Store, id: Uuid, reader: &Principal) -> Result<SubmissionRecord, AppError> {
    let record = store.submission(id)?.ok_or(AppError::SubmissionNotFound)?;
    let hidden =
        record.meta.deleted.is_some() && !reader.role.allows(Permission::DeleteSubmissions);
    if hidden
        || !visible_to(
            reader,
            &record.meta.submitted_by,
            record.meta.scope.as_deref(),
        )
    {
        return Err(AppError::SubmissionNotFound);
    }
    Ok(record)
}

/// [`find`], and the submission must also be inside the reader's scope: what reviewing needs.
/// A reviewer sees their own submissions wherever they are, but a supervisor moved to another
/// township no longer reviews the old one's work, their own included.
pub fn find_in_scope(
    store: &Store,
    id: Uuid,
    reader: &Principal,
) -> Result<SubmissionRecord, AppError> {
    let record = find(store, id, reader)?;
    if !reader.covers(record.meta.scope.as_deref()) {
        return Err(AppError::OutOfScope);
    }
    Ok(record)
}
