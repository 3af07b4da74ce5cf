//! The built-in detectors. Each looks at the text from the cursor and answers with the length
//! of the value found there, after its validator agreed; the masker calls them only where a
//! value can start (a cheap byte test), which keeps clean text fast.
//!
//! Every read is bounded: the longest a detector looks ahead is [`MAX_LOOKAHEAD`] bytes (an
//! email: 64-byte local part, `@`, 253-byte domain, one byte of boundary), which is the
//! hold-back bound of the streaming engine for the built-in entities.

use super::scan::{contains_word, context_before, is_alnum, is_digit, View};
use super::validate;
use super::Entity;

/// The most bytes any built-in detector reads ahead of the cursor.
pub const MAX_LOOKAHEAD: usize = 64 + 1 + 253 + 1;

/// A value found at the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub len: usize,
    pub entity: Entity,
    /// What the masker keeps swallowing after the hit (the rest of a long secret).
    pub follow: Follow,
}

/// Secrets have no fixed length; once one is recognised, the rest of it is consumed byte by
/// byte without holding anything back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    None,
    /// Bytes of this class continue the secret.
    Token(TokenClass),
    /// Everything up to and including an `-----END ... PRIVATE KEY-----` line.
    PemBody,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenClass {
    /// Base64url: letters, digits, `-`, `_`.
    Base64Url,
    /// A compact JWS: base64url and `.`.
    Jws,
    /// RFC 6750 b64token: base64url plus `.~+/=`.
    B64Token,
}

impl TokenClass {
    #[inline]
    pub fn contains(self, b: u8) -> bool {
        b.is_ascii_alphanumeric()
            || match self {
                TokenClass::Base64Url => b == b'-' || b == b'_',
                TokenClass::Jws => b == b'-' || b == b'_' || b == b'.',
                TokenClass::B64Token => b"-_.~+/=".contains(&b),
            }
    }
}

/// Which built-in entities are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enabled(u16);

impl Enabled {
    pub fn with(self, e: Entity) -> Self {
        Self(self.0 | (1 << e.bit()))
    }
    #[inline]
    pub fn has(self, e: Entity) -> bool {
        self.0 & (1 << e.bit()) != 0
    }
}

/// Runs the enabled detectors that can start at the cursor and keeps the longest value
/// (on equal length, the earlier entity in [`Entity::BUILTIN`] order wins).
pub fn detect(v: &View, on: Enabled) -> Option<Hit> {
    let b = v.at(0)?;
    let prev = v.before(1);
    let word_start = !is_alnum(prev);
    let mut best: Option<Hit> = None;
    let mut offer = |hit: Option<Hit>| {
        if let Some(h) = hit {
            if best.is_none_or(|b| h.len > b.len) {
                best = Some(h);
            }
        }
    };
    let plain = |len: Option<usize>, entity: Entity| {
        len.map(|len| Hit {
            len,
            entity,
            follow: Follow::None,
        })
    };
    match b {
        b'0'..=b'9' if word_start => {
            // A digit right after "3." is a decimal fraction, not the start of a number.
            let in_decimal = prev == Some(b'.') && is_digit(v.before(2));
            if !in_decimal {
                if on.has(Entity::Secret) {
                    offer(secret(v));
                }
                if on.has(Entity::CreditCard) {
                    offer(plain(card(v), Entity::CreditCard));
                }
                offer(nine_digit(v, on));
                if on.has(Entity::Phone) {
                    offer(plain(phone(v), Entity::Phone));
                }
                if on.has(Entity::IpAddress) {
                    offer(plain(ip(v), Entity::IpAddress));
                }
            }
            if on.has(Entity::Email) {
                offer(plain(email(v), Entity::Email));
            }
        }
        // Letters glued to a number (`SSN078-05-1123`, `acct4111111111111111`): only the
        // shapes a validator makes unmistakable.
        b'0'..=b'9' if glued_to_a_word(v) => {
            if on.has(Entity::CreditCard) {
                offer(plain(card(v), Entity::CreditCard));
            }
            if let Some(hit) = nine_digit(v, on)
                .filter(|_| nine_shape(v).is_some_and(|(_, _, shape)| shape == NineShape::Grouped))
            {
                offer(Some(hit));
            }
        }
        b'a'..=b'z' | b'A'..=b'Z' if word_start => {
            if on.has(Entity::Secret) {
                offer(secret(v));
            }
            if on.has(Entity::Iban) {
                offer(plain(iban(v), Entity::Iban));
            }
            if on.has(Entity::Email) {
                offer(plain(email(v), Entity::Email));
            }
            if on.has(Entity::IpAddress) && b.is_ascii_hexdigit() {
                offer(plain(ipv6(v), Entity::IpAddress));
            }
        }
        b'+' | b'(' if word_start && on.has(Entity::Phone) => {
            offer(plain(phone(v), Entity::Phone));
        }
        b':' if on.has(Entity::IpAddress) && !is_alnum(prev) && prev != Some(b':') => {
            offer(plain(ipv6(v), Entity::IpAddress));
        }
        b'-' if on.has(Entity::Secret) => offer(pem_header(v)),
        _ => {}
    }
    best
}

/// Whether the digit at the cursor follows a word of at least three letters (`SSN078...`,
/// `acct4111...`); a letter or two before digits is a code (`A305`, an IBAN's `GB82`).
fn glued_to_a_word(v: &View) -> bool {
    (1..=3).all(|k| matches!(v.before(k), Some(b) if b.is_ascii_alphabetic()))
}

