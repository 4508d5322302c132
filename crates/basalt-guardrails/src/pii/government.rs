//! National identifiers (US SSN and ITIN, UK NINO, NHS and UTR, Canadian SIN and health
//! number, US passport), driver's licences, licence plates and VINs.

use std::sync::OnceLock;

use regex::Regex;

use super::{
    Cand, Cue, Cues, Want, bounded, bounded_number, digits_of, lazy, luhn, uniform_separators,
};
use crate::config::PiiType;

fn ssn_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"[0-9]{3}[ -]?[0-9]{2}[ -]?[0-9]{4}")
}

fn three_three_three_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{3}")
}

fn passport_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"[A-Z]?[0-9]{8,9}")
}

fn nhs_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}")
}

fn ca_health_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"[0-9]{4}[ -]?[0-9]{3}[ -]?[0-9]{3}(?:[ -]?[A-Z]{2})?")
}

fn utr_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"[0-9]{5} ?[0-9]{5}K?")
}

fn nino_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]")
}

fn vin_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(&RE, r"[A-HJ-NPR-Z0-9]{17}")
}

fn driver_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"(?:(?i:\b(?:driver['’]?s?|driving)\s+licen[cs]e(?:\s+(?:number|no\.?|#|id))?|\bDL\b(?:\s*(?:number|no\.?|#))?))(?i:\s+(?:is|was)\b)?\s*[:#=]?\s*([A-Z0-9][A-Z0-9-]{3,19})",
    )
}

fn plate_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"(?i:\b(?:licen[cs]e\s+plate|number\s+plate|registration\s+(?:plate|number)|reg\.?\s+plate|plate|tag\s+number)(?:\s+(?:number|no\.?|#))?)(?i:\s+(?:is|was|reads)\b)?\s*[:#=]?\s*([A-Z0-9]{1,8}(?:[ -][A-Z0-9]{1,4})?)",
    )
}

pub(super) fn warm() {
    ssn_re();
    three_three_three_re();
    passport_re();
    nhs_re();
    ca_health_re();
    utr_re();
    nino_re();
    vin_re();
    driver_re();
    plate_re();
}

