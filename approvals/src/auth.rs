//! Who is calling the service. Approvers present their own JWT, verified against the same
//! identity providers as the filter (the policy file's `identity.providers`): inline key
//! sets, or remote ones fetched from the IdP's `uri` and cached for `cache_duration_s`.
//! The gateway presents the filter key (`x-vigil-filter-key`), compared in constant time.

use std::sync::Mutex;
use vigil_core::identity::jwks::MAX_JWKS_BYTES;
use vigil_core::identity::provider::Provider;
use vigil_core::identity::verifier::Verifier;
use vigil_core::identity::{AuthCode, AuthError, Identity};

pub struct Approvers {
    providers: Vec<Provider>,
    /// The providers' names, which scope approver groups (`corp-idp:risk-officers`).
    names: Vec<String>,
    /// Remote key sets and the verified-token cache, as the filter keeps them.
    verifier: Mutex<Verifier>,
    http: reqwest::Client,
    log: crate::notice::Log,
}

impl Approvers {
    pub fn new(providers: Vec<Provider>, log: crate::notice::Log) -> Self {
        Self {
            log,
            verifier: Mutex::new(Verifier::new(&providers, 1024)),
            names: providers.iter().map(|p| p.name.clone()).collect(),
            providers,
            http: reqwest::Client::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Fetches the remote key sets that are due (none yet, or past their refresh time).
    async fn refresh(&self, now: i64) {
        let due: Vec<(usize, String, u64)> = match self.verifier.lock() {
            Ok(mut verifier) => verifier
                .due(now)
                .into_iter()
                .filter_map(|i| {
                    let r = verifier.remote_mut(i)?;
                    r.started();
                    Some((i, r.settings.uri.clone(), r.settings.timeout_ms))
                })
                .collect(),
            Err(_) => return,
        };
        for (i, uri, timeout_ms) in due {
            let answer = self
                .http
                .get(&uri)
                .timeout(std::time::Duration::from_millis(timeout_ms.max(1000)))
                .send()
                .await;
            let (status, body) = match answer {
                Ok(r) => {
                    let status = r.status().as_u16();
                    match r.bytes().await {
                        Ok(b) if b.len() <= MAX_JWKS_BYTES => (Some(status), b.to_vec()),
                        _ => (None, Vec::new()),
                    }
                }
                Err(_) => (None, Vec::new()),
            };
            if let Ok(mut verifier) = self.verifier.lock() {
                if let Some(r) = verifier.remote_mut(i) {
                    if let Err(e) = r.answered(status, &body, now) {
                        self.log
                            .line(format_args!("key set of provider {i} refused: {e}"));
                    }
                }
            }
        }
    }

    /// Verifies an approver's request headers.
    pub async fn identify(
        &self,
        header: impl Fn(&str) -> Option<String>,
        now_s: i64,
    ) -> Result<Identity, AuthError> {
        if self.providers.is_empty() {
            return Err(AuthError::new(
                AuthCode::NoProviders,
                "the service was started without identity providers (--policy), so nobody can decide",
            ));
        }
        self.refresh(now_s).await;
        let mut verifier = self
            .verifier
            .lock()
            .map_err(|_| AuthError::new(AuthCode::KeysUnavailable, "key cache poisoned"))?;
        verifier.authenticate(&self.providers, header, now_s)
    }
}

impl Approvers {
    /// Verifies a token given on its own (a session's ID token), as it would be verified in
    /// the header each provider reads it from.
    pub async fn identify_token(&self, token: &str, now_s: i64) -> Result<Identity, AuthError> {
        let presented: Vec<(String, String)> = self
            .providers
            .iter()
            .map(|p| {
                (
                    p.from_header.name.to_ascii_lowercase(),
                    format!("{}{token}", p.from_header.prefix),
                )
            })
            .collect();
        self.identify(
            |name| {
                presented
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            },
            now_s,
        )
        .await
    }
}

/// Compares two secrets without leaking where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