/// How far after the word "secret" an AWS secret access key may start (its labels are
/// [`AWS_SECRET_CONTEXT`], read within 48 bytes before the key).
pub const SECRET_LABEL_REACH: usize = 48;

/// A cheap test, before any detector runs, of whether a built-in value can start at the
/// letter `buf[i]` (the start of a word): an email needs an `@` within 65 bytes (`next_at`
/// is the next one in `buf`, `usize::MAX` for none), an IBAN two letters and two digits, an
/// IPv6 address a `:` within five bytes, a secret one of the known first letters. Near the
/// end of text that has not ended it answers yes, so the detectors decide (and wait).
pub fn letter_may_start(
    buf: &[u8],
    i: usize,
    ended: bool,
    next_at: usize,
    secret_word: bool,
    on: Enabled,
) -> bool {
    const REACH: usize = 66;
    if !ended && i + REACH > buf.len() {
        return true;
    }
    let at = |k: usize| buf.get(i + k).copied().unwrap_or(b' ');
    if on.has(Entity::Email) && next_at != usize::MAX && next_at - i <= 65 {
        return true;
    }
    if on.has(Entity::Iban)
        && at(1).is_ascii_alphabetic()
        && at(2).is_ascii_digit()
        && at(3).is_ascii_digit()
    {
        return true;
    }
    if on.has(Entity::IpAddress) && buf[i].is_ascii_hexdigit() && (1..5).any(|k| at(k) == b':') {
        return true;
    }
    if on.has(Entity::Secret) && secret_word {
        // Perhaps an AWS secret access key: 40 characters of base64 (39 after a `/`).
        let run = buf[i..]
            .iter()
            .take(41)
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'/' || **b == b'+')
            .count();
        if run == 40 || run == 39 {
            return true;
        }
    }
    on.has(Entity::Secret)
        && match buf[i] {
            b'A' => matches!(at(1), b'K' | b'S' | b'G' | b'I' | b'R' | b'N'),
            b'e' => at(1) == b'y' && at(2) == b'J',
            b'B' | b'b' => at(1).eq_ignore_ascii_case(&b'e') && at(6) == b' ',
            b's' => matches!(at(1), b'k'),
            b'r' => at(1) == b'k' && at(2) == b'_',
            b'w' => at(1) == b'h' && at(5) == b'_',
            b'g' => matches!(at(1), b'h' | b'l'),
            b'x' => at(1) == b'o' && at(2) == b'x',
            b'h' => at(1) == b'f' && at(2) == b'_',
            b'n' => at(1) == b'p' && at(2) == b'm',
            _ => false,
        }
}

/// Can a built-in value start with this byte? (The masker's fast path skips the rest.)
pub const fn can_start(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'(' | b':' | b'-')
}

// ---------------------------------------------------------------------------------------
// Numbers

/// Reads a run of digits from `i`, at most `max + 1` of them (one more tells "too long").
fn digit_run(v: &View, i: usize, max: usize) -> usize {
    let mut n = 0;
    while n <= max && is_digit(v.at(i + n)) {
        n += 1;
    }
    n
}

/// A value may end here: the next byte is not a letter or digit.
fn ends_at(v: &View, i: usize) -> bool {
    !is_alnum(v.at(i))
}

/// Like [`ends_at`], and the number does not go on after a `-` or `.` (`078-05-1123-45`).
fn number_ends_at(v: &View, i: usize) -> bool {
    ends_at(v, i) && !(matches!(v.at(i), Some(b'-' | b'.')) && is_digit(v.at(i + 1)))
}

/// The separator between two groups of a number at `i`: one to three of space, `-`, `.`,
/// `/` (`4111 1111`, `4111.1111`, `4111 - 1111`, `4111--1111`), followed by a digit.
/// Unicode spaces and dashes arrive folded to these.
fn gap(v: &View, i: usize) -> Option<usize> {
    let mut n = 0;
    while n < 3 && matches!(v.at(i + n), Some(b' ' | b'-' | b'.' | b'/')) {
        n += 1;
    }
    (n > 0 && is_digit(v.at(i + n))).then_some(n)
}

