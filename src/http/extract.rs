//! Extractors that answer bad requests in our error shape instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::auth::Principal;
use crate::error::AppError;
use crate::forms::xlsform::WorkbookKind;
use crate::strict_json;

/// A JSON request body, kept as the exact (decompressed) bytes. Size-checked after decompression
/// by the route's `DefaultBodyLimit`, and it must arrive within the upload deadline.
pub struct JsonBody(pub Bytes);

impl FromRequest<AppState> for JsonBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(AppError::UnsupportedMediaType);
        }
        read_bytes(req, state).await.map(Self)
    }
}

/// The body's exact (decompressed) bytes, within the route's limit and the upload deadline.
async fn read_bytes(req: Request, state: &AppState) -> Result<Bytes, AppError> {
    // The decompression layer removes the encodings it undid; whatever is left, it could not.
    if req
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|encoding| encoding != "identity")
    {
        return Err(AppError::UnsupportedEncoding);
    }
    let deadline = state.limits.upload_deadline;
    let read = tokio::time::timeout(deadline, Bytes::from_request(req, state))
        .await
        .map_err(|_| AppError::UploadTooSlow {
            secs: deadline.as_secs(),
        })?;
    let bytes = read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::BodyTooLarge
        } else {
            AppError::BodyMalformed(rejection.body_text())
        }
    })?;
    Ok(bytes)
}

/// A form to publish, with who publishes it: only those who may publish get their body read
/// (the route admits up to a workbook's size).
pub struct PublishBody {
    pub by: Principal,
    pub form: PublishedForm,
}

/// JSON (`{id, version, title, schema}`), or an XLSForm workbook sent as `.xlsx` or `.xls` by its
/// media type.
pub enum PublishedForm {
    Json(JsonBody),
    Workbook(WorkbookKind, Bytes),
}

impl FromRequest<AppState> for PublishBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let AuthUser(by) = AuthUser::from_request_parts(&mut parts, state).await?;
        by.require(crate::auth::Permission::PublishForms)?;
        let req = Request::from_parts(parts, body);
        let workbook = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| WorkbookKind::of_media_type(&essence(v)));
        let form = match workbook {
            Some(kind) => PublishedForm::Workbook(kind, read_bytes(req, state).await?),
            None => {
                let json = JsonBody::from_request(req, state).await?;
                // The route admits workbooks' size; a JSON form keeps the usual bound.
                if json.0.len() > state.limits.max_body_bytes {
                    return Err(AppError::BodyTooLarge);
                }
                PublishedForm::Json(json)
            }
        };
        Ok(Self { by, form })
    }
}

impl JsonBody {
    /// Parses into `T`: not JSON → 400 `body_malformed`; a key repeated anywhere, or JSON of
    /// the wrong shape → 422 `request_invalid` pointing at the place.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, AppError> {
        let value = strict_json::parse(&self.0)?;
        object_required(&value)?;
        serde_path_to_error::deserialize(value).map_err(shape_error)
    }

    /// Like `parse`, for a body whose inner values are judged later one by one (a batch: each
    /// item keeps its own bytes): only the outermost keys must not repeat.
    pub fn parse_outer<T: DeserializeOwned>(&self) -> Result<T, AppError> {
        object_required(&strict_json::outer(&self.0)?)?;
        let mut deserializer = serde_json::Deserializer::from_slice(&self.0);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(shape_error)?;
        deserializer
            .end()
            .map_err(|e| AppError::BodyMalformed(e.to_string()))?;
        Ok(value)
    }
}

/// Every request body is a JSON object (serde would also read a struct from an array).
fn object_required(value: &serde_json::Value) -> Result<(), AppError> {
    if value.is_object() {
        Ok(())
    } else {
        Err(AppError::invalid_field(
            "",
            "the body must be a JSON object",
        ))
    }
}