pub(super) fn find(text: &str, want: Want, cues: &Cues, out: &mut Vec<Cand>) {
    use PiiType::*;
    let mut push = |kind, start, end| out.push(Cand { kind, start, end });
    if want.any(&[UsSocialSecurityNumber, UsIndividualTaxIdentificationNumber]) {
        for m in ssn_re().find_iter(text) {
            let (s, e) = (m.start(), m.end());
            let v = m.as_str();
            if !bounded_number(text, s, e) || !uniform_separators(v) {
                continue;
            }
            let bare = v.len() == 9;
            let cue = cues.last(text, s);
            if bare && !matches!(cue, Some(Cue::Ssn | Cue::Itin)) {
                continue;
            }
            if itin_valid(v) {
                push(UsIndividualTaxIdentificationNumber, s, e);
            } else if ssn_valid(v) {
                push(UsSocialSecurityNumber, s, e);
            }
        }
    }
    if want.any(&[CaSocialInsuranceNumber, UsPassportNumber]) {
        for m in three_three_three_re().find_iter(text) {
            let (s, e) = (m.start(), m.end());
            let v = m.as_str();
            if !bounded_number(text, s, e) || !uniform_separators(v) {
                continue;
            }
            let cue = cues.last(text, s);
            // A bare nine-digit number is only a SIN when cued; a formatted one unless
            // another cue claims it.
            let sin_ok = if v.len() == 9 {
                cue == Some(Cue::Sin)
            } else {
                cue.is_none_or(|c| c == Cue::Sin)
            };
            if sin_ok && sin_valid(v) {
                push(CaSocialInsuranceNumber, s, e);
            }
        }
        for m in passport_re().find_iter(text) {
            let (s, e) = (m.start(), m.end());
            // Nine digits, or a letter and eight digits (the Next Generation passport).
            if m.len() == 9 && bounded(text, s, e) && cues.last(text, s) == Some(Cue::Passport) {
                push(UsPassportNumber, s, e);
            }
        }
    }
    if want.has(UkNationalHealthServiceNumber) {
        for m in nhs_re().find_iter(text) {
            let (s, e) = (m.start(), m.end());
            if bounded_number(text, s, e)
                && uniform_separators(m.as_str())
                && cues.last(text, s) == Some(Cue::Nhs)
                && nhs_valid(m.as_str())
            {
                push(UkNationalHealthServiceNumber, s, e);
            }
        }
    }
    if want.has(CaHealthNumber) {
        for m in ca_health_re().find_iter(text) {
            let (s, e) = (m.start(), m.end());
            if bounded_number(text, s, e) && cues.last(text, s) == Some(Cue::CaHealth) {
                push(CaHealthNumber, s, e);
            }
        }
    }
    if want.has(UkUniqueTaxpayerReferenceNumber) {
        for m in utr_re().find_iter(text) {
            let (s, e) = (m.start(), m.end());
            if bounded_number(text, s, e) && cues.last(text, s) == Some(Cue::Utr) {
                push(UkUniqueTaxpayerReferenceNumber, s, e);
            }
        }
    }
    if want.has(UkNationalInsuranceNumber) {
        for m in nino_re().find_iter(text) {
            let (s, e) = (m.start(), m.end());
            if bounded(text, s, e) && nino_valid(m.as_str()) {
                push(UkNationalInsuranceNumber, s, e);
            }
        }
    }
    if want.has(VehicleIdentificationNumber) {
        for m in vin_re().find_iter(text) {
            let (s, e) = (m.start(), m.end());
            let v = m.as_str();
            let mixed =
                v.bytes().any(|b| b.is_ascii_digit()) && v.bytes().any(|b| b.is_ascii_uppercase());
            if bounded(text, s, e)
                && mixed
                && (vin_check_digit_ok(v) || cues.last(text, s) == Some(Cue::Vin))
            {
                push(VehicleIdentificationNumber, s, e);
            }
        }
    }
    if want.has(DriverId) {
        for c in driver_re().captures_iter(text) {
            let Some(v) = c.get(1) else { continue };
            let id = v.as_str().trim_end_matches('-');
            let end = v.start() + id.len();
            let alnum = id.bytes().filter(u8::is_ascii_alphanumeric).count();
            if (5..=20).contains(&alnum)
                && id.bytes().any(|b| b.is_ascii_digit())
                && bounded(text, v.start(), end)
            {
                push(DriverId, v.start(), end);
            }
        }
    }
    if want.has(LicensePlate) {
        for c in plate_re().captures_iter(text) {
            let Some(v) = c.get(1) else { continue };
            let mut plate = v.as_str();
            // A trailing group of letters only is a following word in capitals ("ABC123 IN
            // THE LOT"), unless the first group has no letters of its own ("12 ABC" is not a
            // UK plate either way, "AB12 CDE" is).
            if let Some((head, tail)) = plate.rsplit_once([' ', '-'])
                && !tail.bytes().any(|b| b.is_ascii_digit())
                && !(head.bytes().any(|b| b.is_ascii_uppercase())
                    && head.bytes().any(|b| b.is_ascii_digit())
                    && tail.len() == 3)
            {
                plate = head;
            }
            let end = v.start() + plate.len();
            let alnum = plate.bytes().filter(u8::is_ascii_alphanumeric).count();
            if (4..=8).contains(&alnum)
                && plate.bytes().any(|b| b.is_ascii_digit())
                && bounded(text, v.start(), end)
            {
                push(LicensePlate, v.start(), end);
            }
        }
    }
}

/// Area not 000, 666 or 9xx; group not 00; serial not 0000; and not one of the numbers
/// the SSA voided after they were published (078-05-1120 on a wallet insert, 219-09-9999 in
/// an advertisement).
pub(super) fn ssn_valid(s: &str) -> bool {
    let d = digits_of(s);
    if d.len() != 9 {
        return false;
    }
    let num = |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let (area, group, serial) = (num(0..3), num(3..5), num(5..9));
    let voided = matches!((area, group, serial), (78, 5, 1120) | (219, 9, 9999));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0 && !voided
}

/// 9xx-GG-SSSS with the IRS's group ranges 50-65, 70-88, 90-92 and 94-99.
pub(super) fn itin_valid(s: &str) -> bool {
    let d = digits_of(s);
    if d.len() != 9 || d[0] != 9 {
        return false;
    }
    let group = d[3] * 10 + d[4];
    matches!(group, 50..=65 | 70..=88 | 90..=92 | 94..=99)
}

