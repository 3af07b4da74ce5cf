//! Just-in-time approval, the parts the filter and the approval service share: the digest an
//! approval is bound to, the policy's `approval` section, and the protocol between them
//! (what the filter asks, what the service answers, and every way an answer can be
//! unusable, each a refusal), and the filter's check of a ticket against its rule.

pub mod digest;
pub mod excerpt;
pub mod protocol;
pub mod settings;
pub mod vouch;
