//! Who is calling: verifying an OIDC JWT against a provider's key set and turning its claims
//! into an [`Identity`]. Signatures are checked with jwt-compact's algorithms before any claim
//! is trusted; key selection, header and claim rules are Vigil's (see [`token`]).

pub mod authenticate;
pub mod cache;
pub mod jwks;
pub mod provider;
pub mod remote;
pub mod token;

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

/// Why a token was refused. `code` is stable (clients and tests match on it); the message
/// explains without echoing the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub code: &'static str,
    pub message: String,
    /// Index of the provider the failure belongs to, once one was chosen.
    pub provider: Option<usize>,
}

impl AuthError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
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
        write!(f, "{}: {}", self.code, self.message)
    }
}
