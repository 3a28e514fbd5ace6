//! The sender: for each active webhook this node holds the lease on, the next change after its
//! cursor is sent, one at a time in log order (so in order per submission), until a 2xx answers
//! it; failures are retried with exponential backoff and jitter for 24 hours, then the delivery
//! is marked failed and the next one goes; 50 failed attempts in a row pause the webhook.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{Settings, address, delivery_id, sign};
use crate::audit::{self, AuditAction};
use crate::auth::{Permission, Principal};
use crate::changes::{self, Change, Fields};
use crate::clock::Timestamp;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::store::{
    Attempt, MAX_ATTEMPTS_KEPT, PendingDelivery, Store, StoreError, StoredDelivery, StoredWebhook,
};

/// How long a receiver has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A delivery is retried for this long, then marked failed.
const GIVE_UP_AFTER_MS: u64 = 24 * 60 * 60 * 1000;
/// Failed attempts in a row that pause a webhook.
pub const PAUSE_AFTER: u32 = 50;
/// The longest wait between attempts.
const MAX_DELAY: Duration = Duration::from_secs(60 * 60);
/// A body larger than this goes without its answers (`data_omitted`).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long a node's lease on a webhook lasts without being renewed.
const LEASE_MS: u64 = 30_000;
/// Delivery records kept per webhook.
const KEEP_DELIVERIES: usize = 1_000;
/// How often an idle sender looks for new changes.
const IDLE: Duration = Duration::from_millis(250);

/// The wait before attempt `attempts + 1` of a delivery: the base doubled for each attempt
/// made, up to an hour, with ±20% jitter so that many receivers coming back do not all retry at
/// once.
pub fn delay(base: Duration, attempts: u32, jitter: f64) -> Duration {
    let doubled = base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    doubled
        .min(MAX_DELAY)
        .mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs for as long as the server does: each round takes the newest change on disk, and each
/// active webhook this node may send that has changes to go gets a task of its own, which sends
/// them one after the other; a slow or failing receiver holds back only its own webhook.
pub async fn run(
    store: std::sync::Arc<Store>,
    settings: Settings,
    metrics: std::sync::Arc<Metrics>,
) {
    let mut leases = Leases::default();
    let mut sending: HashMap<Uuid, tokio::task::JoinHandle<()>> = HashMap::new();
    // The log number up to which everything is known to be on disk: no flush is asked for again
    // until something newer has been written.
    let mut durable_through = 0;
    loop {
        sending.retain(|_, task| !task.is_finished());
        if let Err(error) = round(
            &store,
            &settings,
            &metrics,
            &mut leases,
            &mut sending,
            &mut durable_through,
        )
        .await
        {
            tracing::warn!(%error, "webhook sender: could not read the store");
        }
        tokio::time::sleep(IDLE).await;
    }
}

/// Until when this node holds each webhook's lease (renewed at half time, not every round).
#[derive(Default)]
struct Leases(HashMap<Uuid, u64>);

impl Leases {
    /// Whether this node may send `id`'s deliveries now, taking or renewing the lease if needed.
    /// One process holds a sled directory; several nodes share a PostgreSQL database, and a
    /// lease (taken over 30 s after a node died) keeps each delivery to one sender.
    async fn hold(
        &mut self,
        store: &std::sync::Arc<Store>,
        id: Uuid,
        node: Uuid,
    ) -> Result<bool, StoreError> {
        if !store.is_shared() {
            return Ok(true);
        }
        let now = now_ms();
        if self
            .0
            .get(&id)
            .is_some_and(|until| *until > now + LEASE_MS / 2)
        {
            return Ok(true);
        }
        // Read first: a node that does not hold it costs no write (every write takes the lock
        // submissions take).
        let held = on_a_thread(store, move |store| {
            if store.webhook_lease_taken(id, node, now)? {
                return Ok(false);
            }
            store.lease_webhook(id, node, now, LEASE_MS)
        })
        .await?;
        if held {
            self.0.insert(id, now + LEASE_MS);
        } else {
            self.0.remove(&id);
        }
        Ok(held)
    }
}

/// One round: metrics for every webhook, and a sending task for each that needs one.
async fn round(
    store: &std::sync::Arc<Store>,
    settings: &Settings,
    metrics: &std::sync::Arc<Metrics>,
    leases: &mut Leases,
    sending: &mut HashMap<Uuid, tokio::task::JoinHandle<()>>,
    durable_through: &mut u64,
) -> Result<(), StoreError> {
    let webhooks = on_a_thread(store, |store| store.webhooks()).await?;
    if webhooks.is_empty() {
        return Ok(());
    }
    let through = on_a_thread(store, |store| store.last_audit_seq()).await?;
    let now = now_ms();
    let depth = webhooks
        .iter()
        .map(|w| through.saturating_sub(w.cursor))
        .sum();
    let oldest = webhooks
        .iter()
        .filter_map(|w| w.pending.as_ref())
        .map(|p| now.saturating_sub(p.first_at_ms) / 1000)
        .max()
        .unwrap_or(0);
    metrics.webhook_backlog(depth, oldest);
    let due = |w: &StoredWebhook| match &w.pending {
        Some(pending) => pending.next_at_ms <= now,
        None => w.cursor < through,
    };
    let mut started = false;
    for webhook in webhooks.into_iter().filter(|w| w.active && due(w)) {
        let id = webhook.id;
        // Renewed while a long backlog is sent; lost, this node stops sending it at once.
        if !leases.hold(store, id, settings.node).await? {
            if let Some(task) = sending.remove(&id) {
                task.abort();
            }
            continue;
        }
        if sending.contains_key(&id) {
            continue;
        }
        // Only changes on disk are sent: a crash cannot take back one a receiver has.
        if !started && through > *durable_through {
            store.after_earlier_writes(()).durable().await?;
            *durable_through = through;
        }
        started = true;
        let task = drain(
            std::sync::Arc::clone(store),
            settings.clone(),
            std::sync::Arc::clone(metrics),
            id,
            through,
        );
        sending.insert(id, tokio::spawn(task));
    }
    Ok(())
}

/// Sends `id`'s deliveries up to log number `through`, one after the other, until one fails
/// or none is left; a store error ends it (logged), and the next round tries again.
async fn drain(
    store: std::sync::Arc<Store>,
    settings: Settings,
    metrics: std::sync::Arc<Metrics>,
    id: Uuid,
    through: u64,
) {
    loop {
        let outcome = match on_a_thread(&store, move |store| store.webhook(id)).await {
            Ok(Some(webhook)) if webhook.active => {
                next(&store, &settings, &metrics, webhook, through).await
            }
            Ok(_) => return,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(webhook = %id, %error, "webhook sender: could not read or write the store");
                return;
            }
        }
    }
}

