//! The state of one remote key set: fetched through an Envoy cluster, cached for
//! `cache_duration_s`, refreshed ahead of expiry, refetched at most once per interval for a
//! token naming an unknown key, and never replaced by a bad answer (the last good set stays).

use super::jwks::KeySet;
use super::provider::RemoteJwks;

/// Refresh when this fraction of the cache duration has passed.
const REFRESH_AHEAD: f64 = 0.8;
/// Least time between two refetches caused by unknown `kid`s.
pub const UNKNOWN_KID_INTERVAL_S: i64 = 30;

#[derive(Debug, Clone)]
pub struct RemoteKeys {
    pub settings: RemoteJwks,
    keys: Option<KeySet>,
    fetched_at: i64,
    in_flight: bool,
    /// A fetch was asked for (held requests, an unknown kid) and not yet started.
    wanted: bool,
    last_kid_refetch: Option<i64>,
    /// Why the last fetch failed, for logs.
    pub last_error: Option<String>,
}

impl RemoteKeys {
    pub fn new(settings: RemoteJwks) -> Self {
        Self {
            settings,
            keys: None,
            fetched_at: 0,
            in_flight: false,
            wanted: false,
            last_kid_refetch: None,
            last_error: None,
        }
    }

    /// The last good key set, if one ever arrived.
    pub fn keys(&self) -> Option<&KeySet> {
        self.keys.as_ref()
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Whether a fetch should start now: asked for, none yet, or the cached set is due for
    /// refresh.
    pub fn due(&self, now: i64) -> bool {
        if self.in_flight {
            return false;
        }
        if self.wanted {
            return true;
        }
        match self.keys {
            None => true,
            Some(_) => {
                now >= self.fetched_at
                    + (self.settings.cache_duration_s as f64 * REFRESH_AHEAD) as i64
            }
        }
    }

    /// Whether a token naming an unknown key may trigger a refetch now (and notes that it did).
    pub fn allow_kid_refetch(&mut self, now: i64) -> bool {
        if self.in_flight
            || self
                .last_kid_refetch
                .is_some_and(|at| now < at + UNKNOWN_KID_INTERVAL_S)
        {
            return false;
        }
        self.last_kid_refetch = Some(now);
        self.wanted = true;
        true
    }

    /// Asks for a fetch at the next opportunity (a request is waiting for keys).
    pub fn want(&mut self) {
        self.wanted = true;
    }

    /// Whether a fetch is asked for or under way: held requests will be settled by it.
    pub fn pending(&self) -> bool {
        self.in_flight || self.wanted
    }

    pub fn started(&mut self) {
        self.in_flight = true;
        self.wanted = false;
    }

    /// Records a fetch that produced no usable answer; the previous set, if any, stays.
    pub fn failed(&mut self, why: String) {
        self.in_flight = false;
        self.wanted = false;
        self.last_error = Some(why);
    }

    /// Takes the IdP's answer: `status` is None for a reset. Returns how many keys are now
    /// usable, or why the answer was refused (the previous set, if any, stays in use).
    pub fn answered(
        &mut self,
        status: Option<u16>,
        body: &[u8],
        now: i64,
    ) -> Result<usize, String> {
        self.in_flight = false;
        let result = match status {
            None => Err("the key set request failed (reset or no healthy upstream)".to_string()),
            Some(s) if !(200..300).contains(&s) => Err(format!("the IdP answered {s}")),
            Some(_) => KeySet::parse_text(body),
        };
        match result {
            Ok(set) => {
                let n = set.keys.len();
                self.keys = Some(set);
                self.fetched_at = now;
                self.last_error = None;
                Ok(n)
            }
            Err(e) => {
                self.failed(e.clone());
                Err(e)
            }
        }
    }

    /// `(authority, path)` of the key set URI, for the callout's pseudo-headers.
    pub fn authority_and_path(&self) -> (String, String) {
        let rest = self
            .settings
            .uri
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or(&self.settings.uri);
        match rest.find('/') {
            Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
            None => (rest.to_string(), "/".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a"}]}"#;

    fn remote() -> RemoteKeys {
        RemoteKeys::new(RemoteJwks {
            cluster: "idp".into(),
            uri: "https://idp.bank.internal/oauth2/jwks".into(),
            cache_duration_s: 100,
            timeout_ms: 500,
        })
    }

    #[test]
    fn a_good_answer_is_cached_and_refreshed_ahead_of_expiry() {
        let mut r = remote();
        assert!(r.due(0));
        r.started();
        assert!(!r.due(0), "one fetch at a time");
        assert_eq!(r.answered(Some(200), JWKS.as_bytes(), 10), Ok(1));
        assert!(!r.due(89));
        assert!(r.due(90), "refresh at 80% of the cache duration");
    }

    #[test]
    fn a_bad_answer_keeps_the_last_good_set() {
        let mut r = remote();
        r.answered(Some(200), JWKS.as_bytes(), 0).unwrap();
        for (status, body) in [
            (Some(200), &b"not json"[..]),
            (Some(503), &b""[..]),
            (None, &b""[..]),
            (Some(200), &br#"{"keys":[]}"#[..]),
        ] {
            assert!(r.answered(status, body, 5).is_err());
            assert_eq!(r.keys().unwrap().keys.len(), 1);
        }
        assert!(r.last_error.is_some());
    }

    #[test]
    fn unknown_kid_refetches_are_rate_limited() {
        let mut r = remote();
        assert!(r.allow_kid_refetch(0));
        assert!(!r.allow_kid_refetch(UNKNOWN_KID_INTERVAL_S - 1));
        assert!(r.allow_kid_refetch(UNKNOWN_KID_INTERVAL_S));
    }

    #[test]
    fn the_uri_splits_into_authority_and_path() {
        assert_eq!(
            remote().authority_and_path(),
            ("idp.bank.internal".to_string(), "/oauth2/jwks".to_string())
        );
    }
}