/// Payment card numbers: 12-19 digits, unbroken or in groups of 2-8 (an invisible
/// character joining two groups of four makes one of eight) split by [`gap`]s; Luhn and
/// issuer rules decide. Letters may touch it (`card#4111...`, `acct4111...`): no word
/// of letters ends in a Luhn-valid issued number by chance.
fn card(v: &View) -> Option<usize> {
    let mut digits = [0u8; 19];
    let first = digit_run(v, 0, 19);
    if first > 19 {
        return None;
    }
    for (k, d) in digits.iter_mut().enumerate().take(first) {
        *d = v.at(k).unwrap_or(b'0');
    }
    // (end offset, digit count) of every place the number could end, and group sizes.
    let mut ends: [(usize, usize); 10] = [(0, 0); 10];
    let mut groups = [0usize; 10];
    let mut n_ends = 0;
    ends[n_ends] = (first, first);
    groups[n_ends] = first;
    n_ends += 1;
    if (2..=8).contains(&first) {
        let (mut i, mut n) = (first, first);
        while n_ends < ends.len() {
            let Some(s) = gap(v, i) else {
                break;
            };
            let g = digit_run(v, i + s, 8);
            if !(2..=8).contains(&g) || n + g > 19 {
                break;
            }
            for k in 0..g {
                digits[n + k] = v.at(i + s + k).unwrap_or(b'0');
            }
            n += g;
            i += s + g;
            ends[n_ends] = (i, n);
            groups[n_ends] = g;
            n_ends += 1;
        }
    }
    // A number that goes on from digits before it (`920-3937130-0093457`, an order
    // number's tail) is a card only in a card's own grouping, so digits put in front of a
    // card do not hide it.
    let continues = matches!(v.before(1), Some(b' ' | b'-' | b'.' | b'/')) && is_digit(v.before(2));
    let card_grouping = |k: usize| {
        let g = &groups[..=k];
        match g {
            [_] => true,
            [4, 6, 5] | [4, 6, 4] => true,
            [head @ .., last] => head.iter().all(|x| *x == 4) && (3..=4).contains(last),
            [] => false,
        }
    };
    ends[..n_ends]
        .iter()
        .enumerate()
        .rev()
        .filter(|(k, _)| !continues || card_grouping(*k))
        .map(|(_, e)| e)
        .find(|(end, n)| {
            (12..=19).contains(n)
                && !is_digit(v.at(*end))
                && validate::luhn(&digits[..*n])
                && validate::card_issued(&digits[..*n])
        })
        .map(|(end, _)| *end)
}

/// The shapes a nine-digit identifier (SSN, ITIN, routing number) is written in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NineShape {
    /// `123-45-6789`, `123.45.6789`, `123 45 6789`, `123/45/6789`, `123 - 45 - 6789` (the
    /// same separator twice: `693-09.4444` is not an SSN).
    Grouped,
    /// `123456789`.
    Bare,
    /// `123-456789`, a half-grouped form people type.
    HalfGrouped,
    /// `12345-6789`: half-grouped too, and the shape of a ZIP+4 code.
    FiveFour,
    /// `1234-5678-9`, how routing numbers are printed on some forms.
    Routing,
}

fn nine_shape(v: &View) -> Option<(usize, [u8; 9], NineShape)> {
    let mut d = [0u8; 9];
    let mut fill = |from: usize, at: usize, count: usize| {
        for k in 0..count {
            d[from + k] = v.at(at + k).unwrap_or(b'0');
        }
    };
    let r1 = digit_run(v, 0, 9);
    let (len, shape) = match r1 {
        9 => {
            fill(0, 0, 9);
            (9, NineShape::Bare)
        }
        3 => {
            let g1 = gap(v, 3)?;
            let r2 = digit_run(v, 3 + g1, 6);
            let g2 = gap(v, 3 + g1 + 2);
            if let (2, Some(g2)) = (r2, g2) {
                let last = 3 + g1 + 2 + g2;
                let same = g1 == g2 && (0..g1).all(|k| v.at(3 + k) == v.at(3 + g1 + 2 + k));
                if digit_run(v, last, 4) != 4 || !same {
                    return None;
                }
                fill(0, 0, 3);
                fill(3, 3 + g1, 2);
                fill(5, last, 4);
                (last + 4, NineShape::Grouped)
            } else if r2 == 6 && g1 == 1 && v.at(3) == Some(b'-') {
                fill(0, 0, 3);
                fill(3, 4, 6);
                (10, NineShape::HalfGrouped)
            } else {
                return None;
            }
        }
        5 if v.at(5) == Some(b'-') && digit_run(v, 6, 4) == 4 => {
            fill(0, 0, 5);
            fill(5, 6, 4);
            (10, NineShape::FiveFour)
        }
        4 if v.at(4) == Some(b'-')
            && digit_run(v, 5, 4) == 4
            && v.at(9) == Some(b'-')
            && digit_run(v, 10, 1) == 1 =>
        {
            fill(0, 0, 4);
            fill(4, 5, 4);
            fill(8, 10, 1);
            (11, NineShape::Routing)
        }
        _ => return None,
    };
    number_ends_at(v, len).then_some((len, d, shape))
}

/// Words that make a bare nine-digit number a routing number.
const ROUTING_CONTEXT: &[&str] = &["routing", "aba", "rtn", "transit", "bank", "wire", "ach"];

fn nine_digit(v: &View, on: Enabled) -> Option<Hit> {
    let (len, d, shape) = nine_shape(v)?;
    let hit = |entity| {
        Some(Hit {
            len,
            entity,
            follow: Follow::None,
        })
    };
    let bare = shape == NineShape::Bare;
    let routing = bare
        && (context_before(v, 48, ROUTING_CONTEXT) || context_after(v, len, 32, ROUTING_CONTEXT));
    // A routing word wins over a taxpayer word further away ("ITIN ...; routing number").
    let taxpayer = bare && !routing && context_before(v, 48, TAXPAYER_CONTEXT);
    // A bare number a word names as something else (`claim 340220201`, `application ID is
    // 517760051`) is that.
    if bare && !routing && !taxpayer && context_before(v, 24, OTHER_NUMBERS) {
        return None;
    }
    // A bare number that passes the routing checksum is the bank's routing number unless a
    // word says it is a taxpayer's (one number in ten passes it by chance).
    if on.has(Entity::AbaRouting)
        && validate::aba_valid(&d)
        && (shape == NineShape::Routing || (bare && !taxpayer))
    {
        return hit(Entity::AbaRouting);
    }
    if shape == NineShape::Routing
        || (shape == NineShape::FiveFour && after_a_state(v))
        || (bare && validate::aba_valid(&d) && !taxpayer)
    {
        return None;
    }
    if on.has(Entity::UsItin) && validate::itin_valid(&d) {
        return hit(Entity::UsItin);
    }
    if on.has(Entity::UsSsn) && validate::ssn_valid(&d) {
        return hit(Entity::UsSsn);
    }
    None
}

