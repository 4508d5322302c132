//! The sensitive-information policy: PII recognizers and custom regexes.
//!
//! Every entity type has its own recognizer: a pattern for the shape, then the checks the
//! shape alone cannot make (Luhn and issuer prefixes for cards, mod-97 for IBANs, the ABA
//! checksum, SSN area rules, NHS mod-11, VIN check digits...). Where a bare number could be
//! any of several things (nine digits: an SSN, a routing number, a SIN, a passport), the
//! recognizer only fires after the cue that names it ("routing number", "SSN", "passport"),
//! and the cue nearest before the number decides (see `Cues::last`).
//!
//! Recognizers are grouped by file: `finance` (cards, bank numbers, IBAN, SWIFT), `government`
//! (national identifiers, licences, vehicles), `network` (email, phone, URL, IP, MAC, AWS keys)
//! and `personal` (name, address, age, credentials).
//!
//! Overlapping candidates are settled by length, then by how specific the type is (`rank`),
//! so that "4111 1111 1111 1111" is one card number and not a card with a phone inside.

use std::sync::OnceLock;

use regex::Regex;

use crate::config::{PiiAction, PiiType, SensitiveInformationPolicy};
use crate::{ConfigError, Source};

mod finance;
mod government;
mod network;
mod personal;

/// What matched: a PII entity type, or a custom regex (its index in the policy).
#[derive(Debug, Clone, PartialEq)]
pub enum PiiKind {
    Entity(PiiType),
    Regex(usize),
}

/// One match of the policy in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct PiiHit {
    pub kind: PiiKind,
    pub matched: String,
    /// Byte range of the match in the input.
    pub start: usize,
    pub end: usize,
    pub action: PiiAction,
}

/// Entity types wanted in one evaluation, as a bit set over [`PiiType`]'s discriminants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Want(u64);

impl Want {
    pub(crate) fn has(self, t: PiiType) -> bool {
        self.0 & (1 << t as u32) != 0
    }

    fn add(&mut self, t: PiiType) {
        self.0 |= 1 << t as u32;
    }

    fn any(self, types: &[PiiType]) -> bool {
        types.iter().any(|t| self.has(*t))
    }
}

/// A recognizer's finding before overlaps are settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cand {
    pub kind: PiiType,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug)]
struct CompiledRegex {
    re: Regex,
    input: Option<PiiAction>,
    output: Option<PiiAction>,
}

/// A sensitive-information policy compiled for matching.
#[derive(Debug, Default)]
pub struct PiiFilter {
    input_want: Want,
    output_want: Want,
    /// Per entity type (indexed by discriminant): the action for input, and for output;
    /// `None` where that direction is disabled or the type is not configured.
    input_actions: Vec<Option<PiiAction>>,
    output_actions: Vec<Option<PiiAction>>,
    regexes: Vec<CompiledRegex>,
}

/// Number of [`PiiType`] variants (the discriminant of the last one, plus one).
const TYPES: usize = PiiType::VehicleIdentificationNumber as usize + 1;

impl PiiFilter {
    pub fn new(policy: &SensitiveInformationPolicy) -> Result<PiiFilter, ConfigError> {
        let mut f = PiiFilter {
            input_actions: vec![None; TYPES],
            output_actions: vec![None; TYPES],
            ..PiiFilter::default()
        };
        for e in &policy.pii_entities {
            let i = e.kind as usize;
            if e.input_enabled {
                f.input_actions[i] = Some(e.input_action);
                f.input_want.add(e.kind);
            }
            if e.output_enabled {
                f.output_actions[i] = Some(e.output_action);
                f.output_want.add(e.kind);
            }
        }
        for r in &policy.regexes {
            let re = Regex::new(&r.pattern).map_err(|e| {
                ConfigError(format!(
                    "The regex pattern of {} is not valid: {}",
                    r.name,
                    e.to_string().lines().last().unwrap_or("")
                ))
            })?;
            f.regexes.push(CompiledRegex {
                re,
                input: r.input_enabled.then_some(r.input_action),
                output: r.output_enabled.then_some(r.output_action),
            });
        }
        // Build the shared recognizer tables now, so the first request does not pay for it.
        finance::warm();
        government::warm();
        network::warm();
        personal::warm();
        Ok(f)
    }

