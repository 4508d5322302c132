//! Free-form personal data: names, addresses, ages, and credentials (username, password,
//! PIN) introduced by their cue.
//!
//! NAME and ADDRESS are rules for now: cues, title words, a vendored list of common given
//! names, and the US street-address and UK postcode shapes. They are precise but miss names
//! and addresses written without those signals; the PII token-classification model listed
//! in /work/shared/models.md (a BERT tagger with GIVEN_NAME, SURNAME, STREET_NAME, CITY...
//! labels) is to back them later, with these rules kept for the cases they are sure of.

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;

use super::{Cand, Want, bounded, bounded_number, char_before, lazy};
use crate::config::PiiType;

const GIVEN_NAMES: &str = include_str!("../../data/given_names.txt");

fn given_names() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        GIVEN_NAMES
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Capitalised words that follow name cues or given names without being names.
const NOT_NAMES: &str = "A About After All Also Am American An And Any Are As At Avenue Bank Be Best Blvd Boulevard British But By Can Canadian Card Center Centre Church City College Company Corp Could County Court Customer Customers Day Dear Department Director Do Doctor Does Dr Drive Email English Error Everyone Everybody For Friday From Friend Friends German Good Group Hall Hello Help Hi His Her Hospital Hotel House How I If In Inc Is It Its Lake Lane Ln Ltd LLC Madam Manager May Me Monday Mountain My Name No Not Note Number Of Office Ok Okay On Or Our Park Password Phone Please Road Rd Regards Saturday School Service Services She Sir So Sorry Square St Staff State Station Street Sunday Support Team Thank Thanks That The Their There They This Thursday To Today Tomorrow Tuesday University Update Us Wednesday We Welcome What When World Folks Guys Again Everyone Airport Bridge Institute Foundation Museum Library Tower Building Mall Plaza Clinic Lab Labs Systems Technologies Solutions Holdings Partners Capital Bay Beach Island Valley Airlines Motors Pharmacy Restaurant Cafe Bar Club Stadium Arena Theatre Theater Gallery Academy Association Council Ministry Agency Bureau Court Garden Gardens Health Medical Insurance Financial Trust Fund Airways Express Post Times News Journal Review Press Where Who Why With Yes You Your January February March April June July August September October November December";

fn not_names() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| NOT_NAMES.split(' ').collect())
}

/// One name word: a capital, then lower case, allowing "O'Brien", "McDonald", "Saint-Éloi".
const WORD: &str = r"\p{Lu}(?:['’]\p{Lu})?\p{Ll}+(?:\p{Lu}\p{Ll}+)?(?:-\p{Lu}\p{Ll}+)?";

/// Up to three name words on one line, with an optional middle initial and particles.
fn name_words() -> String {
    format!(
        r"{WORD}(?:[ \t]+\p{{Lu}}\.)?(?:[ \t]+(?:(?:van|von|de|da|del|der|di|du|le|la|bin|al)[ \t]+)?{WORD}){{0,2}}"
    )
}

/// The named groups of [`name_cue_re`]'s alternatives: the cue, and the name after it.
const CUE_GROUPS: [(&str, &str); 5] = [
    ("c0", "w0"),
    ("c1", "w1"),
    ("c2", "w2"),
    ("c3", "w3"),
    ("c4", "w4"),
];

fn name_cue_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let words = name_words();
        let cues = [
            r"(?i:\bmy\s+name\s+is|\bmy\s+name['’]s|\bcall\s+me|\bsigned\s*[:,]?|\bdear)\s+",
            r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame)\.?[ \t]+",
            r"(?i:\bname)\s*[:=]\s*",
            r"(?i:\b(?:best\s+regards|kind\s+regards|warm\s+regards|regards|sincerely|yours\s+(?:truly|sincerely|faithfully)|cheers|respectfully|thanks|thank\s+you|best))\s*[,!.]?[ \t]*\r?\n\s*",
            r"(?i:\b(?:hi|hello|hey))[ \t]+",
        ];
        let alternatives: Vec<String> = cues
            .iter()
            .enumerate()
            .map(|(i, c)| format!("(?P<c{i}>{c})(?P<w{i}>{words})"))
            .collect();
        Regex::new(&alternatives.join("|")).expect("name cue pattern")
    })
}

fn im_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(&format!(
            r"(?i:\bI['’]m|\bI\s+am|\bthis\s+is)[ \t]+({WORD}(?:[ \t]+{WORD})?)"
        ))
        .expect("I'm pattern")
    })
}