async fn on_a_thread<T: Send + 'static>(
    store: &std::sync::Arc<Store>,
    work: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = std::sync::Arc::clone(store);
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
}

/// Sends `webhook`'s next delivery if one is due: true if it went (and the next may follow).
async fn next(
    store: &std::sync::Arc<Store>,
    settings: &Settings,
    metrics: &Metrics,
    webhook: StoredWebhook,
    through: u64,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let seq = match &webhook.pending {
        Some(pending) if pending.next_at_ms > now => return Ok(false),
        Some(pending) => pending.seq,
        None => {
            let (cursor, forms, events) = (
                webhook.cursor,
                webhook.forms.clone(),
                webhook.events.clone(),
            );
            let (found, looked_at) = on_a_thread(store, move |store| {
                store.audit_through(cursor, through, 1, |entry| {
                    let Some(event) = changes::event_name(entry.action) else {
                        return false;
                    };
                    let form_ok = match (&forms, &entry.change) {
                        (Some(forms), Some(facts)) => forms.contains(&facts.form),
                        _ => true,
                    };
                    form_ok && events.iter().any(|e| e == event)
                })
            })
            .await?;
            let Some(entry) = found.into_iter().next() else {
                if looked_at > webhook.cursor {
                    // Nothing for it up to here: move on, so the next round starts later.
                    advance(store, webhook.id, webhook.cursor, looked_at).await?;
                }
                return Ok(false);
            };
            entry.seq
        }
    };
    let change = on_a_thread(store, move |store| changes::at(store, seq, Fields::All)).await?;
    let Some(change) =
        change.filter(|c| webhook.forms.as_ref().is_none_or(|f| f.contains(&c.form)))
    else {
        // Not a change it wants (any more: its forms may have changed while it was retried).
        return advance(store, webhook.id, webhook.cursor, seq).await;
    };
    let attempt = attempt(settings, &webhook, change.clone(), seq).await;
    let delivered = attempt.error.is_none();
    metrics.webhook_attempt(delivered);
    record(store, &webhook, &change, seq, attempt, settings).await?;
    Ok(delivered)
}