    /// Every match in `text` of an entity or regex enabled for `source`, in text order,
    /// without overlaps.
    pub fn find(&self, text: &str, source: Source) -> Vec<PiiHit> {
        let (want, actions) = match source {
            Source::Input => (self.input_want, &self.input_actions),
            Source::Output => (self.output_want, &self.output_actions),
        };
        // (kind, start, end, rank)
        let mut spans: Vec<(PiiKind, usize, usize, u8)> = Vec::new();
        for c in entity_candidates(text, want) {
            spans.push((PiiKind::Entity(c.kind), c.start, c.end, rank(c.kind)));
        }
        for (i, r) in self.regexes.iter().enumerate() {
            let enabled = match source {
                Source::Input => r.input.is_some(),
                Source::Output => r.output.is_some(),
            };
            if !enabled {
                continue;
            }
            for m in r.re.find_iter(text) {
                if !m.is_empty() {
                    spans.push((PiiKind::Regex(i), m.start(), m.end(), u8::MAX));
                }
            }
        }
        resolve(&mut spans);
        spans
            .into_iter()
            .filter_map(|(kind, start, end, _)| {
                let action = match &kind {
                    PiiKind::Entity(t) => actions[*t as usize]?,
                    PiiKind::Regex(i) => match source {
                        Source::Input => self.regexes[*i].input?,
                        Source::Output => self.regexes[*i].output?,
                    },
                };
                Some(PiiHit {
                    kind,
                    matched: text[start..end].to_owned(),
                    start,
                    end,
                    action,
                })
            })
            .collect()
    }
}

/// Every entity of the `want` types in `text`, before overlaps are settled.
pub(crate) fn entity_candidates(text: &str, want: Want) -> Vec<Cand> {
    let mut out = Vec::new();
    if want == Want::default() || text.is_empty() {
        return out;
    }
    let cues = Cues::of(text);
    finance::find(text, want, &cues, &mut out);
    government::find(text, want, &cues, &mut out);
    network::find(text, want, &cues, &mut out);
    personal::find(text, want, &mut out);
    // Recognizers may compute a type they were not asked for (a card, to place an expiry).
    out.retain(|c| want.has(c.kind) && c.start < c.end);
    out
}

/// Keeps a non-overlapping subset of `spans`: longer first, then the higher rank, then the
/// earlier; the result is in text order.
fn resolve(spans: &mut Vec<(PiiKind, usize, usize, u8)>) {
    spans.sort_by(|a, b| {
        (b.2 - b.1)
            .cmp(&(a.2 - a.1))
            .then(b.3.cmp(&a.3))
            .then(a.1.cmp(&b.1))
    });
    let mut kept: Vec<(PiiKind, usize, usize, u8)> = Vec::with_capacity(spans.len());
    for s in spans.drain(..) {
        // `kept` is in text order: the neighbours of the insertion point are the only spans
        // that can overlap.
        let at = kept.partition_point(|k| k.1 < s.1);
        let clashes_before = at > 0 && kept[at - 1].2 > s.1;
        let clashes_after = at < kept.len() && kept[at].1 < s.2;
        if !clashes_before && !clashes_after {
            kept.insert(at, s);
        }
    }
    *spans = kept;
}

/// How specific a type is, to settle two candidates of the same length: checksummed and
/// fixed-shape identifiers first, then cue-based numbers, then the free-form types.
fn rank(t: PiiType) -> u8 {
    use PiiType::*;
    match t {
        AwsAccessKey => 30,
        AwsSecretKey => 29,
        CreditDebitCardNumber | InternationalBankAccountNumber => 28,
        VehicleIdentificationNumber | UkNationalInsuranceNumber => 27,
        UsIndividualTaxIdentificationNumber => 26,
        UsSocialSecurityNumber | UkNationalHealthServiceNumber => 25,
        CaSocialInsuranceNumber | UsBankRoutingNumber => 24,
        CaHealthNumber | UkUniqueTaxpayerReferenceNumber => 23,
        UsPassportNumber | SwiftCode => 22,
        Email | MacAddress => 21,
        IpAddress => 20,
        Url => 19,
        CreditDebitCardExpiry | CreditDebitCardCvv => 18,
        UsBankAccountNumber => 17,
        DriverId | LicensePlate => 16,
        Pin => 15,
        Password => 14,
        Username => 13,
        Phone => 12,
        Age => 10,
        Address => 9,
        Name => 8,
    }
}

