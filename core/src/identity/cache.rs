//! The verified-token cache: a client's repeated calls with the same token skip signature
//! verification. Keyed by the token's SHA-256 (the token itself is never kept), valid until
//! the token's `exp` (at most [`MAX_TTL_S`] for tokens without one), bounded to a fixed number
//! of entries with the oldest evicted first.
//!
//! Memory bound: each entry holds a 32-byte key plus the identity (provider name, issuer,
//! subject, email and groups). With the default 1024 entries and identities under 1 KiB that
//! is under 1.1 MiB per VM.

use super::Identity;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};

pub const DEFAULT_CAPACITY: usize = 1024;
/// How long a token without `exp` stays cached.
pub const MAX_TTL_S: i64 = 60;

pub struct TokenCache {
    capacity: usize,
    entries: HashMap<[u8; 32], (Identity, i64)>,
    order: VecDeque<[u8; 32]>,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    /// A cache of `capacity` entries; 0 caches nothing.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The identity of a token verified before and still valid at `now`.
    pub fn get(&mut self, token: &str, now: i64) -> Option<Identity> {
        let k = key(token);
        match self.entries.get(&k) {
            Some((identity, valid_until)) if now <= *valid_until => Some(identity.clone()),
            Some(_) => {
                self.entries.remove(&k);
                None
            }
            None => None,
        }
    }

    pub fn insert(&mut self, token: &str, identity: &Identity, now: i64) {
        if self.capacity == 0 {
            return;
        }
        let k = key(token);
        let valid_until = identity
            .expires_at
            .unwrap_or(now + MAX_TTL_S)
            .min(now + 24 * 3600);
        if self
            .entries
            .insert(k, (identity.clone(), valid_until))
            .is_none()
        {
            self.order.push_back(k);
        }
        while self.entries.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
        // Keys evicted as expired linger in `order`; drop them when it grows past twice the
        // capacity so it stays bounded too.
        if self.order.len() > 2 * self.capacity {
            let entries = &self.entries;
            self.order.retain(|k| entries.contains_key(k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(exp: Option<i64>) -> Identity {
        Identity {
            provider: "p".into(),
            issuer: None,
            subject: Some("alice".into()),
            email: None,
            groups: vec![],
            expires_at: exp,
        }
    }

    #[test]
    fn a_cached_token_is_valid_until_its_exp() {
        let mut cache = TokenCache::new(4);
        cache.insert("t", &who(Some(100)), 10);
        assert!(cache.get("t", 100).is_some());
        assert!(cache.get("t", 101).is_none());
        assert!(cache.is_empty(), "expired entries are dropped on lookup");
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_oldest() {
        let mut cache = TokenCache::new(2);
        for t in ["a", "b", "c"] {
            cache.insert(t, &who(Some(1000)), 0);
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a", 1).is_none());
        assert!(cache.get("c", 1).is_some());
    }

    #[test]
    fn tokens_without_exp_are_cached_briefly() {
        let mut cache = TokenCache::new(2);
        cache.insert("t", &who(None), 0);
        assert!(cache.get("t", MAX_TTL_S).is_some());
        assert!(cache.get("t", MAX_TTL_S + 1).is_none());
    }
}