/// Moves a webhook's cursor from `from` to `to`, dropping a pending delivery up to `to` (one it
/// no longer wants); true if it moved (nobody else moved it first).
async fn advance(
    store: &std::sync::Arc<Store>,
    id: Uuid,
    from: u64,
    to: u64,
) -> Result<bool, StoreError> {
    let changed = on_a_thread(store, move |store| {
        store.change_webhook::<()>(
            id,
            |w| {
                let behind = w.pending.as_ref().is_some_and(|p| p.seq > to);
                if w.cursor != from || behind {
                    return Err(());
                }
                w.cursor = to;
                w.pending = None;
                Ok(())
            },
            None,
            &[],
        )
    })
    .await?;
    Ok(matches!(changed, Some(Ok(_))))
}

/// Keeps what an attempt did: the delivery's record, and the webhook's cursor, failure count
/// and pending delivery, in one transaction.
async fn record(
    store: &std::sync::Arc<Store>,
    webhook: &StoredWebhook,
    change: &Change,
    seq: u64,
    attempt: Attempt,
    settings: &Settings,
) -> Result<(), StoreError> {
    let id = webhook.id;
    let delivered = attempt.error.is_none();
    let now = now_ms();
    let mut delivery = on_a_thread(store, move |store| store.delivery(id, seq))
        .await?
        .unwrap_or_else(|| StoredDelivery {
            seq,
            delivery_id: delivery_id(id, seq),
            event: change.event.to_owned(),
            submission_id: change.submission_id,
            state: "pending".into(),
            attempts: Vec::new(),
        });
    delivery.attempts.push(attempt);
    if delivery.attempts.len() > MAX_ATTEMPTS_KEPT {
        delivery.attempts.remove(1);
    }
    let pending = webhook.pending.clone();
    let attempts = pending.as_ref().map_or(0, |p| p.attempts) + 1;
    let first_at_ms = pending.as_ref().map_or(now, |p| p.first_at_ms);
    let give_up = !delivered && now.saturating_sub(first_at_ms) >= GIVE_UP_AFTER_MS;
    delivery.state = match (delivered, give_up) {
        (true, _) => "delivered",
        (false, true) => "failed",
        (false, false) => "pending",
    }
    .into();
    let jitter = rand::random::<f64>();
    let retry_in = delay(settings.retry_base, attempts, jitter);
    let expected_cursor = webhook.cursor;
    if (delivered || give_up) && seq.is_multiple_of(100) {
        // Now and then, the oldest records go: a webhook's history is its latest deliveries.
        on_a_thread(store, move |store| {
            store.prune_deliveries(id, KEEP_DELIVERIES)
        })
        .await?;
    }
    on_a_thread(store, move |store| {
        store
            .change_webhook::<()>(
                id,
                |w| {
                    // Another node took over meanwhile: its record stands.
                    if w.cursor != expected_cursor {
                        return Err(());
                    }
                    let retry = PendingDelivery {
                        seq,
                        attempts,
                        first_at_ms,
                        next_at_ms: now + retry_in.as_millis() as u64,
                    };
                    after_attempt(w, delivered || give_up, delivered, retry);
                    Ok(())
                },
                Some(&delivery),
                &[],
            )
            .map(drop)
    })
    .await
}

