//! RFC 3339 timestamps without a date-time crate: the filter only needs to print the host clock
//! (nanoseconds since the epoch, UTC) and the tools only need to read capture clocks.

/// Formats nanoseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds).
pub fn format_rfc3339_millis(unix_nanos: u64) -> String {
    let secs = unix_nanos / 1_000_000_000;
    let millis = (unix_nanos / 1_000_000) % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Parses an RFC 3339 timestamp (`2026-11-22T10:00:00Z`, optional fraction, `Z` or `±HH:MM`)
/// into nanoseconds since the Unix epoch. Times before 1970 are refused.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let bad = |why: &str| format!("invalid RFC 3339 time {text:?}: {why}");
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad(
            "expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset",
        ));
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        text.get(range)
            .and_then(|s| {
                if s.bytes().all(|c| c.is_ascii_digit()) {
                    s.parse().ok()
                } else {
                    None
                }
            })
            .ok_or_else(|| bad("non-digit in date or time"))
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad("field out of range"));
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &text[start..i];
        if digits.is_empty() {
            return Err(bad("empty fraction"));
        }
        let padded: String = digits
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect();
        nanos = padded.parse().map_err(|_| bad("bad fraction"))?;
    }
    let offset_secs: i64 = match &text[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6
            && (tz.starts_with('+') || tz.starts_with('-'))
            && tz.as_bytes()[3] == b':' =>
        {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return Err(bad("expected Z or an offset like +01:00 at the end")),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    if secs < 0 {
        return Err(bad("before 1970"));
    }
    Ok(secs as u64 * 1_000_000_000 + nanos as u64)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days-from-civil algorithm (public domain), proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_the_same_instant() {
        let t = parse_rfc3339("2026-11-22T10:15:30.250Z").unwrap();
        assert_eq!(format_rfc3339_millis(t), "2026-11-22T10:15:30.250Z");
    }

    #[test]
    fn offsets_are_applied() {
        assert_eq!(
            parse_rfc3339("2026-01-01T01:00:00+01:00").unwrap(),
            parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
        );
    }

    #[test]
    fn epoch_and_leap_day() {
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        let t = parse_rfc3339("2024-02-29T23:59:59Z").unwrap();
        assert_eq!(format_rfc3339_millis(t), "2024-02-29T23:59:59.000Z");
    }

    #[test]
    fn malformed_times_are_refused_with_the_text() {
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-11-22 10:00",
            "2026-11-22T10:00:00",
            "1969-12-31T23:59:59Z",
            "2026-13-01T00:00:00Z",
        ] {
            let err = parse_rfc3339(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}
