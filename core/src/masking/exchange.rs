//! Masking in one exchange: the request body (for the record, and for the model when the
//! policy says so) and the response body as it streams to the client.

use super::settings::EncodedResponses;
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
}

impl ExchangeMasking {
    /// Starts masking the request body (its masked copy goes to the record).
    pub fn start_request(&mut self, m: &Masking, content_type: Option<&str>) {
        if !m.is_off() {
            self.request = Some(BodyMasker::new(BodyKind::of(content_type)));
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
        let kind = BodyKind::of(content_type);
        if m.is_off() || kind == BodyKind::Binary {
            return ResponsePlan::Pass;
        }
        if let Some(enc) = content_encoding
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"))
        {
            return match m.encoded_responses {
                EncodedResponses::Refuse => ResponsePlan::RefuseEncoded(enc.to_string()),
                EncodedResponses::Pass => ResponsePlan::PassEncoded(enc.to_string()),
            };
        }
        self.response = Some(BodyMasker::new(kind));
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

/// Masks a piece of a body (and, at its end, releases what was held back).
fn mask(masker: &mut BodyMasker, m: &Masking, chunk: &[u8], end: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(chunk.len());
    masker.push(m, chunk, &mut out);
    if end {
        masker.finish(m, &mut out);
    }
    Some(out)
}