/// A body of the wrong shape, described without ever quoting what was sent: serde's messages
/// name the value (`invalid type: integer 98765432123, expected a string`), so only the part
/// this server wrote (what it expected) is kept.
fn shape_error(error: serde_path_to_error::Error<serde_json::Error>) -> AppError {
    let mut path = pointer(error.path());
    let inner = error.into_inner();
    if !matches!(inner.classify(), serde_json::error::Category::Data) {
        return AppError::BodyMalformed(inner.to_string());
    }
    let text = inner.to_string();
    // Errors read from bytes end in a position, which adds nothing here.
    let text = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(t, _)| t);
    let expected = |text: &str| {
        text.rsplit_once(", expected ")
            .map_or_else(String::new, |(_, e)| format!(": expected {e}"))
    };
    let message = if let Some(field) = text
        .strip_prefix("missing field `")
        .and_then(|t| t.strip_suffix('`'))
    {
        // The name is one of ours.
        path = format!("{path}/{}", field.replace('~', "~0").replace('/', "~1"));
        "this field is required".to_owned()
    } else if text.starts_with("unknown field") {
        format!("not a field of this request{}", expected(text))
    } else if text.starts_with("unknown variant") {
        format!("not an accepted value{}", expected(text))
    } else if text.starts_with("invalid type") {
        format!("wrong type{}", expected(text))
    } else if text.starts_with("invalid length") {
        format!("wrong number of entries{}", expected(text))
    } else if text.starts_with("invalid value") {
        format!("not an accepted value{}", expected(text))
    } else {
        // Our own messages (from types such as `FormId` and `Timestamp`), which quote nothing.
        text.to_owned()
    };
    AppError::invalid_field(&path, &message)
}

/// A serde path as a JSON Pointer (`members[0].name` → `/members/0/name`).
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.replace('~', "~0").replace('/', "~1")),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .map(|segment| format!("/{segment}"))
        .collect()
}

/// `application/json`, with or without parameters such as `charset=utf-8`, or any `+json` type.
fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = essence(value);
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The signed-in person making the request: a valid `Authorization: Bearer` access token, or 401.
pub struct AuthUser(pub Principal);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or(AppError::Unauthorized)?;
        let mut principal = state.auth.authenticate(&state.store, token)?;
        principal.request_id = Some(request_id(&parts.headers));
        Ok(Self(principal))
    }
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// The client's `x-request-id` if it sent a sensible one, else a new UUID: it ties audit entries
/// (and log lines) to the request.
pub fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Path parameters. A path that cannot be read as them (not UTF-8, say) names nothing here:
/// 404 `not_found`, in our error shape rather than axum's plain text.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|_| AppError::RouteNotFound)
    }
}

/// Query parameters, rejected as 400 `query_invalid` in our error shape.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::try_from_uri(&parts.uri)
            .map(|Query(value)| Self(value))
            .map_err(|rejection| AppError::QueryInvalid(rejection.body_text()))
    }
}

/// A media type without its parameters, lower-case.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        username: String,
        password: String,
    }

    fn detail(body: &str) -> crate::error::Detail {
        match JsonBody(Bytes::copy_from_slice(body.as_bytes())).parse::<Login>() {
            Err(AppError::RequestInvalid(details)) => details[0].clone(),
            other => panic!("expected request_invalid, got {other:?}"),
        }
    }

    #[test]
    fn shape_errors_point_at_the_field_and_never_quote_the_value() {
        let wrong = detail(r#"{"username": 98765432123, "password": "x"}"#);
        assert_eq!(wrong.path, "/username");
        assert!(!wrong.message.contains("98765432123"), "{}", wrong.message);
        assert!(wrong.message.contains("a string"), "{}", wrong.message);

        let missing = detail(r#"{"username": "wei"}"#);
        assert_eq!(missing.path, "/password");

        let unknown = detail(r#"{"username": "wei", "password": "x", "secret-value": 1}"#);
        assert!(
            !unknown.message.contains("secret-value"),
            "{}",
            unknown.message
        );

        let twice = detail(r#"{"username": "a", "username": "b", "password": "x"}"#);
        assert_eq!(twice.path, "/username");

        let array = detail(r#"["wei", "password"]"#);
        assert_eq!(
            (array.path.as_str(), array.message.as_str()),
            ("", "the body must be a JSON object")
        );
    }

    #[test]
    fn json_content_types_are_recognised_with_parameters() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.api+json",
        ] {
            assert!(is_json(Some(&HeaderValue::from_static(ok))), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
        ] {
            assert!(!is_json(Some(&HeaderValue::from_static(bad))), "{bad}");
        }
        assert!(!is_json(None));
    }
}
