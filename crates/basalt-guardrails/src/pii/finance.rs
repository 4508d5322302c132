//! Payment cards (number, expiry, CVV), IBAN, SWIFT/BIC, US routing and account numbers.

use std::sync::OnceLock;

use regex::Regex;

use super::{Cand, Cue, Cues, Want, bounded, bounded_number, digits_of, lazy, luhn};
use crate::config::PiiType;

fn card_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"[0-9](?:[ -]?[0-9]){11,18}")
}

fn expiry_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"(?:0?[1-9]|1[0-2]) ?[/-] ?(?:20[0-9]{2}|[0-9]{2})")
}

fn short_number_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"[0-9]{3,17}")
}

fn iban_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,8}(?: ?[A-Z0-9]{1,3})?",
    )
}

fn swift_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
}

pub(super) fn warm() {
    card_re();
    expiry_re();
    short_number_re();
    iban_re();
    swift_re();
}

pub(super) fn find(text: &str, want: Want, cues: &Cues, out: &mut Vec<Cand>) {
    use PiiType::*;
    let mut cards = Vec::new();
    if want.any(&[CreditDebitCardNumber, CreditDebitCardExpiry]) {
        for m in card_re().find_iter(text) {
            if let Some(end) = card_end(text, m.start(), m.as_str()) {
                cards.push((m.start(), end));
                out.push(Cand {
                    kind: CreditDebitCardNumber,
                    start: m.start(),
                    end,
                });
            }
        }
    }
    if want.has(CreditDebitCardExpiry) {
        for m in expiry_re().find_iter(text) {
            if !bounded_number(text, m.start(), m.end()) {
                continue;
            }
            // An expiry follows its cue, or the card number it belongs to.
            let after_card = cards.iter().any(|&(_, e)| {
                e <= m.start() && m.start() - e <= 64 && !text[e..m.start()].contains('\n')
            });
            if after_card || cues.last(text, m.start()) == Some(Cue::Expiry) {
                out.push(Cand {
                    kind: CreditDebitCardExpiry,
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
    }
    if want.any(&[CreditDebitCardCvv, UsBankRoutingNumber, UsBankAccountNumber]) {
        for m in short_number_re().find_iter(text) {
            let (s, e) = (m.start(), m.end());
            if !bounded_number(text, s, e) {
                continue;
            }
            let kind = match (cues.last(text, s), m.len()) {
                (Some(Cue::Cvv), 3 | 4) => CreditDebitCardCvv,
                (Some(Cue::Routing), 9) if aba_valid(m.as_str()) => UsBankRoutingNumber,
                (Some(Cue::Account), 8..=17) => UsBankAccountNumber,
                _ => continue,
            };
            out.push(Cand {
                kind,
                start: s,
                end: e,
            });
        }
    }
    if want.has(InternationalBankAccountNumber) {
        for m in iban_re().find_iter(text) {
            if let Some(end) = iban_end(text, m.start(), m.as_str()) {
                out.push(Cand {
                    kind: InternationalBankAccountNumber,
                    start: m.start(),
                    end,
                });
            }
        }
    }
    if want.has(SwiftCode) {
        for m in swift_re().find_iter(text) {
            if bounded(text, m.start(), m.end())
                && swift_valid(m.as_str(), cues.last(text, m.start()) == Some(Cue::Swift))
            {
                out.push(Cand {
                    kind: SwiftCode,
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
    }
}

/// Where the card number that starts at `start` ends: the longest run of the matched digit
/// groups that is laid out like a card (no separators, or groups of four, or Amex/Diners
/// 4-6-5/4-6-4) and passes Luhn and the issuer prefix rules.
fn card_end(text: &str, start: usize, m: &str) -> Option<usize> {
    // Digit groups as (start, end) within `m`; a change of separator ends the candidate.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut sep: Option<u8> = None;
    let mut gs = 0;
    let mut stop = m.len();
    for (i, b) in m.bytes().enumerate() {
        if b == b' ' || b == b'-' {
            if sep.is_some_and(|s| s != b) {
                stop = i;
                break;
            }
            sep = Some(b);
            groups.push((gs, i));
            gs = i + 1;
        }
    }
    if gs < stop {
        groups.push((gs, stop));
    }
    for k in (1..=groups.len()).rev() {
        let end = groups[k - 1].1;
        let candidate = &m[..end];
        let d = digits_of(candidate);
        if !(13..=19).contains(&d.len()) {
            continue;
        }
        let lens: Vec<usize> = groups[..k].iter().map(|g| g.1 - g.0).collect();
        let layout_ok = k == 1
            || (lens[..k - 1].iter().all(|&l| l == 4) && (1..=4).contains(&lens[k - 1]))
            || lens == [4, 6, 5]
            || lens == [4, 6, 4];
        if layout_ok && bounded_number(text, start, start + end) && card_valid(&d) {
            return Some(start + end);
        }
    }
    None
}

/// Luhn, and a length the issuer identified by the leading digits uses.
pub(super) fn card_valid(d: &[u8]) -> bool {
    let n = d.len();
    let prefix = |k: usize| d[..k].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    if n < 13 || !luhn(d) {
        return false;
    }
    let (p2, p3, p4) = (prefix(2), prefix(3), prefix(4));
    let visa = d[0] == 4 && matches!(n, 13 | 16 | 19);
    let mastercard = ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && n == 16;
    let amex = matches!(p2, 34 | 37) && n == 15;
    let discover = (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65) && (16..=19).contains(&n);
    let diners =
        ((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && (14..=19).contains(&n);
    let jcb = (3528..=3589).contains(&p4) && (16..=19).contains(&n);
    let unionpay = p2 == 62 && (16..=19).contains(&n);
    let maestro = (p2 == 50 || (56..=69).contains(&p2)) && (13..=19).contains(&n);
    let mir = (2200..=2204).contains(&p4) && n == 16;
    visa || mastercard || amex || discover || diners || jcb || unionpay || maestro || mir
}

/// The ABA checksum (weights 3, 7, 1) and a Federal Reserve prefix (00-12, 21-32, 61-72, 80).
pub(super) fn aba_valid(s: &str) -> bool {
    let d = digits_of(s);
    if d.len() != 9 {
        return false;
    }
    let prefix = d[0] * 10 + d[1];
    if !matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80) || d.iter().all(|&x| x == 0) {
        return false;
    }
    let w = [3u32, 7, 1];
    let sum: u32 = d
        .iter()
        .enumerate()
        .map(|(i, &x)| u32::from(x) * w[i % 3])
        .sum();
    sum.is_multiple_of(10)
}

/// IBAN lengths by country (the SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// Where the IBAN that starts at `start` ends: its country's length of characters (spaces
/// not counted), when that many were matched, the IBAN ends on a word boundary and mod-97
/// of the rearranged digits is 1.
fn iban_end(text: &str, start: usize, m: &str) -> Option<usize> {
    if super::char_before(text, start).is_some_and(char::is_alphanumeric) {
        return None;
    }
    let len = IBAN_LENGTHS.iter().find(|(c, _)| m.starts_with(c))?.1;
    let chars: Vec<(usize, u8)> = m
        .bytes()
        .enumerate()
        .filter(|(_, b)| b.is_ascii_alphanumeric())
        .collect();
    if chars.len() < len {
        return None;
    }
    let end = start + chars[len - 1].0 + 1;
    if !bounded(text, start, end) {
        return None;
    }
    let compact: Vec<u8> = chars[..len].iter().map(|c| c.1).collect();
    let rearranged = compact[4..].iter().chain(&compact[..4]);
    let mut rem: u32 = 0;
    for &b in rearranged {
        if b.is_ascii_digit() {
            rem = (rem * 10 + u32::from(b - b'0')) % 97;
        } else {
            rem = (rem * 100 + u32::from(b - b'A' + 10)) % 97;
        }
    }
    (rem == 1).then_some(end)
}

/// ISO 3166-1 alpha-2 codes (and XK, which SWIFT uses for Kosovo).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

/// A BIC: bank code, a real country, location and optional branch. Eight capital letters
/// are also an English word in capitals ("BUSINESS" has country NE), so without a SWIFT/BIC
/// cue the code must carry a digit in its location or branch, or the "XXX" head office.
pub(super) fn swift_valid(code: &str, cued: bool) -> bool {
    let country = &code[4..6];
    if !COUNTRIES.split(' ').any(|c| c == country) {
        return false;
    }
    if cued {
        return true;
    }
    let tail = &code[6..];
    tail.bytes().any(|b| b.is_ascii_digit()) || code.ends_with("XXX")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_checks() {
        assert!(card_valid(&digits_of("4111111111111111")));
        assert!(card_valid(&digits_of("378282246310005")));
        assert!(card_valid(&digits_of("5555555555554444")));
        assert!(card_valid(&digits_of("6011111111111117")));
        assert!(!card_valid(&digits_of("4111111111111112")), "Luhn");
        assert!(
            !card_valid(&digits_of("1234567812345670")),
            "no issuer starts with 1"
        );
        assert!(
            !card_valid(&digits_of("378282246310005000")),
            "Amex is 15 digits"
        );
    }

    #[test]
    fn aba_checks() {
        assert!(aba_valid("021000021"));
        assert!(aba_valid("011401533"));
        assert!(!aba_valid("021000022"));
        assert!(!aba_valid("123456789"));
        assert!(!aba_valid("000000000"));
    }

    #[test]
    fn swift_checks() {
        assert!(swift_valid("DEUTDEFF", true));
        assert!(!swift_valid("DEUTDEFF", false));
        assert!(swift_valid("HSBCGB2L", false));
        assert!(swift_valid("DEUTDEFFXXX", false));
        assert!(!swift_valid("ABCDQQ12", true), "QQ is no country");
    }
}
