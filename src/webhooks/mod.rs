//! Webhooks: the server pushes each change of a form's submissions to other systems (the
//! poverty-alleviation platform, a statistics office), signed, at least once and in order.
//!
//! Each webhook keeps a durable cursor into the audit log (which holds every change in commit
//! order, see `changes`): nothing is written in a submission's transaction, and a `kill -9` loses
//! nothing, because the cursor only moves once a delivery is answered with a 2xx (or given up on).
//! `send.rs` is the sender; `address.rs` where a webhook may send; `sign.rs` the signature.

pub mod address;
pub mod send;
pub mod sign;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::{self, AuditAction};
use crate::auth::{Permission, Principal};
use crate::clock::Timestamp;
use crate::error::AppError;
use crate::forms::FormRegistry;
use crate::store::{Store, StoredDelivery, StoredWebhook};

/// What every change's `event` may be.
pub const EVENTS: [&str; 5] = [
    "submission.created",
    "submission.edited",
    "submission.reviewed",
    "submission.deleted",
    "submission.restored",
];
/// Secrets are long enough to resist guessing, short enough to type into a config file.
const MIN_SECRET_BYTES: usize = 32;
const MAX_SECRET_BYTES: usize = 256;

/// How webhooks are sent on this server.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Loopback, private and link-local receivers, and `http://`, are allowed.
    pub allow_private: bool,
    /// CA certificates (PEM) receivers may chain to beside the public roots.
    pub extra_roots: Vec<reqwest::Certificate>,
    /// This node, for the sender's lease.
    pub node: Uuid,
    /// The first retry's delay; each retry doubles it (with jitter), up to an hour.
    pub retry_base: std::time::Duration,
}

/// A webhook as its admin sees it: never the secret.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    /// Only these forms' changes; absent for every form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forms: Option<Vec<String>>,
    pub active: bool,
    /// Why it was paused (50 failed attempts in a row); `PATCH {"active": true}` resumes it.
    pub paused_reason: Option<String>,
    pub created_at: Timestamp,
    pub created_by: String,
    /// The audit log position its deliveries have reached.
    pub cursor: u64,
    /// Failed attempts in a row.
    pub failures: u32,
}

impl From<StoredWebhook> for WebhookView {
    fn from(stored: StoredWebhook) -> Self {
        Self {
            id: stored.id,
            url: stored.url,
            events: stored.events,
            forms: stored.forms,
            active: stored.active,
            paused_reason: stored.paused_reason,
            created_at: stored.created_at,
            created_by: stored.created_by,
            cursor: stored.cursor,
            failures: stored.failures,
        }
    }
}

/// `POST /api/v1/webhooks` (no `Debug`: it holds the secret).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub forms: Option<Vec<String>>,
    /// At least 32 bytes; signs every delivery; never shown again.
    pub secret: String,
}

/// `PATCH /api/v1/webhooks/{id}`: what is given changes (no `Debug`: it may hold the secret).
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// `null` for every form.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub forms: Option<Option<Vec<String>>>,
    pub secret: Option<String>,
    /// `true` resumes a paused webhook (the backlog is sent in order); `false` pauses it.
    pub active: Option<bool>,
}

/// A field that is present (maybe `null`) as `Some`, absent as `None`.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<Vec<String>>>, D::Error> {
    Option::<Vec<String>>::deserialize(deserializer).map(Some)
}

fn check_events(events: &[String]) -> Result<(), AppError> {
    if events.is_empty() || events.iter().any(|e| !EVENTS.contains(&e.as_str())) {
        return Err(AppError::invalid_field(
            "/events",
            &format!("events: one or more of {}", EVENTS.join(", ")),
        ));
    }
    Ok(())
}

fn check_secret(secret: &str) -> Result<(), AppError> {
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret.len()) {
        return Err(AppError::invalid_field(
            "/secret",
            "secret: 32 to 256 bytes (e.g. 64 hex digits from `openssl rand -hex 32`)",
        ));
    }
    Ok(())
}

fn check_forms(forms: &Option<Vec<String>>, registry: &FormRegistry) -> Result<(), AppError> {
    for (i, form) in forms.iter().flatten().enumerate() {
        if registry.versions(form).is_err() {
            return Err(AppError::invalid_field(
                &format!("/forms/{i}"),
                "no such form",
            ));
        }
    }
    Ok(())
}

/// A URL that may receive webhooks here, with its addresses checked now.
async fn check_url(text: &str, settings: &Settings) -> Result<String, AppError> {
    let url = address::check_url(text, settings.allow_private)
        .map_err(|problem| AppError::invalid_field("/url", &problem))?;
    address::resolve(&url, settings.allow_private)
        .await
        .map_err(|problem| AppError::invalid_field("/url", &problem))?;
    Ok(url.to_string())
}

/// Registers a webhook (admin). It receives the changes committed from now on.
pub async fn create(
    store: &Store,
    registry: &FormRegistry,
    settings: &Settings,
    new: NewWebhook,
    by: &Principal,
) -> Result<WebhookView, AppError> {
    by.require(Permission::ManageWebhooks)?;
    check_events(&new.events)?;
    check_secret(&new.secret)?;
    check_forms(&new.forms, registry)?;
    let url = check_url(&new.url, settings).await?;
    let id = Uuid::new_v4();
    let stored = StoredWebhook {
        id,
        url,
        events: new.events,
        forms: new.forms,
        secret: new.secret,
        active: true,
        paused_reason: None,
        created_at: Timestamp::now(),
        created_by: by.username.clone(),
        cursor: store.last_audit_seq()?,
        failures: 0,
        pending: None,
    };
    let event = audit::by(by, AuditAction::WebhookCreated, audit::webhook_target(id));
    store.insert_webhook(&stored, &event)?.durable().await?;
    Ok(stored.into())
}

