//! Webhooks: each registration with its delivery progress (a cursor into the audit log and the
//! delivery under way), each delivery's attempts, and the sender's lease.
//!
//! Registrations and deliveries are entries of `meta` (a county has a few webhooks: a tree of
//! their own would be staged by every transaction, submissions' included); the lease is in the
//! transient tree (`w` SEP webhook id → holder and expiry), as several nodes must see it alike and
//! losing it only lets another node take over.
//!
//! Keys: `webhook` SEP id (16 bytes) → [`StoredWebhook`]; `webhookdelivery` SEP id SEP log
//! number (u64 BE) → [`StoredDelivery`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::engine::IVec;
use super::write::{Pending, refuse};
use super::{AuditEvent, Store, StoreError, decode, encode, keys};
use crate::clock::Timestamp;

const TREE: &str = "meta";
/// Where leases are.
const LEASES: &str = super::engine::TRANSIENT;
const WEBHOOK: &[u8] = b"webhook";
const DELIVERY: &[u8] = b"webhookdelivery";

/// A registered webhook, with where its deliveries have got to.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredWebhook {
    pub id: Uuid,
    pub url: String,
    /// `submission.created`, ... (what it was registered for).
    pub events: Vec<String>,
    /// Only these forms' changes; `None` for every form.
    pub forms: Option<Vec<String>>,
    /// The HMAC key of its signatures; never shown again after registration.
    pub secret: String,
    pub active: bool,
    pub paused_reason: Option<String>,
    pub created_at: Timestamp,
    pub created_by: String,
    /// Every change up to this audit log number is delivered (or given up on), or not for it.
    pub cursor: u64,
    /// Failed attempts in a row, over deliveries (50 pause it).
    pub failures: u32,
    /// The delivery under way, if one failed and waits to be tried again.
    pub pending: Option<PendingDelivery>,
}

/// Everything but the secret: a webhook may be logged or printed in a test's failure.
impl std::fmt::Debug for StoredWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredWebhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("forms", &self.forms)
            .field("active", &self.active)
            .field("cursor", &self.cursor)
            .field("failures", &self.failures)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

/// A delivery that has failed and will be tried again.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingDelivery {
    /// Its change's audit log number.
    pub seq: u64,
    pub attempts: u32,
    /// Unix milliseconds of the first attempt (a delivery is given up after 24 hours).
    pub first_at_ms: u64,
    /// Unix milliseconds before which it is not tried again.
    pub next_at_ms: u64,
}

/// One delivery and its attempts, for `GET /api/v1/webhooks/{id}/deliveries`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredDelivery {
    pub seq: u64,
    pub delivery_id: String,
    pub event: String,
    pub submission_id: Uuid,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// The latest attempts, oldest first (at most `MAX_ATTEMPTS_KEPT`).
    pub attempts: Vec<Attempt>,
}

/// Delivery records removed in one write.
const DELETE_BATCH: usize = 500;

/// The attempts a delivery's record keeps (the first and the latest ones).
pub const MAX_ATTEMPTS_KEPT: usize = 20;

/// One try at sending a delivery.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attempt {
    pub at: Timestamp,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it did not count: a status other than 2xx, a timeout, a refused address, ...
    pub error: Option<String>,
}

fn webhook_key(id: Uuid) -> Vec<u8> {
    let mut key = WEBHOOK.to_vec();
    key.push(keys::SEP);
    key.extend_from_slice(id.as_bytes());
    key
}

fn delivery_prefix(id: Uuid) -> Vec<u8> {
    let mut key = DELIVERY.to_vec();
    key.push(keys::SEP);
    key.extend_from_slice(id.as_bytes());
    key.push(keys::SEP);
    key
}