/// Whether one of `words` appears within `window` bytes after the value ending at `end`
/// (`253325228 is the correct routing number`).
fn context_after(v: &View, end: usize, window: usize, words: &[&str]) -> bool {
    let ahead = v.ahead(end + window);
    ahead
        .get(end..)
        .is_some_and(|after| words.iter().any(|w| contains_word(after, w.as_bytes())))
}

/// The two-letter codes of US states, territories and military addresses (USPS).
const STATES: [&[u8; 2]; 62] = [
    b"AL", b"AK", b"AZ", b"AR", b"CA", b"CO", b"CT", b"DE", b"FL", b"GA", b"HI", b"ID", b"IL",
    b"IN", b"IA", b"KS", b"KY", b"LA", b"ME", b"MD", b"MA", b"MI", b"MN", b"MS", b"MO", b"MT",
    b"NE", b"NV", b"NH", b"NJ", b"NM", b"NY", b"NC", b"ND", b"OH", b"OK", b"OR", b"PA", b"RI",
    b"SC", b"SD", b"TN", b"TX", b"UT", b"VT", b"VA", b"WA", b"WV", b"WI", b"WY", b"DC", b"AS",
    b"GU", b"MP", b"PR", b"VI", b"UM", b"FM", b"MH", b"PW", b"AA", b"AE",
];

/// Whether the number at the cursor follows a state code (`WI 53703-6452`, `Madison, WI,
/// 53703-6452`) or a word such as "zip": then `12345-6789` is a ZIP+4 code.
fn after_a_state(v: &View) -> bool {
    let before = v.behind(16);
    let words: Vec<&[u8]> = before
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let last = words.last().copied().unwrap_or_default();
    STATES.iter().any(|s| last == s.as_slice())
        || context_before(v, 24, &["zip", "postal", "zipcode", "zip+4"])
}

/// Words that make a loosely written number a phone number.
const PHONE_CONTEXT: &[&str] = &[
    "phone",
    "tel",
    "telephone",
    "mobile",
    "cell",
    "fax",
    "call",
    "contact",
    "whatsapp",
    "sms",
];

/// "number" makes a phone number too, unless a word says what other number it is.
const NOT_PHONE: &[&str] = &[
    "order",
    "tracking",
    "reference",
    "ref",
    "invoice",
    "case",
    "ticket",
    "confirmation",
    "account",
    "acct",
    "serial",
    "policy",
    "claim",
    "card",
    "routing",
    "member",
    "transaction",
    "loan",
    "check",
    "cheque",
    "model",
    "part",
    "version",
    "build",
    "app",
    "customer",
    "payment",
    "batch",
    "receipt",
    "shipment",
    "parcel",
    "item",
    "sku",
];

/// Whether a word before the cursor makes a loosely written number a phone number.
fn phone_context(v: &View) -> bool {
    context_before(v, 32, PHONE_CONTEXT)
        || (context_before(v, 32, &["number"]) && !context_before(v, 32, NOT_PHONE))
}

/// Words that name a number as something other than a person's identifier or phone.
const OTHER_NUMBERS: &[&str] = &[
    "claim",
    "id",
    "order",
    "reference",
    "ref",
    "tracking",
    "invoice",
    "case",
    "ticket",
    "confirmation",
    "application",
    "account",
    "acct",
    "member",
    "policy",
    "loan",
    "transaction",
    "serial",
    "customer",
    "employee",
    "sku",
    "part",
    "model",
    "batch",
    "receipt",
    "shipment",
    "parcel",
    "item",
    "build",
    "version",
];

/// Words that make a bare nine-digit number an SSN or ITIN even when it passes the routing
/// checksum (one number in ten does).
const TAXPAYER_CONTEXT: &[&str] = &["ssn", "social", "security", "taxpayer", "itin", "tin", "ss"];

/// A number written like a version (`10.4.2.1234`: a dotted group of one digit) or a date
/// (`1997-09-05`, `1997/09/05`, `05.09.1997`): never a phone number, whatever word is near.
fn version_or_date(v: &View, end: usize) -> bool {
    let mut groups: [usize; 8] = [0; 8];
    let (mut k, mut dots, mut len) = (0, false, 0);
    for i in 0..end {
        match v.at(i) {
            Some(b) if b.is_ascii_digit() => len += 1,
            Some(b) => {
                dots |= b == b'.';
                if len > 0 && k < groups.len() {
                    groups[k] = len;
                    k += 1;
                }
                len = 0;
            }
            None => return false,
        }
    }
    if len > 0 && k < groups.len() {
        groups[k] = len;
        k += 1;
    }
    let groups = &groups[..k];
    let version = dots && groups.contains(&1);
    let date = matches!(groups, [4, 2, 2] | [2, 2, 4]);
    version || date
}