/// Luhn over nine digits; the first digit names a region (1-7) or a temporary resident (9);
/// 0 is unused and 8 is for business numbers.
pub(super) fn sin_valid(s: &str) -> bool {
    let d = digits_of(s);
    d.len() == 9 && d[0] != 0 && d[0] != 8 && luhn(&d)
}

/// Modulus 11 with weights 10..2 over the first nine digits; a remainder giving 10 is never
/// issued.
pub(super) fn nhs_valid(s: &str) -> bool {
    let d = digits_of(s);
    if d.len() != 10 {
        return false;
    }
    let sum: u32 = d[..9]
        .iter()
        .enumerate()
        .map(|(i, &x)| u32::from(x) * (10 - i as u32))
        .sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    check == u32::from(d[9]) && !d.iter().all(|&x| x == d[0])
}

/// Two prefix letters (not D, F, I, Q, U, V; the second not O; not BG, GB, KN, NK, NT, TN or
/// ZZ, which are not allocated), six digits, a suffix A-D.
pub(super) fn nino_valid(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if compact.len() != 9 {
        return false;
    }
    let (a, b) = (compact[0], compact[1]);
    let bad_first = b"DFIQUV".contains(&a);
    let bad_second = b"DFIOQUV".contains(&b);
    let prefix = [a, b];
    let unallocated = [b"BG", b"GB", b"KN", b"NK", b"NT", b"TN", b"ZZ"]
        .iter()
        .any(|p| **p == prefix);
    // Spaces, when present, split the number into its pairs: "AB 12 34 56 C".
    let spaced_ok = !s.contains(' ') || s.split(' ').count() == 5;
    !bad_first && !bad_second && !unallocated && spaced_ok
}

/// The North American check digit (position 9): transliterate letters, weight, mod 11,
/// where 10 is written X.
pub(super) fn vin_check_digit_ok(v: &str) -> bool {
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A' | b'J' => 1,
            b'B' | b'K' | b'S' => 2,
            b'C' | b'L' | b'T' => 3,
            b'D' | b'M' | b'U' => 4,
            b'E' | b'N' | b'V' => 5,
            b'F' | b'W' => 6,
            b'G' | b'P' | b'X' => 7,
            b'H' | b'Y' => 8,
            b'R' | b'Z' => 9,
            _ => return None,
        })
    };
    let b = v.as_bytes();
    if b.len() != 17 {
        return false;
    }
    let mut sum = 0;
    for (i, &c) in b.iter().enumerate() {
        let Some(x) = value(c) else { return false };
        sum += x * WEIGHTS[i];
    }
    let check = match sum % 11 {
        10 => b'X',
        r => b'0' + r as u8,
    };
    b[8] == check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssn_rules() {
        assert!(ssn_valid("123-45-6789"));
        assert!(ssn_valid("536 22 8756"));
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "123-00-4567",
            "123-45-0000",
            "078-05-1120",
        ] {
            assert!(!ssn_valid(bad), "{bad}");
        }
    }

    #[test]
    fn itin_rules() {
        assert!(itin_valid("912-70-1234"));
        assert!(itin_valid("900-94-0000"));
        assert!(!itin_valid("912-34-5678"), "group 34 is no ITIN range");
        assert!(!itin_valid("812-70-1234"));
    }

    #[test]
    fn sin_nhs_nino_vin() {
        assert!(sin_valid("130 692 544"));
        assert!(!sin_valid("130 692 545"));
        assert!(
            !sin_valid("046 454 286"),
            "Luhn-valid, but no SIN starts with 0"
        );
        assert!(nhs_valid("943 476 5919"));
        assert!(!nhs_valid("943 476 5918"));
        assert!(nino_valid("AB 12 34 56 C"));
        assert!(nino_valid("JG103759A"));
        assert!(!nino_valid("GB123456A"));
        assert!(!nino_valid("QQ123456A"));
        assert!(vin_check_digit_ok("1HGCM82633A004352"));
        assert!(vin_check_digit_ok("1M8GDM9AXKP042788"));
        assert!(!vin_check_digit_ok("1HGCM82643A004352"));
    }
}
