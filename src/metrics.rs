//! What `/metrics` reports, in the Prometheus (OpenMetrics) text format.
//!
//! One `Metrics` per server, in `AppState`; handlers record outcomes, the store records its flushes.
//! Label values come from bounded sets only (route templates, stable error codes, published forms),
//! so a client cannot grow the output by inventing paths or form names.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubmissionLabels {
    form: String,
    /// `accepted`, `replayed`, or the stable error code (`validation_failed`, `submission_conflict`...).
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeywordLabels {
    form: String,
    keyword: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExportLabels {
    form: String,
    format: &'static str,
}

/// How a login attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    Success,
    /// Wrong username or password, or a disabled account.
    Failure,
    /// Refused before the password was checked: too many recent failures.
    Throttled,
}

/// How one submission ended: `Ok(replayed)` when stored (or a replay), else the error code.
pub type SubmissionOutcome = Result<bool, &'static str>;

/// Flush batches and durations; the store's group-commit thread records into these.
#[derive(Clone, Debug)]
pub struct FlushMetrics {
    batch: Histogram,
    seconds: Histogram,
}

impl Default for FlushMetrics {
    fn default() -> Self {
        Self {
            // 1 to 1,024 waiting writes per flush.
            batch: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            // 0.25 ms to about 4 s.
            seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 15)),
        }
    }
}

