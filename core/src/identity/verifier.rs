//! Who-is-calling state that outlives a request: each provider's remote key set and the
//! verified-token cache, for one plugin on one VM. The gate asks it to authenticate a request
//! and whether a key-set fetch could change a refusal; the filter's root feeds it the fetches.

use super::authenticate::authenticate;
use super::cache::TokenCache;
use super::jwks::KeySet;
use super::provider::{KeySource, Provider};
use super::remote::RemoteKeys;
use super::{AuthCode, AuthError, Identity};

pub struct Verifier {
    /// Per provider index: the remote key set state (None for inline providers).
    remote: Vec<Option<RemoteKeys>>,
    tokens: TokenCache,
}

impl Verifier {
    pub fn new(providers: &[Provider], token_cache_entries: usize) -> Self {
        let remote = providers
            .iter()
            .map(|p| match &p.keys {
                KeySource::Remote(settings) => Some(RemoteKeys::new(settings.clone())),
                KeySource::Inline(_) => None,
            })
            .collect();
        Self {
            remote,
            tokens: TokenCache::new(token_cache_entries),
        }
    }

    /// Verifies the caller of a request whose headers `header` reads.
    pub fn authenticate(
        &mut self,
        providers: &[Provider],
        header: impl Fn(&str) -> Option<String>,
        now: i64,
    ) -> Result<Identity, AuthError> {
        let remote = &self.remote;
        let keys_for = |index: usize| -> Option<&KeySet> {
            let provider = providers.get(index)?;
            provider
                .inline_keys()
                .or_else(|| remote.get(index)?.as_ref()?.keys())
        };
        authenticate(providers, header, keys_for, &mut self.tokens, now)
    }

    /// The provider whose key-set fetch may turn this refusal into a verified identity: its
    /// remote keys are not loaded yet, or the token names a key a (rate-limited) refetch may
    /// bring. Asks for that fetch. `None`: the refusal stands.
    pub fn fetch_may_help(&mut self, e: &AuthError, now: i64) -> Option<usize> {
        let index = e.provider?;
        let r = self.remote.get_mut(index)?.as_mut()?;
        let worth = match e.code {
            AuthCode::KeysUnavailable => true,
            AuthCode::UnknownKey => r.pending() || r.allow_kid_refetch(now),
            _ => false,
        };
        if !worth {
            return None;
        }
        r.want();
        Some(index)
    }

    /// Whether provider `index` has a fetch asked for or under way.
    pub fn pending(&self, index: usize) -> bool {
        self.remote
            .get(index)
            .and_then(Option::as_ref)
            .is_some_and(RemoteKeys::pending)
    }

    pub fn has_remote_keys(&self) -> bool {
        self.remote.iter().any(Option::is_some)
    }

    /// The providers whose key set should be fetched now.
    pub fn due(&self, now: i64) -> Vec<usize> {
        self.remote
            .iter()
            .enumerate()
            .filter(|(_, r)| r.as_ref().is_some_and(|r| r.due(now)))
            .map(|(i, _)| i)
            .collect()
    }

    /// The remote key set state of provider `index` (None for inline providers).
    pub fn remote_mut(&mut self, index: usize) -> Option<&mut RemoteKeys> {
        self.remote.get_mut(index)?.as_mut()
    }
}
