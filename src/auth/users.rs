//! Managing people: creating, changing and disabling users, and the first admin on a new server.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Auth, Permission, Principal, Role, password, tokens};
use crate::audit::{self, AuditAction};
use crate::clock::Timestamp;
use crate::error::AppError;
use crate::limits;
use crate::store::{AuditEvent, Pending, Store, StoreError, UserRecord};

/// A user as the API shows them; never the password hash.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Option<Vec<String>>,
    pub active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl UserView {
    pub fn of(user: &UserRecord) -> Self {
        Self {
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            role: user.role,
            scope: user.scope.clone(),
            active: user.active,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// A request to create a user, as sent by an admin.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(pattern = "^[a-zA-Z0-9][a-zA-Z0-9._-]{1,31}$")]
    pub username: String,
    /// 8 to 256 characters, not the username.
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    pub role: Role,
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub display_name: String,
    /// Places (e.g. townships) the user is limited to, 1 to 100 of 1 to 50 characters; null
    /// or absent for everywhere.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 100)]
    pub scope: Option<Vec<String>>,
}

/// A change to a user; absent fields stay as they are. `scope: null` means everywhere.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub role: Option<Role>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>, min_items = 1, max_items = 100)]
    pub scope: Option<Option<Vec<String>>>,
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub display_name: Option<String>,
    pub active: Option<bool>,
    /// 8 to 256 characters, not the username.
    #[schema(min_length = 8, max_length = 256)]
    pub password: Option<String>,
}

/// Distinguishes `"scope": null` (clear it) from no `scope` key (leave it).
fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Vec<String>>>, D::Error> {
    Option::<Vec<String>>::deserialize(d).map(Some)
}

/// `wei.xiuying`, `fw-siling-01`: 2–32 of a–z, 0–9, `.`, `_`, `-`, compared case-insensitively.
pub fn normalize_username(raw: &str) -> Result<String, AppError> {
    let name = raw.trim().to_lowercase();
    let (min, max) = limits::USERNAME;
    let valid = (min..=max).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if valid {
        Ok(name)
    } else {
        Err(AppError::invalid_field(
            "/username",
            "username: 2 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ))
    }
}

/// Checks a password against the rules for `username`.
pub fn check_password(username: &str, password: &str) -> Result<(), AppError> {
    password::check_rules(username, password)
        .map_err(|message| AppError::invalid_field("/password", message))
}

/// A `NewUser` whose fields passed every rule; the password is still to be hashed.
pub struct CheckedNewUser {
    pub username: String,
    pub password: String,
    role: Role,
    display_name: String,
    scope: Option<Vec<String>>,
}

impl NewUser {
    pub fn check(self) -> Result<CheckedNewUser, AppError> {
        let username = normalize_username(&self.username)?;
        check_password(&username, &self.password)?;
        Ok(CheckedNewUser {
            role: self.role,
            display_name: limits::display_name(&self.display_name)?,
            scope: limits::scope(self.scope)?,
            password: self.password,
            username,
        })
    }
}

impl CheckedNewUser {
    /// The record to store, with the password's hash.
    pub fn into_record(self, password_hash: String) -> UserRecord {
        let now = Timestamp::now();
        UserRecord {
            username: self.username,
            display_name: self.display_name,
            role: self.role,
            scope: self.scope,
            active: true,
            password_hash,
            token_version: 0,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Creates a user (admin), durably; 409 if the name is taken.
pub async fn create(
    store: &Store,
    auth: &Auth,
    new: NewUser,
    by: &Principal,
) -> Result<UserView, AppError> {
    by.require(Permission::ManageUsers)?;
    let new = new.check()?;
    // Hashing is slow on purpose: not for a name that is taken anyway.
    if store.user(&new.username)?.is_some() {
        return Err(AppError::UserExists);
    }
    let hash = auth.hash_password(&new.password).await?;
    let user = new.into_record(hash);
    let event = audit::by(
        by,
        AuditAction::UserCreated,
        audit::user_target(&user.username),
    );
    insert(store, &user, &event)?.durable().await?;
    Ok(UserView::of(&user))
}

/// Stores a new user with its audit entry; 409 if the name is taken.
pub fn insert(
    store: &Store,
    user: &UserRecord,
    event: &AuditEvent,
) -> Result<Pending<()>, AppError> {
    store.insert_user(user, event)?.ok_or(AppError::UserExists)
}

/// Every user, by username (admin).
pub fn list(store: &Store, by: &Principal) -> Result<Vec<UserView>, AppError> {
    by.require(Permission::ManageUsers)?;
    Ok(store.users()?.iter().map(UserView::of).collect())
}

/// One user (admin); the name is compared case-insensitively.
pub fn get(store: &Store, username: &str, by: &Principal) -> Result<UserView, AppError> {
    by.require(Permission::ManageUsers)?;
    let user = store
        .user(&username.to_lowercase())?
        .ok_or(AppError::UserNotFound)?;
    Ok(UserView::of(&user))
}

/// Changes a user (admin), durably. Changing the role, scope, status or password ends the
/// user's sessions at once.
pub async fn update(
    store: &Store,
    auth: &Auth,
    username: &str,
    patch: UserPatch,
    by: &Principal,
) -> Result<UserView, AppError> {
    by.require(Permission::ManageUsers)?;
    let username = username.to_lowercase();
    let hash = match &patch.password {
        Some(password) => {
            check_password(&username, password)?;
            Some(auth.hash_password(password).await?)
        }
        None => None,
    };
    let checked = patch.check(&username, hash)?;
    let event = audit::by(by, AuditAction::UserUpdated, audit::user_target(&username));
    let user = apply(store, &username, &checked, &event)?.durable().await?;
    Ok(UserView::of(&user))
}

/// A checked change, ready to apply. The password (if any) is already hashed.
pub struct CheckedPatch {
    role: Option<Role>,
    scope: Option<Option<Vec<String>>>,
    display_name: Option<String>,
    active: Option<bool>,
    password_hash: Option<String>,
}

impl UserPatch {
    /// Validates the fields; `hash` is the new password's hash when the patch sets one.
    pub fn check(self, username: &str, hash: Option<String>) -> Result<CheckedPatch, AppError> {
        if let Some(password) = &self.password {
            check_password(username, password)?;
        }
        Ok(CheckedPatch {
            role: self.role,
            scope: self.scope.map(limits::scope).transpose()?,
            display_name: self
                .display_name
                .as_deref()
                .map(limits::display_name)
                .transpose()?,
            active: self.active,
            password_hash: hash,
        })
    }
}

/// Applies a checked change with its audit entry; 404 if there is no such user.
pub fn apply(
    store: &Store,
    username: &str,
    patch: &CheckedPatch,
    event: &AuditEvent,
) -> Result<Pending<UserRecord>, AppError> {
    let updated = store.update_user(
        username,
        |user| {
            // A scope is a set of places: the same places in another order change nothing.
            let places = |scope: &Option<Vec<String>>| {
                scope
                    .as_ref()
                    .map(|s| s.iter().cloned().collect::<std::collections::BTreeSet<_>>())
            };
            let before = (
                user.role,
                places(&user.scope),
                user.active,
                user.password_hash.clone(),
            );
            if let Some(role) = patch.role {
                user.role = role;
            }
            if let Some(scope) = &patch.scope {
                user.scope.clone_from(scope);
            }
            if let Some(name) = &patch.display_name {
                user.display_name.clone_from(name);
            }
            if let Some(active) = patch.active {
                user.active = active;
            }
            if let Some(hash) = &patch.password_hash {
                user.password_hash.clone_from(hash);
            }
            let after = (
                user.role,
                places(&user.scope),
                user.active,
                user.password_hash.clone(),
            );
            if before != after {
                user.token_version += 1;
            }
            user.updated_at = Timestamp::now();
        },
        event,
    )?;
    updated.ok_or(AppError::UserNotFound)
}

impl CheckedPatch {
    /// Only a new password.
    pub fn password(hash: String) -> Self {
        Self {
            role: None,
            scope: None,
            display_name: None,
            active: None,
            password_hash: Some(hash),
        }
    }

    /// Only disabling.
    pub fn disable() -> Self {
        Self {
            role: None,
            scope: None,
            display_name: None,
            active: Some(false),
            password_hash: None,
        }
    }
}

/// Where the generated first admin password is written.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// On a server with no users, creates `admin`: with `password` if given, else a generated one written
/// to `<data dir>/initial-admin-password` (mode 0600), whose path (never the password) is logged.
pub async fn bootstrap_admin(
    store: &Store,
    data_dir: &Path,
    password: Option<&str>,
) -> Result<(), BootstrapError> {
    if !store.has_no_users()? {
        return Ok(());
    }
    let (password, generated) = match password {
        Some(p) => (p.to_owned(), false),
        None => (tokens::new_password(), true),
    };
    password::check_rules("admin", &password)
        .map_err(|m| BootstrapError::Password(m.to_owned()))?;
    let hash = password::hash(&password).map_err(|e| BootstrapError::Password(e.to_string()))?;
    let now = Timestamp::now();
    let event = audit::by(
        &Principal::system(),
        AuditAction::UserCreated,
        audit::user_target("admin"),
    );
    let admin = UserRecord {
        username: "admin".into(),
        display_name: "Administrator".into(),
        role: Role::Admin,
        scope: None,
        active: true,
        password_hash: hash,
        token_version: 0,
        created_at: now,
        updated_at: now,
    };
    if let Some(created) = store.insert_user(&admin, &event)? {
        created.durable().await?;
    }
    if generated {
        let path = data_dir.join(INITIAL_PASSWORD_FILE);
        tokens::write_secret_file(&path, format!("{password}\n").as_bytes())?;
        tracing::warn!(path = %path.display(), "created user 'admin'; its password is in this file: sign in, change it, delete the file");
    } else {
        tracing::info!("created user 'admin' with the password from SURVEY_ADMIN_PASSWORD");
    }
    Ok(())
}

/// Why the first admin could not be created.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("SURVEY_ADMIN_PASSWORD: {0}")]
    Password(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the initial admin password: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_compared_in_lower_case() {
        assert_eq!(normalize_username("  Wei.XiuYing ").unwrap(), "wei.xiuying");
        for bad in ["a", "-wei", "wei xiuying", "韦秀英", &"w".repeat(33)] {
            assert!(normalize_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_patch_tells_scope_null_from_scope_absent() {
        let clear: UserPatch = serde_json::from_str(r#"{"scope": null}"#).unwrap();
        let keep: UserPatch = serde_json::from_str(r#"{"active": true}"#).unwrap();
        assert_eq!(clear.scope, Some(None));
        assert_eq!(keep.scope, None);
    }
}