/// What an attempt makes of its webhook: an ended delivery (answered, or given up) moves the
/// cursor past its change; another failure waits for `retry`; failures in a row are counted, and
/// `PAUSE_AFTER` of them pause the webhook.
fn after_attempt(
    webhook: &mut StoredWebhook,
    ended: bool,
    delivered: bool,
    retry: PendingDelivery,
) {
    if ended {
        webhook.cursor = retry.seq;
        webhook.pending = None;
    } else {
        webhook.pending = Some(retry);
    }
    if delivered {
        webhook.failures = 0;
        return;
    }
    webhook.failures += 1;
    if webhook.failures >= PAUSE_AFTER {
        webhook.active = false;
        webhook.paused_reason = Some(format!(
            "{PAUSE_AFTER} attempts failed in a row; PATCH {{\"active\": true}} resumes it"
        ));
    }
}

/// One try at sending `change` to `webhook`: the receiver's answer, or why there was none.
pub async fn attempt(
    settings: &Settings,
    webhook: &StoredWebhook,
    mut change: Change,
    seq: u64,
) -> Attempt {
    let at = Timestamp::now();
    let started = Instant::now();
    change.delivery_id = Some(delivery_id(webhook.id, seq));
    let outcome = send(settings, webhook, &change).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(status) if (200..300).contains(&status) => Attempt {
            at,
            status: Some(status),
            latency_ms,
            error: None,
        },
        Ok(status) => Attempt {
            at,
            status: Some(status),
            latency_ms,
            error: Some(format!("answered {status}")),
        },
        Err(error) => Attempt {
            at,
            status: None,
            latency_ms,
            error: Some(error),
        },
    }
}

async fn send(
    settings: &Settings,
    webhook: &StoredWebhook,
    change: &Change,
) -> Result<u16, String> {
    let body = body_of(change).map_err(|e| e.to_string())?;
    let url = address::check_url(&webhook.url, settings.allow_private)?;
    let addresses = tokio::time::timeout(TIMEOUT, address::resolve(&url, settings.allow_private))
        .await
        .map_err(|_| format!("no address for the url within {} s", TIMEOUT.as_secs()))??;
    let host = url.host_str().unwrap_or_default().to_owned();
    let mut client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the host itself, past the addresses just checked.
        .no_proxy()
        // Connect to the addresses just checked, not to whatever a second lookup says.
        .resolve_to_addrs(&host, &addresses)
        .user_agent(concat!("survey-server/", env!("CARGO_PKG_VERSION")));
    for root in &settings.extra_roots {
        client = client.add_root_certificate(root.clone());
    }
    let client = client.build().map_err(|e| e.to_string())?;
    let timestamp = crate::clock::unix_now();
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(sign::TIMESTAMP_HEADER, timestamp.to_string())
        .header(
            sign::DELIVERY_HEADER,
            change.delivery_id.clone().unwrap_or_default(),
        )
        .header(
            sign::SIGNATURE_HEADER,
            sign::signature(&webhook.secret, timestamp, &body),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {} s", TIMEOUT.as_secs())
            } else {
                crate::error::with_causes(&e)
            }
        })?;
    Ok(response.status().as_u16())
}

/// A delivery's body: the change, without its answers (`data_omitted`) if it would be too large.
fn body_of(change: &Change) -> Result<Vec<u8>, serde_json::Error> {
    let body = serde_json::to_vec(change)?;
    if body.len() <= MAX_BODY_BYTES {
        return Ok(body);
    }
    let mut smaller = change.clone();
    smaller.data = None;
    smaller.data_omitted = true;
    serde_json::to_vec(&smaller)
}

