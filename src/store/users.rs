//! People and their sessions: user records, refresh tokens (by hash), revoked token families.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::write::{broken, refuse};
use super::{AuditEvent, Pending, Store, StoreError, decode, encode};
use crate::auth::Role;
use crate::clock::Timestamp;

const USERS: &str = "username_user";
const REFRESH: &str = "tokenhash_refresh";

/// A person who signs in, as stored. The key is the lower-cased username.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRecord {
    /// Lower-case, unique; what people type to sign in.
    pub username: String,
    /// The name shown in lists and on the phone.
    pub display_name: String,
    pub role: Role,
    /// Values of a form's scope field (townships) this user is limited to; `None` = everywhere.
    pub scope: Option<Vec<String>>,
    /// Disabled users cannot sign in and their tokens stop working at once.
    pub active: bool,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Bumped on every change that must end existing sessions; tokens carry the version they were issued for.
    pub token_version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
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
    /// Set when it has been exchanged for a new pair.
    pub used: bool,
    /// Unix seconds of that exchange: the successor's issue time, which a retry within the
    /// grace period gets again (absent in tokens rotated before the grace period existed).
    #[serde(default)]
    pub rotated_at: Option<i64>,
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
    pub fn has_no_users(&self) -> Result<bool, StoreError> {
        self.users.is_empty()
    }

    /// Creates a user with its audit entry; `None` if the username is taken (nothing written).
    pub fn insert_user(
        &self,
        user: &UserRecord,
        audit: &AuditEvent,
    ) -> Result<Option<Pending<()>>, StoreError> {
        let bytes = encode(USERS, user)?;
        let outcome = self.commit(std::slice::from_ref(audit), 0, |tx| {
            if tx.users.get(user.username.as_bytes())?.is_some() {
                return refuse(());
            }
            tx.users
                .insert(user.username.as_bytes(), bytes.as_slice())?;
            Ok(())
        })?;
        self.sessions_changed();
        Ok(outcome.ok())
    }

    /// Applies `change` to a user atomically, with its audit entry; `None` if there is no such user.
    pub fn update_user(
        &self,
        username: &str,
        change: impl Fn(&mut UserRecord),
        audit: &AuditEvent,
    ) -> Result<Option<Pending<UserRecord>>, StoreError> {
        let outcome = self.commit(std::slice::from_ref(audit), 0, |tx| {
            let Some(old) = tx.users.get(username.as_bytes())? else {
                return refuse(());
            };
            let mut user: UserRecord = decode(USERS, &old).map_err(broken)?;
            change(&mut user);
            let new = encode(USERS, &user).map_err(broken)?;
            tx.users.insert(username.as_bytes(), new)?;
            Ok(user)
        })?;
        self.sessions_changed();
        Ok(outcome.ok())
    }

    /// Stores a new refresh token under its hash, with the audit entry of the login that made it, if any.
    pub fn insert_refresh(
        &self,
        hash: &[u8],
        record: &RefreshRecord,
        audit: Option<&AuditEvent>,
    ) -> Result<Pending<()>, StoreError> {
        let bytes = encode(REFRESH, record)?;
        self.commit_always(
            audit.map(std::slice::from_ref).unwrap_or_default(),
            0,
            |tx| {
                tx.refresh_tokens.insert(hash, bytes.as_slice())?;
                Ok(())
            },
        )
    }

    /// Exchanges the unused token at `old` for its successor in one write: `old` is marked used
    /// at `rotated_at` and `successor` stored under `new`. `None` when `old` is gone or was
    /// already used (a concurrent exchange won).
    pub fn rotate_refresh(
        &self,
        old: &[u8],
        rotated_at: i64,
        new: &[u8],
        successor: &RefreshRecord,
    ) -> Result<Option<Pending<()>>, StoreError> {
        let successor = encode(REFRESH, successor)?;
        let outcome = self.commit(&[], 0, |tx| {
            let Some(bytes) = tx.refresh_tokens.get(old)? else {
                return refuse(());
            };
            let mut record: RefreshRecord = decode(REFRESH, &bytes).map_err(broken)?;
            if record.used {
                return refuse(());
            }
            record.used = true;
            record.rotated_at = Some(rotated_at);
            let spent = encode(REFRESH, &record).map_err(broken)?;
            tx.refresh_tokens.insert(old, spent)?;
            tx.refresh_tokens.insert(new, successor.as_slice())?;
            Ok(())
        })?;
        Ok(outcome.ok())
    }

    /// A refresh token by hash.
    pub fn refresh(&self, hash: &[u8]) -> Result<Option<RefreshRecord>, StoreError> {
        self.refresh_tokens
            .get(hash)?
            .map(|bytes| decode(REFRESH, &bytes))
            .transpose()
    }

    /// Deletes refresh tokens that expired before `now` (Unix seconds); how many.
    pub fn sweep_expired_refresh(&self, now: i64) -> Result<Pending<usize>, StoreError> {
        let mut expired = Vec::new();
        for entry in self.refresh_tokens.iter() {
            let (hash, bytes) = entry?;
            let record: RefreshRecord = decode(REFRESH, &bytes)?;
            if record.expires_at < now {
                expired.push(hash);
            }
        }
        self.commit_always(&[], 0, |tx| {
            for hash in &expired {
                tx.refresh_tokens.remove(hash)?;
            }
            Ok(expired.len())
        })
    }

    /// Revokes every token of a login family, with the audit entry of a logout, if it is one.
    pub fn revoke_family(
        &self,
        family: &str,
        audit: Option<&AuditEvent>,
    ) -> Result<Pending<()>, StoreError> {
        self.revoke_families(&[family], audit)
    }

    /// Revokes several login families in one write.
    pub fn revoke_families(
        &self,
        families: &[impl AsRef<str>],
        audit: Option<&AuditEvent>,
    ) -> Result<Pending<()>, StoreError> {
        let at = Timestamp::now().to_string();
        let audit = audit.map(std::slice::from_ref).unwrap_or_default();
        let revoked = self.commit_always(audit, 0, |tx| {
            for family in families {
                tx.revoked_families
                    .insert(family.as_ref().as_bytes(), at.as_bytes())?;
            }
            Ok(())
        });
        self.sessions_changed();
        revoked
    }

    /// Whether a family was revoked (logout or detected reuse).
    pub fn family_revoked(&self, family: &str) -> Result<bool, StoreError> {
        self.revoked_families.contains_key(family.as_bytes())
    }

    /// What every request's token check reads: the user, and whether the login was revoked.
    /// With PostgreSQL that is two round trips per request, so it is kept for at most
    /// [`SESSION_CACHE_FOR`]: a change made on another node takes effect here within that
    /// (the promise is a second), one made through this store at once.
    pub fn session_state(
        &self,
        username: &str,
        family: &str,
    ) -> Result<(Option<UserRecord>, bool), StoreError> {
        if !matches!(self.engine, super::Engine::Postgres(_)) {
            return Ok((self.user(username)?, self.family_revoked(family)?));
        }
        let epoch = self.sessions.epoch.load(Ordering::Acquire);
        let key = (username.to_owned(), family.to_owned());
        if let Some(hit) = self.sessions.get(&key, epoch) {
            return Ok(hit);
        }
        // Its age counts from before the reads: a slow read must not stretch it.
        let read_at = Instant::now();
        let state = (self.user(username)?, self.family_revoked(family)?);
        self.sessions.put(key, epoch, read_at, state.clone());
        Ok(state)
    }

    /// A user or a login changed through this store: cached session states are stale.
    fn sessions_changed(&self) {
        self.sessions.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// How long a session state read from a shared database is trusted.
pub const SESSION_CACHE_FOR: Duration = Duration::from_millis(500);
/// Past this many cached session states the cache starts over.
const MOST_SESSIONS: usize = 10_000;

type SessionKey = (String, String);
type SessionState = (Option<UserRecord>, bool);

/// Session states recently read, each with when and at which epoch (see
/// [`Store::session_state`]).
#[derive(Default)]
pub(super) struct SessionCache {
    epoch: AtomicU64,
    states: Mutex<HashMap<SessionKey, (Instant, u64, SessionState)>>,
}

impl SessionCache {
    fn get(&self, key: &SessionKey, epoch: u64) -> Option<SessionState> {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let (at, seen, state) = states.get(key)?;
        (*seen == epoch && at.elapsed() < SESSION_CACHE_FOR).then(|| state.clone())
    }

    fn put(&self, key: SessionKey, epoch: u64, read_at: Instant, state: SessionState) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        if states.len() >= MOST_SESSIONS {
            states.clear();
        }
        states.insert(key, (read_at, epoch, state));
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
            rotated_at: None,
        }
    }

    #[tokio::test]
    async fn only_expired_refresh_tokens_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let _ = store.insert_refresh(b"old", &token(10), None).unwrap();
        let _ = store.insert_refresh(b"new", &token(30), None).unwrap();

        let swept = store.sweep_expired_refresh(20).unwrap().durable().await;

        assert_eq!(swept.unwrap(), 1);
        assert!(store.refresh(b"old").unwrap().is_none());
        assert!(store.refresh(b"new").unwrap().is_some());
    }

    #[tokio::test]
    async fn a_refresh_token_is_exchanged_once_for_its_successor() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let _ = store.insert_refresh(b"t", &token(30), None).unwrap();

        let first = store.rotate_refresh(b"t", 5, b"u", &token(40)).unwrap();
        let second = store.rotate_refresh(b"t", 6, b"v", &token(40)).unwrap();

        first.expect("the first exchange").durable().await.unwrap();
        assert!(second.is_none(), "a used token is not exchanged again");
        let spent = store.refresh(b"t").unwrap().unwrap();
        assert_eq!((spent.used, spent.rotated_at), (true, Some(5)));
        assert!(store.refresh(b"u").unwrap().is_some());
        assert!(store.refresh(b"v").unwrap().is_none());
    }
}