fn word_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(&format!(r"\b{WORD}\b")).expect("word pattern"))
}

/// What may follow a given name to make a full name: a middle initial, then a surname.
fn surname_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(&format!(r"^(?:[ \t]+\p{{Lu}}\.)?[ \t]+({WORD})\b")).expect("surname pattern")
    })
}

fn name_field_prefix_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"(?i)\b(?:file|user|host|domain|bucket|company|product|screen|account|table|project|field|column|key|type|model|brand|app|device|server|business|street|pet|dog|cat|display|code|variable|class|function|package|team|group|role|bank|store|shop|event|course|event|school|org|organization|queue|topic|stream|index|database|db|service|resource|stack|cluster|image|branch|tag|repo|repository|network|vpc|policy|instance|city|country)[ _-]?$",
    )
}

fn address_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let states = "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR";
        let suffix = "Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Terrace|Way|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Square|Sq|Trail|Trl|Crescent|Close|Gardens|Grove|Row|Mews|Walk";
        let postcode = r"(?:[A-Z]{1,2}[0-9][A-Z0-9]?\x20?[0-9][A-Z]{2})";
        let pattern = format!(
            r"(?x)
            \b[0-9]{{1,6}}[A-Za-z]?(?:-[0-9]{{1,6}})?[\x20\t]+
            (?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?[\x20\t]+)?
            (?:\p{{Lu}}\p{{Ll}}+|[0-9]{{1,3}}(?:st|nd|rd|th))
            (?:[\x20\t]+\p{{Lu}}\p{{Ll}}+){{0,3}}?
            [\x20\t]+(?:{suffix})\b\.?
            (?:[\x20\t]+(?:N|S|E|W|NE|NW|SE|SW)\b\.?)?
            (?:,?[\x20\t]+(?:Apt|Apartment|Suite|Ste|Unit|Fl|Floor|Rm|Room)\.?[\x20\t]*\#?[\x20\t]*[A-Za-z0-9-]+|,?[\x20\t]+\#[\x20\t]*[A-Za-z0-9-]+)?
            (?:,[\x20\t]*\p{{Lu}}\p{{Ll}}+(?:[\x20\t]+\p{{Lu}}\p{{Ll}}+){{0,2}})?
            (?:,?[\x20\t]+(?:{states})\b)?
            (?:,?[\x20\t]+[0-9]{{5}}(?:-[0-9]{{4}})?\b)?
            (?:,?[\x20\t]+{postcode}\b)?
            |
            \b(?:P\.?[\x20\t]?O\.?[\x20\t]+Box|PO[\x20\t]+Box)[\x20\t]+[0-9]{{1,6}}
            (?:,[\x20\t]*\p{{Lu}}\p{{Ll}}+(?:[\x20\t]+\p{{Lu}}\p{{Ll}}+){{0,2}})?
            (?:,?[\x20\t]+(?:{states})\b)?
            (?:,?[\x20\t]+[0-9]{{5}}(?:-[0-9]{{4}})?\b)?
            |
            \b{postcode}\b"
        );
        Regex::new(&pattern).expect("address pattern")
    })
}

/// Street suffixes and directions that are written with a full stop.
const ABBREVIATIONS: [&str; 22] = [
    "St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Pl", "Pkwy", "Hwy", "Cir", "Sq", "Trl", "N", "S",
    "E", "W", "NE", "NW", "SE", "SW", "Ste",
];

fn age_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"(?i)\b([0-9]{1,3})(?:[ \t]+|-)(?:years?|yrs?)(?:[ \t]+|-)old\b|\b([0-9]{1,3})[ \t]?y/?o\b|\b(?:age|aged)\b[ \t]*(?:is|of|:|=)?[ \t]*([0-9]{1,3})\b|\b(?:I['’]m|I\s+am|(?:he|she|they)\s+(?:is|are)|turned|turning)[ \t]+([0-9]{1,3})(?:[ \t]*[.,!;]|[ \t]*$|[ \t]+(?:and|this|next|last|today|now)\b)|\b([0-9]{1,3})[ \t]+years?[ \t]+of[ \t]+age\b",
    )
}

fn password_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"(?i)\b(?:password|passwd|pwd|passcode|passphrase|pass\s+phrase)\b(?P<sep>[ \t]+(?:is|was|will\s+be|=)\b|[ \t]*[:=])[ \t]*(?P<val>\S+)",
    )
}

