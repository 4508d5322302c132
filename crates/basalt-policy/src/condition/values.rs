//! Typed condition values: numbers, dates and address blocks, parsed the same way from the
//! policy (once, at parse time) and from the request context (per evaluation).

use std::net::IpAddr;

/// A number as the `Numeric*` operators compare it. IAM accepts integers and decimals;
/// `f64` holds both, and `inf`/`NaN`, which Rust would otherwise parse, are refused.
pub(crate) fn number(s: &str) -> Option<f64> {
    let plausible = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if !plausible {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A point in time in nanoseconds since the Unix epoch. The `Date*` operators take ISO 8601
/// (`2024-01-31`, `2024-01-31T12:00:00Z`, with optional fraction and `±hh:mm` offset) or
/// epoch seconds, which is how `aws:EpochTime` arrives.
pub(crate) fn date(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    // Epoch seconds: digits with an optional sign and fraction, and no date separators
    // past the sign.
    let body = b.strip_prefix(b"-").unwrap_or(b);
    if !body.is_empty() && body.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        return epoch(s);
    }
    iso8601(b)
}

fn epoch(s: &str) -> Option<i128> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() || int.len() > 18 || frac.contains('.') {
        return None;
    }
    let secs: i128 = int.parse().ok()?;
    let nanos = fraction_nanos(frac.as_bytes())?;
    let total = secs * 1_000_000_000 + i128::from(nanos);
    Some(if neg { -total } else { total })
}

/// Nanoseconds from the digits after a decimal point; digits past the ninth are dropped.
fn fraction_nanos(digits: &[u8]) -> Option<u32> {
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n = 0u32;
    for i in 0..9 {
        n = n * 10 + digits.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    Some(n)
}

fn digits(b: &[u8], at: usize, len: usize) -> Option<i64> {
    let part = b.get(at..at + len)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
}

fn iso8601(b: &[u8]) -> Option<i128> {
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    let mut nanos = 0u32;
    let mut rest = &b[10..];
    if let Some((&sep, time)) = rest.split_first()
        && matches!(sep, b'T' | b't' | b' ')
    {
        let hour = digits(time, 0, 2)?;
        let minute = digits(time, 3, 2)?;
        if time.get(2) != Some(&b':') || hour > 23 || minute > 59 {
            return None;
        }
        secs += hour * 3600 + minute * 60;
        rest = &time[5..];
        if rest.first() == Some(&b':') {
            let second = digits(rest, 1, 2)?;
            // 60 admits a leap second; it lands on the next minute's first second.
            if second > 60 {
                return None;
            }
            secs += second;
            rest = &rest[3..];
            if let Some(frac) = rest.strip_prefix(b".") {
                let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 {
                    return None;
                }
                nanos = fraction_nanos(&frac[..n])?;
                rest = &frac[n..];
            }
        }
    }
    let offset = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), zone @ ..] => {
            let h = digits(zone, 0, 2)?;
            let m = match zone.len() {
                2 => 0,
                4 => digits(zone, 2, 2)?,
                5 if zone[2] == b':' => digits(zone, 3, 2)?,
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    secs -= offset;
    Some(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
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

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An address block in one family. A bare address is a block of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cidr {
    v6: bool,
    base: u128,
    mask: u128,
    pub(crate) prefix: u8,
}

fn bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            // A dual-stack listener reports IPv4 callers as ::ffff:a.b.c.d; IAM compares
            // them as the IPv4 address they are.
            Some(v4) => (false, u128::from(u32::from(v4))),
            None => (true, u128::from(a)),
        },
    }
}

