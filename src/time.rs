//! Timestamps: nanoseconds since the Unix epoch, rendered as RFC 3339 in UTC.

/// Format `ns` (nanoseconds since 1970-01-01T00:00:00Z) as RFC 3339 with microsecond or
/// nanosecond precision, e.g. `2026-11-21T19:30:27.123456Z`. Nanoseconds are shown only when
/// the value has sub-microsecond digits.
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, (sod / 60) % 60, sod % 60);
    let micros = frac % 1000 == 0;
    // Digit by digit into a fixed buffer: a report writes one of these for every flow and
    // lookup, and `format!` costs several times more. Nanoseconds in an i64 span the years
    // 1677 to 2262, so the year always has four digits.
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    fn digits(out: &mut [u8], mut v: u64) {
        for c in out.iter_mut().rev() {
            *c = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    digits(&mut b[0..4], y as u64);
    digits(&mut b[5..7], m as u64);
    digits(&mut b[8..10], d as u64);
    digits(&mut b[11..13], hh as u64);
    digits(&mut b[14..16], mm as u64);
    digits(&mut b[17..19], ss as u64);
    let len = if micros {
        digits(&mut b[20..26], u64::from(frac / 1000));
        b[26] = b'Z';
        27
    } else {
        digits(&mut b[20..29], u64::from(frac));
        30
    };
    // Only ASCII digits and separators were written.
    std::str::from_utf8(&b[..len])
        .unwrap_or_default()
        .to_owned()
}

/// Parses what [`rfc3339`] writes (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`) back to nanoseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':');
    let (hh, mm, ss): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) || !(1..=12).contains(&m) {
        return None;
    }
    let ns: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    // days from civil (inverse of civil_from_days); checked, as the text may be anything (a
    // merged document's): a year, day or time out of range is None, never an overflow.
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = ((153 * mp + 2) / 5).checked_add(day)?.checked_sub(1)?;
    let doe = (yoe * 365 + yoe / 4 - yoe / 100).checked_add(doy)?;
    let days = era
        .checked_mul(146_097)?
        .checked_add(doe)?
        .checked_sub(719_468)?;
    let secs = days
        .checked_mul(86_400)?
        .checked_add(hh.checked_mul(3600)?)?
        .checked_add(mm.checked_mul(60)?)?
        .checked_add(ss)?;
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

/// Seconds as a short human duration: `0.000s`, `12.5s`, `3m02s`, `1h04m`.
pub fn human_duration(ns: i64) -> String {
    let ns = ns.max(0);
    if ns < 60_000_000_000 {
        let s = ns as f64 / 1e9;
        if s < 10.0 {
            format!("{s:.3}s")
        } else {
            format!("{s:.1}s")
        }
    } else if ns < 3_600_000_000_000 {
        let s = ns / 1_000_000_000;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = ns / 60_000_000_000;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

/// Proleptic Gregorian date from days since 1970-01-01 (the well-known era-based algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 (leap day) 12:34:56.789012
        assert_eq!(
            rfc3339(951_827_696_789_012_000),
            "2000-02-29T12:34:56.789012Z"
        );
        assert_eq!(
            rfc3339(1_700_000_000_000_000_001),
            "2023-11-14T22:13:20.000000001Z"
        );
        assert_eq!(rfc3339(-1_000_000_000), "1969-12-31T23:59:59.000000Z");
        // 2100-03-01 is not preceded by a leap day
        assert_eq!(
            rfc3339(4_107_542_400_000_000_000),
            "2100-03-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn fast_digits_agree_with_format() {
        let slow = |ns: i64| {
            let secs = ns.div_euclid(1_000_000_000);
            let frac = ns.rem_euclid(1_000_000_000) as u32;
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let sod = secs.rem_euclid(86_400);
            let (hh, mm, ss) = (sod / 3600, (sod / 60) % 60, sod % 60);
            if frac % 1000 == 0 {
                format!(
                    "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{:06}Z",
                    frac / 1000
                )
            } else {
                format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{frac:09}Z")
            }
        };
        let mut rng = crate::rng::XorShift::new(0x2545_f491_4f6c_dd1d);
        for i in 0..20_000 {
            // Anywhere an i64 reaches (the years 1677 to 2262), before and after the epoch:
            // every other one a whole microsecond (the six-digit form), the rest mostly not.
            let x = rng.next_u64() as i64;
            let ns = if i % 2 == 0 { x / 1000 * 1000 } else { x };
            assert_eq!(rfc3339(ns), slow(ns), "{ns}");
        }
        // The ends of the range, and around the epoch.
        for ns in [i64::MIN, i64::MAX, 0, -1, 1, 999] {
            assert_eq!(rfc3339(ns), slow(ns), "{ns}");
        }
    }

    #[test]
    fn parse_round_trips() {
        for ns in [
            0i64,
            951_827_696_789_012_000,
            1_700_000_000_000_000_001,
            4_107_542_400_000_000_000,
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(ns)), Some(ns));
        }
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
        for huge in [
            "9223372036854775807-03-01T00:00:00Z",
            "-9223372036854775808-01-01T00:00:00Z",
            "2026-01-9223372036854775807T00:00:00Z",
            "2026-01-01T9223372036854775807:00:00Z",
            "2026-01-01T00:9223372036854775807:00Z",
            "2026-01-01T00:00:9223372036854775807Z",
            "300000000000-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(huge), None, "{huge}");
        }
    }

    #[test]
    fn extremes_do_not_panic() {
        let _ = rfc3339(i64::MAX);
        let _ = rfc3339(i64::MIN);
        let _ = human_duration(i64::MIN);
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(1_500_000_000), "1.500s");
        assert_eq!(human_duration(12_340_000_000), "12.3s");
        assert_eq!(human_duration(182_000_000_000), "3m02s");
        assert_eq!(human_duration(3_840_000_000_000), "1h04m");
    }
}
