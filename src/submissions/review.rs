//! Review: supervisors set a state and leave comments; admins delete and restore. Every change
//! is one write together with its audit entries, durable before it is reported; the payload as
//! received is never touched.

use serde::Serialize;
use uuid::Uuid;

use super::{ReviewStatus, find, find_in_scope};
use crate::audit::{self, AuditAction};
use crate::auth::{Permission, Principal};
use crate::clock::Timestamp;
use crate::error::AppError;
use crate::limits;
use crate::store::{Comment, Deletion, NewComment, Store, SubmissionRecord};

/// A comment as the API shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CommentView {
    /// Orders the comments of a submission.
    pub seq: u64,
    pub author: String,
    pub at: Timestamp,
    pub text: String,
}

impl From<Comment> for CommentView {
    fn from(comment: Comment) -> Self {
        Self {
            seq: comment.seq,
            author: comment.author,
            at: comment.at,
            text: comment.text,
        }
    }
}

/// Sets the review state of a submission in the reviewer's scope, with an optional comment:
/// state, comment and their audit entries are one write, so a bad comment changes nothing.
pub async fn set_state(
    store: &Store,
    id: Uuid,
    status: ReviewStatus,
    comment: Option<&str>,
    by: &Principal,
) -> Result<SubmissionRecord, AppError> {
    by.require(Permission::Review)?;
    find_in_scope(store, id, by)?;
    if !ReviewStatus::SETTABLE.contains(&status) {
        return Err(AppError::invalid_field(
            "/status",
            "status must be approved, rejected or has_issues",
        ));
    }
    let comment = comment
        .map(|text| limits::comment(text, "/comment"))
        .transpose()?
        .flatten()
        .map(|text| NewComment {
            author: by.username.clone(),
            text,
        });
    let target = audit::submission_target(id);
    let mut events = vec![audit::by(
        by,
        AuditAction::SubmissionReviewed,
        target.clone(),
    )];
    if comment.is_some() {
        events.push(audit::by(by, AuditAction::CommentAdded, target));
    }
    let pending = store
        .change_submission(
            id,
            |meta| meta.review_status = status,
            comment.as_ref(),
            &events,
        )?
        .ok_or(AppError::SubmissionNotFound)?;
    Ok(pending.durable().await?)
}

/// Adds a comment: reviewers in scope, and the field worker who made the submission.
pub async fn add_comment(
    store: &Store,
    id: Uuid,
    text: &str,
    by: &Principal,
) -> Result<CommentView, AppError> {
    let record = find(store, id, by)?;
    let reviewer = by.role.allows(Permission::Review) && by.covers(record.meta.scope.as_deref());
    if !reviewer && record.meta.submitted_by != by.username {
        return Err(AppError::Forbidden);
    }
    let text = limits::comment(text, "/text")?
        .ok_or_else(|| AppError::invalid_field("/text", "a comment has 1 to 2000 characters"))?;
    let event = audit::by(by, AuditAction::CommentAdded, audit::submission_target(id));
    let comment = NewComment {
        author: by.username.clone(),
        text,
    };
    let stored = store.add_comment(id, &comment, &event)?.durable().await?;
    Ok(stored.into())
}

/// The comments on a submission the reader may see (the phone shows them to its field worker).
pub fn comments(store: &Store, id: Uuid, by: &Principal) -> Result<Vec<CommentView>, AppError> {
    find(store, id, by)?;
    Ok(store.comments(id)?.into_iter().map(Into::into).collect())
}

/// Soft-deletes a submission (admin): it leaves lists and exports, and stays stored.
pub async fn delete(
    store: &Store,
    id: Uuid,
    reason: &str,
    by: &Principal,
) -> Result<SubmissionRecord, AppError> {
    by.require(Permission::DeleteSubmissions)?;
    let reason = limits::reason(reason)?;
    let deletion = Deletion {
        reason,
        by: by.username.clone(),
        at: Timestamp::now(),
    };
    let event = audit::by(
        by,
        AuditAction::SubmissionDeleted,
        audit::submission_target(id),
    );
    let pending = store
        .change_submission(
            id,
            |meta| meta.deleted = Some(deletion.clone()),
            None,
            &[event],
        )?
        .ok_or(AppError::SubmissionNotFound)?;
    Ok(pending.durable().await?)
}

/// Brings a deleted submission back (admin).
pub async fn restore(
    store: &Store,
    id: Uuid,
    by: &Principal,
) -> Result<SubmissionRecord, AppError> {
    by.require(Permission::DeleteSubmissions)?;
    let event = audit::by(
        by,
        AuditAction::SubmissionRestored,
        audit::submission_target(id),
    );
    let pending = store
        .change_submission(id, |meta| meta.deleted = None, None, &[event])?
        .ok_or(AppError::SubmissionNotFound)?;
    Ok(pending.durable().await?)
}