fn phone(v: &View) -> Option<usize> {
    // A phone number does not start in the middle of a run of code groups
    // (`3704 0044 0532 0130 01`, `NL91 ABNA 0417 1643 01` are account numbers).
    let continues_digits = matches!(v.before(1), Some(b' ' | b'-' | b'.'))
        && matches!(v.before(2), Some(b) if b.is_ascii_digit() || b.is_ascii_uppercase());
    if continues_digits {
        // Only the strongly shaped forms: `20241 440-600-5124` is a ZIP code and a phone.
        return [nanp(v), international(v)].into_iter().flatten().max();
    }
    [
        nanp(v),
        international(v),
        national_trunk(v),
        phone_in_context(v),
    ]
    .into_iter()
    .flatten()
    .max()
}

/// North American numbers: optional `+1`/`1`, area code (with or without parentheses),
/// exchange and line; area code and exchange start with 2-9, and neither is an N11 service
/// code. Unbroken ten digits only count with the `+1` in front.
fn nanp(v: &View) -> Option<usize> {
    let mut i = 0;
    let mut country = false;
    if v.at(0) == Some(b'+') {
        if v.at(1) != Some(b'1') {
            return None;
        }
        country = true;
        i = 2;
        if matches!(v.at(i), Some(b' ' | b'-' | b'.')) {
            i += 1;
        }
    } else if v.at(0) == Some(b'1') && matches!(v.at(1), Some(b' ' | b'-' | b'.')) {
        country = true;
        i = 2;
    }
    let mut d = [0u8; 10];
    let paren = v.at(i) == Some(b'(');
    if paren {
        i += 1;
    }
    if digit_run(v, i, 3) != 3 {
        return None;
    }
    for (k, slot) in d[..3].iter_mut().enumerate() {
        *slot = v.at(i + k)?;
    }
    i += 3;
    let mut separated = false;
    if paren {
        if v.at(i) != Some(b')') {
            return None;
        }
        i += 1;
        separated = true;
        if matches!(v.at(i), Some(b' ' | b'-' | b'.')) {
            i += 1;
        }
    } else if matches!(v.at(i), Some(b' ' | b'-' | b'.')) {
        i += 1;
        separated = true;
    }
    if digit_run(v, i, 3) < 3 {
        return None;
    }
    for (k, slot) in d[3..6].iter_mut().enumerate() {
        *slot = v.at(i + k)?;
    }
    i += 3;
    if matches!(v.at(i), Some(b' ' | b'-' | b'.')) && separated {
        i += 1;
    } else if separated {
        return None;
    }
    if digit_run(v, i, 4) != 4 {
        return None;
    }
    for (k, slot) in d[6..].iter_mut().enumerate() {
        *slot = v.at(i + k)?;
    }
    i += 4;
    if !separated && !country {
        return None;
    }
    let n11 = |a: &[u8]| a[1] == b'1' && a[2] == b'1';
    let valid = d[0] >= b'2' && d[3] >= b'2' && !n11(&d[0..3]) && !n11(&d[3..6]);
    // A word before does not unmake a number of this shape (`serial 712-669-6557` is
    // masked): else writing "id" in front of a phone number would let it through.
    (valid && number_ends_at(v, i)).then_some(i)
}

/// Reads digits with single separators (space, dash, dot, parentheses) from `i`; returns
/// (end after the last digit, digit count, groups), stopping after `max` digits.
fn loose_digits(v: &View, mut i: usize, max: usize) -> (usize, usize, usize) {
    let (mut n, mut groups, mut end) = (0, 0, i);
    loop {
        let g = digit_run(v, i, max - n.min(max));
        if g == 0 {
            break;
        }
        n += g;
        groups += 1;
        i += g;
        end = i;
        if n > max {
            break;
        }
        match (v.at(i), v.at(i + 1)) {
            (Some(b' ' | b'-' | b'.'), Some(b'0'..=b'9')) => i += 1,
            (Some(b')'), Some(b' ')) if is_digit(v.at(i + 2)) => i += 2,
            (Some(b')' | b'('), Some(b'0'..=b'9')) => i += 1,
            (Some(b' '), Some(b'(')) if is_digit(v.at(i + 2)) => i += 2,
            _ => break,
        }
    }
    (end, n, groups)
}

/// International numbers written with `+` and a country code (E.164: at most 15 digits).
fn international(v: &View) -> Option<usize> {
    if v.at(0) != Some(b'+') || !matches!(v.at(1), Some(b'2'..=b'9')) {
        return None;
    }
    let (end, n, _) = loose_digits(v, 1, 15);
    ((8..=15).contains(&n) && ends_at(v, end)).then_some(end)
}

/// National numbers with a trunk `0` (`090-1234-5678`, `07700 063 966`, `0490 75 40 81`):
/// 9-11 digits in at least two groups of two or more, one kind of separator. The 3-2-4
/// shape is left to the SSN rules, so `078-05-0000` is not a phone number.
fn national_trunk(v: &View) -> Option<usize> {
    if v.at(0) != Some(b'0') || !is_digit(v.at(1)) {
        return None;
    }
    let mut groups = [0usize; 6];
    let (mut i, mut n, mut k) = (0, 0, 0);
    let mut sep = None;
    loop {
        let g = digit_run(v, i, 11);
        if g < 2 || k == groups.len() {
            return None;
        }
        groups[k] = g;
        k += 1;
        n += g;
        i += g;
        if n > 11 {
            return None;
        }
        match v.at(i) {
            Some(s @ (b' ' | b'-')) if sep.is_none_or(|x| x == s) && is_digit(v.at(i + 1)) => {
                sep = Some(s);
                i += 1;
            }
            _ => break,
        }
    }
    let ssn_shape = k == 3 && groups[..3] == [3, 2, 4];
    ((9..=11).contains(&n) && k >= 2 && groups[0] <= 5 && !ssn_shape && number_ends_at(v, i))
        .then_some(i)
}

