//! Who is asking and what they may do: passwords, tokens, sessions, roles. No HTTP types here;
//! the `AuthUser` extractor in `http/` turns a bearer token into a [`Principal`] through [`Auth`].

pub mod password;
pub mod roles;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::{OnceCell, Semaphore};

pub use roles::{Permission, Role};
use throttle::LoginThrottle;
use tokens::TokenKeys;

use crate::audit;
use crate::error::AppError;
use crate::store::{AuditEvent, RefreshRecord, Store, UserRecord};

/// How long tokens live.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    /// Access tokens, seconds (default 15 minutes).
    pub access_secs: u64,
    /// Refresh tokens, seconds (default 30 days: phones stay offline for days).
    pub refresh_secs: u64,
}

/// The authentication service; one per process, in `AppState`.
pub struct Auth {
    keys: TokenKeys,
    lifetimes: Lifetimes,
    throttle: LoginThrottle,
    /// At most one password hash per core at once: each takes 19 MiB, so a login flood cannot eat the memory.
    hashing: Semaphore,
    /// Verified against when the username is unknown, so both failures take the same time.
    decoy_hash: OnceCell<String>,
    /// Tokens whose signature and claims were already checked, until they expire: a phone sends
    /// the same token hundreds of times, and an Ed25519 verification costs tens of microseconds.
    /// Keyed by the whole token, so only the very same bytes skip the check. A std lock: never held across `.await`.
    verified: Mutex<HashMap<String, Verified>>,
}

/// What a checked token says, kept while it is unexpired.
#[derive(Clone)]
struct Verified {
    username: String,
    version: u64,
    expires_at: u64,
}

/// Past this many cached tokens the cache starts over, so memory stays bounded.
const MAX_VERIFIED: usize = 10_000;

/// A signed-in person, as the handlers see them (read fresh from the store on every request).
#[derive(Clone, Debug)]
pub struct Principal {
    pub username: String,
    pub role: Role,
    /// Values of a form's scope field this person is limited to; `None` = everywhere.
    pub scope: Option<Vec<String>>,
    /// The request being served, for the audit log.
    pub request_id: Option<String>,
}

impl Principal {
    /// 403 unless the role allows `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// Whether a submission placed at `value` (its form's scope field) is inside this person's scope.
    /// Forms without a scope field (`value` is `None`) are county-wide.
    pub fn covers(&self, value: Option<&str>) -> bool {
        match (&self.scope, value) {
            (None, _) | (_, None) => true,
            (Some(scope), Some(value)) => scope.iter().any(|s| s == value),
        }
    }
}

/// What a successful login or refresh returns.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub user: users::UserView,
}

impl Auth {
    pub fn new(keys: TokenKeys, lifetimes: Lifetimes) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            keys,
            lifetimes,
            throttle: LoginThrottle::default(),
            hashing: Semaphore::new(cores),
            decoy_hash: OnceCell::new(),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The person a bearer token stands for, if it is valid now: signed by us, unexpired, and
    /// issued for the user's current token version while the user is active.
    pub fn authenticate(&self, store: &Store, token: &str) -> Result<Principal, AppError> {
        let verified = self.verify(token).ok_or(AppError::Unauthorized)?;
        let user = store
            .user(&verified.username)?
            .ok_or(AppError::Unauthorized)?;
        if !user.active || user.token_version != verified.version {
            return Err(AppError::Unauthorized);
        }
        principal(&user)
    }

    /// The token's claims if it is ours and unexpired, from the cache when this exact token was seen.
    fn verify(&self, token: &str) -> Option<Verified> {
        let now = crate::clock::unix_now() as u64;
        let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = cache.get(token) {
            return (hit.expires_at > now).then(|| hit.clone());
        }
        drop(cache);
        let claims = self.keys.verify(token)?;
        let verified = Verified {
            username: claims.sub,
            version: claims.ver,
            expires_at: claims.exp,
        };
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_VERIFIED {
            cache.retain(|_, v| v.expires_at > now);
            if cache.len() >= MAX_VERIFIED {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), verified.clone());
        Some(verified)
    }

    /// Username and password in, a session out; the same answer, in about the same time,
    /// for an unknown name and a wrong password.
    pub async fn login(
        &self,
        store: &Store,
        username: &str,
        password: &str,
        address: IpAddr,
        request_id: Option<String>,
    ) -> Result<Session, AppError> {
        let name = username.trim().to_lowercase();
        let event = |action| AuditEvent {
            actor: name.clone(),
            action,
            target: audit::user_target(&name),
            request_id: request_id.clone(),
        };
        self.throttle
            .check(&name, address, Instant::now())
            .map_err(|wait| AppError::TooManyAttempts {
                retry_after_secs: wait.as_secs().max(1),
            })?;
        let user = store.user(&name)?;
        let hash = match &user {
            Some(user) => user.password_hash.clone(),
            None => self.decoy_hash().await?.to_owned(),
        };
        let matches = self.verify_password(password, hash).await?;
        match user {
            Some(user) if matches && user.active => {
                self.throttle.succeeded(&name);
                let login = event(audit::LOGIN);
                self.new_session(store, &user, tokens::new_family_id(), Some(&login))
                    .await
            }
            _ => {
                self.throttle.failed(&name, Instant::now());
                store.record_audit(&event(audit::LOGIN_FAILED))?;
                store.wait_durable().await?;
                Err(AppError::InvalidCredentials)
            }
        }
    }

