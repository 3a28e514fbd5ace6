//! The message catalogue: the words of validation messages, for the app to say offline exactly
//! what the server says (`src/forms/messages.rs`; README "API in brief").

use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::ApiQuery;
use super::forms::json_with_etag;
use super::submissions::accept_language;
use super::{Endpoint, endpoint};
use crate::error::{AppError, ErrorBody};
use crate::forms::messages::{self, Catalogue, Lang};

pub fn endpoints() -> Vec<Endpoint> {
    vec![endpoint(Method::GET, "/api/v1/messages", get_messages)]
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LangQuery {
    /// `zh-CN` or `en`; without it, `Accept-Language` chooses (Chinese when it names neither).
    lang: Option<Lang>,
}

/// `GET /api/v1/messages`: every validation message key with its template, and how a field is
/// named and a message framed. No token: it holds no data. The app caches it and revalidates
/// with `If-None-Match`.
#[utoipa::path(get, path = "/api/v1/messages", tag = "forms", security(()),
    params(LangQuery, ("If-None-Match" = Option<String>, Header, description = "An ETag from before")),
    responses(
        (status = 200, description = "The catalogue of one language: a detail's `message` is `field.message` filled with the field's name and `messages[key]` filled with its `params`", body = Catalogue,
         headers(("ETag" = String, description = "Send back in If-None-Match"), ("Cache-Control" = String, description = "`no-cache`: ask again, with the ETag, before using a cached copy"))),
        (status = 304, description = "Unchanged since that ETag"),
        (status = 400, description = "`query_invalid`: `lang` is neither `zh-CN` nor `en`", body = ErrorBody),
    ))]
async fn get_messages(
    ApiQuery(query): ApiQuery<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let lang = query
        .lang
        .unwrap_or_else(|| Lang::negotiate(accept_language(&headers), Some("zh-CN")));
    let mut response = json_with_etag(&messages::catalogue(lang), &headers)?;
    let cache = response.headers_mut();
    cache.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    cache.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    Ok(response)
}