fn username_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"(?i)\b(?:user[ _-]?name|user[ _-]?id|login(?:[ _-]?(?:name|id))?|screen[ _-]?name|handle|gamertag)\b(?P<sep>[ \t]+(?:is|was)\b|[ \t]*[:=])[ \t]*@?(?P<val>[\p{L}\p{N}][\p{L}\p{N}._-]{1,63}(?:@[A-Za-z0-9.-]+)?)",
    )
}

fn pin_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    lazy(
        &RE,
        r"(?i)\bpin\b(?:[ \t]*(?:code|number|no\.?|#))?(?:[ \t]+(?:is|was)\b|[ \t]*[:=#])?[ \t]*([0-9]{4,8})",
    )
}

pub(super) fn warm() {
    given_names();
    not_names();
    name_cue_re();
    im_re();
    word_re();
    surname_re();
    name_field_prefix_re();
    address_re();
    age_re();
    password_re();
    username_re();
    pin_re();
}

pub(super) fn find(text: &str, want: Want, out: &mut Vec<Cand>) {
    use PiiType::*;
    if want.has(Name) {
        find_names(text, out);
    }
    if want.has(Address) {
        for m in address_re().find_iter(text) {
            let mut v = m.as_str().trim_end_matches([',', ' ', '\t']);
            // The full stop after "Lane." ends the sentence; after "St." it is the abbreviation's.
            if let Some(stem) = v.strip_suffix('.')
                && stem
                    .rsplit([' ', '\t'])
                    .next()
                    .is_some_and(|w| !ABBREVIATIONS.contains(&w))
            {
                v = stem;
            }
            // "In 2024 The Street was a hit": a year before a title is not a house number.
            let second = v
                .split([' ', '\t'])
                .find(|w| !w.is_empty() && !w.starts_with(|c: char| c.is_ascii_digit()));
            if second.is_some_and(|w| {
                ["The", "A", "An", "In", "On", "At", "Of", "And", "Our", "My"].contains(&w)
            }) {
                continue;
            }
            out.push(Cand {
                kind: Address,
                start: m.start(),
                end: m.start() + v.len(),
            });
        }
    }
    if want.has(Age) {
        for c in age_re().captures_iter(text) {
            let Some(whole) = c.get(0) else { continue };
            let (span, value) = if let Some(v) = c.get(1).or(c.get(2)) {
                // "34 years old", "34-year-old", "34yo": the phrase is the age.
                ((whole.start(), whole.end()), v.as_str())
            } else if let Some(v) = c.get(3).or(c.get(4)).or(c.get(5)) {
                ((v.start(), v.end()), v.as_str())
            } else {
                continue;
            };
            if value.parse::<u32>().is_ok_and(|n| (1..=120).contains(&n)) {
                out.push(Cand {
                    kind: Age,
                    start: span.0,
                    end: span.1,
                });
            }
        }
    }
    if want.has(Password) {
        for c in password_re().captures_iter(text) {
            let (Some(sep), Some(v)) = (c.name("sep"), c.name("val")) else {
                continue;
            };
            let (s, e) = trim_value(text, v.start(), v.end());
            let value = &text[s..e];
            let explicit = sep.as_str().contains([':', '=']);
            if password_like(value, explicit) {
                out.push(Cand {
                    kind: Password,
                    start: s,
                    end: e,
                });
            }
        }
    }
    if want.has(Username) {
        for c in username_re().captures_iter(text) {
            let Some(v) = c.name("val") else { continue };
            let (s, e) = trim_value(text, v.start(), v.end());
            let value = &text[s..e];
            let stop = [
                "the",
                "a",
                "an",
                "and",
                "or",
                "is",
                "not",
                "required",
                "missing",
                "invalid",
                "incorrect",
                "wrong",
                "taken",
                "empty",
                "your",
                "my",
                "same",
                "case",
                "available",
                "blank",
                "unknown",
                "null",
                "none",
                "field",
                "page",
                "screen",
                "button",
                "please",
                "already",
                "too",
                "must",
                "should",
                "can",
                "will",
            ];
            if value.chars().count() >= 2 && !stop.contains(&value.to_lowercase().as_str()) {
                out.push(Cand {
                    kind: Username,
                    start: s,
                    end: e,
                });
            }
        }
    }
    if want.has(Pin) {
        for c in pin_re().captures_iter(text) {
            let Some(v) = c.get(1) else { continue };
            if bounded_number(text, v.start(), v.end()) {
                out.push(Cand {
                    kind: Pin,
                    start: v.start(),
                    end: v.end(),
                });
            }
        }
    }
}