impl FlushMetrics {
    /// One flush made `writes` waiting requests durable in `took`.
    pub fn observe(&self, writes: u64, took: Duration) {
        self.batch.observe(writes as f64);
        self.seconds.observe(took.as_secs_f64());
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s: a submission takes a few ms, an argon2 login tens, an export seconds.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Every series the server reports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    submissions: Family<SubmissionLabels, Counter>,
    validation_errors: Family<KeywordLabels, Counter>,
    logins: Family<OutcomeLabels, Counter>,
    export_rows: Family<ExportLabels, Counter>,
    unreadable_records: Counter,
    database_bytes: Gauge,
    attachment_bytes: Counter,
    uploads_resumed: Counter,
    uploads_expired: Counter,
    webhook_deliveries: Family<OutcomeLabels, Counter>,
    webhook_queue: Gauge,
    webhook_oldest: Gauge,
}

impl Metrics {
    /// Registers every series; `flushes` are the store's own histograms.
    pub fn new(flushes: &FlushMetrics) -> Self {
        let mut registry = Registry::with_prefix("survey");
        let requests = Family::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time to the response head, by method and route template",
            Unit::Seconds,
            latency.clone(),
        );
        let submissions = Family::default();
        registry.register(
            "submissions",
            "Submissions received, by form and outcome (accepted, replayed or the error code)",
            submissions.clone(),
        );
        let validation_errors = Family::default();
        registry.register(
            "validation_errors",
            "Validation failures in rejected submissions, by form and JSON Schema keyword",
            validation_errors.clone(),
        );
        let logins = Family::default();
        registry.register(
            "logins",
            "Login attempts by outcome (success, failure, throttled)",
            logins.clone(),
        );
        let export_rows = Family::default();
        registry.register(
            "export_rows",
            "Data rows written into exports, by form and format",
            export_rows.clone(),
        );
        let unreadable_records = Counter::default();
        registry.register(
            "unreadable_records",
            "Stored submissions left out of a list or an export because they cannot be read",
            unreadable_records.clone(),
        );
        registry.register(
            "flush_batch_writes",
            "Requests made durable by one flush of the database",
            flushes.batch.clone(),
        );
        registry.register_with_unit(
            "flush_duration",
            "Time one flush (sled flush and fsync) took",
            Unit::Seconds,
            flushes.seconds.clone(),
        );
        let attachment_bytes = Counter::default();
        registry.register_with_unit(
            "attachment_received",
            "Attachment bytes received and kept on disk by tus PATCH requests",
            Unit::Bytes,
            attachment_bytes.clone(),
        );
        let uploads_resumed = Counter::default();
        registry.register(
            "uploads_resumed",
            "Unfinished uploads a client asked the offset of (HEAD), to go on where it stopped",
            uploads_resumed.clone(),
        );
        let uploads_expired = Counter::default();
        registry.register(
            "uploads_expired",
            "Unfinished uploads removed because they expired (SURVEY_UPLOAD_EXPIRY)",
            uploads_expired.clone(),
        );
        let webhook_deliveries = Family::default();
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts by outcome (delivered, failed)",
            webhook_deliveries.clone(),
        );
        let webhook_queue = Gauge::default();
        registry.register(
            "webhook_queue_depth",
            "Audit log entries active webhooks have yet to look at or deliver (this node's)",
            webhook_queue.clone(),
        );
        let webhook_oldest = Gauge::default();
        registry.register_with_unit(
            "webhook_oldest_pending_age",
            "How long the oldest change an active webhook has not delivered yet has waited",
            Unit::Seconds,
            webhook_oldest.clone(),
        );
        let database_bytes = Gauge::default();
        registry.register_with_unit(
            "database_size",
            "Size of the database files on disk",
            Unit::Bytes,
            database_bytes.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            submissions,
            validation_errors,
            logins,
            export_rows,
            unreadable_records,
            database_bytes,
            attachment_bytes,
            uploads_resumed,
            uploads_expired,
            webhook_deliveries,
            webhook_queue,
            webhook_oldest,
        }
    }

    /// A webhook delivery attempt ended: answered with a 2xx or not.
    pub fn webhook_attempt(&self, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.webhook_deliveries
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Where this node's webhooks stand: log entries behind, and the oldest wait in seconds.
    pub fn webhook_backlog(&self, depth: u64, oldest_seconds: u64) {
        self.webhook_queue
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.webhook_oldest
            .set(i64::try_from(oldest_seconds).unwrap_or(i64::MAX));
    }

    /// `bytes` of an attachment arrived and are on disk.
    pub fn attachment_bytes(&self, bytes: u64) {
        self.attachment_bytes.inc_by(bytes);
    }

    /// A client asked where an unfinished upload stands.
    pub fn upload_resumed(&self) {
        self.uploads_resumed.inc();
    }

    /// An unfinished upload expired and was removed.
    pub fn upload_expired(&self) {
        self.uploads_expired.inc();
    }

    /// One answered request; `route` is the matched template (`/api/v1/submissions/{id}`).
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let method = bounded_method(method);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// One submission's fate; `keywords` are the failed schema keywords of a rejected one.
    pub fn submission<'k>(
        &self,
        form: &str,
        outcome: SubmissionOutcome,
        keywords: impl Iterator<Item = &'k str>,
    ) {
        let outcome = match outcome {
            Ok(false) => "accepted",
            Ok(true) => "replayed",
            Err(code) => code,
        };
        self.submissions
            .get_or_create(&SubmissionLabels {
                form: form.to_owned(),
                outcome,
            })
            .inc();
        for keyword in keywords {
            self.validation_errors
                .get_or_create(&KeywordLabels {
                    form: form.to_owned(),
                    keyword: keyword.to_owned(),
                })
                .inc();
        }
    }

    pub fn login(&self, outcome: LoginOutcome) {
        let outcome = match outcome {
            LoginOutcome::Success => "success",
            LoginOutcome::Failure => "failure",
            LoginOutcome::Throttled => "throttled",
        };
        self.logins.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// `rows` data rows went out in one export of `form` as `format` (`zip`, `csv`, `ndjson`).
    pub fn export_rows(&self, form: &str, format: &'static str, rows: u64) {
        self.export_rows
            .get_or_create(&ExportLabels {
                form: form.to_owned(),
                format,
            })
            .inc_by(rows);
    }

    /// `count` stored submissions could not be read and were left out of an answer.
    pub fn unreadable_records(&self, count: usize) {
        if count > 0 {
            self.unreadable_records.inc_by(count as u64);
        }
    }

    /// The text exposition, with the database size as of now.
    pub fn render(&self, database_bytes: u64) -> String {
        self.database_bytes
            .set(i64::try_from(database_bytes).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Extension methods are legal HTTP; labelling them all "other" keeps the series bounded.
fn bounded_method(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_rendered_with_their_labels() {
        let flushes = FlushMetrics::default();
        let metrics = Metrics::new(&flushes);
        metrics.request(
            "POST",
            "/api/v1/forms/{form}/submissions",
            201,
            Duration::from_millis(3),
        );
        metrics.request("BREW", "unmatched", 405, Duration::from_millis(1));
        metrics.submission(
            "labour-survey",
            Err("validation_failed"),
            ["required", "format"].into_iter(),
        );
        metrics.login(LoginOutcome::Throttled);
        metrics.export_rows("labour-survey", "csv", 42);
        metrics.unreadable_records(2);
        flushes.observe(7, Duration::from_millis(2));
        let text = metrics.render(4096);
        for line in [
            r#"survey_http_requests_total{method="POST",route="/api/v1/forms/{form}/submissions",status="201"} 1"#,
            r#"survey_http_requests_total{method="other",route="unmatched",status="405"} 1"#,
            r#"survey_submissions_total{form="labour-survey",outcome="validation_failed"} 1"#,
            r#"survey_validation_errors_total{form="labour-survey",keyword="format"} 1"#,
            r#"survey_logins_total{outcome="throttled"} 1"#,
            r#"survey_export_rows_total{form="labour-survey",format="csv"} 42"#,
            "survey_unreadable_records_total 2",
            "survey_flush_batch_writes_count 1",
            "survey_database_size_bytes 4096",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
