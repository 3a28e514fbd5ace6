//! Who did what, when: the names of audited actions and how events are made and read.
//!
//! Entries are written by the store in the same transaction as the change they record. They
//! name the actor, the action, the target and the request, never the answers or a password.

use crate::auth::{Permission, Principal};
use crate::error::AppError;
use crate::store::{AuditEvent, AuditRecord, Store};

pub const LOGIN: &str = "login";
pub const LOGIN_FAILED: &str = "login_failed";
pub const LOGOUT: &str = "logout";
pub const USER_CREATED: &str = "user_created";
pub const USER_UPDATED: &str = "user_updated";
pub const FORM_PUBLISHED: &str = "form_published";
pub const SUBMISSION_CREATED: &str = "submission_created";
pub const EXPORT_DOWNLOADED: &str = "export_downloaded";
pub const SUBMISSION_REVIEWED: &str = "submission_reviewed";
pub const SUBMISSION_DELETED: &str = "submission_deleted";
pub const SUBMISSION_RESTORED: &str = "submission_restored";
pub const COMMENT_ADDED: &str = "comment_added";
pub const SUBMISSION_EDITED: &str = "submission_edited";
pub const BACKUP_DOWNLOADED: &str = "backup_downloaded";

/// Every action name the log may hold.
pub const ACTIONS: [&str; 14] = [
    LOGIN,
    LOGIN_FAILED,
    LOGOUT,
    USER_CREATED,
    USER_UPDATED,
    FORM_PUBLISHED,
    SUBMISSION_CREATED,
    EXPORT_DOWNLOADED,
    SUBMISSION_REVIEWED,
    SUBMISSION_DELETED,
    SUBMISSION_RESTORED,
    COMMENT_ADDED,
    SUBMISSION_EDITED,
    BACKUP_DOWNLOADED,
];

/// The target text of a submission, a user, a form version.
pub fn submission_target(id: uuid::Uuid) -> String {
    format!("submission:{id}")
}
pub fn user_target(username: &str) -> String {
    format!("user:{username}")
}
pub fn form_target(form: &str, version: &str) -> String {
    format!("form:{form}@{version}")
}

/// An event done by `who` in the request they made.
pub fn by(who: &Principal, action: &'static str, target: String) -> AuditEvent {
    AuditEvent {
        actor: who.username.clone(),
        action,
        target,
        request_id: who.request_id.clone(),
    }
}

/// What an admin may filter the log by.
#[derive(Debug, Default)]
pub struct Filter {
    pub since: Option<String>,
    pub until: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
}

impl Filter {
    fn keeps(&self, entry: &AuditRecord) -> bool {
        let at = crate::export::clean::instant(&entry.at);
        let time_ok = |bound: &Option<String>, after: bool| {
            bound
                .as_deref()
                .and_then(crate::export::clean::instant)
                .is_none_or(|b| at.is_some_and(|at| if after { at >= b } else { at < b }))
        };
        time_ok(&self.since, true)
            && time_ok(&self.until, false)
            && self.actor.as_ref().is_none_or(|a| *a == entry.actor)
            && self.action.as_ref().is_none_or(|a| *a == entry.action)
            && self.target.as_ref().is_none_or(|t| *t == entry.target)
    }
}

/// Largest page of the log.
pub const MAX_PAGE: usize = 1000;

/// A page of the log after `cursor`, for an admin; the next cursor when there is more.
pub fn page(
    store: &Store,
    reader: &Principal,
    filter: &Filter,
    cursor: Option<&str>,
    limit: Option<usize>,
) -> Result<(Vec<AuditRecord>, Option<String>), AppError> {
    reader.require(Permission::ManageUsers)?;
    let limit = limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::QueryInvalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    for (name, value) in [("since", &filter.since), ("until", &filter.until)] {
        if value
            .as_deref()
            .is_some_and(|v| crate::export::clean::instant(v).is_none())
        {
            return Err(AppError::QueryInvalid(format!(
                "{name}: expected an RFC 3339 time"
            )));
        }
    }
    if filter
        .action
        .as_deref()
        .is_some_and(|a| !ACTIONS.contains(&a))
    {
        return Err(AppError::QueryInvalid(format!(
            "action: one of {}",
            ACTIONS.join(", ")
        )));
    }
    let after = cursor
        .map(|c| {
            c.parse::<u64>().map_err(|_| {
                AppError::QueryInvalid("cursor is not one this server gave out".into())
            })
        })
        .transpose()?;
    let mut entries = store.audit_page(after, limit + 1, |e| filter.keeps(e))?;
    let next = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok((entries, next))
}
