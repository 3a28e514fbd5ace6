//! Review: supervisors set a state and leave comments; admins delete and restore. Every change
//! is one write together with its audit entry; the payload as received is never touched.

use uuid::Uuid;

use super::find;
use crate::audit;
use crate::auth::{Permission, Principal};
use crate::error::AppError;
use crate::store::{Comment, Deletion, Store, SubmissionRecord};

/// The states a reviewer may set (`received` comes on arrival, `edited` with a correction).
pub const REVIEW_STATES: [&str; 3] = ["approved", "rejected", "has_issues"];

/// Sets the review state of a submission in the reviewer's scope, with an optional comment.
pub fn set_state(
    store: &Store,
    id: Uuid,
    status: &str,
    comment: Option<&str>,
    by: &Principal,
) -> Result<SubmissionRecord, AppError> {
    by.require(Permission::Review)?;
    find(store, id, by)?;
    if !REVIEW_STATES.contains(&status) {
        return Err(AppError::invalid_field(
            "/status",
            "status must be approved, rejected or has_issues",
        ));
    }
    let event = audit::by(by, audit::SUBMISSION_REVIEWED, audit::submission_target(id));
    let record = store
        .change_submission(id, |meta| meta.review_status = status.to_owned(), &event)?
        .ok_or(AppError::SubmissionNotFound)?;
    if let Some(text) = comment.map(str::trim).filter(|t| !t.is_empty()) {
        add_comment(store, id, text, by)?;
    }
    Ok(record)
}

/// Adds a comment: reviewers in scope, and the field worker who made the submission.
pub fn add_comment(
    store: &Store,
    id: Uuid,
    text: &str,
    by: &Principal,
) -> Result<Comment, AppError> {
    let record = find(store, id, by)?;
    if !by.role.allows(Permission::Review) && record.meta.submitted_by != by.username {
        return Err(AppError::Forbidden);
    }
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 2000 {
        return Err(AppError::invalid_field(
            "/text",
            "a comment has 1 to 2000 characters",
        ));
    }
    let event = audit::by(by, audit::COMMENT_ADDED, audit::submission_target(id));
    Ok(store.add_comment(id, &by.username, text, &event)?)
}

/// The comments on a submission the reader may see (the phone shows them to its field worker).
pub fn comments(store: &Store, id: Uuid, by: &Principal) -> Result<Vec<Comment>, AppError> {
    find(store, id, by)?;
    Ok(store.comments(id)?)
}

/// Soft-deletes a submission (admin): it leaves lists and exports, and stays stored.
pub fn delete(
    store: &Store,
    id: Uuid,
    reason: &str,
    by: &Principal,
) -> Result<SubmissionRecord, AppError> {
    by.require(Permission::DeleteSubmissions)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AppError::invalid_field(
            "/reason",
            "say why the submission is deleted",
        ));
    }
    let deletion = Deletion {
        reason: reason.to_owned(),
        by: by.username.clone(),
        at: crate::clock::now_rfc3339(),
    };
    let event = audit::by(by, audit::SUBMISSION_DELETED, audit::submission_target(id));
    store
        .change_submission(id, |meta| meta.deleted = Some(deletion.clone()), &event)?
        .ok_or(AppError::SubmissionNotFound)
}

/// Brings a deleted submission back (admin).
pub fn restore(store: &Store, id: Uuid, by: &Principal) -> Result<SubmissionRecord, AppError> {
    by.require(Permission::DeleteSubmissions)?;
    let event = audit::by(by, audit::SUBMISSION_RESTORED, audit::submission_target(id));
    store
        .change_submission(id, |meta| meta.deleted = None, &event)?
        .ok_or(AppError::SubmissionNotFound)
}
