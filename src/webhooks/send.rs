//! The sender: for each active webhook this node holds the lease on, the next change after its
//! cursor is sent, one at a time in log order (so in order per submission), until a 2xx answers
//! it; failures are retried with exponential backoff and jitter for 24 hours, then the delivery
//! is marked failed and the next one goes; 50 failed attempts in a row pause the webhook.

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

/// Runs for as long as the server does.
pub async fn run(
    store: std::sync::Arc<Store>,
    settings: Settings,
    metrics: std::sync::Arc<Metrics>,
) {
    // Until when this node holds each webhook's lease: renewed at half time, not every round.
    let mut leases = std::collections::HashMap::new();
    loop {
        let busy = match tick(&store, &settings, &metrics, &mut leases).await {
            Ok(busy) => busy,
            Err(error) => {
                tracing::warn!(%error, "webhook sender: could not read or write the store");
                false
            }
        };
        if !busy {
            tokio::time::sleep(IDLE).await;
        }
    }
}

/// One round over the webhooks; true if something was sent (so another round follows at once).
async fn tick(
    store: &std::sync::Arc<Store>,
    settings: &Settings,
    metrics: &Metrics,
    leases: &mut std::collections::HashMap<Uuid, u64>,
) -> Result<bool, StoreError> {
    let webhooks = on_a_thread(store, |store| store.webhooks()).await?;
    if webhooks.is_empty() {
        return Ok(false);
    }
    // Only changes on disk are sent: a crash cannot take back one a receiver has.
    let through = on_a_thread(store, |store| store.last_audit_seq()).await?;
    store.after_earlier_writes(()).durable().await?;
    let mut busy = false;
    let (mut depth, mut oldest) = (0u64, 0u64);
    for webhook in webhooks.into_iter().filter(|w| w.active) {
        let id = webhook.id;
        let node = settings.node;
        // One process holds a sled directory; several nodes share a PostgreSQL database, and a
        // lease (taken over 30 s after a node died) keeps each delivery to one sender.
        let now = now_ms();
        let fresh = leases
            .get(&id)
            .is_some_and(|until| *until > now + LEASE_MS / 2);
        let held = !store.is_shared()
            || fresh
            || on_a_thread(store, move |store| {
                store.lease_webhook(id, node, now, LEASE_MS)
            })
            .await?;
        if held && !fresh {
            leases.insert(id, now + LEASE_MS);
        } else if !held {
            leases.remove(&id);
        }
        if !held {
            continue;
        }
        let (sent, behind) = next(store, settings, metrics, webhook, through).await?;
        busy |= sent;
        if let Some((count, age)) = behind {
            depth += count;
            oldest = oldest.max(age);
        }
    }
    metrics.webhook_backlog(depth, oldest);
    Ok(busy)
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

/// Sends `webhook`'s next delivery if it is due: whether one was attempted, and (log entries
/// behind, seconds the oldest waiting change has waited) for the metrics.
async fn next(
    store: &std::sync::Arc<Store>,
    settings: &Settings,
    metrics: &Metrics,
    webhook: StoredWebhook,
    through: u64,
) -> Result<(bool, Option<(u64, u64)>), StoreError> {
    let behind = through.saturating_sub(webhook.cursor);
    let now = now_ms();
    let seq = match &webhook.pending {
        Some(pending) if pending.next_at_ms > now => {
            let age = now.saturating_sub(pending.first_at_ms) / 1000;
            return Ok((false, Some((behind, age))));
        }
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
                return Ok((false, Some((0, 0))));
            };
            entry.seq
        }
    };
    let change = on_a_thread(store, move |store| changes::at(store, seq, Fields::All)).await?;
    let Some(change) =
        change.filter(|c| webhook.forms.as_ref().is_none_or(|f| f.contains(&c.form)))
    else {
        // Not a change it wants after all (a form told by today's facts): skip it.
        advance(store, webhook.id, webhook.cursor, seq).await?;
        return Ok((true, None));
    };
    let attempt = attempt(settings, &webhook, change.clone(), seq).await;
    metrics.webhook_attempt(attempt.error.is_none());
    record(store, &webhook, &change, seq, attempt, settings).await?;
    let age = now.saturating_sub(change.at.unix_ms()) / 1000;
    Ok((true, Some((behind, age))))
}

/// Moves a webhook's cursor from `from` to `to` when nothing is under way.
async fn advance(
    store: &std::sync::Arc<Store>,
    id: Uuid,
    from: u64,
    to: u64,
) -> Result<(), StoreError> {
    on_a_thread(store, move |store| {
        store
            .change_webhook::<()>(
                id,
                |w| {
                    if w.cursor != from || w.pending.is_some() {
                        return Err(());
                    }
                    w.cursor = to;
                    Ok(())
                },
                None,
                &[],
            )
            .map(drop)
    })
    .await
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
    on_a_thread(store, move |store| {
        store
            .change_webhook::<()>(
                id,
                |w| {
                    // Another node took over meanwhile: its record stands.
                    if w.cursor != expected_cursor {
                        return Err(());
                    }
                    if delivered || give_up {
                        w.cursor = seq;
                        w.pending = None;
                    } else {
                        w.pending = Some(PendingDelivery {
                            seq,
                            attempts,
                            first_at_ms,
                            next_at_ms: now + retry_in.as_millis() as u64,
                        });
                    }
                    if delivered {
                        w.failures = 0;
                    } else {
                        w.failures += 1;
                        if w.failures >= super::send::PAUSE_AFTER {
                            w.active = false;
                            w.paused_reason = Some(format!(
                                "{PAUSE_AFTER} attempts failed in a row; PATCH {{\"active\": true}} resumes it"
                            ));
                        }
                    }
                    Ok(())
                },
                Some(&delivery),
                &[],
            )
            .map(drop)
    })
    .await
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
    let mut body = serde_json::to_vec(change).map_err(|e| e.to_string())?;
    if body.len() > MAX_BODY_BYTES {
        let mut smaller = change.clone();
        smaller.data = None;
        smaller.data_omitted = true;
        body = serde_json::to_vec(&smaller).map_err(|e| e.to_string())?;
    }
    let url = address::check_url(&webhook.url, settings.allow_private)?;
    let addresses = address::resolve(&url, settings.allow_private).await?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let mut client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
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
                e.to_string()
            }
        })?;
    Ok(response.status().as_u16())
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
