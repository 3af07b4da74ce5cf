//! Masking in one exchange: the request body (for the record, and for the model when the
//! policy says so) and the response body as it streams to the client.

use super::content_type::{essence, readable, rule_for, Readable, Unreadable};
use super::settings::EncodedResponses;
use super::wide::{WideCharset, WideMasker};
use super::{BodyKind, BodyMasker, Counts, Masking};
use std::collections::BTreeMap;

#[derive(Default)]
pub struct ExchangeMasking {
    request: Option<BodyMasker>,
    response: Option<BodyMasker>,
}

/// What to do with a response, decided at its headers.
pub enum ResponsePlan {
    /// Nothing to mask (masking off, a binary body, or no body).
    Pass,
    /// Mask the body: `content-length` goes, since the length may change.
    Mask,
    /// The body is compressed and cannot be read: refuse it.
    RefuseEncoded(String),
    /// Compressed, and the policy lets such bodies pass unread.
    PassEncoded(String),
    /// A type the maskers cannot read (binary, unknown, another charset, gRPC): refused.
    RefuseUnreadable(String),
    /// Such a type, and the policy names it to pass unread.
    PassUnreadable(String),
}

impl ExchangeMasking {
    /// Starts masking the request body (its masked copy goes to the record).
    pub fn start_request(&mut self, m: &Masking, content_type: Option<&str>) {
        if !m.is_off() {
            // The caller chooses the label: one that says binary (or nothing readable) does
            // not get a body copied unmasked; its format is read from its first bytes.
            let masker = match readable(content_type) {
                Readable::Kind(kind) => BodyMasker::labelled(kind),
                Readable::Wide(kind, wide) => wide_masker(kind, wide),
                Readable::Not(_) | Readable::Grpc(_) => BodyMasker::sniffing(),
            };
            self.request = Some(masker);
        }
    }

    /// Masks a piece of the request body; `None` when masking is off.
    pub fn request(&mut self, m: &Masking, chunk: &[u8], end: bool) -> Option<Vec<u8>> {
        mask(self.request.as_mut()?, m, chunk, end)
    }

    /// Decides at the response headers.
    pub fn plan_response(
        &mut self,
        m: &Masking,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) -> ResponsePlan {
        if m.is_off() {
            return ResponsePlan::Pass;
        }
        let masker = match readable(content_type) {
            Readable::Kind(kind) => BodyMasker::labelled(kind),
            Readable::Wide(kind, wide) => wide_masker(kind, wide),
            Readable::Grpc(ty) => {
                // Never rewritten as text: protobuf frames carry their own lengths.
                return match rule_for(&m.content_types, &ty) {
                    Unreadable::Pass => ResponsePlan::PassUnreadable(ty),
                    Unreadable::Refuse | Unreadable::Text => ResponsePlan::RefuseUnreadable(ty),
                };
            }
            Readable::Not(ty) => {
                let (essence, _) = essence(&ty);
                match rule_for(&m.content_types, &essence) {
                    Unreadable::Pass => return ResponsePlan::PassUnreadable(ty),
                    Unreadable::Refuse => return ResponsePlan::RefuseUnreadable(ty),
                    Unreadable::Text => BodyMasker::labelled(BodyKind::Text),
                }
            }
        };
        // Every coding applied, in order (several headers arrive joined with ",").
        let codings: Vec<&str> = content_encoding
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
            .collect();
        if !codings.is_empty() {
            let enc = codings.join(", ");
            return match m.encoded_responses {
                EncodedResponses::Refuse => ResponsePlan::RefuseEncoded(enc),
                EncodedResponses::Pass => ResponsePlan::PassEncoded(enc),
            };
        }
        self.response = Some(masker);
        ResponsePlan::Mask
    }

    pub fn masking_response(&self) -> bool {
        self.response.is_some()
    }

    /// Masks a piece of the response body; `None` when it is not being masked.
    pub fn response(&mut self, m: &Masking, chunk: &[u8], end: bool) -> Option<Vec<u8>> {
        mask(self.response.as_mut()?, m, chunk, end)
    }

    /// Values masked in both bodies, per entity name.
    pub fn counts(&self, m: &Masking) -> BTreeMap<String, u64> {
        let mut total = Counts::default();
        for masker in [&self.request, &self.response].into_iter().flatten() {
            total.merge(&masker.counts());
        }
        total.named(m)
    }
}

fn wide_masker(kind: BodyKind, wide: WideCharset) -> BodyMasker {
    BodyMasker::Wide(Box::new(WideMasker::new(wide, BodyMasker::new(kind))))
}

/// Masks a piece of a body (and, at its end, releases what was held back).
fn mask(masker: &mut BodyMasker, m: &Masking, chunk: &[u8], end: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(chunk.len());
    masker.push(m, chunk, &mut out);
    if end {
        masker.finish(m, &mut out);
    }
    Some(out)
}