/// Sends one delivery again now (admin), whatever became of it; the cursor stays where it is.
pub async fn redeliver(
    store: &std::sync::Arc<Store>,
    settings: &Settings,
    id: Uuid,
    delivery: &str,
    by: &Principal,
) -> Result<super::DeliveryView, AppError> {
    by.require(Permission::ManageWebhooks)?;
    let webhook = store.webhook(id)?.ok_or(AppError::WebhookNotFound)?;
    let seq = super::seq_of(id, delivery).ok_or(AppError::DeliveryNotFound)?;
    let mut record = store.delivery(id, seq)?.ok_or(AppError::DeliveryNotFound)?;
    let change = changes::at(store, seq, Fields::All)?.ok_or(AppError::DeliveryNotFound)?;
    let attempt = attempt(settings, &webhook, change, seq).await;
    // The sender may have recorded attempts meanwhile: add to what is stored now.
    record = store.delivery(id, seq)?.unwrap_or(record);
    if attempt.error.is_none() {
        record.state = "delivered".into();
    }
    record.attempts.push(attempt);
    if record.attempts.len() > MAX_ATTEMPTS_KEPT {
        record.attempts.remove(1);
    }
    let event = audit::by(
        by,
        AuditAction::WebhookRedelivered,
        audit::webhook_target(id),
    );
    let saved = store.change_webhook::<std::convert::Infallible>(
        id,
        |_| Ok(()),
        Some(&record),
        &[event],
    )?;
    match saved {
        Some(Ok(pending)) => {
            pending.durable().await?;
            Ok(record.into())
        }
        Some(Err(never)) => match never {},
        None => Err(AppError::WebhookNotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook() -> StoredWebhook {
        StoredWebhook {
            id: Uuid::nil(),
            url: "https://platform.example.cn/hook".into(),
            events: vec!["submission.created".into()],
            forms: None,
            secret: "s".repeat(32),
            active: true,
            paused_reason: None,
            created_at: Timestamp::now(),
            created_by: "admin".into(),
            cursor: 10,
            failures: 0,
            pending: None,
        }
    }

    fn retry(seq: u64, attempts: u32) -> PendingDelivery {
        PendingDelivery {
            seq,
            attempts,
            first_at_ms: 0,
            next_at_ms: 1,
        }
    }

    #[test]
    fn fifty_failed_attempts_in_a_row_pause_a_webhook_and_a_success_ends_the_count() {
        let mut w = webhook();
        for attempt in 1..PAUSE_AFTER {
            after_attempt(&mut w, false, false, retry(11, attempt));
            assert!(w.active, "after {attempt}");
        }
        assert_eq!(
            (w.cursor, w.pending.as_ref().map(|p| p.seq)),
            (10, Some(11))
        );
        after_attempt(&mut w, false, false, retry(11, PAUSE_AFTER));
        assert!(!w.active);
        assert!(
            w.paused_reason
                .as_deref()
                .unwrap()
                .contains("50 attempts failed")
        );

        let mut w = webhook();
        after_attempt(&mut w, false, false, retry(11, 1));
        after_attempt(&mut w, true, true, retry(11, 2));
        assert_eq!((w.cursor, w.pending.clone(), w.failures), (11, None, 0));
        // Given up after 24 hours: the cursor moves on, the failure still counts.
        after_attempt(&mut w, true, false, retry(12, 9));
        assert_eq!((w.cursor, w.pending.clone(), w.failures), (12, None, 1));
    }

    #[test]
    fn a_body_too_large_goes_without_its_answers() {
        let change = |note: &str| Change {
            event: "submission.created",
            delivery_id: Some("d1".into()),
            at: Timestamp::now(),
            form: "labour-survey".into(),
            form_version: "1".into(),
            submission_id: Uuid::nil(),
            version: 1,
            review_status: crate::submissions::ReviewStatus::Received,
            data: Some(serde_json::json!({"note": note})),
            data_omitted: false,
        };
        let small: serde_json::Value =
            serde_json::from_slice(&body_of(&change("x")).unwrap()).unwrap();
        assert_eq!(small["data"]["note"], "x");
        assert!(small.get("data_omitted").is_none());
        let large: serde_json::Value =
            serde_json::from_slice(&body_of(&change(&"说".repeat(MAX_BODY_BYTES))).unwrap())
                .unwrap();
        assert!(large.get("data").is_none());
        assert_eq!(large["data_omitted"], true);
        assert_eq!(large["delivery_id"], "d1");
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_an_hour() {
        let base = Duration::from_secs(5);
        assert_eq!(delay(base, 1, 0.5), Duration::from_secs(5));
        assert_eq!(delay(base, 2, 0.5), Duration::from_secs(10));
        assert_eq!(delay(base, 4, 0.5), Duration::from_secs(40));
        assert_eq!(delay(base, 30, 0.5), MAX_DELAY);
        assert_eq!(delay(base, 1, 0.0), Duration::from_secs(4));
        assert_eq!(delay(base, 1, 1.0), Duration::from_secs(6));
    }
}
