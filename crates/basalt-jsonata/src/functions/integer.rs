//! `$formatInteger` / `$parseInteger` and the integer pictures date/time markers reuse:
//! decimal digit patterns (any Unicode decimal digit family, grouping separators), letters,
//! Roman numerals and English words, with `;o` ordinals (XPath F&O 3.1 §4.6.1).

use super::{Focus, arg};
use crate::error::JsonataError;
use crate::value::Value;

type R = Result<Value, JsonataError>;

const FEW: [&str; 20] = [
    "Zero",
    "One",
    "Two",
    "Three",
    "Four",
    "Five",
    "Six",
    "Seven",
    "Eight",
    "Nine",
    "Ten",
    "Eleven",
    "Twelve",
    "Thirteen",
    "Fourteen",
    "Fifteen",
    "Sixteen",
    "Seventeen",
    "Eighteen",
    "Nineteen",
];
const ORDINALS: [&str; 20] = [
    "Zeroth",
    "First",
    "Second",
    "Third",
    "Fourth",
    "Fifth",
    "Sixth",
    "Seventh",
    "Eighth",
    "Ninth",
    "Tenth",
    "Eleventh",
    "Twelfth",
    "Thirteenth",
    "Fourteenth",
    "Fifteenth",
    "Sixteenth",
    "Seventeenth",
    "Eighteenth",
    "Nineteenth",
];
const DECADES: [&str; 9] = [
    "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety", "Hundred",
];
const MAGNITUDES: [&str; 4] = ["Thousand", "Million", "Billion", "Trillion"];

fn words(num: f64, prev: bool, ord: bool) -> String {
    let sep = |s: &str| if prev { s.to_string() } else { String::new() };
    if num <= 19.0 {
        let n = num as usize;
        return sep(" and ") + if ord { ORDINALS[n] } else { FEW[n] };
    }
    if num < 100.0 {
        let tens = (num / 10.0).floor() as usize;
        let rem = num % 10.0;
        let mut w = sep(" and ") + DECADES[tens - 2];
        if rem > 0.0 {
            w += &format!("-{}", words(rem, false, ord));
        } else if ord {
            w.pop();
            w += "ieth";
        }
        return w;
    }
    if num < 1000.0 {
        let hundreds = (num / 100.0).floor() as usize;
        let rem = num % 100.0;
        let mut w = sep(", ") + FEW[hundreds] + " Hundred";
        if rem > 0.0 {
            w += &words(rem, true, ord);
        } else if ord {
            w += "th";
        }
        return w;
    }
    let mut mag = (num.log10() / 3.0).floor() as usize;
    if mag > MAGNITUDES.len() {
        mag = MAGNITUDES.len();
    }
    let factor = 10f64.powi(mag as i32 * 3);
    let mant = (num / factor).floor();
    let rem = num - mant * factor;
    let mut w = sep(", ") + &words(mant, false, false) + " " + MAGNITUDES[mag - 1];
    if rem > 0.0 {
        w += &words(rem, true, ord);
    } else if ord {
        w += "th";
    }
    w
}

fn word_value(word: &str) -> Option<f64> {
    let w = word.to_lowercase();
    if let Some(i) = FEW.iter().position(|f| f.to_lowercase() == w) {
        return Some(i as f64);
    }
    if let Some(i) = ORDINALS.iter().position(|f| f.to_lowercase() == w) {
        return Some(i as f64);
    }
    for (i, d) in DECADES.iter().enumerate() {
        let l = d.to_lowercase();
        let ieth = format!("{}ieth", &l[..l.len() - 1]);
        if w == l || w == ieth {
            return Some(((i + 2) * 10) as f64);
        }
    }
    if w == "hundredth" {
        return Some(100.0);
    }
    for (i, m) in MAGNITUDES.iter().enumerate() {
        let l = m.to_lowercase();
        if w == l || w == format!("{l}th") {
            return Some(10f64.powi((i as i32 + 1) * 3));
        }
    }
    None
}

