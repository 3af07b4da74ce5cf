// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! UTF-16 and UTF-32 bodies (a zero byte beside every digit when read byte by byte) are
//! masked through UTF-8 and reach the client in their own encoding: labelled by `charset=`
//! on answers, recognised from their first bytes on requests; cut anywhere, even inside a
//! code unit or a surrogate pair.

use vigil_core::masking::body::{BodyKind, BodyMasker};
use vigil_core::masking::exchange::{ExchangeMasking, ResponsePlan};
use vigil_core::masking::wide::{Wide, WideCharset, WideMasker};
use vigil_core::masking::Masking;

fn encode(s: &str, wide: Wide) -> Vec<u8> {
    match wide {
        Wide::Utf16Le => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        Wide::Utf16Be => s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        Wide::Utf32Le => s.chars().flat_map(|c| (c as u32).to_le_bytes()).collect(),
        Wide::Utf32Be => s.chars().flat_map(|c| (c as u32).to_be_bytes()).collect(),
    }
}

fn decode(b: &[u8], wide: Wide) -> String {
    match wide {
        Wide::Utf16Le | Wide::Utf16Be => {
            let units: Vec<u16> = b
                .chunks_exact(2)
                .map(|p| {
                    if wide == Wide::Utf16Le {
                        u16::from_le_bytes([p[0], p[1]])
                    } else {
                        u16::from_be_bytes([p[0], p[1]])
                    }
                })
                .collect();
            String::from_utf16(&units).unwrap()
        }
        Wide::Utf32Le | Wide::Utf32Be => b
            .chunks_exact(4)
            .map(|q| {
                let q = [q[0], q[1], q[2], q[3]];
                char::from_u32(if wide == Wide::Utf32Le {
                    u32::from_le_bytes(q)
                } else {
                    u32::from_be_bytes(q)
                })
                .unwrap()
            })
            .collect(),
    }
}

fn masked_in_chunks(charset: WideCharset, kind: BodyKind, body: &[u8], size: usize) -> Vec<u8> {
    let m = Masking::default();
    let mut w = BodyMasker::Wide(Box::new(WideMasker::new(charset, BodyMasker::new(kind))));
    let mut out = Vec::new();
    for c in body.chunks(size) {
        w.push(&m, c, &mut out);
    }
    w.finish(&m, &mut out);
    out
}

const ALL: [Wide; 4] = [Wide::Utf16Le, Wide::Utf16Be, Wide::Utf32Le, Wide::Utf32Be];

#[test]
fn a_wide_body_is_masked_in_its_own_encoding_however_it_is_cut() {
    // An emoji (a surrogate pair in UTF-16) right before the value, and one inside the text.
    let bodies = [
        (BodyKind::Text, "héllo 😀4111 1111 1111 1111 and SSN 078-05-1123 😀".to_string()),
        (
            BodyKind::Json,
            r#"{"choices":[{"message":{"content":"card 4111 1111 1111 1111 😀"}}]}"#.to_string(),
        ),
        (
            BodyKind::EventStream,
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"card 4111 11\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"11 1111 1111\"}}]}\n\n".to_string(),
        ),
    ];
    for wide in ALL {
        for (kind, text) in &bodies {
            let body = encode(text, wide);
            let whole = masked_in_chunks(WideCharset::Fixed(wide), *kind, &body, body.len());
            for size in [1, 2, 3, 5] {
                assert_eq!(
                    masked_in_chunks(WideCharset::Fixed(wide), *kind, &body, size),
                    whole,
                    "{wide:?} {kind:?} in chunks of {size}"
                );
            }
            let got = decode(&whole, wide);
            assert!(
                !got.contains("4111") && !got.contains("1111"),
                "{wide:?}: {got}"
            );
            assert!(!got.contains("078-05"), "{wide:?}: {got}");
            assert_eq!(got.contains("😀"), text.contains("😀"), "{wide:?}: {got}");
        }
    }
}

