//! `AppError`: every failure a client can see, with its HTTP status and a stable snake_case code.
//!
//! The codes are a contract with phone apps and scripts: they never change meaning. Internal
//! causes (storage, I/O) are logged and answered with a generic `internal_error`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;
use crate::strict_json::StrictError;

/// Seconds a client is asked to wait when no database can be written.
const NOT_READY_RETRY_SECS: u32 = 5;

/// tus's "460 Checksum Mismatch".
const CHECKSUM_MISMATCH: StatusCode = match StatusCode::from_u16(460) {
    Ok(status) => status,
    Err(_) => StatusCode::BAD_REQUEST,
};

/// One problem in a request, placed by a JSON Pointer.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Detail {
    /// JSON Pointer to the offending place (into `data` for validation errors).
    pub path: String,
    /// The JSON Schema keyword that failed, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// What is wrong, for a person; never echoes the submitted value.
    pub message: String,
    /// For validation errors: what is wrong as a stable key of the message catalogue
    /// (`GET /api/v1/messages`), e.g. `resident_id.check_digit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The values the key's template names, e.g. `{"limit": 12}`; absent when it names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub params: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

/// What went wrong: `{code, message, details?}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorObject {
    /// Stable and machine-readable (`validation_failed`, `submission_conflict`, ...).
    pub code: &'static str,
    /// For a person; never echoes submitted values.
    pub message: String,
    /// Per-field problems, for `request_invalid` and `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<Detail>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the body is not valid JSON: {0}")]
    BodyMalformed(String),
    #[error("the body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the body is larger than this server accepts (after decompression)")]
    BodyTooLarge,
    #[error("the body's Content-Encoding is not supported; send it plain or gzip")]
    UnsupportedEncoding,
    #[error("the body did not arrive within {secs} seconds")]
    UploadTooSlow { secs: u64 },
    #[error("a batch may hold at most {max} submissions")]
    BatchTooLarge { max: usize },
    #[error("the request does not have the expected shape")]
    RequestInvalid(Vec<Detail>),
    #[error("invalid query: {0}")]
    QueryInvalid(String),
    #[error("no such route")]
    RouteNotFound,
    #[error("this download link was used already or has expired; ask for a new one")]
    LinkExpired,
    #[error("this route does not allow that method")]
    MethodNotAllowed,
    #[error("no such form")]
    FormNotFound,
    #[error("this form has no such version")]
    FormVersionUnknown,
    #[error("this form version is already published with other content")]
    FormVersionConflict,
    #[error("the schema is not a usable JSON Schema draft 2020-12: {0}")]
    SchemaInvalid(String),
    #[error(
        "the workbook cannot be published as a form; each detail names the sheet, row and column"
    )]
    WorkbookInvalid(Vec<Detail>),
    #[error("this form version was not published from a workbook; ask for its JSON Schema")]
    WorkbookNotFound,
    #[error("no such webhook")]
    WebhookNotFound,
    #[error("this webhook has no such delivery")]
    DeliveryNotFound,
    #[error("no such submission")]
    SubmissionNotFound,
    #[error("this form has no such table; see codebook.csv in the zip for its tables")]
    TableNotFound,
    #[error("this submission has no such version")]
    VersionNotFound,
    #[error("someone saved a newer version first; reload it and apply your correction again")]
    VersionStale,
    #[error("send the ETag of the version you corrected in If-Match")]
    IfMatchRequired,
    #[error("a submission with this id was already received with other content")]
    SubmissionConflict,
    #[error("the submission does not match the form")]
    ValidationFailed(Vec<Detail>),
    #[error("sign in first: this needs a valid access token (Authorization: Bearer ...)")]
    Unauthorized,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("this refresh token is not valid; sign in again")]
    InvalidRefreshToken,
    #[error("your role does not allow this")]
    Forbidden,
    #[error("this is outside the places you are assigned to")]
    OutOfScope,
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("a user with this username exists")]
    UserExists,
    #[error("no such user")]
    UserNotFound,
    #[error("no such upload (it may have been terminated or expired and swept); create a new one")]
    UploadNotFound,
    #[error("this upload expired before it was finished; create a new one")]
    UploadExpired,
    #[error(
        "Upload-Offset must be the upload's current offset, {expected}; ask with HEAD and go on from there"
    )]
    UploadOffsetMismatch { expected: u64 },
    #[error("another request is writing to this upload; try again when it has finished")]
    UploadLocked,
    #[error(
        "you have {max} unfinished uploads; finish or end one (DELETE) before starting another"
    )]
    TooManyUploads { max: usize },
    #[error("this server speaks tus 1.0.0: send Tus-Resumable: 1.0.0")]
    TusVersionUnsupported,
    #[error("header {0}")]
    HeaderInvalid(String),
    #[error("send the bytes as Content-Type: application/offset+octet-stream")]
    OffsetStreamRequired,
    #[error("send the register as Content-Type: text/csv (charset= optional)")]
    CsvRequired,
    #[error("a file may have at most {max} bytes")]
    AttachmentTooLarge { max: u64 },
    #[error("{0}")]
    AttachmentTypeMismatch(String),
    #[error("the file's bytes do not have the SHA-256 declared at creation; nothing was kept")]
    AttachmentChecksumMismatch,
    #[error("these bytes do not have the Upload-Checksum sent with them; they were not added")]
    ChunkChecksumMismatch,
    #[error("this answer already has a file with other content")]
    AttachmentConflict,
    #[error("this submission has no such file")]
    AttachmentNotFound,
    #[error("the register has problems; nothing of it was loaded")]
    RegistryInvalid(Vec<Detail>),
    #[error(
        "another import of this form's register finished first; import again if yours is the newer"
    )]
    RegistrySuperseded,
    #[error("this form has no register yet")]
    RegistryNotFound,
    #[error(
        "the register changed while you were reading it; start again from the version you have"
    )]
    RegistryChanged,
    #[error("storage: {0}")]
    Storage(#[from] StoreError),
    #[error("the database cannot be written")]
    NotReady,
    #[error("internal: {0}")]
    Internal(String),
}