fn delivery_key(id: Uuid, seq: u64) -> Vec<u8> {
    let mut key = delivery_prefix(id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn lease_key(id: Uuid) -> Vec<u8> {
    let mut key = vec![b'w', keys::SEP];
    key.extend_from_slice(id.as_bytes());
    key
}

/// Who sends a webhook's deliveries, until when.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Lease {
    holder: Uuid,
    until_ms: u64,
}

impl Lease {
    pub(super) fn expired(bytes: &[u8], now_ms: u64) -> bool {
        decode::<Lease>(LEASES, bytes).map_or(true, |l| l.until_ms <= now_ms)
    }

    /// Whether the stored lease `bytes` is another node's and still runs (an unreadable one
    /// holds nobody back).
    fn held_by_other(bytes: &[u8], holder: Uuid, now_ms: u64) -> bool {
        decode::<Lease>(LEASES, bytes).is_ok_and(|l| l.holder != holder && l.until_ms > now_ms)
    }
}

impl Store {
    /// Registers a webhook, with its audit entry.
    pub fn insert_webhook(
        &self,
        webhook: &StoredWebhook,
        audit: &AuditEvent,
    ) -> Result<Pending<()>, StoreError> {
        let bytes = encode(TREE, webhook)?;
        let key = webhook_key(webhook.id);
        self.commit_always(std::slice::from_ref(audit), 0, |tx| {
            tx.meta.insert(&key, bytes.as_slice())?;
            Ok(())
        })
    }

    /// Every webhook, in id order.
    pub fn webhooks(&self) -> Result<Vec<StoredWebhook>, StoreError> {
        let mut prefix = WEBHOOK.to_vec();
        prefix.push(keys::SEP);
        self.meta
            .scan_prefix(&prefix)
            .values()
            .map(|value| decode(TREE, &value?))
            .collect()
    }

    pub fn webhook(&self, id: Uuid) -> Result<Option<StoredWebhook>, StoreError> {
        self.meta
            .get(webhook_key(id))?
            .map(|bytes| decode(TREE, &bytes))
            .transpose()
    }

    /// Changes a webhook as `change` says (which may refuse, writing nothing), with `audit`
    /// entries and, if given, a delivery's record, in one transaction. `None`: no such webhook.
    pub fn change_webhook<R>(
        &self,
        id: Uuid,
        change: impl Fn(&mut StoredWebhook) -> Result<(), R>,
        delivery: Option<&StoredDelivery>,
        audit: &[AuditEvent],
    ) -> Result<Option<Result<Pending<StoredWebhook>, R>>, StoreError> {
        let key = webhook_key(id);
        let delivery = delivery
            .map(|d| Ok::<_, StoreError>((delivery_key(id, d.seq), encode(TREE, d)?)))
            .transpose()?;
        let outcome = self.commit(audit, 0, |tx| {
            let Some(bytes) = tx.meta.get(&key)? else {
                return refuse(None);
            };
            let mut webhook: StoredWebhook = decode(TREE, &bytes).map_err(super::write::broken)?;
            if let Err(reason) = change(&mut webhook) {
                return refuse(Some(reason));
            }
            tx.meta
                .insert(&key, encode(TREE, &webhook).map_err(super::write::broken)?)?;
            if let Some((delivery_key, bytes)) = &delivery {
                tx.meta.insert(delivery_key, bytes.as_slice())?;
            }
            Ok(webhook)
        })?;
        Ok(match outcome {
            Ok(pending) => Some(Ok(pending)),
            Err(Some(reason)) => Some(Err(reason)),
            Err(None) => None,
        })
    }

    /// Removes a webhook (its deliveries' records go after it), with its audit entry; false if
    /// there was none.
    pub fn delete_webhook(
        &self,
        id: Uuid,
        audit: &AuditEvent,
    ) -> Result<Pending<bool>, StoreError> {
        let key = webhook_key(id);
        let deliveries: Vec<_> = self
            .meta
            .scan_prefix(delivery_prefix(id))
            .keys()
            .collect::<Result<_, _>>()?;
        let deleted = self.commit_always(std::slice::from_ref(audit), 0, |tx| {
            if tx.meta.get(&key)?.is_none() {
                return Ok(false);
            }
            tx.meta.remove(&key)?;
            Ok(true)
        })?;
        self.remove_in_batches(&deliveries)?;
        Ok(deleted)
    }

    /// Removes `meta` entries a batch per write: a long history must not hold the write path.
    /// Cleaning up: nobody waits for these on disk.
    fn remove_in_batches(&self, keys: &[IVec]) -> Result<(), StoreError> {
        for batch in keys.chunks(DELETE_BATCH) {
            let _ = self.commit_always(&[], 0, |tx| {
                for key in batch {
                    tx.meta.remove(key)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Drops a webhook's oldest delivery records beyond the newest `keep`.
    pub fn prune_deliveries(&self, id: Uuid, keep: usize) -> Result<(), StoreError> {
        let all: Vec<_> = self
            .meta
            .scan_prefix(delivery_prefix(id))
            .keys()
            .collect::<Result<_, _>>()?;
        let extra = all.len().saturating_sub(keep);
        self.remove_in_batches(&all[..extra])
    }

    /// A webhook's deliveries, newest first, at most `limit`.
    pub fn deliveries(&self, id: Uuid, limit: usize) -> Result<Vec<StoredDelivery>, StoreError> {
        let mut all: Vec<StoredDelivery> = self
            .meta
            .scan_prefix(delivery_prefix(id))
            .values()
            .map(|value| decode(TREE, &value?))
            .collect::<Result<_, _>>()?;
        all.reverse();
        all.truncate(limit);
        Ok(all)
    }

    pub fn delivery(&self, id: Uuid, seq: u64) -> Result<Option<StoredDelivery>, StoreError> {
        self.meta
            .get(delivery_key(id, seq))?
            .map(|bytes| decode(TREE, &bytes))
            .transpose()
    }

    /// Whether another node holds `id`'s lease now (a plain read, no write).
    pub fn webhook_lease_taken(
        &self,
        id: Uuid,
        holder: Uuid,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .transient
            .get(lease_key(id))?
            .is_some_and(|bytes| Lease::held_by_other(&bytes, holder, now_ms)))
    }

    /// Takes (or keeps) the lease on sending `id`'s deliveries for `ttl_ms`: false when another
    /// node holds one that has not expired.
    pub fn lease_webhook(
        &self,
        id: Uuid,
        holder: Uuid,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<bool, StoreError> {
        let key = lease_key(id);
        let lease = encode(
            LEASES,
            &Lease {
                holder,
                until_ms: now_ms + ttl_ms,
            },
        )?;
        let outcome = self.commit(&[], 0, |tx| {
            if let Some(bytes) = tx.transient.get(&key)?
                && Lease::held_by_other(&bytes, holder, now_ms)
            {
                return refuse(());
            }
            tx.transient.insert(&key, lease.as_slice())?;
            Ok(())
        })?;
        // Only this node's own sending waits on it: losing it to a crash lets another take over.
        Ok(outcome.is_ok())
    }
}
