//! Who is calling: verifying an OIDC JWT against a provider's key set and turning its claims
//! into an [`Identity`]. Signatures are checked with jwt-compact's algorithms before any claim
//! is trusted; key selection, header and claim rules are Vigil's (see [`token`]).

pub mod authenticate;
pub mod cache;
pub mod jwks;
pub mod provider;
pub mod remote;
pub mod token;
pub mod verifier;

use serde::{Deserialize, Serialize};
use std::fmt;

/// A verified caller, as it goes into the session record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The provider (`identity.providers[].name`) that verified the token.
    pub provider: String,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    /// `exp` of the token, seconds since the epoch, when it has one.
    pub expires_at: Option<i64>,
}

impl Identity {
    /// Whether the caller is in the group a policy names. `provider:group` names a group of
    /// one provider (`providers` are the policy's provider names): only a token that provider
    /// verified is in it, whatever another provider's token claims, including a literal
    /// `provider:group`. A plain `group` is that group at any provider.
    pub fn member_of(&self, spec: &str, providers: &[String]) -> bool {
        match spec.split_once(':') {
            Some((p, g)) if providers.iter().any(|n| n == p) => {
                self.provider == p && self.groups.iter().any(|x| x == g)
            }
            _ => self.groups.iter().any(|x| x == spec),
        }
    }
}

/// Why a token was refused, as a stable code (clients and tests match on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthCode {
    AlgorithmNotAllowed,
    BadSignature,
    ClaimsInvalid,
    CritUnsupported,
    ExpRequired,
    /// The token's groups were too many to carry: Microsoft Entra ID replaces the `groups`
    /// claim with `_claim_names`/`_claim_sources` ("overage"). Treating the caller as in no
    /// group would break group-based access silently; refused instead.
    GroupsOverage,
    HeaderInvalid,
    KeyNotForAlgorithm,
    KeysUnavailable,
    /// The approval service was started without identity providers to verify approvers.
    NoProviders,
    TokenExpired,
    TokenMalformed,
    TokenMissing,
    TokenNotYetValid,
    TokenTooLarge,
    UnknownIssuer,
    UnknownKey,
    WrongAudience,
    WrongIssuer,
}

impl AuthCode {
    /// The code in the 401's error body, `WWW-Authenticate` and the record.
    pub fn code(self) -> &'static str {
        match self {
            AuthCode::AlgorithmNotAllowed => "algorithm_not_allowed",
            AuthCode::BadSignature => "bad_signature",
            AuthCode::ClaimsInvalid => "claims_invalid",
            AuthCode::CritUnsupported => "crit_unsupported",
            AuthCode::ExpRequired => "exp_required",
            AuthCode::GroupsOverage => "groups_overage",
            AuthCode::HeaderInvalid => "header_invalid",
            AuthCode::KeyNotForAlgorithm => "key_not_for_algorithm",
            AuthCode::KeysUnavailable => "keys_unavailable",
            AuthCode::NoProviders => "no_providers",
            AuthCode::TokenExpired => "token_expired",
            AuthCode::TokenMalformed => "token_malformed",
            AuthCode::TokenMissing => "token_missing",
            AuthCode::TokenNotYetValid => "token_not_yet_valid",
            AuthCode::TokenTooLarge => "token_too_large",
            AuthCode::UnknownIssuer => "unknown_issuer",
            AuthCode::UnknownKey => "unknown_key",
            AuthCode::WrongAudience => "wrong_audience",
            AuthCode::WrongIssuer => "wrong_issuer",
        }
    }
}

/// Why a token was refused. The message explains without echoing the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub code: AuthCode,
    pub message: String,
    /// Index of the provider the failure belongs to, once one was chosen.
    pub provider: Option<usize>,
}

impl AuthError {
    pub fn new(code: AuthCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            provider: None,
        }
    }

    pub(crate) fn for_provider(mut self, index: usize) -> Self {
        self.provider = Some(index);
        self
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.code(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(provider: &str, groups: &[&str]) -> Identity {
        Identity {
            provider: provider.into(),
            issuer: None,
            subject: Some("x".into()),
            email: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            expires_at: None,
        }
    }

    #[test]
    fn a_scoped_group_is_one_providers_and_a_plain_one_anyones() {
        let providers = ["corp".to_string(), "partner".to_string()];
        let bank = from("corp", &["risk"]);
        let partner = from("partner", &["risk", "corp:risk"]);
        assert!(bank.member_of("corp:risk", &providers));
        assert!(
            !partner.member_of("corp:risk", &providers),
            "a literal claim is not the scope"
        );
        assert!(bank.member_of("risk", &providers) && partner.member_of("risk", &providers));
        // A prefix that names no provider is part of the group's name.
        assert!(from("corp", &["realm:risk"]).member_of("realm:risk", &providers));
    }
}
