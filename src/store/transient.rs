//! Short-lived state every node must see alike, kept in one tree that no backup takes: recent
//! login failures (so sign-in throttling counts a county's failures, not one node's) and
//! one-time download links (so a link made on one node works on whichever node the proxy picks).
//!
//! Keys: `f` SEP subject → failure times (unix milliseconds, u64 BE each, oldest first);
//! `l` SEP SHA-256 of the link's secret → a [`DownloadLink`] (JSON); `w` SEP webhook id → who
//! sends its deliveries until when (`webhooks.rs`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::write::Pending;
use super::{AuditEvent, Store, StoreError, decode, encode, keys};

const TREE: &str = super::engine::TRANSIENT;

/// A download link not yet used.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DownloadLink {
    pub username: String,
    /// The download's path and query.
    pub path: String,
    /// The access token the link was asked for with, presented again when it is used.
    pub token: String,
    /// Unix seconds after which the link is void.
    pub expires_at: i64,
}

fn failures_key(subject: &str) -> Vec<u8> {
    let mut key = vec![b'f', keys::SEP];
    key.extend_from_slice(subject.as_bytes());
    key
}

fn link_key(secret: &str) -> Vec<u8> {
    let mut key = vec![b'l', keys::SEP];
    key.extend_from_slice(&Sha256::digest(secret.as_bytes()));
    key
}

fn times(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .filter_map(|chunk| chunk.try_into().ok().map(u64::from_be_bytes))
}

impl Store {
    /// When `subject` failed to sign in lately (unix milliseconds, oldest first), on any node.
    pub fn login_failures(&self, subject: &str) -> Result<Vec<u64>, StoreError> {
        Ok(self
            .transient
            .get(failures_key(subject))?
            .map(|bytes| times(&bytes).collect())
            .unwrap_or_default())
    }

    /// Records a failed sign-in at `at_ms` against each subject (a name, an address), keeping
    /// only failures younger than its window, with `audit` in the same write.
    pub fn record_login_failure(
        &self,
        subjects: &[(String, u64)],
        at_ms: u64,
        audit: Option<&AuditEvent>,
    ) -> Result<Pending<()>, StoreError> {
        self.commit_always(audit.map(std::slice::from_ref).unwrap_or(&[]), 0, |tx| {
            for (subject, window_ms) in subjects {
                let key = failures_key(subject);
                let mut kept: Vec<u8> = match tx.transient.get(&key)? {
                    Some(bytes) => times(&bytes)
                        .filter(|t| at_ms.saturating_sub(*t) < *window_ms)
                        .flat_map(u64::to_be_bytes)
                        .collect(),
                    None => Vec::new(),
                };
                kept.extend_from_slice(&at_ms.to_be_bytes());
                tx.transient.insert(&key, kept)?;
            }
            Ok(())
        })
    }

    /// Forgets `subject`'s failures (the right password was given).
    pub fn forgive_login_failures(&self, subject: &str) -> Result<Pending<()>, StoreError> {
        self.commit_always(&[], 0, |tx| {
            tx.transient.remove(failures_key(subject))?;
            Ok(())
        })
    }

    /// Unused, unexpired links of `username`, on every node.
    pub fn download_links_of(&self, username: &str, now: i64) -> Result<usize, StoreError> {
        let mut count = 0;
        for value in self.transient.scan_prefix([b'l', keys::SEP]).values() {
            let link: DownloadLink = decode(TREE, &value?)?;
            if link.username == username && link.expires_at > now {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Keeps a link under the hash of its secret (the secret itself is never stored).
    pub fn put_download_link(
        &self,
        secret: &str,
        link: &DownloadLink,
    ) -> Result<Pending<()>, StoreError> {
        let value = encode(TREE, link)?;
        self.commit_always(&[], 0, |tx| {
            tx.transient.insert(link_key(secret), value.as_slice())?;
            Ok(())
        })
    }

    /// The link of `secret`, removed in the same write: of two nodes redeeming it at once, one
    /// gets it.
    pub fn take_download_link(
        &self,
        secret: &str,
    ) -> Result<Pending<Option<DownloadLink>>, StoreError> {
        let key = link_key(secret);
        self.commit_always(&[], 0, |tx| {
            let Some(bytes) = tx.transient.get(&key)? else {
                return Ok(None);
            };
            tx.transient.remove(&key)?;
            Ok(Some(
                decode::<DownloadLink>(TREE, &bytes).map_err(super::write::broken)?,
            ))
        })
    }

    /// Removes failures older than `failure_window_ms` and expired links; how many entries went.
    pub fn sweep_transient(
        &self,
        now_ms: u64,
        failure_window_ms: u64,
    ) -> Result<Pending<usize>, StoreError> {
        let expired = |key: &[u8], value: &[u8]| match key.first() {
            Some(b'f') => times(value)
                .last()
                .is_none_or(|t| now_ms.saturating_sub(t) >= failure_window_ms),
            Some(b'l') => decode::<DownloadLink>(TREE, value)
                .map_or(true, |link| link.expires_at.max(0) as u64 * 1000 <= now_ms),
            Some(b'w') => super::webhooks::Lease::expired(value, now_ms),
            _ => false,
        };
        let mut stale = Vec::new();
        for entry in self.transient.iter() {
            let (key, value) = entry?;
            if expired(&key, &value) {
                stale.push(key);
            }
        }
        self.commit_always(&[], 0, |tx| {
            let mut removed = 0;
            for key in &stale {
                // A failure may have been added since the scan.
                if tx
                    .transient
                    .get(key)?
                    .is_some_and(|value| expired(key, &value))
                {
                    tx.transient.remove(key)?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_times_round_trip_and_a_ragged_tail_is_ignored() {
        let mut bytes: Vec<u8> = [5u64, 9].iter().flat_map(|t| t.to_be_bytes()).collect();
        bytes.push(1);
        assert_eq!(times(&bytes).collect::<Vec<_>>(), [5, 9]);
    }

    #[test]
    fn a_link_is_kept_under_a_hash_not_its_secret() {
        let key = link_key("secret-value");
        assert_eq!(key.len(), 2 + 32);
        assert!(!key.windows(6).any(|w| w == b"secret"));
    }
}