pub fn list(store: &Store, by: &Principal) -> Result<Vec<WebhookView>, AppError> {
    by.require(Permission::ManageWebhooks)?;
    Ok(store.webhooks()?.into_iter().map(Into::into).collect())
}

pub fn get(store: &Store, id: Uuid, by: &Principal) -> Result<WebhookView, AppError> {
    by.require(Permission::ManageWebhooks)?;
    Ok(store.webhook(id)?.ok_or(AppError::WebhookNotFound)?.into())
}

/// Changes a webhook (admin): its url, events, forms, secret, or whether it is active.
pub async fn update(
    store: &Store,
    registry: &FormRegistry,
    settings: &Settings,
    id: Uuid,
    patch: WebhookPatch,
    by: &Principal,
) -> Result<WebhookView, AppError> {
    by.require(Permission::ManageWebhooks)?;
    if let Some(events) = &patch.events {
        check_events(events)?;
    }
    if let Some(secret) = &patch.secret {
        check_secret(secret)?;
    }
    if let Some(forms) = &patch.forms {
        check_forms(forms, registry)?;
    }
    let url = match &patch.url {
        Some(url) => Some(check_url(url, settings).await?),
        None => None,
    };
    let event = audit::by(by, AuditAction::WebhookUpdated, audit::webhook_target(id));
    let changed = store.change_webhook::<std::convert::Infallible>(
        id,
        |webhook| {
            if let Some(url) = &url {
                webhook.url.clone_from(url);
            }
            // A receiver fixed or resumed is tried again now, not at the end of a long backoff.
            if (url.is_some() || patch.active == Some(true))
                && let Some(pending) = &mut webhook.pending
            {
                pending.next_at_ms = 0;
            }
            if let Some(events) = &patch.events {
                webhook.events.clone_from(events);
            }
            if let Some(forms) = &patch.forms {
                webhook.forms.clone_from(forms);
            }
            if let Some(secret) = &patch.secret {
                webhook.secret.clone_from(secret);
            }
            match patch.active {
                Some(true) => {
                    webhook.active = true;
                    webhook.paused_reason = None;
                    webhook.failures = 0;
                }
                Some(false) => {
                    webhook.active = false;
                    webhook.paused_reason = Some(format!("paused by {}", by.username));
                }
                None => {}
            }
            Ok(())
        },
        None,
        &[event],
    )?;
    match changed {
        Some(Ok(pending)) => Ok(pending.durable().await?.into()),
        Some(Err(never)) => match never {},
        None => Err(AppError::WebhookNotFound),
    }
}

pub async fn delete(store: &Store, id: Uuid, by: &Principal) -> Result<(), AppError> {
    by.require(Permission::ManageWebhooks)?;
    let event = audit::by(by, AuditAction::WebhookDeleted, audit::webhook_target(id));
    if store.delete_webhook(id, &event)?.durable().await? {
        Ok(())
    } else {
        Err(AppError::WebhookNotFound)
    }
}

/// A delivery and its attempts.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub delivery_id: String,
    pub event: String,
    pub submission_id: Uuid,
    /// `pending` (to be tried again), `delivered` or `failed` (given up after 24 hours).
    pub state: String,
    /// The first and latest attempts, oldest first.
    pub attempts: Vec<AttemptView>,
}

/// One try at a delivery.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub at: Timestamp,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it did not count (a status other than 2xx, a timeout, a refused address, ...).
    pub error: Option<String>,
}

impl From<StoredDelivery> for DeliveryView {
    fn from(stored: StoredDelivery) -> Self {
        Self {
            delivery_id: stored.delivery_id,
            event: stored.event,
            submission_id: stored.submission_id,
            state: stored.state,
            attempts: stored
                .attempts
                .into_iter()
                .map(|a| AttemptView {
                    at: a.at,
                    status: a.status,
                    latency_ms: a.latency_ms,
                    error: a.error,
                })
                .collect(),
        }
    }
}

/// A webhook's deliveries, newest first.
pub fn deliveries(store: &Store, id: Uuid, by: &Principal) -> Result<Vec<DeliveryView>, AppError> {
    by.require(Permission::ManageWebhooks)?;
    store.webhook(id)?.ok_or(AppError::WebhookNotFound)?;
    Ok(store
        .deliveries(id, 200)?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// A delivery's id: the webhook and the change's log position, the same on every attempt.
pub fn delivery_id(webhook: Uuid, seq: u64) -> String {
    format!("{}-{seq}", webhook.simple())
}

/// The log position a delivery id names, if it is one of `webhook`'s.
pub fn seq_of(webhook: Uuid, delivery_id: &str) -> Option<u64> {
    let (owner, seq) = delivery_id.rsplit_once('-')?;
    (owner == webhook.simple().to_string()).then(|| seq.parse().ok())?
}