// ---------------------------------------------------------------------------------------
// Shared helpers for the recognizers.

/// The char before byte `i` (a char boundary) of `text`.
pub(crate) fn char_before(text: &str, i: usize) -> Option<char> {
    text.get(..i)?.chars().next_back()
}

/// The char at byte `i` (a char boundary) of `text`.
pub(crate) fn char_at(text: &str, i: usize) -> Option<char> {
    text.get(i..)?.chars().next()
}

/// The largest char boundary of `text` at or below `i`.
pub(crate) fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Neither side of `start..end` touches a letter or digit (of any script).
pub(crate) fn bounded(text: &str, start: usize, end: usize) -> bool {
    !char_before(text, start).is_some_and(char::is_alphanumeric)
        && !char_at(text, end).is_some_and(char::is_alphanumeric)
}

/// [`bounded`], and the number does not continue through a separator: "1-555-0100" must
/// not yield "555-0100", nor "12/25/2024" a "12/25".
pub(crate) fn bounded_number(text: &str, start: usize, end: usize) -> bool {
    if !bounded(text, start, end) {
        return false;
    }
    let joins = |c: char| matches!(c, '-' | '.' | '/' | '_' | ',' | ':');
    if let Some(c) = char_before(text, start)
        && joins(c)
        && char_before(text, start - c.len_utf8()).is_some_and(|d| d.is_ascii_digit())
    {
        return false;
    }
    if let Some(c) = char_at(text, end)
        && joins(c)
        && char_at(text, end + c.len_utf8()).is_some_and(|d| d.is_ascii_digit())
    {
        return false;
    }
    true
}

