//! Sign-in: login, refresh, logout, and changing one's own password. Issue 3 "Login and tokens".

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode};
use ipnet::IpNet;
use serde::Deserialize;
use tracing::Instrument;
use utoipa::ToSchema;

use super::extract::{AuthUser, JsonBody, request_id};
use super::{Endpoint, endpoint};
use crate::AppState;
use crate::auth::Session;
use crate::error::AppError;
use crate::error::ErrorBody;
use crate::metrics::LoginOutcome;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::POST, "/api/v1/auth/login", login),
        endpoint(Method::POST, "/api/v1/auth/refresh", refresh),
        endpoint(Method::POST, "/api/v1/auth/logout", logout),
        endpoint(Method::POST, "/api/v1/auth/password", change_password),
    ]
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    /// 2 to 32 characters; any other name is refused like a wrong password.
    username: String,
    password: String,
}

/// `POST /api/v1/auth/login`: `{username, password}` → a session.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "sign-in", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = Session),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`; see Retry-After", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Json<Session>, AppError> {
    let request: LoginRequest = body.parse()?;
    let request_id = Some(request_id(&headers));
    let address = client_address(peer.ip(), &headers, &state.trusted_proxies);
    let (auth, store) = (state.auth.clone(), state.store.clone());
    let session = to_the_end(async move {
        auth.login(
            &store,
            &request.username,
            &request.password,
            address,
            request_id,
        )
        .await
    })
    .await;
    let outcome = match &session {
        Ok(_) => Some(LoginOutcome::Success),
        Err(AppError::InvalidCredentials) => Some(LoginOutcome::Failure),
        Err(AppError::TooManyAttempts { .. }) => Some(LoginOutcome::Throttled),
        // A server fault is neither: it shows in the request counts as a 500.
        Err(_) => None,
    };
    if let Some(outcome) = outcome {
        state.metrics.login(outcome);
    }
    Ok(Json(session?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

/// `POST /api/v1/auth/refresh`: rotate the refresh token; a reused one revokes its whole family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "sign-in", security(()),
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair; the old refresh token is spent", body = Session),
        (status = 401, description = "`invalid_refresh_token`", body = ErrorBody),
    ))]
async fn refresh(State(state): State<AppState>, body: JsonBody) -> Result<Json<Session>, AppError> {
    let request: RefreshRequest = body.parse()?;
    Ok(Json(
        state
            .auth
            .refresh(&state.store, &request.refresh_token)
            .await?,
    ))
}

/// `POST /api/v1/auth/logout`: end the login of the access token used (and the refresh token's,
/// if it is another of the same person's).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "sign-in",
    request_body = RefreshRequest,
    responses((status = 204, description = "That login's access and refresh tokens stop working at once")))]
async fn logout(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    body: JsonBody,
) -> Result<StatusCode, AppError> {
    let request: RefreshRequest = body.parse()?;
    state
        .auth
        .logout(&state.store, &me, &request.refresh_token)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordRequest {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/password`: change one's own password. Every other session ends; the
/// answer is a fresh session so this phone stays signed in.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "sign-in",
    request_body = PasswordRequest,
    responses(
        (status = 200, description = "A fresh session; every other session ended", body = Session),
        (status = 422, description = "Wrong current password, or a weak new one", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (wrong current passwords count like failed logins); see Retry-After", body = ErrorBody),
    ))]
async fn change_password(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Json<Session>, AppError> {
    let request: PasswordRequest = body.parse()?;
    let address = client_address(peer.ip(), &headers, &state.trusted_proxies);
    let (auth, store) = (state.auth.clone(), state.store.clone());
    let session = to_the_end(async move {
        auth.change_password(
            &store,
            &me,
            &request.current_password,
            &request.new_password,
            address,
        )
        .await
    })
    .await?;
    Ok(Json(session))
}

/// Runs a password check to its end even if the client goes away: a guess whose answer nobody
/// waits for is still hashed, so it must still be counted by the throttle and written to the
/// audit log like any other.
async fn to_the_end<T: Send + 'static>(
    check: impl Future<Output = Result<T, AppError>> + Send + 'static,
) -> Result<T, AppError> {
    tokio::spawn(check.instrument(tracing::Span::current()))
        .await
        .map_err(|e| AppError::Internal(format!("a password check stopped: {e}")))?
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the right-most address
/// in `X-Forwarded-For` that is not itself a trusted proxy (the left part is the client's to forge).
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    if !is_trusted(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .rev()
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .find(|hop| !is_trusted(hop))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy_and_only_its_right_end() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let phone: IpAddr = "203.0.113.7".parse().unwrap();
        let trusted = [IpNet::from(proxy)];
        let headers = forwarded("10.9.9.9, 203.0.113.7");

        assert_eq!(client_address(proxy, &headers, &trusted), phone);
        assert_eq!(
            client_address(phone, &forwarded("10.9.9.9"), &trusted),
            phone,
            "a client cannot name itself someone else"
        );
        assert_eq!(
            client_address(proxy, &forwarded("127.0.0.1, garbage"), &trusted),
            proxy
        );
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
    }

    #[test]
    fn a_trusted_range_covers_every_proxy_in_it_and_its_hops() {
        let network: IpNet = "172.30.0.0/24".parse().unwrap();
        let caddy: IpAddr = "172.30.0.5".parse().unwrap();
        let headers = forwarded("203.0.113.7, 172.30.0.9");
        assert_eq!(
            client_address(caddy, &headers, &[network]),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        let outsider: IpAddr = "172.31.0.5".parse().unwrap();
        assert_eq!(client_address(outsider, &headers, &[network]), outsider);
    }
}