impl Cidr {
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().ok()?;
        let v6 = ip.is_ipv6();
        let width: u8 = if v6 { 128 } else { 32 };
        let prefix = match prefix {
            None => width,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|&n| n <= width)?
            }
            Some(_) => return None,
        };
        let raw = match ip {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        let mask = if prefix == 0 {
            0
        } else {
            (u128::MAX << (u32::from(width - prefix))) & (u128::MAX >> (128 - u32::from(width)))
        };
        Some(Cidr {
            v6,
            base: raw & mask,
            mask,
            prefix,
        })
    }

    pub(crate) fn is_v6(&self) -> bool {
        self.v6
    }

    /// Whether a request's address (as `aws:SourceIp` carries it) lies in the block.
    pub(crate) fn contains(&self, addr: &str) -> bool {
        // Tolerate a context value written as a one-address block.
        let addr = addr.split_once('/').map_or(addr, |(a, _)| a);
        let Ok(ip) = addr.parse::<IpAddr>() else {
            return false;
        };
        let (v6, raw) = bits(ip);
        v6 == self.v6 && raw & self.mask == self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i128 = 1_000_000_000;

    #[test]
    fn numbers() {
        assert_eq!(number("10"), Some(10.0));
        assert_eq!(number("-2.5"), Some(-2.5));
        assert_eq!(number("1e3"), Some(1000.0));
        assert_eq!(number("10.0"), number("10"));
        for bad in ["", "abc", "inf", "NaN", "1,000", " 1", "0x10", "1e999"] {
            assert_eq!(number(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(date("1970-01-01"), Some(0));
        assert_eq!(date("2020-01-01T00:00:00Z"), Some(1_577_836_800 * SEC));
        assert_eq!(
            date("2020-01-01T00:00:00.5Z"),
            Some(1_577_836_800 * SEC + SEC / 2)
        );
        assert_eq!(date("2020-01-01T01:00:00+01:00"), Some(1_577_836_800 * SEC));
        assert_eq!(date("2020-01-01T01:00:00+0100"), Some(1_577_836_800 * SEC));
        assert_eq!(date("2019-12-31T23:00:00-01"), Some(1_577_836_800 * SEC));
        assert_eq!(date("2020-01-01T00:00"), Some(1_577_836_800 * SEC));
        assert_eq!(date("2020-01-01T00:00:00"), Some(1_577_836_800 * SEC));
        assert_eq!(date("2024-02-29T12:00:00Z"), Some(1_709_208_000 * SEC));
        assert_eq!(date("1577836800"), Some(1_577_836_800 * SEC));
        assert_eq!(date("1577836800.25"), Some(1_577_836_800 * SEC + SEC / 4));
        assert_eq!(date("0"), Some(0));
        assert_eq!(date("-86400"), Some(-86_400 * SEC));
        assert_eq!(date("1969-12-31"), Some(-86_400 * SEC));
        for bad in [
            "",
            "yesterday",
            "2020-13-01",
            "2023-02-29",
            "2020-01-32",
            "2020-01-01T24:00:00Z",
            "2020-01-01T00:60:00Z",
            "2020-01-01T00:00:00.Z",
            "2020-01-01T00:00:00+25:00",
            "2020-01-01T00:00:00Zjunk",
            "2020/01/01",
            "1.2.3",
            "-",
            "99999999999999999999",
        ] {
            assert_eq!(date(bad), None, "{bad}");
        }
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("192.168.1.0/24").unwrap();
        assert!(c.contains("192.168.1.7"));
        assert!(c.contains("192.168.1.255"));
        assert!(!c.contains("192.168.2.1"));
        assert!(!c.contains("::1"));
        assert!(!c.contains("not-an-ip"));
        assert!(c.contains("::ffff:192.168.1.9"));
        let host = Cidr::parse("10.1.2.3").unwrap();
        assert_eq!(host.prefix, 32);
        assert!(host.contains("10.1.2.3"));
        assert!(!host.contains("10.1.2.4"));
        // Host bits past the prefix are ignored, as IAM does.
        assert!(Cidr::parse("10.1.2.3/8").unwrap().contains("10.200.0.1"));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8"));
        assert!(!all.contains("2001:db8::1"));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.is_v6());
        assert!(v6.contains("2001:db8:1234::1"));
        assert!(!v6.contains("2001:db9::1"));
        assert!(!v6.contains("10.0.0.1"));
        assert!(Cidr::parse("::/0").unwrap().contains("fe80::1"));
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4/33",
            "1.2.3.4/",
            "1.2.3.4/-1",
            "::/129",
            "host/8",
            "1.2.3.4/8/8",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }
}
