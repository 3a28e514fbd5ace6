//! Sessions: a new login's tokens, refresh-token rotation with its retry grace, and logout.

use super::tokens::{self, Grant};
use super::{Auth, Principal, Session, users};
use crate::audit::{self, AuditAction};
use crate::error::AppError;
use crate::store::{AuditEvent, RefreshRecord, Store, UserRecord};

impl Auth {
    /// Exchanges a refresh token for a new pair. A spent token presented again within the
    /// grace period, while its successor is unused, gets that same pair again (the phone lost
    /// the answer); any other reuse means it was copied, and its whole family is revoked.
    pub async fn refresh(&self, store: &Store, token: &str) -> Result<Session, AppError> {
        let hash = tokens::refresh_hash(token);
        let record = store.refresh(&hash)?.ok_or(AppError::InvalidRefreshToken)?;
        if store.family_revoked(&record.family)? {
            return Err(AppError::InvalidRefreshToken);
        }
        let user = store
            .user(&record.username)?
            .ok_or(AppError::InvalidRefreshToken)?;
        let expired = record.expires_at < crate::clock::unix_now();
        if expired || !user.active || user.token_version != record.token_version {
            return Err(AppError::InvalidRefreshToken);
        }
        let successor = self.keys.successor(token);
        let successor_hash = tokens::refresh_hash(&successor);
        if !record.used {
            let now = crate::clock::unix_now();
            let next = self.refresh_record(&user, &record.family, now);
            if let Some(rotated) = store.rotate_refresh(&hash, now, &successor_hash, &next)? {
                rotated.durable().await?;
                return self.session(&user, &record.family, now, successor);
            }
        }
        // Spent (now or by a concurrent request): a retry, or a copy?
        let spent = store.refresh(&hash)?.ok_or(AppError::InvalidRefreshToken)?;
        if let Some(rotated_at) = self.retry_window(&spent) {
            let next = store.refresh(&successor_hash)?;
            if next.is_some_and(|next| !next.used) {
                // The exchange that made it may still be on its way to disk.
                store.after_earlier_writes(()).durable().await?;
                return self.session(&user, &record.family, rotated_at, successor);
            }
        }
        tracing::warn!(user = %record.username, "a spent refresh token was used again; revoking its family");
        store.revoke_family(&record.family, None)?.durable().await?;
        Err(AppError::InvalidRefreshToken)
    }

    /// When a spent token was exchanged, if that was within the grace period.
    fn retry_window(&self, spent: &RefreshRecord) -> Option<i64> {
        let rotated_at = spent.rotated_at?;
        let age = crate::clock::unix_now() - rotated_at;
        // Whole seconds: 0 turns the grace off, 60 allows retries up to 59 s later.
        (0..self.lifetimes.refresh_grace_secs as i64)
            .contains(&age)
            .then_some(rotated_at)
    }

    /// Ends the login of the access token used, and the login of `token` if it is another of
    /// the same person's: their access and refresh tokens stop working at once. A refresh token
    /// that is unknown or someone else's is ignored.
    pub async fn logout(
        &self,
        store: &Store,
        principal: &Principal,
        token: &str,
    ) -> Result<(), AppError> {
        let mut families: Vec<String> = principal.session.iter().cloned().collect();
        if let Some(record) = store.refresh(&tokens::refresh_hash(token))?
            && record.username == principal.username
            && !families.contains(&record.family)
        {
            families.push(record.family);
        }
        let logout = audit::by(
            principal,
            AuditAction::Logout,
            audit::user_target(&principal.username),
        );
        store
            .revoke_families(&families, Some(&logout))?
            .durable()
            .await?;
        Ok(())
    }

    fn refresh_record(&self, user: &UserRecord, family: &str, now: i64) -> RefreshRecord {
        RefreshRecord {
            username: user.username.clone(),
            family: family.to_owned(),
            token_version: user.token_version,
            expires_at: now + self.lifetimes.refresh_secs as i64,
            used: false,
            rotated_at: None,
        }
    }

    /// The answer for `refresh_token` in `family`, with an access token issued at `issued_at`.
    fn session(
        &self,
        user: &UserRecord,
        family: &str,
        issued_at: i64,
        refresh_token: String,
    ) -> Result<Session, AppError> {
        let grant = Grant {
            username: &user.username,
            role: user.role,
            version: user.token_version,
            session: family,
            issued_at: u64::try_from(issued_at).unwrap_or_default(),
        };
        let access_token = self
            .keys
            .issue(&grant, self.lifetimes.access_secs)
            .map_err(AppError::Internal)?;
        Ok(Session {
            access_token,
            token_type: "Bearer",
            expires_in: self.lifetimes.access_secs,
            refresh_token,
            user: users::UserView::of(user),
        })
    }

    /// A new login for `user` in `family`, durably, recording `audit` (a login) in the same write.
    pub async fn new_session(
        &self,
        store: &Store,
        user: &UserRecord,
        family: String,
        audit: Option<&AuditEvent>,
    ) -> Result<Session, AppError> {
        let now = crate::clock::unix_now();
        let refresh_token = tokens::new_refresh_token();
        let record = self.refresh_record(user, &family, now);
        store
            .insert_refresh(&tokens::refresh_hash(&refresh_token), &record, audit)?
            .durable()
            .await?;
        self.session(user, &family, now, refresh_token)
    }
}
