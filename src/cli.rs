//! Commands for a stopped server: managing users directly in the data directory.

use std::io::BufRead;
use std::path::Path;

use crate::audit::{self, AuditAction};
use crate::auth::users::{self, CheckedPatch, NewUser};
use crate::auth::{Role, password};
use crate::config::{DatabaseSettings, StoreChoice, UserAction};
use crate::error::AppError;
use crate::store::{AuditEvent, Store};

/// Runs a `survey-server user ...` command; the message to print on success.
pub async fn run_user_command(
    data_dir: &Path,
    database: &DatabaseSettings,
    action: UserAction,
) -> Result<String, String> {
    let store = match database.choice()? {
        StoreChoice::Sled => Store::open(data_dir),
        StoreChoice::Postgres(url) => Store::open_postgres(&database.pg_options(url)),
    }
    .map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let explain = |e: AppError| match e {
        AppError::RequestInvalid(details) => details
            .iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    };
    let message = match action {
        UserAction::Add {
            username,
            role,
            display_name,
            scope,
        } => {
            let role = Role::parse(&role)
                .ok_or("--role: one of field_worker, supervisor, analyst, admin")?;
            let new = NewUser {
                username,
                password: read_password()?,
                role,
                display_name,
                scope,
            }
            .check()
            .map_err(explain)?;
            let hash = password::hash(&new.password).map_err(|e| e.to_string())?;
            let user = new.into_record(hash);
            let event = cli_event(AuditAction::UserCreated, &user.username);
            users::insert(&store, &user, &event)
                .map_err(explain)?
                .durable()
                .await
                .map_err(|e| e.to_string())?;
            format!("created {} ({})", user.username, user.role.as_str())
        }
        UserAction::SetPassword { username } => {
            let username = username.to_lowercase();
            let new_password = read_password()?;
            users::check_password(&username, &new_password).map_err(explain)?;
            let hash = password::hash(&new_password).map_err(|e| e.to_string())?;
            let event = cli_event(AuditAction::UserUpdated, &username);
            users::apply(&store, &username, &CheckedPatch::password(hash), &event)
                .map_err(explain)?
                .durable()
                .await
                .map_err(|e| e.to_string())?;
            format!("password of {username} changed; their sessions have ended")
        }
        UserAction::Disable { username } => {
            let username = username.to_lowercase();
            let event = cli_event(AuditAction::UserUpdated, &username);
            users::apply(&store, &username, &CheckedPatch::disable(), &event)
                .map_err(explain)?
                .durable()
                .await
                .map_err(|e| e.to_string())?;
            format!("{username} disabled; their sessions have ended")
        }
    };
    drop(store);
    Ok(message)
}

/// The actor the audit log names for changes made from the command line.
const CLI: &str = "cli";

fn cli_event(action: AuditAction, username: &str) -> AuditEvent {
    AuditEvent {
        actor: CLI.into(),
        action,
        target: audit::user_target(username),
        request_id: None,
    }
}

/// The first line of standard input, without its line ending.
pub fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password from standard input: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