impl AppError {
    /// A request-shape error about one field.
    pub fn invalid_field(path: &str, message: &str) -> Self {
        Self::RequestInvalid(vec![Detail {
            path: path.to_owned(),
            keyword: None,
            message: message.to_owned(),
            key: None,
            params: None,
        }])
    }

    /// The single source of truth for statuses and codes.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BodyMalformed(_) => (StatusCode::BAD_REQUEST, "body_malformed"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Self::UnsupportedEncoding => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_encoding",
            ),
            Self::UploadTooSlow { .. } => (StatusCode::REQUEST_TIMEOUT, "upload_too_slow"),
            Self::BatchTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"),
            Self::RequestInvalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "request_invalid"),
            Self::QueryInvalid(_) => (StatusCode::BAD_REQUEST, "query_invalid"),
            Self::RouteNotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::LinkExpired => (StatusCode::GONE, "link_expired"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::FormNotFound => (StatusCode::NOT_FOUND, "form_not_found"),
            Self::FormVersionUnknown => (StatusCode::UNPROCESSABLE_ENTITY, "form_version_unknown"),
            Self::FormVersionConflict => (StatusCode::CONFLICT, "form_version_conflict"),
            Self::SchemaInvalid(_) | Self::WorkbookInvalid(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "schema_invalid")
            }
            Self::WorkbookNotFound => (StatusCode::NOT_FOUND, "workbook_not_found"),
            Self::WebhookNotFound => (StatusCode::NOT_FOUND, "webhook_not_found"),
            Self::DeliveryNotFound => (StatusCode::NOT_FOUND, "delivery_not_found"),
            Self::SubmissionNotFound => (StatusCode::NOT_FOUND, "submission_not_found"),
            Self::TableNotFound => (StatusCode::NOT_FOUND, "table_not_found"),
            Self::VersionNotFound => (StatusCode::NOT_FOUND, "version_not_found"),
            Self::VersionStale => (StatusCode::PRECONDITION_FAILED, "version_stale"),
            Self::IfMatchRequired => (StatusCode::PRECONDITION_REQUIRED, "if_match_required"),
            Self::SubmissionConflict => (StatusCode::CONFLICT, "submission_conflict"),
            Self::ValidationFailed(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            Self::InvalidRefreshToken => (StatusCode::UNAUTHORIZED, "invalid_refresh_token"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Self::OutOfScope => (StatusCode::FORBIDDEN, "out_of_scope"),
            Self::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            Self::UserExists => (StatusCode::CONFLICT, "user_exists"),
            Self::UserNotFound => (StatusCode::NOT_FOUND, "user_not_found"),
            Self::UploadNotFound => (StatusCode::NOT_FOUND, "upload_not_found"),
            Self::UploadExpired => (StatusCode::GONE, "upload_expired"),
            Self::UploadOffsetMismatch { .. } => (StatusCode::CONFLICT, "upload_offset_mismatch"),
            Self::UploadLocked => (StatusCode::LOCKED, "upload_locked"),
            Self::TooManyUploads { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads"),
            Self::TusVersionUnsupported => {
                (StatusCode::PRECONDITION_FAILED, "tus_version_unsupported")
            }
            Self::HeaderInvalid(_) => (StatusCode::BAD_REQUEST, "header_invalid"),
            Self::OffsetStreamRequired | Self::CsvRequired => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::AttachmentTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "attachment_too_large")
            }
            Self::AttachmentTypeMismatch(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "attachment_type_mismatch",
            ),
            Self::AttachmentChecksumMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "attachment_checksum_mismatch",
            ),
            // tus 1.0's checksum extension names this status; it has no constant in `http`.
            Self::ChunkChecksumMismatch => (CHECKSUM_MISMATCH, "checksum_mismatch"),
            Self::AttachmentConflict => (StatusCode::CONFLICT, "attachment_conflict"),
            Self::AttachmentNotFound => (StatusCode::NOT_FOUND, "attachment_not_found"),
            Self::RegistryInvalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "registry_invalid"),
            Self::RegistrySuperseded => (StatusCode::CONFLICT, "registry_superseded"),
            Self::RegistryNotFound => (StatusCode::NOT_FOUND, "registry_not_found"),
            Self::RegistryChanged => (StatusCode::CONFLICT, "registry_changed"),
            Self::NotReady | Self::Storage(StoreError::Unavailable(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
            }
            Self::Storage(_) | Self::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
            }
        }
    }

    /// The `error` object of the body: `{code, message, details?}`.
    pub fn body(&self) -> ErrorObject {
        let (_, code) = self.status_and_code();
        let message = match self {
            // Never show internal causes; they are logged where they happen.
            Self::Storage(StoreError::Unavailable(_)) => Self::NotReady.to_string(),
            Self::Storage(_) | Self::Internal(_) => {
                "the server could not complete the request; it is safe to retry".to_owned()
            }
            other => other.to_string(),
        };
        let details = match self {
            Self::RequestInvalid(details)
            | Self::ValidationFailed(details)
            | Self::WorkbookInvalid(details)
            | Self::RegistryInvalid(details) => Some(details.clone()),
            _ => None,
        };
        ErrorObject {
            code,
            message,
            details,
        }
    }
}

