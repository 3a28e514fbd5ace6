//! People and their sessions: user records, refresh tokens (by hash), revoked token families.

use serde::{Deserialize, Serialize};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{AuditEvent, Store, StoreError, decode, encode, storage};

const USERS: &str = "username_user";
const REFRESH: &str = "tokenhash_refresh";

/// A person who signs in, as stored. The key is the lower-cased username.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRecord {
    /// Lower-case, unique; what people type to sign in.
    pub username: String,
    /// The name shown in lists and on the phone.
    pub display_name: String,
    /// One of the role codes in `auth::Role`.
    pub role: String,
    /// Values of a form's scope field (townships) this user is limited to; `None` = everywhere.
    pub scope: Option<Vec<String>>,
    /// Disabled users cannot sign in and their tokens stop working at once.
    pub active: bool,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Bumped on every change that must end existing sessions; tokens carry the version they were issued for.
    pub token_version: u64,
    /// RFC 3339 times of creation and last change.
    pub created_at: String,
    pub updated_at: String,
}

/// A refresh token, stored under the SHA-256 of the token so a copy of the database cannot sign in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// Whose session this is.
    pub username: String,
    /// The login this token descends from; reuse of a rotated token revokes the whole family.
    pub family: String,
    /// The user's `token_version` when issued; a later change of the user invalidates it.
    pub token_version: u64,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
    /// Set when it has been exchanged for a new pair; a second use is theft.
    pub used: bool,
}

impl Store {
    /// One user by lower-cased username.
    pub fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.users
            .get(username.as_bytes())?
            .map(|bytes| decode(USERS, &bytes))
            .transpose()
    }

    /// Every user, by username.
    pub fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.users
            .iter()
            .values()
            .map(|v| decode(USERS, &v?))
            .collect()
    }

    /// Whether nobody has been created yet (first start).
    pub fn has_no_users(&self) -> bool {
        self.users.is_empty()
    }

    /// Creates a user with its audit entry; `false` if the username is taken (nothing is written then).
    pub fn insert_user(&self, user: &UserRecord, audit: &AuditEvent) -> Result<bool, StoreError> {
        let bytes = encode(USERS, user)?;
        let _order = self.write_order();
        let entry = self.prepare_audit(audit)?;
        let outcome =
            (&self.users, &self.audit, &self.audit_index).transaction(|(users, log, index)| {
                if users.get(user.username.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                users.insert(user.username.as_bytes(), bytes.as_slice())?;
                entry.write(log, index)
            });
        match outcome {
            Ok(()) => Ok(true),
            Err(TransactionError::Abort(())) => Ok(false),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Applies `change` to a user atomically, with its audit entry.
    pub fn update_user(
        &self,
        username: &str,
        change: impl Fn(&mut UserRecord),
        audit: &AuditEvent,
    ) -> Result<Option<UserRecord>, StoreError> {
        let _order = self.write_order();
        let entry = self.prepare_audit(audit)?;
        let outcome =
            (&self.users, &self.audit, &self.audit_index).transaction(|(users, log, index)| {
                let Some(old) = users.get(username.as_bytes())? else {
                    return Err(ConflictableTransactionError::Abort(None));
                };
                let mut user: UserRecord = decode(USERS, &old)
                    .map_err(|e| ConflictableTransactionError::Abort(Some(e)))?;
                change(&mut user);
                let new = encode(USERS, &user)
                    .map_err(|e| ConflictableTransactionError::Abort(Some(e)))?;
                users.insert(username.as_bytes(), new)?;
                entry.write(log, index)?;
                Ok(user)
            });
        match outcome {
            Ok(user) => Ok(Some(user)),
            Err(TransactionError::Abort(None)) => Ok(None),
            Err(TransactionError::Abort(Some(e))) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Stores a new refresh token under its hash, with the audit entry of the login that made it, if any.
    pub fn insert_refresh(
        &self,
        hash: &[u8],
        record: &RefreshRecord,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        let bytes = encode(REFRESH, record)?;
        let Some(audit) = audit else {
            self.refresh_tokens.insert(hash, bytes)?;
            return Ok(());
        };
        let _order = self.write_order();
        let entry = self.prepare_audit(audit)?;
        (&self.refresh_tokens, &self.audit, &self.audit_index)
            .transaction(|(tokens, log, index)| {
                tokens.insert(hash, bytes.as_slice())?;
                entry.write::<()>(log, index)
            })
            .map_err(storage)
    }

    /// A refresh token by hash.
    pub fn refresh(&self, hash: &[u8]) -> Result<Option<RefreshRecord>, StoreError> {
        self.refresh_tokens
            .get(hash)?
            .map(|bytes| decode(REFRESH, &bytes))
            .transpose()
    }

    /// Marks a token used; `false` if it already was (by a concurrent request: treat as reuse).
    pub fn use_refresh(&self, hash: &[u8], record: &RefreshRecord) -> Result<bool, StoreError> {
        let unused = encode(REFRESH, record)?;
        let used = encode(
            REFRESH,
            &RefreshRecord {
                used: true,
                ..record.clone()
            },
        )?;
        Ok(self
            .refresh_tokens
            .compare_and_swap(hash, Some(unused), Some(used))?
            .is_ok())
    }

    /// Deletes refresh tokens that expired before `now` (Unix seconds); returns how many.
    pub fn sweep_expired_refresh(&self, now: i64) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in self.refresh_tokens.iter() {
            let (hash, bytes) = entry?;
            let record: RefreshRecord = decode(REFRESH, &bytes)?;
            if record.expires_at < now {
                self.refresh_tokens.remove(hash)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Revokes every token of a login family, with the audit entry of a logout, if it is one.
    pub fn revoke_family(
        &self,
        family: &str,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        let at = crate::clock::now_rfc3339();
        let Some(audit) = audit else {
            self.revoked_families
                .insert(family.as_bytes(), at.as_bytes())?;
            return Ok(());
        };
        let _order = self.write_order();
        let entry = self.prepare_audit(audit)?;
        (&self.revoked_families, &self.audit, &self.audit_index)
            .transaction(|(families, log, index)| {
                families.insert(family.as_bytes(), at.as_bytes())?;
                entry.write::<()>(log, index)
            })
            .map_err(storage)
    }

    /// Whether a family was revoked (logout or detected reuse).
    pub fn family_revoked(&self, family: &str) -> Result<bool, StoreError> {
        Ok(self.revoked_families.contains_key(family.as_bytes())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_at: i64) -> RefreshRecord {
        RefreshRecord {
            username: "wei".into(),
            family: "f".into(),
            token_version: 0,
            expires_at,
            used: false,
        }
    }

    #[test]
    fn only_expired_refresh_tokens_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.insert_refresh(b"old", &token(10), None).unwrap();
        store.insert_refresh(b"new", &token(30), None).unwrap();

        assert_eq!(store.sweep_expired_refresh(20).unwrap(), 1);

        assert!(store.refresh(b"old").unwrap().is_none());
        assert!(store.refresh(b"new").unwrap().is_some());
    }

    #[test]
    fn a_refresh_token_can_be_used_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let record = token(30);
        store.insert_refresh(b"t", &record, None).unwrap();

        assert!(store.use_refresh(b"t", &record).unwrap());
        assert!(!store.use_refresh(b"t", &record).unwrap());
        assert!(store.refresh(b"t").unwrap().unwrap().used);
    }
}