/// Any number near a word such as "phone" or "call": 7-15 digits when written in groups,
/// 10-11 when unbroken (so an order number of 14 digits is not a phone).
fn phone_in_context(v: &View) -> Option<usize> {
    let start = usize::from(v.at(0) == Some(b'('));
    if !is_digit(v.at(start)) {
        return None;
    }
    let (end, n, groups) = loose_digits(v, start, 15);
    let fits = if groups > 1 {
        (7..=15).contains(&n)
    } else {
        (10..=11).contains(&n)
    };
    let ssn_shaped = nine_shape(v).is_some_and(|(_, _, shape)| shape != NineShape::Bare);
    (fits && !ssn_shaped && number_ends_at(v, end) && !version_or_date(v, end) && phone_context(v))
        .then_some(end)
}

// ---------------------------------------------------------------------------------------
// Network addresses

fn ip(v: &View) -> Option<usize> {
    [ipv4(v), ipv6(v)].into_iter().flatten().max()
}

/// Dotted quad at `i`: returns its end.
fn dotted_quad(v: &View, mut i: usize) -> Option<usize> {
    for part in 0..4 {
        let n = digit_run(v, i, 3);
        if n == 0 || n > 3 {
            return None;
        }
        let mut value = 0u32;
        for k in 0..n {
            value = value * 10 + u32::from(v.at(i + k)? - b'0');
        }
        if value > 255 {
            return None;
        }
        i += n;
        if part < 3 {
            if v.at(i) != Some(b'.') {
                return None;
            }
            i += 1;
        }
    }
    Some(i)
}

/// A `/prefix` after an address, when it is a valid length for the family.
fn cidr(v: &View, i: usize, max: u32) -> usize {
    if v.at(i) != Some(b'/') {
        return i;
    }
    let n = digit_run(v, i + 1, 3);
    if n == 0 || n > 3 || is_alnum(v.at(i + 1 + n)) {
        return i;
    }
    let mut value = 0u32;
    for k in 0..n {
        value = value * 10 + u32::from(v.at(i + 1 + k).unwrap_or(b'0') - b'0');
    }
    if value <= max {
        i + 1 + n
    } else {
        i
    }
}

/// IPv4. A fourth dot and more digits may follow (`192.168.1.1.1` masks the address), but
/// letters or digits may not touch either end (`text192.168.1.1`).
fn ipv4(v: &View) -> Option<usize> {
    if v.before(1) == Some(b'.') {
        return None;
    }
    let end = dotted_quad(v, 0)?;
    // `app version 8.19.5.176` is a version, not an address.
    if is_alnum(v.at(end)) || context_before(v, 24, VERSION_WORDS) {
        return None;
    }
    Some(cidr(v, end, 32))
}

/// Words after which four dotted numbers are a version.
const VERSION_WORDS: &[&str] = &[
    "version", "app", "release", "build", "firmware", "update", "ios", "android", "sdk", "patch",
    "v",
];

fn hex_run(v: &View, i: usize) -> usize {
    let mut n = 0;
    while n <= 4 && matches!(v.at(i + n), Some(b) if b.is_ascii_hexdigit()) {
        n += 1;
    }
    n
}

/// IPv6 (RFC 4291 text forms): eight groups, or fewer with one `::`, optionally ending in a
/// dotted quad; then an optional `%zone` and `/prefix`. Neither end may touch a letter,
/// digit or colon, and an embedded IPv4 part must be valid (`2001:db8::256.1.1.1` is not an
/// address).
fn ipv6(v: &View) -> Option<usize> {
    if is_alnum(v.before(1)) || v.before(1) == Some(b':') {
        return None;
    }
    let mut i = 0;
    let mut groups = 0;
    let mut compressed = false;
    if v.at(0) == Some(b':') {
        if v.at(1) != Some(b':') {
            return None;
        }
        compressed = true;
        i = 2;
    }
    loop {
        let h = hex_run(v, i);
        if h == 0 {
            // Only reachable right after `::`, which may end an address.
            break;
        }
        if v.at(i + h) == Some(b'.') && is_digit(v.at(i + h + 1)) {
            // An embedded IPv4 part ends the address and must be valid.
            i = dotted_quad(v, i)?;
            groups += 2;
            break;
        }
        if h > 4 {
            return None;
        }
        groups += 1;
        i += h;
        if groups > 8 || v.at(i) != Some(b':') {
            break;
        }
        if v.at(i + 1) == Some(b':') {
            if compressed {
                return None;
            }
            compressed = true;
            i += 2;
        } else {
            i += 1;
            if hex_run(v, i) == 0 {
                return None;
            }
        }
    }
    let valid = if compressed { groups <= 7 } else { groups == 8 };
    if !valid {
        return None;
    }
    if v.at(i) == Some(b'%') {
        let mut z = 0;
        while z < 16 && matches!(v.at(i + 1 + z), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        {
            z += 1;
        }
        if z > 0 {
            i += 1 + z;
        }
    }
    if is_alnum(v.at(i))
        || v.at(i) == Some(b':')
        || (v.at(i) == Some(b'.') && is_digit(v.at(i + 1)))
    {
        return None;
    }
    Some(cidr(v, i, 128))
}

// ---------------------------------------------------------------------------------------
// Email, IBAN

/// Characters of an email's local part; non-ASCII bytes are letters of an internationalised
/// address (RFC 6531), so `ana.pérez@example.com` is masked whole.
fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._%+-".contains(&b) || b >= 0x80
}