impl From<StrictError> for AppError {
    fn from(error: StrictError) -> Self {
        match error {
            StrictError::Syntax(error) => AppError::BodyMalformed(error.to_string()),
            StrictError::Duplicate(pointer) => AppError::invalid_field(
                &pointer,
                "this key appears twice in one object; send each key once",
            ),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        match &self {
            Self::Storage(StoreError::Unavailable(_)) => {
                tracing::warn!(error = %self, "no database to write to; answered 503");
            }
            Self::Storage(_) | Self::Internal(_) => {
                tracing::error!(error = %self, "request failed inside the server");
            }
            _ => {}
        }
        let body = ErrorBody { error: self.body() };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::TooManyAttempts { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            // A standby takes some seconds to be promoted; phones and proxies wait that long.
            Self::NotReady | Self::Storage(StoreError::Unavailable(_)) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(NOT_READY_RETRY_SECS));
            }
            // The rest of the body may still be trickling in; this connection is done.
            Self::UploadTooSlow { .. } => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

/// An error with every cause under it: many libraries' own words name only what failed (a pool,
/// a request), the causes say why (which certificate was refused, which connection).
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_documented_status_and_code() {
        let cases = [
            (AppError::BodyMalformed("x".into()), 400, "body_malformed"),
            (
                AppError::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (AppError::BodyTooLarge, 413, "body_too_large"),
            (
                AppError::UnsupportedEncoding,
                415,
                "unsupported_content_encoding",
            ),
            (AppError::UploadTooSlow { secs: 1 }, 408, "upload_too_slow"),
            (AppError::BatchTooLarge { max: 1 }, 413, "batch_too_large"),
            (AppError::RequestInvalid(vec![]), 422, "request_invalid"),
            (AppError::QueryInvalid("x".into()), 400, "query_invalid"),
            (AppError::RouteNotFound, 404, "not_found"),
            (AppError::LinkExpired, 410, "link_expired"),
            (AppError::MethodNotAllowed, 405, "method_not_allowed"),
            (AppError::FormNotFound, 404, "form_not_found"),
            (AppError::FormVersionUnknown, 422, "form_version_unknown"),
            (AppError::FormVersionConflict, 409, "form_version_conflict"),
            (AppError::SchemaInvalid("x".into()), 422, "schema_invalid"),
            (AppError::WorkbookInvalid(Vec::new()), 422, "schema_invalid"),
            (AppError::WorkbookNotFound, 404, "workbook_not_found"),
            (AppError::WebhookNotFound, 404, "webhook_not_found"),
            (AppError::DeliveryNotFound, 404, "delivery_not_found"),
            (AppError::SubmissionNotFound, 404, "submission_not_found"),
            (AppError::TableNotFound, 404, "table_not_found"),
            (AppError::VersionNotFound, 404, "version_not_found"),
            (AppError::VersionStale, 412, "version_stale"),
            (AppError::IfMatchRequired, 428, "if_match_required"),
            (AppError::SubmissionConflict, 409, "submission_conflict"),
            (AppError::ValidationFailed(vec![]), 422, "validation_failed"),
            (AppError::Unauthorized, 401, "unauthorized"),
            (AppError::InvalidCredentials, 401, "invalid_credentials"),
            (AppError::InvalidRefreshToken, 401, "invalid_refresh_token"),
            (AppError::Forbidden, 403, "forbidden"),
            (AppError::OutOfScope, 403, "out_of_scope"),
            (
                AppError::TooManyAttempts {
                    retry_after_secs: 1,
                },
                429,
                "too_many_attempts",
            ),
            (AppError::UserExists, 409, "user_exists"),
            (AppError::UserNotFound, 404, "user_not_found"),
            (AppError::UploadNotFound, 404, "upload_not_found"),
            (AppError::UploadExpired, 410, "upload_expired"),
            (
                AppError::UploadOffsetMismatch { expected: 1 },
                409,
                "upload_offset_mismatch",
            ),
            (AppError::UploadLocked, 423, "upload_locked"),
            (AppError::TooManyUploads { max: 1 }, 429, "too_many_uploads"),
            (
                AppError::TusVersionUnsupported,
                412,
                "tus_version_unsupported",
            ),
            (AppError::HeaderInvalid("x".into()), 400, "header_invalid"),
            (
                AppError::OffsetStreamRequired,
                415,
                "unsupported_media_type",
            ),
            (
                AppError::AttachmentTooLarge { max: 1 },
                413,
                "attachment_too_large",
            ),
            (
                AppError::AttachmentTypeMismatch("x".into()),
                415,
                "attachment_type_mismatch",
            ),
            (
                AppError::AttachmentChecksumMismatch,
                422,
                "attachment_checksum_mismatch",
            ),
            (AppError::ChunkChecksumMismatch, 460, "checksum_mismatch"),
            (AppError::CsvRequired, 415, "unsupported_media_type"),
            (AppError::AttachmentConflict, 409, "attachment_conflict"),
            (AppError::AttachmentNotFound, 404, "attachment_not_found"),
            (AppError::RegistryInvalid(vec![]), 422, "registry_invalid"),
            (AppError::RegistrySuperseded, 409, "registry_superseded"),
            (AppError::RegistryNotFound, 404, "registry_not_found"),
            (AppError::RegistryChanged, 409, "registry_changed"),
            (AppError::NotReady, 503, "not_ready"),
            (
                AppError::Storage(StoreError::Unavailable("no primary".into())),
                503,
                "not_ready",
            ),
            (AppError::Storage(StoreError::Flush), 500, "internal_error"),
            (AppError::Internal("x".into()), 500, "internal_error"),
        ];
        for (error, status, code) in cases {
            assert_eq!(
                error.status_and_code(),
                (StatusCode::from_u16(status).unwrap(), code)
            );
            assert_eq!(error.body().code, code);
        }
    }

    #[test]
    fn internal_causes_are_not_sent_to_the_client() {
        let error = AppError::Storage(StoreError::Corrupt {
            tree: "secret_tree",
            reason: "x".into(),
        });
        assert!(!error.body().message.contains("secret_tree"));
    }

    #[test]
    fn details_are_sent_only_for_errors_that_have_them() {
        let body = |error: AppError| {
            serde_json::to_value(ErrorBody {
                error: error.body(),
            })
            .unwrap()
        };
        assert!(
            body(AppError::FormNotFound)["error"]
                .get("details")
                .is_none()
        );
        let invalid = AppError::invalid_field("/id", "must be a UUID");
        assert_eq!(body(invalid)["error"]["details"][0]["path"], "/id");
    }
}
