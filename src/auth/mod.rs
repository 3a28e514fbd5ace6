//! Who is asking and what they may do: passwords, tokens, sessions, roles. No HTTP types here;
//! the `AuthUser` extractor in `http/` turns a bearer token into a [`Principal`] through [`Auth`].

pub mod password;
pub mod roles;
mod sessions;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{OnceCell, Semaphore};

pub use roles::{Permission, Role};
use throttle::{Attempt, LoginThrottle};
use tokens::TokenKeys;

use crate::audit::{self, AuditAction};
use crate::error::AppError;
use crate::limits;
use crate::store::{AuditEvent, Store};

/// How long tokens live.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    /// Access tokens, seconds (default 15 minutes).
    pub access_secs: u64,
    /// Refresh tokens, seconds (default 30 days: phones stay offline for days).
    pub refresh_secs: u64,
    /// Seconds after an exchange during which presenting the spent refresh token again (a phone
    /// that lost the answer) gets the same new pair instead of ending the login (default 60).
    pub refresh_grace_secs: u64,
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
    session: String,
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
    /// The login (refresh-token family) of the access token used; `None` for the server itself.
    pub session: Option<String>,
}

impl Principal {
    /// The server itself, publishing the shipped forms at start-up.
    pub fn system() -> Self {
        Self {
            username: "system".into(),
            role: Role::Admin,
            scope: None,
            request_id: None,
            session: None,
        }
    }

