//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of this API, generated from the
//! handlers' `#[utoipa::path]` annotations and the request and response types themselves.
//! `tests/api/openapi.rs` fails if the router and the document ever disagree about a route.
//!
//! Every operation also gets a `default` response with the error body, because every endpoint
//! can answer with one (a bad token, a body too large, a server fault); the annotations list the
//! errors worth knowing in advance. The forms' own JSON Schemas are added as components
//! (`form.<form>.v<version>`) when the document is served, so it always shows what is published.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response, ResponseBuilder, content::Content};
use utoipa::{Modify, OpenApi};

use super::{Endpoint, endpoint};
use crate::AppState;
use crate::error::{Detail, ErrorBody, ErrorObject};

pub fn endpoints() -> Vec<Endpoint> {
    vec![endpoint(Method::GET, "/api/v1/openapi.json", openapi_json)]
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "survey-server",
        description = "Smartphone survey backend: validated, durable submissions, review, cleaned datasets.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        super::ops::healthz,
        super::ops::readyz,
        super::ops::api_metrics,
        openapi_json,
        super::auth::login,
        super::auth::refresh,
        super::auth::logout,
        super::auth::change_password,
        super::users::list_users,
        super::users::create_user,
        super::users::get_user,
        super::users::update_user,
        super::forms::list_forms,
        super::forms::get_form,
        super::forms::publish_form,
        super::messages::get_messages,
        super::submissions::submit,
        super::submissions::submit_batch,
        super::submissions::list_submissions,
        super::submissions::get_submission,
        super::submissions::get_submission_raw,
        super::export::export_zip,
        super::export::export_table,
        super::indicators::indicators_json,
        super::indicators::indicators_csv,
        super::progress::progress_counts,
        super::audit::list_audit,
        super::audit::submission_audit,
        super::review::set_review,
        super::review::list_comments,
        super::review::add_comment,
        super::review::delete_submission,
        super::review::restore_submission,
        super::review::edit_submission,
        super::review::list_versions,
        super::review::get_version,
        super::review::diff_versions,
        super::backup::backup,
        super::downloads::create_link,
        super::downloads::redeem_link,
        super::uploads::options,
        super::uploads::create,
        super::uploads::head,
        super::uploads::patch,
        super::uploads::terminate,
        super::attachments::attachment,
        super::registry::import,
        super::registry::roster,
        super::registry::from_export,
        super::coverage::coverage_json,
        super::coverage::coverage_csv,
        super::coverage::missing,
        super::changes::list_changes,
        super::webhooks::create,
        super::webhooks::list,
        super::webhooks::get,
        super::webhooks::update,
        super::webhooks::delete,
        super::webhooks::deliveries,
        super::webhooks::redeliver,
    ),
    components(schemas(ErrorBody, ErrorObject, Detail, super::uploads::TusVersion)),
    modifiers(&Conventions),
    security(("bearer" = [])),
    tags(
        (name = "operations", description = "Health, readiness, metrics, this document, backups"),
        (name = "sign-in", description = "Login, token refresh, logout, password change"),
        (name = "users", description = "Accounts, roles and scopes (admin)"),
        (name = "forms", description = "Questionnaires and their versions"),
        (name = "submissions", description = "What phones send, and reading it back"),
        (name = "review", description = "Review states, comments, corrections, deletion"),
        (name = "datasets", description = "Cleaned exports and indicators"),
        (name = "audit", description = "Who did what, when"),
        (name = "registry", description = "The register of households and people a survey is to reach (建档立卡)"),
        (name = "changes", description = "New and changed submissions for other systems: the changes feed and webhooks"),
        (name = "attachments", description = "Photos, signatures and recordings: resumable uploads (tus 1.0) and reading them back"),
    )
)]
struct ApiDoc;

/// What every operation shares: the bearer scheme, and the error body as the default answer.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The access token from POST /api/v1/auth/login"))
                    .build(),
            ),
        );
        let error: RefOr<Response> = ResponseBuilder::new()
            .description("An error: see `code`. Every status not listed can occur this way.")
            .content(
                "application/json",
                Content::new(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody"))),
            )
            .into();
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
                &mut item.head,
                &mut item.options,
            ]
            .into_iter()
            .flatten()
            {
                operation
                    .responses
                    .responses
                    .entry("default".to_owned())
                    .or_insert_with(|| error.clone());
            }
        }
    }
}

/// The document as served: generated once per request (cheap), plus the published forms.
fn document(state: &AppState) -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    let schemas = &mut document["components"]["schemas"];
    for versions in state.forms.all() {
        for version in versions {
            let stored = &version.stored;
            schemas[format!("form.{}.v{}", stored.form, stored.version)] = stored.schema.clone();
        }
    }
    document
}

/// The OpenAPI 3.1 document of this server, with the JSON Schema of every published form version.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
async fn openapi_json(State(state): State<AppState>) -> Json<Value> {
    Json(document(&state))
}
