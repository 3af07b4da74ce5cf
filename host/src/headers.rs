//! An ordered header map with Envoy's rules: keys are stored lowercase, lookups return the
//! first value, `replace` keeps one entry (Envoy `setCopy`), `remove` drops every entry.

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

    pub fn add(&mut self, key: &str, value: &str) {
        self.pairs
            .push((key.to_ascii_lowercase(), value.to_string()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_lowercased_and_first_value_wins() {
        let mut m = HeaderMap::default();
        m.add("X-A", "1");
        m.add("x-a", "2");
        assert_eq!(m.get("x-A"), Some("1"));
        m.replace("x-a", "3");
        assert_eq!(m.pairs(), &vec![("x-a".to_string(), "3".to_string())]);
        m.remove("X-A");
        assert!(m.is_empty());
    }
}