    /// 403 unless the role allows `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// Whether a submission placed at `value` (its form's scope field) is inside this person's
    /// scope. Forms without a scope field (`value` is `None`) are county-wide; an empty place
    /// (only in records from before scope fields had to be non-empty) counts as none, so a list
    /// and a single read agree.
    pub fn covers(&self, value: Option<&str>) -> bool {
        match (&self.scope, value.filter(|v| !v.is_empty())) {
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

    /// The person a bearer token stands for, if it is valid now: signed by us, unexpired,
    /// issued for the user's current token version while the user is active, and from a login
    /// that has not been ended (logout, detected theft).
    pub fn authenticate(&self, store: &Store, token: &str) -> Result<Principal, AppError> {
        let verified = self.verify(token).ok_or(AppError::Unauthorized)?;
        let (user, revoked) = store.session_state(&verified.username, &verified.session)?;
        let user = user.ok_or(AppError::Unauthorized)?;
        if !user.active || user.token_version != verified.version || revoked {
            return Err(AppError::Unauthorized);
        }
        Ok(Principal {
            username: user.username,
            role: user.role,
            scope: user.scope,
            request_id: None,
            session: Some(verified.session),
        })
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
            session: claims.sid,
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
    /// for an unknown name and a wrong password. A name that breaks the username rules cannot
    /// belong to anyone: it is refused without hashing and without being tracked by name, and
    /// its audit entry keeps only its first 32 characters.
    pub async fn login(
        &self,
        store: &Store,
        username: &str,
        password: &str,
        address: IpAddr,
        request_id: Option<String>,
    ) -> Result<Session, AppError> {
        let well_formed = users::normalize_username(username).ok();
        let name = well_formed
            .clone()
            .unwrap_or_else(|| limits::cut_username(username.trim()));
        let event = |action| AuditEvent {
            actor: name.clone(),
            action,
            target: audit::user_target(&name),
            request_id: request_id.clone(),
        };
        let attempt = self.admit(store, well_formed.as_deref(), address)?;
        let user = match &well_formed {
            Some(name) => store.user(name)?,
            None => None,
        };
        let matches = match (&well_formed, &user) {
            (None, _) => false,
            (Some(_), Some(user)) => self.check_password(password, &user.password_hash).await?,
            (Some(_), None) => {
                let decoy = self.decoy_hash().await?.to_owned();
                self.check_password(password, &decoy).await?;
                false
            }
        };
        match user {
            Some(user) if matches && user.active => {
                self.succeeded(store, attempt, &user.username).await?;
                let login = event(AuditAction::Login);
                self.new_session(store, &user, tokens::new_family_id(), Some(&login))
                    .await
            }
            _ => {
                let failed = event(AuditAction::LoginFailed);
                self.failed(
                    store,
                    attempt,
                    well_formed.as_deref(),
                    address,
                    Some(&failed),
                )
                .await?;
                Err(AppError::InvalidCredentials)
            }
        }
    }

    /// Changes one's own password: the current one is checked (throttled like a login, per
    /// user and per address, before any hashing), every session ends, and a fresh one is
    /// returned so this phone stays signed in.
    pub async fn change_password(
        &self,
        store: &Store,
        me: &Principal,
        current: &str,
        new: &str,
        address: IpAddr,
    ) -> Result<Session, AppError> {
        let attempt = self.admit(store, Some(&me.username), address)?;
        let user = store.user(&me.username)?.ok_or(AppError::Unauthorized)?;
        if !self.check_password(current, &user.password_hash).await? {
            self.failed(store, attempt, Some(&me.username), address, None)
                .await?;
            return Err(AppError::invalid_field(
                "/current_password",
                "the current password is wrong",
            ));
        }
        self.succeeded(store, attempt, &me.username).await?;
        users::check_password(&me.username, new)?;
        let hash = self.hash_password(new).await?;
        let event = audit::by(
            me,
            AuditAction::UserUpdated,
            audit::user_target(&me.username),
        );
        let user = users::apply(
            store,
            &me.username,
            &users::CheckedPatch::password(hash),
            &event,
        )?
        .durable()
        .await?;
        self.new_session(store, &user, tokens::new_family_id(), None)
            .await
    }

    /// A throttle admission, counting the failures every node recorded, or 429 with how long
    /// to wait.
    fn admit(
        &self,
        store: &Store,
        name: Option<&str>,
        address: IpAddr,
    ) -> Result<Attempt<'_>, AppError> {
        let now_ms = crate::clock::unix_now_ms();
        let ages = |subject: &str| -> Result<Vec<Duration>, AppError> {
            Ok(store
                .login_failures(subject)?
                .into_iter()
                .map(|at| Duration::from_millis(now_ms.saturating_sub(at)))
                .collect())
        };
        let by_name = match name {
            Some(name) => Some((name, ages(&throttle::name_subject(name))?)),
            None => None,
        };
        let by_address = ages(&throttle::address_subject(address))?;
        let now = Instant::now();
        self.throttle.share(
            by_name
                .as_ref()
                .map(|(name, ages)| (*name, ages.as_slice())),
            (address, &by_address),
            now,
        );
        self.throttle
            .admit(name, address, now)
            .map_err(|wait| AppError::TooManyAttempts {
                retry_after_secs: wait.as_secs().max(1),
            })
    }

    /// Ends an attempt that failed: counted here and in the store (with `audit`, if any).
    async fn failed(
        &self,
        store: &Store,
        attempt: Attempt<'_>,
        name: Option<&str>,
        address: IpAddr,
        audit: Option<&AuditEvent>,
    ) -> Result<(), AppError> {
        attempt.failed(Instant::now());
        let mut subjects = vec![(
            throttle::address_subject(address),
            throttle::ADDRESS_WINDOW_MS,
        )];
        if let Some(name) = name {
            subjects.push((throttle::name_subject(name), throttle::NAME_WINDOW_MS));
        }
        store
            .record_login_failure(&subjects, crate::clock::unix_now_ms(), audit)?
            .durable()
            .await?;
        Ok(())
    }

    /// Ends an attempt that succeeded: the name's failures are forgiven, on every node.
    async fn succeeded(
        &self,
        store: &Store,
        attempt: Attempt<'_>,
        name: &str,
    ) -> Result<(), AppError> {
        attempt.succeeded();
        let subject = throttle::name_subject(name);
        if !store.login_failures(&subject)?.is_empty() {
            store.forgive_login_failures(&subject)?.durable().await?;
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

    /// Checks a password against a PHC hash, at most one per core at a time. A password longer
    /// than any that can be set cannot match, and is not hashed.
    async fn check_password(&self, password: &str, hash: &str) -> Result<bool, AppError> {
        if password.chars().count() > limits::PASSWORD.1 {
            return Ok(false);
        }
        let (password, hash) = (password.to_owned(), hash.to_owned());
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
}
