//! Who did what, when: the audited actions, and how events are made and read.
//!
//! Entries are written by the store in the same transaction as the change they record. They
//! name the actor, the action, the target and the request, never the answers or a password.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::clock::Timestamp;
use crate::error::AppError;
use crate::store::{AuditEvent, AuditRecord, Store};

/// Every kind of audited event. The serde form is the name the log and the API use; the
/// README lists exactly these, in this order (a test compares the two).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Login,
    LoginFailed,
    Logout,
    UserCreated,
    UserUpdated,
    FormPublished,
    SubmissionCreated,
    SubmissionReviewed,
    SubmissionEdited,
    SubmissionDeleted,
    SubmissionRestored,
    CommentAdded,
    AttachmentUploaded,
    RegistryImported,
    ExportDownloaded,
    BackupDownloaded,
    WebhookCreated,
    WebhookUpdated,
    WebhookDeleted,
    WebhookRedelivered,
}

impl AuditAction {
    /// Every action, in the README's order.
    pub const ALL: [AuditAction; 20] = [
        AuditAction::Login,
        AuditAction::LoginFailed,
        AuditAction::Logout,
        AuditAction::UserCreated,
        AuditAction::UserUpdated,
        AuditAction::FormPublished,
        AuditAction::SubmissionCreated,
        AuditAction::SubmissionReviewed,
        AuditAction::SubmissionEdited,
        AuditAction::SubmissionDeleted,
        AuditAction::SubmissionRestored,
        AuditAction::CommentAdded,
        AuditAction::AttachmentUploaded,
        AuditAction::RegistryImported,
        AuditAction::ExportDownloaded,
        AuditAction::BackupDownloaded,
        AuditAction::WebhookCreated,
        AuditAction::WebhookUpdated,
        AuditAction::WebhookDeleted,
        AuditAction::WebhookRedelivered,
    ];

    /// A change of a submission, which the changes feed and webhooks tell.
    pub fn changes_a_submission(self) -> bool {
        matches!(
            self,
            AuditAction::SubmissionCreated
                | AuditAction::SubmissionEdited
                | AuditAction::SubmissionReviewed
                | AuditAction::SubmissionDeleted
                | AuditAction::SubmissionRestored
        )
    }

    /// The name in the log: `login`, `submission_created`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Login => "login",
            AuditAction::LoginFailed => "login_failed",
            AuditAction::Logout => "logout",
            AuditAction::UserCreated => "user_created",
            AuditAction::UserUpdated => "user_updated",
            AuditAction::FormPublished => "form_published",
            AuditAction::SubmissionCreated => "submission_created",
            AuditAction::SubmissionReviewed => "submission_reviewed",
            AuditAction::SubmissionEdited => "submission_edited",
            AuditAction::SubmissionDeleted => "submission_deleted",
            AuditAction::SubmissionRestored => "submission_restored",
            AuditAction::CommentAdded => "comment_added",
            AuditAction::AttachmentUploaded => "attachment_uploaded",
            AuditAction::RegistryImported => "registry_imported",
            AuditAction::ExportDownloaded => "export_downloaded",
            AuditAction::BackupDownloaded => "backup_downloaded",
            AuditAction::WebhookCreated => "webhook_created",
            AuditAction::WebhookUpdated => "webhook_updated",
            AuditAction::WebhookDeleted => "webhook_deleted",
            AuditAction::WebhookRedelivered => "webhook_redelivered",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == name)
    }
}

/// The target text of a webhook.
pub fn webhook_target(id: Uuid) -> String {
    format!("webhook:{id}")
}

/// The target text of a submission, a user, a form version.
pub fn submission_target(id: Uuid) -> String {
    format!("submission:{id}")
}
pub fn user_target(username: &str) -> String {
    format!("user:{username}")
}
pub fn form_target(form: &str, version: &str) -> String {
    format!("form:{form}@{version}")
}
pub fn registry_target(form: &str) -> String {
    format!("registry:{form}")
}

/// An event done by `who` in the request they made.
pub fn by(who: &Principal, action: AuditAction, target: String) -> AuditEvent {
    AuditEvent {
        actor: who.username.clone(),
        action,
        target,
        request_id: who.request_id.clone(),
    }
}

/// An audit entry as the API shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Position in the log; also the paging cursor.
    pub seq: u64,
    pub at: Timestamp,
    pub actor: String,
    pub action: AuditAction,
    /// `submission:<id>`, `user:<name>`, `form:<id>@<version>`, `export:<file>`, `backup`.
    pub target: String,
    /// The `x-request-id` of the request that did it.
    pub request_id: Option<String>,
}

impl From<AuditRecord> for AuditEntry {
    fn from(record: AuditRecord) -> Self {
        Self {
            seq: record.seq,
            at: record.at,
            actor: record.actor,
            action: record.action,
            target: record.target,
            request_id: record.request_id,
        }
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

/// A filter whose values were checked.
struct Checked {
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    actor: Option<String>,
    action: Option<AuditAction>,
    target: Option<String>,
}

impl Filter {
    fn check(&self) -> Result<Checked, AppError> {
        let time = |name: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| {
                    Timestamp::parse(v).ok_or_else(|| {
                        AppError::QueryInvalid(format!("{name}: expected an RFC 3339 time"))
                    })
                })
                .transpose()
        };
        let action = self
            .action
            .as_deref()
            .map(|name| {
                AuditAction::parse(name).ok_or_else(|| {
                    let names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
                    AppError::QueryInvalid(format!("action: one of {}", names.join(", ")))
                })
            })
            .transpose()?;
        Ok(Checked {
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            actor: self.actor.clone(),
            action,
            target: self.target.clone(),
        })
    }
}

impl Checked {
    fn keeps(&self, entry: &AuditRecord) -> bool {
        self.since.is_none_or(|since| entry.at >= since)
            && self.until.is_none_or(|until| entry.at < until)
            && self.actor.as_ref().is_none_or(|a| *a == entry.actor)
            && self.action.is_none_or(|a| a == entry.action)
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
) -> Result<(Vec<AuditEntry>, Option<String>), AppError> {
    reader.require(Permission::ManageUsers)?;
    let limit = limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::QueryInvalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let filter = filter.check()?;
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
    Ok((entries.into_iter().map(AuditEntry::from).collect(), next))
}

/// Everything done to one submission: for those who may review it (supervisors in its scope)
/// and admins. Its field worker and analysts read the submission but not who did what to it.
pub fn trail(store: &Store, id: Uuid, reader: &Principal) -> Result<Vec<AuditEntry>, AppError> {
    let record = crate::submissions::find(store, id, reader)?;
    reader.require(Permission::ReadTrails)?;
    if !reader.covers(record.meta.scope.as_deref()) {
        return Err(AppError::OutOfScope);
    }
    let entries = store.audit_of(&submission_target(id))?;
    Ok(entries.into_iter().map(AuditEntry::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip_through_serde() {
        for action in AuditAction::ALL {
            let json = serde_json::to_string(&action).unwrap();
            assert_eq!(json, format!("\"{}\"", action.as_str()));
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
    }
}