/// Email addresses: a local part of up to 64 bytes, `@`, and a domain of dot-separated
/// labels ending in an alphabetic or punycode (`xn--`) top-level domain.
fn email(v: &View) -> Option<usize> {
    let mut i = 0;
    while i <= 64 {
        match v.at(i) {
            Some(b) if is_local(b) => i += 1,
            _ => break,
        }
    }
    if i == 0 || i > 64 || v.at(i) != Some(b'@') {
        return None;
    }
    i += 1;
    let domain_start = i;
    let mut end = None;
    loop {
        let label_start = i;
        while i - domain_start < 253
            && matches!(v.at(i), Some(b) if b.is_ascii_alphanumeric() || b == b'-')
        {
            i += 1;
        }
        let label_len = i - label_start;
        if label_len == 0 || label_len > 63 {
            return None;
        }
        let first = v.at(label_start)?;
        let last = v.at(i - 1)?;
        if first == b'-' || last == b'-' {
            return None;
        }
        if label_start > domain_start {
            let tld_alpha =
                (label_start..i).all(|k| matches!(v.at(k), Some(b) if b.is_ascii_alphabetic()));
            let punycode = label_len > 4
                && (0..4).all(|k| {
                    v.at(label_start + k).map(|b| b.to_ascii_lowercase()) == Some(b"xn--"[k])
                });
            end = ((tld_alpha && label_len >= 2) || punycode).then_some(i);
        }
        if v.at(i) == Some(b'.') && matches!(v.at(i + 1), Some(b) if b.is_ascii_alphanumeric()) {
            i += 1;
        } else {
            break;
        }
    }
    end
}

/// IBANs: country code, check digits and the country's length (SWIFT registry), unbroken or
/// in groups of four split by single spaces or dashes, all in one letter case, and mod 97 = 1.
fn iban(v: &View) -> Option<usize> {
    let (c0, c1) = (v.at(0)?, v.at(1)?);
    if !c0.is_ascii_alphabetic()
        || !c1.is_ascii_alphabetic()
        || !is_digit(v.at(2))
        || !is_digit(v.at(3))
    {
        return None;
    }
    let upper = c0.is_ascii_uppercase();
    if c1.is_ascii_uppercase() != upper {
        return None;
    }
    let len = validate::iban_length([c0.to_ascii_uppercase(), c1.to_ascii_uppercase()])?;
    // Groups of four split by single spaces (or dashes), or no split at all.
    let sep = match v.at(4) {
        Some(s @ (b' ' | b'-')) => Some(s),
        _ => None,
    };
    let mut value = [0u8; 34];
    let (mut i, mut n) = (0, 0);
    while n < len {
        if let Some(sep) = sep.filter(|_| n > 0 && n % 4 == 0) {
            if v.at(i) != Some(sep) {
                return None;
            }
            i += 1;
        }
        let b = v.at(i)?;
        if b.is_ascii_alphabetic() && b.is_ascii_uppercase() != upper || !b.is_ascii_alphanumeric()
        {
            return None;
        }
        value[n] = b.to_ascii_uppercase();
        n += 1;
        i += 1;
    }
    (ends_at(v, i) && validate::iban_mod97(&value[..len])).then_some(i)
}

// ---------------------------------------------------------------------------------------
// Secrets

/// Key prefixes of common API credentials: (prefix, random characters required, class).
const KEY_PREFIXES: &[(&[u8], usize, TokenClass)] = &[
    (b"sk-", 20, TokenClass::Base64Url),
    (b"sk_live_", 16, TokenClass::Base64Url),
    (b"sk_test_", 16, TokenClass::Base64Url),
    (b"rk_live_", 16, TokenClass::Base64Url),
    (b"rk_test_", 16, TokenClass::Base64Url),
    (b"whsec_", 16, TokenClass::Base64Url),
    (b"ghp_", 30, TokenClass::Base64Url),
    (b"gho_", 30, TokenClass::Base64Url),
    (b"ghu_", 30, TokenClass::Base64Url),
    (b"ghs_", 30, TokenClass::Base64Url),
    (b"ghr_", 30, TokenClass::Base64Url),
    (b"github_pat_", 22, TokenClass::Base64Url),
    (b"glpat-", 20, TokenClass::Base64Url),
    (b"xoxb-", 10, TokenClass::Base64Url),
    (b"xoxp-", 10, TokenClass::Base64Url),
    (b"xoxa-", 10, TokenClass::Base64Url),
    (b"xoxr-", 10, TokenClass::Base64Url),
    (b"xoxs-", 10, TokenClass::Base64Url),
    (b"AIza", 35, TokenClass::Base64Url),
    (b"hf_", 30, TokenClass::Base64Url),
    (b"npm_", 36, TokenClass::Base64Url),
];

