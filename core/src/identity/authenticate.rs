//! From a request's headers to a verified [`Identity`]: find the token in the header each
//! provider names, choose the provider by the token's issuer, verify (or find the token in
//! the verified-token cache), and say precisely why when it fails.

use super::cache::TokenCache;
use super::jwks::KeySet;
use super::provider::Provider;
use super::token::{self, UnverifiedToken};
use super::{AuthCode, AuthError, Identity};

/// Verifies the caller of a request. `header` reads a request header; `keys_for` gives the
/// current key set of the provider at an index (`None` while a remote set is not loaded: the
/// request fails closed with `keys_unavailable`).
pub fn authenticate<'k>(
    providers: &[Provider],
    header: impl Fn(&str) -> Option<String>,
    keys_for: impl Fn(usize) -> Option<&'k KeySet>,
    cache: &mut TokenCache,
    now: i64,
) -> Result<Identity, AuthError> {
    let mut found = Vec::new();
    for (index, provider) in providers.iter().enumerate() {
        if let Some(value) = header(&provider.from_header.name) {
            let prefix = &provider.from_header.prefix;
            // The scheme in `Authorization: Bearer` is case-insensitive (RFC 7235 2.1).
            if value.len() >= prefix.len()
                && value.is_char_boundary(prefix.len())
                && value[..prefix.len()].eq_ignore_ascii_case(prefix)
            {
                // Only HTTP's optional whitespace (RFC 9110 5.6.3: SP, HTAB) surrounds the
                // token; anything else is part of it, and fails verification.
                let token = value[prefix.len()..].trim_matches([' ', '\t']);
                found.push((index, provider, token.to_string()));
            }
        }
    }
    let Some((_, _, first)) = found.first() else {
        let names: Vec<&str> = providers
            .iter()
            .map(|p| p.from_header.name.as_str())
            .collect();
        return Err(AuthError::new(
            AuthCode::TokenMissing,
            format!("no bearer token in the {} header", names.join(" or ")),
        ));
    };
    if first.is_empty() {
        return Err(AuthError::new(
            AuthCode::TokenMissing,
            "the bearer token is empty",
        ));
    }
    if let Some(identity) = cache.get(first, now) {
        return Ok(identity);
    }
    let mut last_error = None;
    for (index, provider, token) in &found {
        let parsed = match UnverifiedToken::parse(token, provider.max_token_bytes) {
            Ok(p) => p,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        let issuer = parsed.unverified_issuer();
        let fits = match (&provider.issuer, &issuer) {
            (Some(want), Some(got)) => want == got,
            (Some(_), None) => false,
            (None, _) => true,
        };
        if !fits {
            last_error = Some(AuthError::new(
                AuthCode::UnknownIssuer,
                format!(
                    "no identity provider is configured for issuer {}",
                    issuer
                        .as_deref()
                        .map(|i| format!("{i:?}"))
                        .unwrap_or_else(|| "(none)".into())
                ),
            ));
            continue;
        }
        let Some(keys) = keys_for(*index) else {
            return Err(AuthError::new(
                AuthCode::KeysUnavailable,
                format!(
                    "the keys of identity provider {:?} are not available",
                    provider.name
                ),
            )
            .for_provider(*index));
        };
        let identity =
            token::verify(token, provider, keys, now).map_err(|e| e.for_provider(*index))?;
        cache.insert(token, &identity, now);
        return Ok(identity);
    }
    Err(last_error.unwrap_or_else(|| {
        AuthError::new(
            AuthCode::UnknownIssuer,
            "no identity provider accepts this token",
        )
    }))
}