fn words_to_number(text: &str) -> Option<f64> {
    let re = regex::Regex::new(r",\s|\sand\s|[\s\\-]").ok()?;
    let mut segs = vec![0.0];
    for part in re.split(text) {
        let v = word_value(part)?;
        if v < 100.0 {
            let mut top = segs.pop().unwrap_or(0.0);
            if top >= 1000.0 {
                segs.push(top);
                top = 0.0;
            }
            segs.push(top + v);
        } else {
            let top = segs.pop().unwrap_or(0.0);
            segs.push(top * v);
        }
    }
    Some(segs.iter().sum())
}

const ROMAN: [(u64, &str); 13] = [
    (1000, "m"),
    (900, "cm"),
    (500, "d"),
    (400, "cd"),
    (100, "c"),
    (90, "xc"),
    (50, "l"),
    (40, "xl"),
    (10, "x"),
    (9, "ix"),
    (5, "v"),
    (4, "iv"),
    (1, "i"),
];

fn to_roman(mut v: u64) -> String {
    let mut out = String::new();
    while v > 0 {
        let Some((n, s)) = ROMAN.iter().find(|(n, _)| v >= *n) else {
            break;
        };
        out.push_str(s);
        v -= n;
    }
    out
}

fn from_roman(s: &str) -> f64 {
    let value = |c: char| match c.to_ascii_uppercase() {
        'M' => 1000.0,
        'D' => 500.0,
        'C' => 100.0,
        'L' => 50.0,
        'X' => 10.0,
        'V' => 5.0,
        'I' => 1.0,
        _ => 0.0,
    };
    let (mut dec, mut max) = (0.0, 1.0);
    for c in s.chars().rev() {
        let v = value(c);
        if v < max {
            dec -= v;
        } else {
            max = v;
            dec += v;
        }
    }
    dec
}

fn to_letters(mut v: u64, a: char) -> String {
    let mut out = Vec::new();
    while v > 0 {
        out.push(char::from_u32((v - 1) as u32 % 26 + a as u32).unwrap_or('?'));
        v = (v - 1) / 26;
    }
    out.iter().rev().collect()
}

