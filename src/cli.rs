//! Commands beside the server: managing users directly in the store, and copying a county into
//! PostgreSQL.

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

/// `survey-server copy-store`: copies a data directory or a backup file into PostgreSQL and
/// says what was copied and checked.
pub fn run_copy_store(
    from: &Path,
    from_attachments: Option<&Path>,
    to: Option<StoreChoice>,
    attachments_dir: &Path,
    database: &DatabaseSettings,
) -> Result<String, String> {
    let to = to.map(|to| DatabaseSettings {
        store: to,
        store_file: None,
        ..database.clone()
    });
    let url = match to.as_ref().unwrap_or(database).choice()? {
        StoreChoice::Postgres(url) => url,
        StoreChoice::Sled => {
            return Err("copy-store copies into PostgreSQL: give --to postgres://… \
                        (or --store-file, SURVEY_STORE)"
                .into());
        }
    };
    let default_attachments = from.join("attachments");
    let source = if from.is_dir() {
        crate::store::CopySource::DataDir {
            dir: from,
            attachments: from_attachments.unwrap_or(&default_attachments),
        }
    } else {
        crate::store::CopySource::Backup(from)
    };
    let report = crate::store::copy_store(source, &database.pg_options(url), attachments_dir)
        .map_err(|e| format!("{}: {e}", from.display()))?;
    let mut lines = vec![if report.already_there {
        "PostgreSQL already held this very copy (an earlier run): nothing was written again"
            .to_owned()
    } else {
        format!("copied into PostgreSQL: {}", report.summary)
    }];
    lines.push("verified, tree by tree (entries, and a SHA-256 of them, as in the source):".into());
    for (tree, entries) in &report.trees {
        lines.push(format!("  {tree:<45} {entries:>10}"));
    }
    lines.push(format!(
        "attachment files checked against their hashes in {}: {}",
        attachments_dir.display(),
        report.files_verified
    ));
    if !report.files_missing.is_empty() {
        lines.push(format!(
            "named by records but missing from the source too (left out, as a backup leaves them): {}",
            report.files_missing.join(", ")
        ));
    }
    Ok(lines.join("\n"))
}

/// `survey-server xlsform FILE`: the JSON Schema `file` publishes as (pretty), or every problem
/// found, one per line, in `lang`.
pub fn run_xlsform(file: &Path, lang: &str) -> Result<String, String> {
    use crate::forms::messages::Lang;
    use crate::forms::xlsform::{self, WorkbookKind};
    let kind = file
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(WorkbookKind::of_file_name)
        .ok_or_else(|| format!("{}: not an .xlsx or .xls file", file.display()))?;
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let lang = Lang::negotiate(Some(lang), None);
    match xlsform::convert(&bytes, kind) {
        Ok(converted) => serde_json::to_string_pretty(&converted.schema).map_err(|e| e.to_string()),
        Err(problems) => Err(problems
            .iter()
            .map(|p| format!("\n  {}: {}", p.path, p.message(lang)))
            .fold(
                format!("{} cannot be published:", file.display()),
                |all, line| all + &line,
            )),
    }
}
