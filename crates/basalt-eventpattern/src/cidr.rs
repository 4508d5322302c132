//! IP literals and CIDR blocks. EventBridge accepts only dotted-quad IPv4 and RFC 4291 IPv6
//! text; std's parsers accept the same forms, and nothing here resolves names.

use std::net::IpAddr;

/// An address block: the network bits of `base`, `bits` long, in one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cidr {
    v6: bool,
    base: u128,
    mask: u128,
}

pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    // Cheap rejection first: this runs on every event string the Matcher indexes.
    let b = s.as_bytes();
    if b.len() < 2 || b.len() > 45 || !(b.contains(&b'.') || b.contains(&b':')) {
        return None;
    }
    s.parse().ok()
}

fn to_bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

impl Cidr {
    /// Parses `a.b.c.d/n` or `x:y::z/n` with the errors EventBridge gives.
    pub(crate) fn parse(s: &str) -> Result<Cidr, String> {
        let parts: Vec<&str> = s.split('/').collect();
        // Java's split drops trailing empty strings, so "10.0.0.0/" has one part there too.
        let parts: Vec<&str> = if parts.len() == 2 && parts[1].is_empty() {
            vec![parts[0]]
        } else {
            parts
        };
        if parts.len() != 2 {
            return Err("Malformed CIDR, one '/' required".into());
        }
        let bits: i64 = parts[1]
            .parse()
            .map_err(|_| "Malformed CIDR, mask bits must be an integer".to_string())?;
        if bits < 0 {
            return Err("Malformed CIDR, mask bits must not be negative".into());
        }
        let ip =
            parse_ip(parts[0]).ok_or_else(|| format!("Nonstandard IP address: {}", parts[0]))?;
        let (v6, base) = to_bits(ip);
        // EventBridge's limits, as its rule compiler enforces them: a /32 (IPv4) or /128 (IPv6)
        // block is refused; a single address is written as a plain string instead.
        if !v6 && bits > 31 {
            return Err("IPv4 mask bits must be < 32".into());
        }
        if v6 && bits > 127 {
            return Err("IPv6 mask bits must be < 128".into());
        }
        let width = if v6 { 128 } else { 32 };
        let host_bits = width - bits as u32;
        let mask = if host_bits >= 128 {
            0
        } else {
            !0u128 << host_bits
        };
        let mask = if v6 { mask } else { mask & 0xffff_ffff };
        Ok(Cidr {
            v6,
            base: base & mask,
            mask,
        })
    }

    pub(crate) fn contains(&self, s: &str) -> bool {
        match parse_ip(s) {
            Some(ip) => {
                let (v6, bits) = to_bits(ip);
                v6 == self.v6 && bits & self.mask == self.base
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_block() {
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        assert!(c.contains("10.0.0.0"));
        assert!(c.contains("10.0.0.255"));
        assert!(!c.contains("10.0.1.0"));
        assert!(!c.contains("::ffff:10.0.0.1"));
        assert!(!c.contains("not an ip"));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("255.255.255.255"));
    }

    #[test]
    fn v6_block() {
        let c = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c.contains("2001:db8:ffff::1"));
        assert!(c.contains("2001:0DB8::"));
        assert!(!c.contains("2001:db9::1"));
        assert!(!c.contains("10.0.0.1"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            Cidr::parse("10.0.0.0").unwrap_err(),
            "Malformed CIDR, one '/' required"
        );
        assert_eq!(
            Cidr::parse("10.0.0.0/x").unwrap_err(),
            "Malformed CIDR, mask bits must be an integer"
        );
        assert_eq!(
            Cidr::parse("10.0.0.0/-1").unwrap_err(),
            "Malformed CIDR, mask bits must not be negative"
        );
        assert_eq!(
            Cidr::parse("10.0.0/8").unwrap_err(),
            "Nonstandard IP address: 10.0.0"
        );
        assert_eq!(
            Cidr::parse("10.0.0.0/32").unwrap_err(),
            "IPv4 mask bits must be < 32"
        );
        assert_eq!(
            Cidr::parse("::/128").unwrap_err(),
            "IPv6 mask bits must be < 128"
        );
    }
}
