//! Approvers sign in through the IdP, never by pasting a token: OpenID Connect's
//! authorization code flow with PKCE (S256), the endpoints found by discovery from the
//! issuer of one of the policy's providers, the ID token verified like any approver's token
//! (the provider's keys, issuer, lifetime, groups) plus its audience (our client id) and the
//! nonce of this sign-in. The session is the ID token itself in a cookie (HttpOnly, Secure,
//! SameSite=Strict), so any replica verifies it without shared state and it ends when the
//! token does; decisions made with the cookie also carry a CSRF token (an HMAC of the session
//! under the service's session key) in `x-vigil-csrf`. The API keeps bearer tokens.
//!
//! The state of a sign-in in progress (state, nonce, PKCE verifier) travels in a short-lived
//! cookie signed with the session key, so the callback may land on another replica. That
//! cookie is SameSite=Lax: the IdP's redirect back is a cross-site navigation.

use crate::auth::same_secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The cookie holding an approver's session (their ID token).
pub const SESSION_COOKIE: &str = "vigil_session";
/// The cookie holding a sign-in in progress.
pub const LOGIN_COOKIE: &str = "vigil_login";
/// The header a cookie-authenticated decision carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-vigil-csrf";
/// How long a sign-in may take at the IdP.
const LOGIN_TTL_S: i64 = 600;

/// How the service signs approvers in.
#[derive(Debug, Clone)]
pub struct SignInOptions {
    /// The IdP's issuer: one of the policy's providers.
    pub issuer: String,
    pub client_id: String,
    /// For a confidential client (sent with HTTP Basic); PKCE is used either way.
    pub client_secret: Option<String>,
    /// Where the IdP sends approvers back (`<ui_url>/auth/callback`).
    pub redirect_uri: String,
    pub scopes: String,
}

/// The IdP's endpoints, from its discovery document.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

/// A sign-in in progress, as its cookie carries it.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    /// Unix seconds after which the sign-in is refused.
    until: i64,
}

pub struct SignIn {
    pub options: SignInOptions,
    discovery: tokio::sync::OnceCell<Discovery>,
    http: reqwest::Client,
}

/// Why a sign-in failed: shown to the approver, logged by the service.
#[derive(Debug)]
pub struct SignInError(pub String);

impl std::fmt::Display for SignInError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail<T>(why: impl Into<String>) -> Result<T, SignInError> {
    Err(SignInError(why.into()))
}

/// 32 random bytes, base64url: states, nonces and PKCE verifiers (RFC 7636 §4.1 asks for 43
/// to 128 characters of high entropy).
fn random() -> String {
    let mut bytes = [0u8; 32];
    // Without randomness a sign-in could be replayed; refuse rather than use zeros.
    if getrandom::fill(&mut bytes).is_err() {
        return String::new();
    }
    B64.encode(bytes)
}

/// HMAC-SHA-256 of `label.data`, base64url; empty (matching nothing) without a key.
fn mac(key: &[u8], label: &str, data: &[u8]) -> String {
    if key.is_empty() {
        return String::new();
    }
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    m.update(label.as_bytes());
    m.update(b".");
    m.update(data);
    B64.encode(m.finalize().into_bytes())
}

/// The CSRF token of a session: only the service (holding the key) can make it, and only a
/// page that read `/auth/session` knows it.
pub fn csrf_token(session_key: &[u8], session: &str) -> String {
    mac(session_key, "csrf", session.as_bytes())
}

/// Whether `given` is the CSRF token of `session`.
pub fn csrf_ok(session_key: &[u8], session: &str, given: &str) -> bool {
    let want = csrf_token(session_key, session);
    !want.is_empty() && same_secret(want.as_bytes(), given.as_bytes())
}

/// The value of cookie `name` in a request's headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// The claims of a JWT's payload, unverified (the signature is checked by the caller).
fn claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&B64.decode(payload).ok()?).ok()
}

impl SignIn {
    pub fn new(options: SignInOptions) -> Self {
        Self {
            options,
            discovery: tokio::sync::OnceCell::new(),
            http: reqwest::Client::new(),
        }
    }

