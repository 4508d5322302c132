//! Contact and network identifiers: email, phone, URL, IPv4/IPv6, MAC, AWS keys.

use std::net::Ipv6Addr;
use std::sync::OnceLock;

use regex::Regex;

use super::{Cand, Cue, Cues, Want, bounded, bounded_number, char_at, char_before, lazy};
use crate::config::PiiType;

fn email_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}",
    )
}

fn url_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r#"(?i)\b(?:https?|ftps?|sftp)://[^\s<>"'`]+|\bwww\.[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\s<>"'`]*"#,
    )
}

fn nanp_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"(?:\+?1[ .-]?)?(?:\([2-9][0-9]{2}\)|[2-9][0-9]{2})[ .-]?[2-9][0-9]{2}[ .-]?[0-9]{4}",
    )
}

fn intl_phone_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"\+[1-9][0-9]{0,2}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6}",
    )
}

fn national_phone_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"0[1-9][0-9]{1,4}[ -][0-9]{3,4}[ -]?[0-9]{3,4}")
}

fn ipv4_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
}

fn ipv6_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?::?[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})?",
    )
}

fn mac_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}",
    )
}

fn access_key_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // Real key IDs are base32 ([A-Z2-7]), but AWS's own documentation examples are not
    // ("AKIAI44QH8DHBEXAMPLE"), and those are what people paste into an emulator.
    lazy(&RE, r"(?:AKIA|ASIA)[A-Z0-9]{16}")
}

fn secret_key_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"[A-Za-z0-9/+]{40}")
}

fn version_cue_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"(?i)(?:\bv|\bversion|\bver\.?|\brelease|\bbuild|\bfirmware|\bOID)\s*[:=]?\s*$",
    )
}

pub(super) fn warm() {
    email_re();
    url_re();
    nanp_re();
    intl_phone_re();
    national_phone_re();
    ipv4_re();
    ipv6_re();
    mac_re();
    access_key_re();
    secret_key_re();
    version_cue_re();
}

pub(super) fn find(text: &str, want: Want, cues: &Cues, out: &mut Vec<Cand>) {
    use PiiType::*;
    let mut push = |kind, start, end| out.push(Cand { kind, start, end });
    if want.has(Email) {
        for m in email_re().find_iter(text) {
            if let Some(end) = email_end(text, m.start(), m.as_str()) {
                push(Email, m.start(), end);
            }
        }
    }
    if want.has(Url) {
        for m in url_re().find_iter(text) {
            let end = m.start() + trim_url(m.as_str()).len();
            let body = &text[m.start()..end];
            let host_ok = body
                .split_once("://")
                .is_none_or(|(_, rest)| rest.chars().next().is_some_and(char::is_alphanumeric));
            if host_ok && end > m.start() {
                push(Url, m.start(), end);
            }
        }
    }
    if want.has(Phone) {
        find_phones(text, cues, &mut push);
    }
    if want.has(IpAddress) {
        for m in ipv4_re().find_iter(text) {
            let (s, e) = (m.start(), m.end());
            if ipv4_bounded(text, s, e)
                && m.as_str()
                    .split('.')
                    .all(|o| o.parse::<u16>().is_ok_and(|n| n <= 255))
                && !version_cue_re()
                    .is_match(&text[super::floor_boundary(text, s.saturating_sub(16))..s])
            {
                push(IpAddress, s, e);
            }
        }
        for m in ipv6_re().find_iter(text) {
            let (s, e) = (m.start(), m.end());
            if ipv6_valid(text, s, e) {
                push(IpAddress, s, e);
            }
        }
    }
    if want.has(MacAddress) {
        for m in mac_re().find_iter(text) {
            let (s, e) = (m.start(), m.end());
            if mac_bounded(text, s, e) {
                push(MacAddress, s, e);
            }
        }
    }
    let mut access_keys = Vec::new();
    if want.any(&[AwsAccessKey, AwsSecretKey]) {
        for m in access_key_re().find_iter(text) {
            if bounded(text, m.start(), m.end()) {
                access_keys.push((m.start(), m.end()));
                push(AwsAccessKey, m.start(), m.end());
            }
        }
    }
    if want.has(AwsSecretKey) {
        for m in secret_key_re().find_iter(text) {
            let (s, e) = (m.start(), m.end());
            // Part of a longer base64 run (a token, a blob) unless "=" assigns it.
            let in_class =
                |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || matches!(c, '/' | '+'));
            if in_class(char_before(text, s)) || in_class(char_at(text, e)) {
                continue;
            }
            let v = m.as_str();
            let varied = v.bytes().any(|b| b.is_ascii_uppercase())
                && v.bytes().any(|b| b.is_ascii_lowercase())
                && v.bytes()
                    .any(|b| b.is_ascii_digit() || b == b'/' || b == b'+');
            let near_key = access_keys
                .iter()
                .any(|&(ks, ke)| (ke <= s && s - ke <= 200) || (e <= ks && ks - e <= 200));
            if varied && (near_key || cues.last(text, s) == Some(Cue::Secret)) {
                push(AwsSecretKey, s, e);
            }
        }
    }
}

