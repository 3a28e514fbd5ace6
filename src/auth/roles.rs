//! Roles and what each may do: the one table every permission check reads.

use serde::{Deserialize, Serialize};

/// What a person does in the survey. Its serde form is the code the API and the store use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 调查员: visits households and submits questionnaires.
    FieldWorker,
    /// Checks the field workers' submissions in their scope.
    Supervisor,
    /// Reads submissions and downloads datasets in their scope.
    Analyst,
    /// Runs the server: users, forms, everything.
    Admin,
}

/// Something a request needs to be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    ReadForms,
    PublishForms,
    Submit,
    /// Read submissions this user made.
    ReadOwnSubmissions,
    /// Read every submission inside the user's scope.
    ReadScopedSubmissions,
    Export,
    /// Read figures over the cleaned data of the user's scope: indicators and progress.
    ReadFigures,
    /// Set review states of submissions in scope, comment on and correct them.
    Review,
    /// Read the audit trail of a submission in scope (who reviewed, corrected, deleted it).
    ReadTrails,
    /// Soft-delete and restore submissions.
    DeleteSubmissions,
    ManageUsers,
    /// Import a form's register of households and people.
    ManageRegistry,
    /// Upload a file to someone else's submission (everyone may to their own).
    UploadForOthers,
    /// Download a backup of the whole database.
    Backup,
    /// Read the changes feed of the submissions in scope.
    ReadChanges,
    /// Register and manage webhooks.
    ManageWebhooks,
}

impl Role {
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::FieldWorker => matches!(permission, ReadForms | Submit | ReadOwnSubmissions),
            Role::Supervisor => matches!(
                permission,
                ReadForms
                    | Submit
                    | ReadOwnSubmissions
                    | ReadScopedSubmissions
                    | Review
                    | ReadTrails
                    | ReadFigures
            ),
            Role::Analyst => matches!(
                permission,
                ReadForms | ReadScopedSubmissions | Export | ReadFigures | ReadChanges
            ),
        }
    }

    /// The code used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::FieldWorker => "field_worker",
            Role::Supervisor => "supervisor",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// Every role, least powerful first.
    pub const ALL: [Role; 4] = [
        Role::FieldWorker,
        Role::Supervisor,
        Role::Analyst,
        Role::Admin,
    ];

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_workers_submit_and_read_their_own_but_not_everyone_elses() {
        assert!(Role::FieldWorker.allows(Permission::Submit));
        assert!(Role::FieldWorker.allows(Permission::ReadOwnSubmissions));
        assert!(!Role::FieldWorker.allows(Permission::ReadScopedSubmissions));
        assert!(!Role::FieldWorker.allows(Permission::Export));
    }

    #[test]
    fn analysts_read_and_export_but_do_not_submit_or_read_trails() {
        assert!(Role::Analyst.allows(Permission::Export));
        assert!(!Role::Analyst.allows(Permission::Submit));
        assert!(!Role::Analyst.allows(Permission::ReadTrails));
        assert!(Role::Supervisor.allows(Permission::ReadTrails));
    }

    #[test]
    fn only_admins_manage_users_and_publish_forms() {
        for role in [Role::FieldWorker, Role::Supervisor, Role::Analyst] {
            assert!(!role.allows(Permission::ManageUsers));
            assert!(!role.allows(Permission::PublishForms));
        }
        assert!(Role::Admin.allows(Permission::ManageUsers));
    }

    #[test]
    fn role_codes_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