/// A credential value without the quotes around it or the punctuation that ends its sentence.
fn trim_value(text: &str, s: usize, e: usize) -> (usize, usize) {
    let v = &text[s..e];
    let lead = v.len() - v.trim_start_matches(['"', '\'', '`', '“', '‘', '(']).len();
    let rest = &v[lead..];
    let kept = rest.trim_end_matches(['"', '\'', '`', '”', '’', ')', ',', ';', '.']);
    (s + lead, s + lead + kept.len())
}

/// After "password:" any value of four or more characters but a mask; after "password is"
/// only a value that looks made up (a digit, a symbol or an inner capital), so "my password
/// is secure" stays prose.
fn password_like(v: &str, explicit: bool) -> bool {
    let n = v.chars().count();
    if !(4..=128).contains(&n) || v.chars().all(|c| matches!(c, '*' | '•' | 'x' | 'X' | '.')) {
        return false;
    }
    if explicit {
        return true;
    }
    v.chars()
        .any(|c| c.is_ascii_digit() || (!c.is_alphanumeric()))
        || v.chars().skip(1).any(char::is_uppercase)
}

fn find_names(text: &str, out: &mut Vec<Cand>) {
    let names = given_names();
    let stop = not_names();
    let push_words = |start: usize, words: &str, out: &mut Vec<Cand>| {
        // Drop words that are not names from the end ("Anna Smith Street" → "Anna Smith").
        let mut parts: Vec<(usize, &str)> = Vec::new();
        let mut off = 0;
        for w in words.split([' ', '\t']) {
            if !w.is_empty() {
                parts.push((off, w));
            }
            off += w.len() + 1;
        }
        while parts
            .last()
            .is_some_and(|(_, w)| stop.contains(w.trim_end_matches('.')))
        {
            parts.pop();
        }
        let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
            return;
        };
        if stop.contains(first.1) || first.1.ends_with('.') {
            return;
        }
        out.push(Cand {
            kind: PiiType::Name,
            start: start + first.0,
            end: start + last.0 + last.1.len(),
        });
    };
    for c in name_cue_re().captures_iter(text) {
        let Some((i, (cue, words))) = CUE_GROUPS
            .iter()
            .enumerate()
            .find_map(|(i, (c_name, w_name))| Some((i, (c.name(c_name)?, c.name(w_name)?))))
        else {
            continue;
        };
        // "File name: Report" is a field, not a person.
        if i == 2
            && name_field_prefix_re().is_match(
                &text[super::floor_boundary(text, cue.start().saturating_sub(24))..cue.start()],
            )
        {
            continue;
        }
        // "Hi Anna," greets a person; "Hi There" or "Hello World" do not, so require a
        // comma or line end after a greeting.
        if i == 4
            && !matches!(
                text[words.end()..].chars().next(),
                None | Some(',' | '!' | '\n' | '\r')
            )
        {
            continue;
        }
        push_words(words.start(), words.as_str(), out);
    }
    for c in im_re().captures_iter(text) {
        let Some(words) = c.get(1) else { continue };
        let first = words.as_str().split([' ', '\t']).next().unwrap_or("");
        if names.contains(first) {
            push_words(words.start(), words.as_str(), out);
        }
    }
    // "First Last": every capitalised word is tried as a given name (not only every other
    // one, as successive regex matches would: "Then Michael Johnson").
    for w in word_re().find_iter(text) {
        if !names.contains(w.as_str())
            || char_before(text, w.start()).is_some_and(|ch| matches!(ch, '@' | '/' | '_' | '-'))
        {
            continue;
        }
        let Some(last) = surname_re()
            .captures(&text[w.end()..])
            .and_then(|c| c.get(1))
        else {
            continue;
        };
        let end = w.end() + last.end();
        if !stop.contains(last.as_str()) && bounded(text, w.start(), end) {
            out.push(Cand {
                kind: PiiType::Name,
                start: w.start(),
                end,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_values() {
        assert!(password_like("hunter2", false));
        assert!(password_like("sunshine", true));
        assert!(!password_like("secure", false));
        assert!(!password_like("********", true));
        assert_eq!(trim_value("'abc'.", 0, 6), (1, 4));
    }
}