#[test]
fn a_clean_wide_body_comes_back_byte_for_byte() {
    for wide in ALL {
        let body = encode("\u{feff}The branch opens at nine. 😀 Ünïcödé", wide);
        let out = masked_in_chunks(WideCharset::Fixed(wide), BodyKind::Text, &body, 3);
        assert_eq!(out, body, "{wide:?}");
    }
}

#[test]
fn utf16_without_a_byte_order_is_read_by_its_mark_or_as_little_endian() {
    let text = "\u{feff}SSN 078-05-1123";
    for (wide, utf32) in [
        (Wide::Utf16Be, false),
        (Wide::Utf16Le, false),
        (Wide::Utf32Be, true),
    ] {
        let out = masked_in_chunks(
            WideCharset::ByMark { utf32 },
            BodyKind::Text,
            &encode(text, wide),
            1,
        );
        assert_eq!(decode(&out, wide), "\u{feff}SSN [SSN]", "{wide:?}");
    }
    let out = masked_in_chunks(
        WideCharset::ByMark { utf32: false },
        BodyKind::Text,
        &encode("SSN 078-05-1123", Wide::Utf16Le),
        1,
    );
    assert_eq!(decode(&out, Wide::Utf16Le), "SSN [SSN]");
}

#[test]
fn a_cut_unit_or_a_lone_surrogate_becomes_a_replacement_character_not_a_trap() {
    let mut body = encode("SSN 078-05-1123 ", Wide::Utf16Le);
    body.extend_from_slice(&[0x3D, 0xD8]); // a high surrogate, alone at the end
    body.push(0x41); // half a unit
    let out = masked_in_chunks(WideCharset::Fixed(Wide::Utf16Le), BodyKind::Text, &body, 1);
    assert_eq!(decode(&out, Wide::Utf16Le), "SSN [SSN] \u{fffd}\u{fffd}");
    // UTF-32 past the last code point.
    let mut body = encode("SSN 078-05-1123", Wide::Utf32Le);
    body.extend_from_slice(&0x0011_0000u32.to_le_bytes());
    let out = masked_in_chunks(WideCharset::Fixed(Wide::Utf32Le), BodyKind::Text, &body, 1);
    assert_eq!(decode(&out, Wide::Utf32Le), "SSN [SSN]\u{fffd}");
}

#[test]
fn answers_in_utf16_or_utf32_are_masked_not_refused_labelled_or_not() {
    let m = Masking::default();
    for (ct, wide) in [
        ("application/json; charset=utf-16le", Wide::Utf16Le),
        ("text/event-stream; charset=UTF-16BE", Wide::Utf16Be),
        ("text/plain; charset=utf-32", Wide::Utf32Le),
        // No charset named: the zero bytes tell.
        ("application/json", Wide::Utf16Be),
        ("text/plain", Wide::Utf32Le),
    ] {
        let mut x = ExchangeMasking::default();
        assert!(matches!(
            x.plan_response(&m, Some(ct), None),
            ResponsePlan::Mask
        ));
        let body = encode("\"card 4111 1111 1111 1111\"", wide);
        let out = x.response(&m, &body, true).unwrap();
        assert!(decode(&out, wide).contains("[CREDIT_CARD]"), "{ct}");
    }
}

#[test]
fn a_request_in_utf16_is_recognised_from_its_bytes_whatever_its_label() {
    let m = Masking::default();
    for wide in ALL {
        for ct in [
            None,
            Some("application/octet-stream"),
            Some("application/json"),
        ] {
            let mut x = ExchangeMasking::default();
            x.start_request(&m, ct);
            let body = encode(
                r#"{"messages":[{"role":"user","content":"my SSN is 078-05-1123"}]}"#,
                wide,
            );
            let mut out = Vec::new();
            for c in body.chunks(3) {
                out.extend(x.request(&m, c, false).unwrap());
            }
            out.extend(x.request(&m, &[], true).unwrap());
            let got = decode(&out, wide);
            assert!(got.contains("my SSN is [SSN]"), "{wide:?} {ct:?}: {got}");
        }
    }
}