/// The end of a valid address: a local part without leading, trailing or doubled dots, and
/// domain labels that neither start nor end with a hyphen.
fn email_end(text: &str, start: usize, m: &str) -> Option<usize> {
    if char_before(text, start).is_some_and(|c| c.is_alphanumeric() || c == '@') {
        return None;
    }
    let (local, domain) = m.split_once('@')?;
    if local.is_empty()
        || local.len() > 64
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return None;
    }
    if domain
        .split('.')
        .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-') || l.len() > 63)
    {
        return None;
    }
    let end = start + m.len();
    if char_at(text, end).is_some_and(|c| c.is_alphanumeric() || c == '@' || c == '_') {
        return None;
    }
    Some(end)
}

/// A URL without the punctuation that ends the sentence around it, or a closing bracket it
/// did not open.
fn trim_url(mut u: &str) -> &str {
    loop {
        let before = u.len();
        u = u.trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '"']);
        for (open, close) in [('(', ')'), ('[', ']'), ('{', '}')] {
            if u.ends_with(close) && u.matches(close).count() > u.matches(open).count() {
                u = &u[..u.len() - 1];
            }
        }
        if u.len() == before {
            return u;
        }
    }
}

fn find_phones(text: &str, cues: &Cues, push: &mut impl FnMut(PiiType, usize, usize)) {
    let mut found: Vec<(usize, usize)> = Vec::new();
    let phone_bounded = |s: usize, e: usize| {
        bounded_number(text, s, e)
            && !char_before(text, s).is_some_and(|c| c == '+' || c == '(' || c == '#')
    };
    for m in nanp_re().find_iter(text) {
        let (s, e) = (m.start(), m.end());
        let v = m.as_str();
        if !bounded_number(text, s, e) {
            continue;
        }
        if !v.starts_with(['+', '(']) && char_before(text, s).is_some_and(|c| c == '+' || c == '(')
        {
            continue;
        }
        // Ten plain digits are any number; they are a phone after a phone cue only.
        let formatted = v.bytes().any(|b| !b.is_ascii_digit());
        if formatted || cues.last(text, s) == Some(Cue::Phone) {
            found.push((s, e));
        }
    }
    for m in intl_phone_re().find_iter(text) {
        let (s, e) = (m.start(), m.end());
        let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
        if (8..=15).contains(&digits) && bounded_number(text, s, e) {
            found.push((s, e));
        }
    }
    for m in national_phone_re().find_iter(text) {
        let (s, e) = (m.start(), m.end());
        let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
        if (10..=11).contains(&digits) && phone_bounded(s, e) {
            found.push((s, e));
        }
    }
    found.sort();
    found.dedup();
    for (s, e) in found {
        push(PiiType::Phone, s, e);
    }
}

/// Not part of a longer hex/colon run; a full stop after it may end the sentence.
fn mac_bounded(text: &str, s: usize, e: usize) -> bool {
    let before_ok = match char_before(text, s) {
        Some(c) if c.is_alphanumeric() => false,
        Some(':' | '-' | '.') => !char_before(text, s - 1).is_some_and(|c| c.is_ascii_hexdigit()),
        _ => true,
    };
    let after_ok = match char_at(text, e) {
        Some(c) if c.is_alphanumeric() => false,
        Some(':' | '-' | '.') => !char_at(text, e + 1).is_some_and(|c| c.is_ascii_hexdigit()),
        _ => true,
    };
    before_ok && after_ok
}

fn ipv4_bounded(text: &str, s: usize, e: usize) -> bool {
    if char_before(text, s).is_some_and(|c| c.is_alphanumeric() || c == '.') {
        return false;
    }
    match char_at(text, e) {
        Some(c) if c.is_alphanumeric() => false,
        Some('.') => !char_at(text, e + 1).is_some_and(|c| c.is_ascii_digit()),
        _ => true,
    }
}

/// A candidate that std parses as IPv6, not glued to more hex or colons, with a digit in it
/// and at least two groups (so that "dead::beef", "a::b" or a bare "::" are not addresses;
/// times and MACs never parse).
fn ipv6_valid(text: &str, s: usize, e: usize) -> bool {
    let v = &text[s..e];
    if v.len() < 3 || !v.contains(':') {
        return false;
    }
    let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == ':');
    if glued(char_before(text, s)) || glued(char_at(text, e)) {
        return false;
    }
    let groups = v.split(':').filter(|g| !g.is_empty()).count();
    v.parse::<Ipv6Addr>().is_ok() && groups >= 2 && v.bytes().any(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_trimming() {
        assert_eq!(trim_url("https://example.com/a)."), "https://example.com/a");
        assert_eq!(
            trim_url("https://en.wikipedia.org/wiki/Rust_(language))"),
            "https://en.wikipedia.org/wiki/Rust_(language)"
        );
    }
}