    /// The IdP's endpoints, fetched once from `<issuer>/.well-known/openid-configuration`.
    async fn discovery(&self) -> Result<&Discovery, SignInError> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.options.issuer.trim_end_matches('/')
                );
                let d: Discovery = self
                    .http
                    .get(&url)
                    .timeout(std::time::Duration::from_secs(10))
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| SignInError(format!("discovery at {url}: {e}")))?
                    .json()
                    .await
                    .map_err(|e| SignInError(format!("discovery at {url}: {e}")))?;
                // OpenID Connect Discovery §4.3: the document's issuer is the one asked.
                if d.issuer != self.options.issuer {
                    return fail(format!(
                        "discovery at {url} names issuer {:?}, not {:?}",
                        d.issuer, self.options.issuer
                    ));
                }
                Ok(d)
            })
            .await
    }

    /// Starts a sign-in: where to send the browser, and the cookie that remembers it.
    pub async fn begin(&self, key: &[u8], now_s: i64) -> Result<(String, String), SignInError> {
        let d = self.discovery().await?;
        let pending = Pending {
            state: random(),
            nonce: random(),
            verifier: random(),
            until: now_s + LOGIN_TTL_S,
        };
        if pending.state.is_empty() || pending.verifier.is_empty() {
            return fail("no randomness for the sign-in");
        }
        let challenge = B64.encode(Sha256::digest(pending.verifier.as_bytes()));
        let mut url = reqwest::Url::parse(&d.authorization_endpoint)
            .map_err(|e| SignInError(format!("authorization endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.options.client_id)
            .append_pair("redirect_uri", &self.options.redirect_uri)
            .append_pair("scope", &self.options.scopes)
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let body = B64.encode(serde_json::to_vec(&pending).unwrap_or_default());
        let cookie = format!(
            "{LOGIN_COOKIE}={body}.{}; HttpOnly; Secure; SameSite=Lax; Path=/auth/; Max-Age={LOGIN_TTL_S}",
            mac(key, "login", body.as_bytes())
        );
        Ok((url.to_string(), cookie))
    }

    /// Reads the sign-in cookie back: refused when forged, expired or for another state.
    fn pending(key: &[u8], cookie: &str, state: &str, now_s: i64) -> Result<Pending, SignInError> {
        let Some((body, sig)) = cookie.split_once('.') else {
            return fail("the sign-in cookie is malformed; start again");
        };
        let want = mac(key, "login", body.as_bytes());
        if want.is_empty() || !same_secret(want.as_bytes(), sig.as_bytes()) {
            return fail("the sign-in cookie is not this service's; start again");
        }
        let pending: Pending = B64
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| SignInError("the sign-in cookie is unreadable".into()))?;
        if now_s > pending.until {
            return fail("the sign-in took too long; start again");
        }
        if !same_secret(pending.state.as_bytes(), state.as_bytes()) {
            return fail("the IdP answered for another sign-in (state mismatch)");
        }
        Ok(pending)
    }

    /// Finishes a sign-in: swaps the code (with the PKCE verifier) for tokens, and answers
    /// the ID token once its audience and nonce are this sign-in's. The caller verifies it
    /// as an approver's token.
    pub async fn finish(
        &self,
        key: &[u8],
        login_cookie: &str,
        code: &str,
        state: &str,
        now_s: i64,
    ) -> Result<String, SignInError> {
        let pending = Self::pending(key, login_cookie, state, now_s)?;
        let d = self.discovery().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.options.redirect_uri.as_str()),
            ("client_id", self.options.client_id.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        let mut request = self
            .http
            .post(&d.token_endpoint)
            .timeout(std::time::Duration::from_secs(10));
        if let Some(secret) = &self.options.client_secret {
            request = request.basic_auth(&self.options.client_id, Some(secret));
            form.retain(|(k, _)| *k != "client_id");
        }
        let answer = request
            .form(&form)
            .send()
            .await
            .map_err(|e| SignInError(format!("token endpoint: {e}")))?;
        let status = answer.status();
        let tokens: serde_json::Value = answer
            .json()
            .await
            .map_err(|e| SignInError(format!("token endpoint answered {status}: {e}")))?;
        if !status.is_success() {
            return fail(format!(
                "token endpoint answered {status}: {}",
                tokens["error"].as_str().unwrap_or("no error code")
            ));
        }
        let Some(id_token) = tokens["id_token"].as_str() else {
            return fail("the IdP sent no ID token (is the openid scope allowed?)");
        };
        let c = claims(id_token).ok_or_else(|| SignInError("the ID token is unreadable".into()))?;
        let aud_ok = match &c["aud"] {
            serde_json::Value::String(a) => *a == self.options.client_id,
            serde_json::Value::Array(list) => list
                .iter()
                .any(|a| a.as_str() == Some(&self.options.client_id)),
            _ => false,
        };
        if !aud_ok {
            return fail("the ID token is not for this service (audience)");
        }
        if c["nonce"].as_str() != Some(pending.nonce.as_str()) {
            return fail("the ID token is for another sign-in (nonce mismatch)");
        }
        if c["iss"].as_str() != Some(self.options.issuer.as_str()) {
            return fail("the ID token comes from another issuer");
        }
        Ok(id_token.to_string())
    }
}

/// The session cookie for a verified ID token valid until `exp` (Unix seconds).
pub fn session_cookie(id_token: &str, max_age_s: i64) -> String {
    format!(
        "{SESSION_COOKIE}={id_token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        max_age_s.max(0)
    )
}

/// Clears a cookie.
pub fn cleared(name: &str, path: &str) -> String {
    format!("{name}=; HttpOnly; Secure; SameSite=Strict; Path={path}; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_cookie_is_refused_when_forged_late_or_for_another_state() {
        let key = b"0123456789abcdef0123456789abcdef";
        let p = Pending {
            state: "s".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            until: 100,
        };
        let body = B64.encode(serde_json::to_vec(&p).unwrap());
        let good = format!("{body}.{}", mac(key, "login", body.as_bytes()));
        assert!(SignIn::pending(key, &good, "s", 50).is_ok());
        assert!(SignIn::pending(key, &good, "other", 50).is_err());
        assert!(SignIn::pending(key, &good, "s", 101).is_err());
        let forged = format!(
            "{body}.{}",
            mac(
                b"another key entirely............",
                "login",
                body.as_bytes()
            )
        );
        assert!(SignIn::pending(key, &forged, "s", 50).is_err());
        assert!(SignIn::pending(key, "garbage", "s", 50).is_err());
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session_and_key() {
        let key = b"0123456789abcdef0123456789abcdef";
        let t = csrf_token(key, "session-a");
        assert!(csrf_ok(key, "session-a", &t));
        assert!(!csrf_ok(key, "session-b", &t));
        assert!(!csrf_ok(
            b"another key entirely............",
            "session-a",
            &t
        ));
        assert!(!csrf_ok(key, "session-a", ""));
    }
}