/// AWS access key id prefixes (IAM unique-id prefixes).
const AWS_PREFIXES: &[&[u8; 4]] = &[
    b"AKIA", b"ASIA", b"AGPA", b"AIDA", b"AROA", b"AIPA", b"ANPA", b"ANVA",
];

fn starts_with(v: &View, at: usize, s: &[u8]) -> bool {
    s.iter().enumerate().all(|(k, c)| v.at(at + k) == Some(*c))
}

/// `n` characters of `class` from `i`, looking random: at least two digits and two letters,
/// so a hyphenated phrase such as `sk-learn-is-a-python-library` is not a key.
fn random_run(v: &View, i: usize, n: usize, class: TokenClass) -> bool {
    let (mut digits, mut letters) = (0, 0);
    for k in 0..n {
        match v.at(i + k) {
            Some(b) if class.contains(b) => {
                digits += usize::from(b.is_ascii_digit());
                letters += usize::from(b.is_ascii_alphabetic());
            }
            _ => return false,
        }
    }
    digits >= 2 && letters >= 2
}

fn secret(v: &View) -> Option<Hit> {
    let hit = |len, follow| {
        Some(Hit {
            len,
            entity: Entity::Secret,
            follow,
        })
    };
    let b = v.at(0)?;
    if b == b'A' {
        for p in AWS_PREFIXES {
            if starts_with(v, 0, *p)
                && (4..20).all(
                    |k| matches!(v.at(k), Some(c) if c.is_ascii_uppercase() || c.is_ascii_digit()),
                )
                && ends_at(v, 20)
            {
                return hit(20, Follow::None);
            }
        }
    }
    if b == b'e' && starts_with(v, 0, b"eyJ") {
        // A compact JWS: header segment, '.', and a payload that is base64url JSON too.
        let mut i = 3;
        while i < 260 && matches!(v.at(i), Some(c) if TokenClass::Base64Url.contains(c)) {
            i += 1;
        }
        if i >= 10 && v.at(i) == Some(b'.') && starts_with(v, i + 1, b"ey") {
            return hit(i + 3, Follow::Token(TokenClass::Jws));
        }
    }
    if (b == b'B' || b == b'b')
        && v.ahead(7).eq_ignore_ascii_case(b"bearer ")
        && random_run(v, 7, 20, TokenClass::B64Token)
    {
        return hit(27, Follow::Token(TokenClass::B64Token));
    }
    for (prefix, n, class) in KEY_PREFIXES {
        if prefix[0] == b && starts_with(v, 0, prefix) && random_run(v, prefix.len(), *n, *class) {
            return hit(prefix.len() + n, Follow::Token(*class));
        }
    }
    aws_secret_key(v).and_then(|len| hit(len, Follow::None))
}

/// Labels an AWS secret access key follows (`aws_secret_access_key = ...`,
/// `SecretAccessKey: ...`, "secret access key").
const AWS_SECRET_CONTEXT: &[&str] = &[
    "secret_access_key",
    "secretaccesskey",
    "secret access key",
    "aws_secret",
    "aws secret",
    "secret_key",
    "secret key",
];

fn is_b64(b: Option<u8>) -> bool {
    matches!(b, Some(b) if b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
}

/// An AWS secret access key: 40 characters of base64 (letters of both cases and digits),
/// after one of [`AWS_SECRET_CONTEXT`]. A key that starts with `/` or `+` is found from
/// its first letter or digit, the one or two characters before it counting to its length.
fn aws_secret_key(v: &View) -> Option<usize> {
    let lead = (1..=2)
        .take_while(|k| matches!(v.before(*k), Some(b'/' | b'+')))
        .count();
    if is_b64(v.before(lead + 1)) {
        return None;
    }
    let len = 40 - lead;
    let (mut upper, mut lower, mut digit) = (false, false, false);
    for k in 0..len {
        let b = v.at(k)?;
        if !is_b64(Some(b)) {
            return None;
        }
        upper |= b.is_ascii_uppercase();
        lower |= b.is_ascii_lowercase();
        digit |= b.is_ascii_digit();
    }
    (upper
        && lower
        && digit
        && !is_b64(v.at(len))
        && v.at(len) != Some(b'=')
        && context_before(v, 48, AWS_SECRET_CONTEXT))
    .then_some(len)
}

const PEM_BEGIN: &[u8] = b"-----BEGIN ";
const PEM_END: &[u8] = b"-----END ";
const PEM_TAIL: &[u8] = b"PRIVATE KEY-----";

/// `-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED ]PRIVATE KEY-----`: the line and everything up to
/// the matching END line is masked.
fn pem_header(v: &View) -> Option<Hit> {
    pem_line(v, PEM_BEGIN).map(|len| Hit {
        len,
        entity: Entity::Secret,
        follow: Follow::PemBody,
    })
}

/// The length of a PEM private-key boundary line starting at the cursor.
pub fn pem_line(v: &View, opening: &[u8]) -> Option<usize> {
    if !starts_with(v, 0, opening) {
        return None;
    }
    let mut i = opening.len();
    while i < opening.len() + 24
        && matches!(v.at(i), Some(c) if c.is_ascii_uppercase() || c == b' ')
    {
        if starts_with(v, i, PEM_TAIL) {
            return Some(i + PEM_TAIL.len());
        }
        i += 1;
    }
    None
}

/// The END line of a PEM block at the cursor, if any.
pub fn pem_footer(v: &View) -> Option<usize> {
    pem_line(v, PEM_END)
}