fn from_letters(s: &str, a: char) -> f64 {
    s.chars()
        .rev()
        .enumerate()
        .map(|(i, c)| (c as u32 as f64 - a as u32 as f64 + 1.0) * 26f64.powi(i as i32))
        .sum()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Primary {
    Decimal,
    Letters,
    Roman,
    Words,
    Sequence,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Case {
    Upper,
    Lower,
    Title,
}

#[derive(Debug, Clone)]
pub(crate) struct IntFormat {
    pub primary: Primary,
    pub case: Case,
    pub ordinal: bool,
    pub zero_code: u32,
    pub mandatory_digits: usize,
    pub optional_digits: usize,
    pub regular: bool,
    /// (position from the right, separator); one entry when `regular`.
    pub separators: Vec<(usize, char)>,
    pub token: String,
    pub parse_width: Option<usize>,
}

const DECIMAL_GROUPS: [u32; 37] = [
    0x30, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80,
    0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10,
];

pub(crate) fn digit_group(c: char) -> Option<u32> {
    let cp = c as u32;
    DECIMAL_GROUPS
        .iter()
        .copied()
        .find(|g| cp >= *g && cp <= g + 9)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

pub(crate) fn analyse(picture: &str) -> Result<IntFormat, JsonataError> {
    let mut f = IntFormat {
        primary: Primary::Decimal,
        case: Case::Lower,
        ordinal: false,
        zero_code: 0x30,
        mandatory_digits: 0,
        optional_digits: 0,
        regular: false,
        separators: Vec::new(),
        token: String::new(),
        parse_width: None,
    };
    let primary = match picture.rfind(';') {
        None => picture,
        Some(i) => {
            if picture[i + 1..].starts_with('o') {
                f.ordinal = true;
            }
            &picture[..i]
        }
    };
    match primary {
        "A" => (f.case, f.primary) = (Case::Upper, Primary::Letters),
        "a" => f.primary = Primary::Letters,
        "I" => (f.case, f.primary) = (Case::Upper, Primary::Roman),
        "i" => f.primary = Primary::Roman,
        "W" => (f.case, f.primary) = (Case::Upper, Primary::Words),
        "Ww" => (f.case, f.primary) = (Case::Title, Primary::Words),
        "w" => f.primary = Primary::Words,
        _ => {
            let mut zero: Option<u32> = None;
            let mut seps = Vec::new();
            let mut position = 0;
            for c in primary.chars().rev() {
                if let Some(g) = digit_group(c) {
                    f.mandatory_digits += 1;
                    position += 1;
                    match zero {
                        None => zero = Some(g),
                        Some(z) if z != g => return Err(JsonataError::new("D3131", None)),
                        _ => {}
                    }
                } else if c == '#' {
                    position += 1;
                    f.optional_digits += 1;
                } else {
                    seps.push((position, c));
                }
            }
            if f.mandatory_digits > 0 {
                f.zero_code = zero.unwrap_or(0x30);
                let regular = regular_repeat(&seps);
                if regular > 0 {
                    f.regular = true;
                    f.separators = vec![(regular, seps[0].1)];
                } else {
                    f.separators = seps;
                }
            } else {
                f.primary = Primary::Sequence;
                f.token = primary.to_string();
            }
        }
    }
    Ok(f)
}

fn regular_repeat(seps: &[(usize, char)]) -> usize {
    let Some(first) = seps.first() else { return 0 };
    if seps.iter().any(|s| s.1 != first.1) {
        return 0;
    }
    let idx: Vec<usize> = seps.iter().map(|s| s.0).collect();
    let factor = idx.iter().copied().fold(0, gcd);
    if factor == 0 {
        return 0;
    }
    for i in 1..=idx.len() {
        if !idx.contains(&(i * factor)) {
            return 0;
        }
    }
    factor
}

pub(crate) fn format(value: f64, f: &IntFormat) -> Result<String, JsonataError> {
    let negative = value < 0.0;
    let v = value.abs();
    let mut out = match f.primary {
        Primary::Letters => to_letters(v as u64, if f.case == Case::Upper { 'A' } else { 'a' }),
        Primary::Roman => {
            let r = to_roman(v as u64);
            if f.case == Case::Upper {
                r.to_uppercase()
            } else {
                r
            }
        }
        Primary::Words => {
            let w = words(v, false, f.ordinal);
            match f.case {
                Case::Upper => w.to_uppercase(),
                Case::Lower => w.to_lowercase(),
                Case::Title => w,
            }
        }
        Primary::Decimal => {
            let mut s = crate::value::js_number_string(v);
            let digits = s.chars().count();
            if f.mandatory_digits > digits {
                s = "0".repeat(f.mandatory_digits - digits) + &s;
            }
            if f.zero_code != 0x30 {
                s = s
                    .chars()
                    .map(|c| char::from_u32(c as u32 + f.zero_code - 0x30).unwrap_or(c))
                    .collect();
            }
            let mut chars: Vec<char> = s.chars().collect();
            if f.regular {
                let (step, sep) = f.separators[0];
                let n = (chars.len().saturating_sub(1)) / step;
                for ii in (1..=n).rev() {
                    let pos = chars.len() - ii * step;
                    chars.insert(pos, sep);
                }
            } else {
                for (position, sep) in f.separators.iter().rev() {
                    let pos = chars.len().saturating_sub(*position);
                    chars.insert(pos, *sep);
                }
            }
            let mut s: String = chars.into_iter().collect();
            if f.ordinal {
                let cs: Vec<char> = s.chars().collect();
                let last = cs.last().copied();
                let mut suffix = match last {
                    Some('1') => "st",
                    Some('2') => "nd",
                    Some('3') => "rd",
                    _ => "th",
                };
                if cs.len() > 1 && cs[cs.len() - 2] == '1' {
                    suffix = "th";
                }
                s.push_str(suffix);
            }
            s
        }
        Primary::Sequence => {
            return Err(JsonataError::value(
                "D3130",
                None,
                serde_json::Value::String(f.token.clone()).to_string(),
            ));
        }
    };
    if negative {
        out.insert(0, '-');
    }
    Ok(out)
}

/// The regex that recognises a formatted integer, and how to read its value back.
pub(crate) fn matcher(f: &IntFormat) -> Result<String, JsonataError> {
    let upper = f.case == Case::Upper;
    Ok(match f.primary {
        Primary::Letters => (if upper { "[A-Z]+" } else { "[a-z]+" }).to_string(),
        Primary::Roman => (if upper { "[MDCLXVI]+" } else { "[mdclxvi]+" }).to_string(),
        Primary::Words => {
            let mut alts: Vec<String> = Vec::new();
            for w in FEW
                .iter()
                .chain(ORDINALS.iter())
                .chain(DECADES.iter())
                .chain(MAGNITUDES.iter())
            {
                alts.push(w.to_lowercase());
            }
            for d in DECADES {
                let l = d.to_lowercase();
                alts.push(format!("{}ieth", &l[..l.len() - 1]));
            }
            for m in MAGNITUDES {
                alts.push(format!("{}th", m.to_lowercase()));
            }
            alts.push("hundredth".into());
            alts.sort_by_key(|a| std::cmp::Reverse(a.len()));
            format!("(?:{}|and|[\\-, ])+", alts.join("|"))
        }
        Primary::Decimal => {
            let mut r = String::from("[0-9]");
            match f.parse_width {
                Some(w) => r += &format!("{{{w}}}"),
                None => r.push('+'),
            }
            if f.ordinal {
                r += "(?:th|st|nd|rd)";
            }
            r
        }
        Primary::Sequence => {
            return Err(JsonataError::value(
                "D3130",
                None,
                serde_json::Value::String(f.token.clone()).to_string(),
            ));
        }
    })
}

pub(crate) fn parse_value(f: &IntFormat, text: &str) -> Option<f64> {
    match f.primary {
        Primary::Letters => Some(from_letters(
            text,
            if f.case == Case::Upper { 'A' } else { 'a' },
        )),
        Primary::Roman => Some(from_roman(text)),
        Primary::Words => words_to_number(&text.to_lowercase()),
        Primary::Decimal => {
            let mut digits: String = text.to_string();
            if f.ordinal {
                let n = digits.chars().count().saturating_sub(2);
                digits = digits.chars().take(n).collect();
            }
            if f.regular {
                digits = digits.replace(',', "");
            } else {
                for (_, sep) in &f.separators {
                    digits = digits.replace(*sep, "");
                }
            }
            if f.zero_code != 0x30 {
                digits = digits
                    .chars()
                    .map(|c| char::from_u32(c as u32 - f.zero_code + 0x30).unwrap_or(c))
                    .collect();
            }
            let leading: String = digits.chars().take_while(|c| c.is_ascii_digit()).collect();
            leading.parse::<f64>().ok()
        }
        Primary::Sequence => None,
    }
}

pub(crate) fn format_integer(_: &Focus, args: Vec<Value>) -> R {
    let Value::Number(n) = arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let picture = arg(&args, 1);
    let f = analyse(picture.as_str().unwrap_or_default())?;
    Ok(Value::string(&format(n.floor(), &f)?))
}

pub(crate) fn parse_integer(_: &Focus, args: Vec<Value>) -> R {
    let Value::String(s) = arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let picture = arg(&args, 1);
    let f = analyse(picture.as_str().unwrap_or_default())?;
    matcher(&f)?;
    Ok(parse_value(&f, &s).map(Value::Number).unwrap_or_default())
}
