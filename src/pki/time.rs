//! Instants as RFC 3339 text (UTC) for messages and reports, and the one RFC 3339
//! parser (envelope signing times, `--at`). Pure arithmetic on the proleptic
//! Gregorian calendar; no clock is read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// RFC 3339 in UTC, seconds precision (for messages and reports).
pub fn rfc3339(time: SystemTime) -> String {
    let secs = match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Seconds (and nanoseconds) relative to the Unix epoch as a `SystemTime`.
pub(crate) fn system_time(secs: i64, nanos: u32) -> Option<SystemTime> {
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs.unsigned_abs(), nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nanos)))
    }
}

/// Parses an RFC 3339 date-time the way Go's `time.Time.UnmarshalJSON` does:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, upper-case `T` and `Z`, fields in
/// range, day valid for the month, no leap second. The one parser for envelope
/// signing times (JWS `io.cncf.notary.signingTime`, NOTARY.md §3) and `--at`.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos: u32 = 0;
    if rest.first() == Some(&b'.') {
        let count = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if count == 0 {
            return None;
        }
        for (i, &c) in rest[1..=count].iter().enumerate() {
            if i < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
        }
        for _ in count..9 {
            nanos *= 10;
        }
        rest = &rest[1 + count..];
    }
    let offset_secs = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let num = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (oh, om) = (num(*h1, *h2)?, num(*m1, *m2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = oh * 3600 + om * 60;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    system_time(secs, nanos)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// For error messages: `{}` with a reference to a field.
pub(crate) fn show(time: &SystemTime) -> String {
    rfc3339(*time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> SystemTime {
        system_time(secs, 0).expect("in range")
    }

    #[test]
    fn rfc3339_accepts_go_forms() {
        assert_eq!(
            parse_rfc3339("2020-11-09T07:00:00Z"),
            Some(at(1_604_905_200))
        );
        assert_eq!(
            parse_rfc3339("2023-01-11T10:02:54-08:00"),
            Some(at(1_673_460_174))
        );
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:00.5+00:00"),
            system_time(0, 500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(at(1_709_164_800))
        );
        assert_eq!(
            parse_rfc3339("0001-01-01T00:00:00Z"),
            system_time(-62_135_596_800, 0)
        );
    }

    #[test]
    fn rfc3339_rejects_non_go_forms() {
        for bad in [
            "2020-11-09t07:00:00Z",
            "2020-11-09T07:00:00z",
            "2020-11-09T07:00:00",
            "2020-11-09 07:00:00Z",
            "2023-02-29T00:00:00Z",
            "2020-13-01T00:00:00Z",
            "2020-11-09T24:00:00Z",
            "2020-11-09T23:59:60Z",
            "2020-11-09T07:00:00.Z",
            "2020-11-09T07:00:00+0800",
            "2020-11-09T07:00:00+24:00",
            "+2020-11-09T07:00:00Z",
            "2020-11-09T07:00:00Zjunk",
            "２020-11-09T07:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_718_694_000);
        assert_eq!(rfc3339(t), "2024-06-18T07:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(4_102_444_800);
        assert_eq!(rfc3339(t), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn rfc3339_round_trips() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2024-06-18T07:20:00Z",
            "2123-08-29T00:00:00Z",
        ] {
            let time = parse_rfc3339(text).expect(text);
            assert_eq!(rfc3339(time), text);
        }
        assert_eq!(
            parse_rfc3339("2023-06-27T13:30:33+08:00").map(rfc3339),
            Some("2023-06-27T05:30:33Z".to_owned())
        );
        assert_eq!(
            parse_rfc3339("2025-01-21T09:17:46.641Z"),
            parse_rfc3339("2025-01-21T09:17:46Z").map(|t| t + Duration::from_millis(641))
        );
        for bad in [
            "2024-13-01T00:00:00Z",
            "2024-06-18 07:20:00Z",
            "2024-06-18T07:20:00",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