    /// Exchanges a refresh token for a new pair. A token used twice means it was copied:
    /// its whole family (every token since that login) is revoked.
    pub async fn refresh(&self, store: &Store, token: &str) -> Result<Session, AppError> {
        let hash = tokens::refresh_hash(token);
        let record = store.refresh(&hash)?.ok_or(AppError::InvalidRefreshToken)?;
        if store.family_revoked(&record.family)? {
            return Err(AppError::InvalidRefreshToken);
        }
        if record.used || !store.use_refresh(&hash, &record)? {
            tracing::warn!(user = %record.username, "a refresh token was used twice; revoking its family");
            store.revoke_family(&record.family, None)?;
            store.wait_durable().await?;
            return Err(AppError::InvalidRefreshToken);
        }
        let user = store
            .user(&record.username)?
            .ok_or(AppError::InvalidRefreshToken)?;
        let expired = record.expires_at < crate::clock::unix_now();
        if expired || !user.active || user.token_version != record.token_version {
            return Err(AppError::InvalidRefreshToken);
        }
        self.new_session(store, &user, record.family, None).await
    }

    /// Ends the login family of `token` if it belongs to `principal`; unknown tokens are ignored.
    pub async fn logout(
        &self,
        store: &Store,
        principal: &Principal,
        token: &str,
    ) -> Result<(), AppError> {
        if let Some(record) = store.refresh(&tokens::refresh_hash(token))? {
            if record.username == principal.username {
                let logout = audit::by(
                    principal,
                    audit::LOGOUT,
                    audit::user_target(&principal.username),
                );
                store.revoke_family(&record.family, Some(&logout))?;
                store.wait_durable().await?;
            }
        }
        Ok(())
    }

    /// Hashes a new password, at most one per core at a time.
    pub async fn hash_password(&self, password: &str) -> Result<String, AppError> {
        let password = password.to_owned();
        self.on_hashing_thread(move || password::hash(&password))
            .await?
            .map_err(|e| AppError::Internal(e.to_string()))
    }

    /// Checks a password against a PHC hash, at most one per core at a time.
    pub async fn verify_password(&self, password: &str, hash: String) -> Result<bool, AppError> {
        let password = password.to_owned();
        self.on_hashing_thread(move || password::verify(&password, &hash))
            .await
    }

    /// Runs argon2 work on a blocking thread once a per-core permit is free.
    async fn on_hashing_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let internal = |e: &dyn std::fmt::Display| AppError::Internal(e.to_string());
        let _permit = self.hashing.acquire().await.map_err(|e| internal(&e))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| internal(&e))
    }

    async fn decoy_hash(&self) -> Result<&str, AppError> {
        self.decoy_hash
            .get_or_try_init(|| async {
                let unguessable = tokens::new_password();
                self.hash_password(&unguessable).await
            })
            .await
            .map(String::as_str)
    }

    /// Issues an access token and a new refresh token in `family`, durably, recording `audit`
    /// (a login) in the same write.
    pub async fn new_session(
        &self,
        store: &Store,
        user: &UserRecord,
        family: String,
        audit: Option<&AuditEvent>,
    ) -> Result<Session, AppError> {
        let now = crate::clock::unix_now();
        let access_token = self
            .keys
            .issue(
                &user.username,
                &user.role,
                user.token_version,
                now as u64,
                self.lifetimes.access_secs,
            )
            .map_err(AppError::Internal)?;
        let refresh_token = tokens::new_refresh_token();
        let record = RefreshRecord {
            username: user.username.clone(),
            family,
            token_version: user.token_version,
            expires_at: now + self.lifetimes.refresh_secs as i64,
            used: false,
        };
        store.insert_refresh(&tokens::refresh_hash(&refresh_token), &record, audit)?;
        store.wait_durable().await?;
        Ok(Session {
            access_token,
            token_type: "Bearer",
            expires_in: self.lifetimes.access_secs,
            refresh_token,
            user: users::UserView::of(user),
        })
    }
}

fn principal(user: &UserRecord) -> Result<Principal, AppError> {
    let role = Role::parse(&user.role).ok_or_else(|| {
        AppError::Internal(format!(
            "user {} has unknown role {}",
            user.username, user.role
        ))
    })?;
    Ok(Principal {
        username: user.username.clone(),
        role,
        scope: user.scope.clone(),
        request_id: None,
    })
}