pub(crate) fn digits_of(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

pub(crate) fn luhn(d: &[u8]) -> bool {
    if d.len() < 2 {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// True when the separators between digit groups of `s` are all the same character (or
/// there are none): "123-45-6789" and "123456789", not "123-45 6789".
pub(crate) fn uniform_separators(s: &str) -> bool {
    let mut seps = s.chars().filter(|c| !c.is_ascii_alphanumeric());
    match seps.next() {
        None => true,
        Some(first) => seps.all(|c| c == first),
    }
}

/// The cue words that say what a nearby number or code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cue {
    Ssn,
    Itin,
    Routing,
    Account,
    Passport,
    Utr,
    Nhs,
    CaHealth,
    Sin,
    Phone,
    Cvv,
    Expiry,
    Swift,
    Vin,
    Secret,
    Card,
}

const CUE_NAMES: [(&str, Cue); 16] = [
    ("ssn", Cue::Ssn),
    ("itin", Cue::Itin),
    ("routing", Cue::Routing),
    ("account", Cue::Account),
    ("passport", Cue::Passport),
    ("utr", Cue::Utr),
    ("nhs", Cue::Nhs),
    ("cahealth", Cue::CaHealth),
    ("sin", Cue::Sin),
    ("phone", Cue::Phone),
    ("cvv", Cue::Cvv),
    ("expiry", Cue::Expiry),
    ("swift", Cue::Swift),
    ("vin", Cue::Vin),
    ("secret", Cue::Secret),
    ("card", Cue::Card),
];

fn cue_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let num = r"(?:\s*(?:number|num\.?|no\.?|#))?";
        let pattern = [
            format!(r"(?P<ssn>\bssn\b|\bsocial\s+security{num}|\bsoc\.?\s*sec\.?{num})"),
            format!(r"(?P<itin>\bitin\b|\bindividual\s+taxpayer\s+identification{num}|\btaxpayer\s+id(?:entification)?{num}|\btin\b)"),
            format!(r"(?P<routing>\brouting(?:\s+(?:and\s+)?transit)?{num}|\baba(?:\s+routing)?{num}\b|\brtn\b|\btransit\s+number)"),
            format!(r"(?P<account>\b(?:bank\s+|checking\s+|savings\s+|deposit\s+)?account{num}|\bacct\.?{num}|\ba/c\b)"),
            format!(r"(?P<passport>\bpassport{num})"),
            format!(r"(?P<utr>\butr\b{num}|\bunique\s+taxpayer\s+reference{num}|\btax\s+reference{num}|\bself[\s-]assessment\s+reference)"),
            format!(r"(?P<nhs>\bnhs\b{num}|\bnational\s+health\s+service{num})"),
            format!(r"(?P<cahealth>\bhealth\s+card{num}|\bohip\b{num}|\bhealth\s+(?:insurance\s+)?number|\bhcn\b|\bhealth\s+card\s+version)"),
            format!(r"(?P<sin>(?-i:\bSIN\b){num}|\bsocial\s+insurance{num})"),
            format!(r"(?P<phone>\b(?:phone|telephone|tel|mobile|cell|cellphone|fax|whatsapp|landline)\b{num}|\bcall\s+me(?:\s+(?:at|on))?\b|\btext\s+me(?:\s+(?:at|on))?\b|\bcontact\s+number|\breach\s+me\s+at)"),
            r"(?P<cvv>\b(?:cvv2?|cvc2?|cvn|csc|cid)\b|\bsecurity\s+code|\bcard\s+verification(?:\s+(?:value|code))?)".to_owned(),
            r"(?P<expiry>\bexp(?:iry|iration|ires|ired)?\b\.?(?:\s+date)?|\bvalid\s+(?:thru|through|until)|\bgood\s+thru)".to_owned(),
            r"(?P<swift>\bswift\b(?:\s*/\s*bic)?(?:\s+code)?|\bbic\b(?:\s+code)?|\bbank\s+identifier\s+code)".to_owned(),
            format!(r"(?P<vin>\bvin\b{num}|\bvehicle\s+identification{num}|\bchassis{num})"),
            r"(?P<secret>\baws_secret_access_key\b|\bsecret(?:[_\s-]?access)?[_\s-]?key\b|\bsecret\b)".to_owned(),
            format!(r"(?P<card>\b(?:credit|debit)\s+card{num}|\bcard{num})"),
        ]
        .join("|");
        // Cues are ASCII words: ASCII word boundaries keep the regex on its fast engines
        // whatever script the text is in.
        let pattern = pattern.replace(r"\b", r"(?-u:\b)");
        Regex::new(&format!("(?i){pattern}")).expect("cue pattern")
    })
}

/// Every cue of a text, found in one pass, in text order.
#[derive(Debug, Default)]
pub(crate) struct Cues(Vec<(usize, usize, Cue)>);

impl Cues {
    pub(crate) fn of(text: &str) -> Cues {
        let mut out = Vec::new();
        for caps in cue_regex().captures_iter(text) {
            let (Some(m), Some(cue)) = (
                caps.get(0),
                CUE_NAMES
                    .iter()
                    .find(|(name, _)| caps.name(name).is_some())
                    .map(|(_, cue)| *cue),
            ) else {
                continue;
            };
            out.push((m.start(), m.end(), cue));
        }
        Cues(out)
    }

    /// The cue that names the value starting at byte `start` of `text`: the last cue ending
    /// before it, when no more than 32 bytes without a digit or a line break separate the
    /// two ("routing number: 021000021", not "routing number 021000021 and 12345678").
    pub(crate) fn last(&self, text: &str, start: usize) -> Option<Cue> {
        let i = self.0.partition_point(|c| c.1 <= start);
        let &(_, end, cue) = self.0.get(i.checked_sub(1)?)?;
        let gap = text.get(end..start)?;
        if gap.len() > 32 || gap.bytes().any(|b| b.is_ascii_digit() || b == b'\n') {
            return None;
        }
        Some(cue)
    }
}

/// A regex from a pattern known to be valid, built once.
pub(crate) fn lazy(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("built-in pattern"))
}

#[cfg(test)]
mod tests;
