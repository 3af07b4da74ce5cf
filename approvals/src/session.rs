//! The approvers' sign-in routes (`/auth/...`) and the session behind the page: sign in
//! through the IdP ([`crate::signin`]), read who is signed in and the CSRF token, sign out.

use crate::api::ApiError;
use crate::signin::{
    cleared, cookie, csrf_ok, session_cookie, CSRF_HEADER, LOGIN_COOKIE, SESSION_COOKIE,
};
use crate::Service;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use vigil_core::identity::Identity;

fn now_s(s: &Service) -> i64 {
    s.clock.now_ms() / 1000
}

/// A page saying why a sign-in failed (text only), with a way to start again.
fn failed(s: &Service, why: &str) -> Response {
    s.log.line(format_args!("sign-in refused: {why}"));
    let escaped = why
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    (
        StatusCode::BAD_REQUEST,
        Html(format!(
            "<!doctype html><title>Sign-in failed</title><p id=\"signin-error\">Sign-in failed: {escaped}</p><p><a href=\"/auth/login\">Sign in again</a></p>"
        )),
    )
        .into_response()
}

/// GET /auth/login: off to the IdP.
pub async fn login(State(s): State<Arc<Service>>) -> Response {
    let Some(sign_in) = &s.sign_in else {
        return failed(&s, "this service was started without --oidc-client-id");
    };
    match sign_in.begin(&s.session_key, now_s(&s)).await {
        Ok((to, cookie)) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, to), (header::SET_COOKIE, cookie)],
        )
            .into_response(),
        Err(e) => failed(&s, &e.0),
    }
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// GET /auth/callback: the IdP's answer; on success the session cookie, and back to the page.
pub async fn callback(
    State(s): State<Arc<Service>>,
    Query(q): Query<Callback>,
    headers: HeaderMap,
) -> Response {
    let Some(sign_in) = &s.sign_in else {
        return failed(&s, "this service was started without --oidc-client-id");
    };
    if let Some(error) = q.error {
        let more = q.error_description.unwrap_or_default();
        return failed(&s, &format!("the IdP answered {error}: {more}"));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return failed(&s, "the IdP's answer has no code or state");
    };
    let Some(login) = cookie(&headers, LOGIN_COOKIE) else {
        return failed(
            &s,
            "no sign-in was started from this browser (cookie missing)",
        );
    };
    let now = now_s(&s);
    let id_token = match sign_in
        .finish(&s.session_key, &login, &code, &state, now)
        .await
    {
        Ok(t) => t,
        Err(e) => return failed(&s, &e.0),
    };
    // The same checks as any approver's token: the provider's keys, issuer, lifetime.
    let who = match s.approvers.identify_token(&id_token, now).await {
        Ok(i) => i,
        Err(e) => return failed(&s, &format!("the ID token was refused: {}", e.message)),
    };
    let max_age = who.expires_at.map_or(3600, |exp| exp - now);
    s.log.line(format_args!(
        "{} signed in",
        who.email
            .as_deref()
            .or(who.subject.as_deref())
            .unwrap_or("someone")
    ));
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    let h = response.headers_mut();
    for c in [
        session_cookie(&id_token, max_age),
        cleared(LOGIN_COOKIE, "/auth/"),
    ] {
        if let Ok(v) = c.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    response
}

/// The approver a page's session cookie names; for a change (`csrf`), only with the CSRF
/// token of that session in [`CSRF_HEADER`].
pub async fn from_cookie(
    s: &Service,
    headers: &HeaderMap,
    csrf: bool,
) -> Option<Result<(Identity, String), ApiError>> {
    let session = cookie(headers, SESSION_COOKIE)?;
    let who = match s.approvers.identify_token(&session, now_s(s)).await {
        Ok(i) => i,
        Err(e) => {
            return Some(Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "session_expired",
                format!("sign in again: {}", e.message),
            )))
        }
    };
    if csrf {
        let given = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !csrf_ok(&s.session_key, &session, given) {
            return Some(Err(ApiError(
                StatusCode::FORBIDDEN,
                "csrf_token_invalid",
                format!("a change made with the session cookie needs its {CSRF_HEADER} token"),
            )));
        }
    }
    Some(Ok((who, session)))
}

/// GET /auth/session: who the page's cookie signs in, and the CSRF token for changes; or how
/// to sign in.
pub async fn current(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let sign_in = s.sign_in.is_some();
    match from_cookie(&s, &headers, false).await {
        Some(Ok((who, session))) => Json(json!({
            "signed_in": true,
            "sign_in": sign_in,
            "approver": who.email.clone().or(who.subject.clone()),
            "groups": who.groups,
            "expires_at": who.expires_at,
            "csrf": crate::signin::csrf_token(&s.session_key, &session),
        }))
        .into_response(),
        _ => Json(json!({"signed_in": false, "sign_in": sign_in})).into_response(),
    }
}

/// POST /auth/logout: ends the page's session (with its CSRF token).
pub async fn logout(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    if let Some(Err(e)) = from_cookie(&s, &headers, true).await {
        if e.1 == "csrf_token_invalid" {
            return e.into_response();
        }
    }
    (
        [(header::SET_COOKIE, cleared(SESSION_COOKIE, "/"))],
        Json(json!({"signed_in": false})),
    )
        .into_response()
}
