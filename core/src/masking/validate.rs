//! Checksums and issuing rules that tell a real identifier from a look-alike. Each takes the
//! value's significant characters only (digits, or the IBAN without spaces).

/// The Luhn (mod 10) checksum used by payment cards.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Whether a card number's issuer prefix (IIN) allows its length. Luhn alone passes one
/// random number in ten (the conformance row `1748503543012` is one), so a number must also
/// look issued: Visa 13/16/19, Mastercard 16, Amex 15, Diners 14-19, JCB 16-19 (15 for the
/// old 1800/2131 ranges), UATP 15, Discover/UnionPay/Maestro 13-19, Mir 16-19, and the
/// 12-digit Maestro ranges.
pub fn card_issued(digits: &[u8]) -> bool {
    let n = digits.len();
    let prefix = |k: usize| -> u32 {
        digits
            .iter()
            .take(k)
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let (p1, p2, p4) = (prefix(1), prefix(2), prefix(4));
    if n == 12 {
        return matches!(p4, 5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761..=6763);
    }
    match p1 {
        1 => n == 15,
        2 => match p4 {
            1800 | 2131 => n == 15,
            2200..=2204 => (16..=19).contains(&n),
            2221..=2720 => n == 16,
            _ => false,
        },
        3 => match p2 {
            34 | 37 => n == 15,
            35 => (16..=19).contains(&n),
            30 | 36 | 38 | 39 => (14..=19).contains(&n),
            _ => false,
        },
        4 => matches!(n, 13 | 16 | 19),
        5 => match p2 {
            51..=55 => n == 16,
            50 | 56..=59 => (13..=19).contains(&n),
            _ => false,
        },
        6 => (13..=19).contains(&n),
        8 => matches!(p2, 81 | 82) && n == 16,
        _ => false,
    }
}

/// Social Security Number issuing rules (SSA): no area 000, 666 or 900-999, no group 00, no
/// serial 0000, and none of the numbers SSA has voided after public misuse.
pub fn ssn_valid(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let area = num(&d[0..3]);
    let group = num(&d[3..5]);
    let serial = num(&d[5..9]);
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return false;
    }
    // Woolworth's wallet card (078-05-1120), the 1940s Social Security pamphlet number
    // (219-09-9999), the LifeLock advertisement (457-55-5462), and the textbook sequence.
    const VOID: [&[u8]; 4] = [b"078051120", b"219099999", b"457555462", b"123456789"];
    if VOID.contains(&d) {
        return false;
    }
    !d.iter().all(|b| *b == d[0])
}

/// IRS Individual Taxpayer Identification Numbers: 9XX-GG-SSSS with the group in the ranges
/// the IRS issues (50-65, 70-88, 90-92, 94-99).
pub fn itin_valid(d: &[u8]) -> bool {
    d.len() == 9 && d[0] == b'9' && matches!(num(&d[3..5]), 50..=65 | 70..=88 | 90..=92 | 94..=99)
}

/// ABA routing transit numbers: the 3-7-1 weighted checksum and a Federal Reserve prefix
/// (00-12, 21-32, 61-72, 80).
pub fn aba_valid(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    if !matches!(num(&d[0..2]), 0..=12 | 21..=32 | 61..=72 | 80) || d.iter().all(|b| *b == b'0') {
        return false;
    }
    let w = [3u32, 7, 1];
    let sum: u32 = d
        .iter()
        .enumerate()
        .map(|(i, b)| w[i % 3] * u32::from(b - b'0'))
        .sum();
    sum.is_multiple_of(10)
}

/// The IBAN length of each country in the SWIFT IBAN registry.
pub fn iban_length(country: [u8; 2]) -> Option<usize> {
    const TABLE: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BI", 27),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DJ", 27),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FK", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"LY", 25),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MN", 20),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NI", 28),
        (b"NL", 18),
        (b"NO", 15),
        (b"OM", 23),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"RU", 33),
        (b"SA", 24),
        (b"SC", 31),
        (b"SD", 18),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"SO", 23),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
        (b"YE", 30),
    ];
    TABLE.iter().find(|(c, _)| **c == country).map(|(_, n)| *n)
}

/// ISO 13616 check: move the first four characters to the end, letters to 10..35, mod 97 = 1.
/// `iban` is uppercase alphanumeric without spaces.
pub fn iban_mod97(iban: &[u8]) -> bool {
    if iban.len() < 5 {
        return false;
    }
    let mut rem = 0u32;
    for &c in iban[4..].iter().chain(&iban[..4]) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn num(d: &[u8]) -> u32 {
    d.iter().fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_cards_and_rejects_one_digit_off() {
        assert!(luhn(b"4111111111111111"));
        assert!(!luhn(b"4111111111111112"));
    }

    #[test]
    fn issuer_rules_reject_a_luhn_valid_number_no_network_issues() {
        assert!(luhn(b"1748503543012"));
        assert!(!card_issued(b"1748503543012"));
        assert!(card_issued(b"378282246310005"));
        assert!(card_issued(b"630427373398"));
    }

    #[test]
    fn ssn_rules_follow_ssa() {
        assert!(ssn_valid(b"078051123"));
        for bad in [
            "078051120",
            "000123456",
            "666123456",
            "900123456",
            "123001234",
            "123450000",
            "111111111",
        ] {
            assert!(!ssn_valid(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn itin_groups_are_the_issued_ranges() {
        assert!(itin_valid(b"911701234"));
        assert!(!itin_valid(b"911891234"));
    }

    #[test]
    fn aba_checksum_and_prefix() {
        assert!(aba_valid(b"121000358"));
        assert!(!aba_valid(b"421042111"));
    }

    #[test]
    fn iban_check_digits() {
        assert!(iban_mod97(b"GB82WEST12345698765432"));
        assert!(!iban_mod97(b"GB82WEST12345698765433"));
        assert_eq!(iban_length(*b"GB"), Some(22));
    }
}
