//! Masking of personal data in bodies as they stream.
//!
//! - [`detect`]: the built-in detectors, each with a validator (Luhn, SSA rules, mod 97, ...).
//! - [`custom`]: detectors a policy adds (a regex, context words, a built-in validator).
//! - [`masker`]: the streaming engine over one logical text, with a bounded hold-back.
//! - [`json`], [`sse`], [`body`]: the formats, chosen by content type; [`wide`]: UTF-16
//!   and UTF-32 bodies, masked through UTF-8.
//! - [`style`]: what a value is replaced with (`redact`, `partial`, keyed `token`).
//! - [`settings`]: the `masking` block of a policy.

pub mod body;
pub mod content_type;
pub mod custom;
pub mod detect;
pub mod exchange;
pub mod fold;
pub mod json;
pub mod masker;
pub mod scan;
pub mod settings;
pub mod sse;
pub mod style;
pub mod validate;
pub mod wide;

pub use body::{BodyKind, BodyMasker};
pub use masker::{Counts, Masker, Sink};
pub use settings::Masking;

/// A kind of personal data. The names are the configuration names (`masking.entities`) and
/// the keys of the counts in session records and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    Secret,
    Iban,
    CreditCard,
    AbaRouting,
    UsItin,
    UsSsn,
    Phone,
    IpAddress,
    Email,
    /// The n-th custom detector of the policy.
    Custom(u8),
    /// A value named by a field rule (a JSON pointer), whatever it held.
    Field,
}

impl Entity {
    /// The built-in entities, in the order that settles a tie between two values of the same
    /// length found at the same place.
    pub const BUILTIN: [Entity; 9] = [
        Entity::Secret,
        Entity::Iban,
        Entity::CreditCard,
        Entity::AbaRouting,
        Entity::UsItin,
        Entity::UsSsn,
        Entity::Phone,
        Entity::IpAddress,
        Entity::Email,
    ];

    pub fn bit(self) -> u32 {
        match self {
            Entity::Secret => 0,
            Entity::Iban => 1,
            Entity::CreditCard => 2,
            Entity::AbaRouting => 3,
            Entity::UsItin => 4,
            Entity::UsSsn => 5,
            Entity::Phone => 6,
            Entity::IpAddress => 7,
            Entity::Email => 8,
            Entity::Custom(_) => 9,
            Entity::Field => 10,
        }
    }

    /// The configuration name of a built-in entity (custom detectors have their own).
    pub fn name(self) -> &'static str {
        match self {
            Entity::Secret => "secret",
            Entity::Iban => "iban",
            Entity::CreditCard => "credit_card",
            Entity::AbaRouting => "aba_routing",
            Entity::UsItin => "us_itin",
            Entity::UsSsn => "us_ssn",
            Entity::Phone => "phone",
            Entity::IpAddress => "ip_address",
            Entity::Email => "email",
            Entity::Custom(_) => "custom",
            Entity::Field => "field",
        }
    }

    /// The label a redacted value is replaced with, e.g. `[SSN]`.
    pub fn label(self) -> &'static str {
        match self {
            Entity::Secret => "SECRET",
            Entity::Iban => "IBAN",
            Entity::CreditCard => "CREDIT_CARD",
            Entity::AbaRouting => "ABA_ROUTING",
            Entity::UsItin => "ITIN",
            Entity::UsSsn => "SSN",
            Entity::Phone => "PHONE",
            Entity::IpAddress => "IP_ADDRESS",
            Entity::Email => "EMAIL",
            Entity::Custom(_) => "CUSTOM",
            Entity::Field => "REDACTED",
        }
    }

    pub fn from_name(name: &str) -> Option<Entity> {
        Entity::BUILTIN.into_iter().find(|e| e.name() == name)
    }
}
