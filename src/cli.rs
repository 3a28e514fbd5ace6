//! Commands for a stopped server: managing users directly in the data directory.

use std::io::BufRead;
use std::path::Path;

use crate::auth::password;
use crate::auth::users::{self, CheckedPatch, NewUser};
use crate::config::UserAction;
use crate::error::AppError;
use crate::store::Store;

/// Runs a `survey-server user ...` command; the message to print on success.
pub fn run_user_command(data_dir: &Path, action: UserAction) -> Result<String, String> {
    let store = Store::open(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
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
            let user = users::create(&store, &new.into_record(hash), CLI, None).map_err(explain)?;
            format!("created {} ({})", user.username, user.role)
        }
        UserAction::SetPassword { username } => {
            let username = username.to_lowercase();
            let new_password = read_password()?;
            users::check_password(&username, &new_password).map_err(explain)?;
            let hash = password::hash(&new_password).map_err(|e| e.to_string())?;
            users::update(
                &store,
                &username,
                &CheckedPatch::password(hash),
                &cli_event(&username),
            )
            .map_err(explain)?;
            format!("password of {username} changed; their sessions have ended")
        }
        UserAction::Disable { username } => {
            let username = username.to_lowercase();
            users::update(
                &store,
                &username,
                &CheckedPatch::disable(),
                &cli_event(&username),
            )
            .map_err(explain)?;
            format!("{username} disabled; their sessions have ended")
        }
    };
    // The store flushes and fsyncs on drop; make that explicit before reporting success.
    drop(store);
    Ok(message)
}

/// The actor the audit log names for changes made from the command line.
const CLI: &str = "cli";

fn cli_event(username: &str) -> crate::store::AuditEvent {
    crate::store::AuditEvent {
        actor: CLI.into(),
        action: crate::audit::USER_UPDATED,
        target: crate::audit::user_target(username),
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
