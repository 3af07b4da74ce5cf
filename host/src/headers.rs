//! An ordered header map with Envoy's rules: keys are stored lowercase, lookups return the
//! first value, `replace` keeps one entry (Envoy `setCopy`), `remove` drops every entry, and a
//! second value for an inline header is appended to the first with "," (below).

use crate::abi::Pairs;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    pairs: Pairs,
}

impl HeaderMap {
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut map = Self::default();
        for (k, v) in pairs {
            map.add(k, v);
        }
        map
    }

    pub fn pairs(&self) -> &Pairs {
        &self.pairs
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The first value for `key`. Envoy returns only the first of repeated headers
    /// (context.cc `getHeaderMapValue`, with its TODO about concatenation).
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = key.to_ascii_lowercase();
        self.pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Adds a value. For an inline header that is already present, Envoy keeps one entry and
    /// appends the new value after a "," (source/common/http/header_map_impl.cc,
    /// `HeaderMapImpl::insertByKey`: a static-lookup hit on a set entry goes to
    /// `appendToHeader` with `delimiterByHeader`). Codecs add through the same path
    /// (`addViaMove`), and so does a filter's `addCopy`, so two `authorization` headers reach a
    /// filter as one value `a,b`. Other headers keep one entry per value.
    pub fn add(&mut self, key: &str, value: &str) {
        let key = key.to_ascii_lowercase();
        if is_inline(&key) {
            if let Some((_, existing)) = self.pairs.iter_mut().find(|(k, _)| *k == key) {
                let delimiter = if key == "cookie" { "; " } else { "," };
                if existing.is_empty() {
                    *existing = value.to_string();
                } else if !value.is_empty() {
                    existing.push_str(delimiter);
                    existing.push_str(value);
                }
                return;
            }
        }
        self.pairs.push((key, value.to_string()));
    }

    pub fn replace(&mut self, key: &str, value: &str) {
        let key = key.to_ascii_lowercase();
        match self.pairs.iter().position(|(k, _)| *k == key) {
            Some(first) => {
                self.pairs[first].1 = value.to_string();
                let mut i = 0;
                self.pairs.retain(|(k, _)| {
                    let keep = i <= first || *k != key;
                    i += 1;
                    keep
                });
            }
            None => self.pairs.push((key, value.to_string())),
        }
    }

    pub fn remove(&mut self, key: &str) {
        let key = key.to_ascii_lowercase();
        self.pairs.retain(|(k, _)| *k != key);
    }

    /// Replaces the whole map (Envoy `setHeaderMapPairs`: remove every key, add the new pairs).
    pub fn set_all(&mut self, pairs: &[(String, String)]) {
        *self = Self::from_pairs(pairs);
    }
}

/// Headers Envoy keeps in O(1) inline slots: the lists in
/// source/common/http/header_map_impl.h (`INLINE_REQ_STRING_HEADERS`,
/// `INLINE_REQ_NUMERIC_HEADERS`, `INLINE_REQ_RESP_STRING_HEADERS`,
/// `INLINE_REQ_RESP_NUMERIC_HEADERS`, `INLINE_RESP_STRING_HEADERS`) and the custom inline
/// headers Envoy's own extensions register (`authorization` by ext_authz, oauth2, basic_auth,
/// `cookie` by the router's hash policy); one list for both directions, which matters only for
/// names a direction never carries twice.
fn is_inline(key: &str) -> bool {
    const INLINE: &[&str] = &[
        ":authority",
        ":method",
        ":path",
        ":protocol",
        ":scheme",
        ":status",
        "authorization",
        "connection",
        "content-length",
        "content-type",
        "cookie",
        "date",
        "expect",
        "grpc-timeout",
        "host",
        "keep-alive",
        "location",
        "proxy-connection",
        "proxy-status",
        "server",
        "te",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "via",
        "x-client-trace-id",
        "x-forwarded-client-cert",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-request-id",
    ];
    INLINE.contains(&key) || key.starts_with("x-envoy-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_lowercased_and_first_value_wins() {
        let mut m = HeaderMap::default();
        m.add("X-A", "1");
        m.add("x-a", "2");
        m.add("set-cookie", "a=1");
        m.add("set-cookie", "b=2");
        assert_eq!(m.len(), 4, "non-inline headers keep one entry per value");
        m.remove("set-cookie");
        assert_eq!(m.get("x-A"), Some("1"));
        m.replace("x-a", "3");
        assert_eq!(m.pairs(), &vec![("x-a".to_string(), "3".to_string())]);
        m.remove("X-A");
        assert!(m.is_empty());
    }

    #[test]
    fn a_second_inline_header_is_appended_to_the_first_with_a_comma() {
        let mut m = HeaderMap::default();
        m.add("Authorization", "Bearer a");
        m.add("authorization", "Bearer b");
        m.add("cookie", "x=1");
        m.add("cookie", "y=2");
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("authorization"), Some("Bearer a,Bearer b"));
        assert_eq!(m.get("cookie"), Some("x=1; y=2"));
    }
}
