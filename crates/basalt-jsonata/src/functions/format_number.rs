//! `$formatNumber(number, picture, options)`: XPath F&O 3.1 decimal-format pictures (integer and
//! fractional digits, grouping, percent and per-mille, exponents, a negative sub-picture), with
//! the decimal-format properties overridable through `options`.

use super::{Focus, arg};
use crate::error::JsonataError;
use crate::value::Value;

type R = Result<Value, JsonataError>;

struct Props {
    decimal: char,
    grouping: char,
    exponent: char,
    minus: String,
    percent: char,
    per_mille: char,
    zero: char,
    digit: char,
    pattern: char,
}

struct Parts {
    prefix: Vec<char>,
    suffix: Vec<char>,
    active: Vec<char>,
    mantissa: Vec<char>,
    exponent: Option<Vec<char>>,
    integer: Vec<char>,
    fractional: Vec<char>,
    sub: Vec<char>,
}

#[derive(Clone)]
struct Analysis {
    int_grouping: Vec<usize>,
    regular: usize,
    min_int: usize,
    scaling: usize,
    prefix: String,
    frac_grouping: Vec<usize>,
    min_frac: usize,
    max_frac: usize,
    min_exp: usize,
    suffix: String,
    picture: Vec<char>,
}

fn index_of(s: &[char], c: char) -> Option<usize> {
    s.iter().position(|x| *x == c)
}

fn last_index_of(s: &[char], c: char) -> Option<usize> {
    s.iter().rposition(|x| *x == c)
}

impl Props {
    fn is_digit(&self, c: char) -> bool {
        (c as u32) >= self.zero as u32 && (c as u32) < self.zero as u32 + 10
    }

    fn is_active(&self, c: char) -> bool {
        self.is_digit(c)
            || [
                self.decimal,
                self.exponent,
                self.grouping,
                self.digit,
                self.pattern,
            ]
            .contains(&c)
    }

    fn split(&self, sub: &[char]) -> Parts {
        let prefix_len = sub
            .iter()
            .position(|&c| self.is_active(c) && c != self.exponent)
            .unwrap_or(sub.len());
        let prefix: Vec<char> = if prefix_len == sub.len() {
            Vec::new()
        } else {
            sub[..prefix_len].to_vec()
        };
        let suffix: Vec<char> = match sub
            .iter()
            .rposition(|&c| self.is_active(c) && c != self.exponent)
        {
            Some(i) => sub[i + 1..].to_vec(),
            None => Vec::new(),
        };
        let active: Vec<char> = sub[prefix.len()..sub.len() - suffix.len()].to_vec();
        let exp_pos = sub[prefix.len().min(sub.len())..]
            .iter()
            .position(|&c| c == self.exponent)
            .map(|p| p + prefix.len());
        let (mantissa, exponent) = match exp_pos {
            Some(p) if p <= sub.len() - suffix.len() => {
                let rel = p - prefix.len();
                (
                    active[..rel.min(active.len())].to_vec(),
                    Some(active.get(rel + 1..).unwrap_or(&[]).to_vec()),
                )
            }
            _ => (active.clone(), None),
        };
        let (integer, fractional) = match index_of(&mantissa, self.decimal) {
            None => (mantissa.clone(), suffix.clone()),
            Some(d) => (mantissa[..d].to_vec(), mantissa[d + 1..].to_vec()),
        };
        Parts {
            prefix,
            suffix,
            active,
            mantissa,
            exponent,
            integer,
            fractional,
            sub: sub.to_vec(),
        }
    }

    fn validate(&self, p: &Parts) -> Result<(), JsonataError> {
        let mut error = None;
        let sub = &p.sub;
        let dpos = index_of(sub, self.decimal);
        if dpos != last_index_of(sub, self.decimal) {
            error = Some("D3081");
        }
        if index_of(sub, self.percent) != last_index_of(sub, self.percent) {
            error = Some("D3082");
        }
        if index_of(sub, self.per_mille) != last_index_of(sub, self.per_mille) {
            error = Some("D3083");
        }
        if index_of(sub, self.percent).is_some() && index_of(sub, self.per_mille).is_some() {
            error = Some("D3084");
        }
        if !p
            .mantissa
            .iter()
            .any(|&c| self.is_digit(c) || c == self.digit)
        {
            error = Some("D3085");
        }
        if p.active.iter().any(|&c| !self.is_active(c)) {
            error = Some("D3086");
        }
        match dpos {
            Some(d) => {
                if (d > 0 && sub.get(d - 1) == Some(&self.grouping))
                    || sub.get(d + 1) == Some(&self.grouping)
                {
                    error = Some("D3087");
                }
            }
            None => {
                if p.integer.last() == Some(&self.grouping) {
                    error = Some("D3088");
                }
            }
        }
        if sub
            .windows(2)
            .any(|w| w[0] == self.grouping && w[1] == self.grouping)
        {
            error = Some("D3089");
        }
        if let Some(o) = index_of(&p.integer, self.digit)
            && p.integer[..o].iter().any(|&c| self.is_digit(c))
        {
            error = Some("D3090");
        }
        if let Some(o) = last_index_of(&p.fractional, self.digit)
            && p.fractional[o..].iter().any(|&c| self.is_digit(c))
        {
            error = Some("D3091");
        }
        if let Some(e) = &p.exponent {
            if !e.is_empty()
                && (index_of(sub, self.percent).is_some()
                    || index_of(sub, self.per_mille).is_some())
            {
                error = Some("D3092");
            }
            if e.is_empty() || e.iter().any(|&c| !self.is_digit(c)) {
                error = Some("D3093");
            }
        }
        match error {
            Some(code) => Err(JsonataError::new(code, None)),
            None => Ok(()),
        }
    }

    fn grouping_positions(&self, part: &[char], integer: &[char], to_left: bool) -> Vec<usize> {
        let mut out = Vec::new();
        let mut pos = index_of(part, self.grouping);
        while let Some(g) = pos {
            let slice = if to_left { &part[..g] } else { &part[g..] };
            out.push(
                slice
                    .iter()
                    .filter(|&&c| self.is_digit(c) || c == self.digit)
                    .count(),
            );
            // jsonata-js searches the integer part for the next separator (for both parts)
            pos = integer
                .get(g + 1..)
                .and_then(|rest| index_of(rest, self.grouping))
                .map(|i| i + g + 1);
        }
        out
    }

    fn analyse(&self, p: &Parts) -> Analysis {
        let int_grouping = self.grouping_positions(&p.integer, &p.integer, false);
        let regular = regular(&int_grouping);
        let frac_grouping = self.grouping_positions(&p.fractional, &p.integer, true);
        let mut min_int = p.integer.iter().filter(|&&c| self.is_digit(c)).count();
        let scaling = min_int;
        let mut min_frac = p.fractional.iter().filter(|&&c| self.is_digit(c)).count();
        let mut max_frac = p
            .fractional
            .iter()
            .filter(|&&c| self.is_digit(c) || c == self.digit)
            .count();
        let exp_present = p.exponent.is_some();
        if min_int == 0 && max_frac == 0 {
            if exp_present {
                min_frac = 1;
                max_frac = 1;
            } else {
                min_int = 1;
            }
        }
        if exp_present && min_int == 0 && index_of(&p.integer, self.digit).is_some() {
            min_int = 1;
        }
        if min_int == 0 && min_frac == 0 {
            min_frac = 1;
        }
        let min_exp = p
            .exponent
            .as_ref()
            .map(|e| e.iter().filter(|&&c| self.is_digit(c)).count())
            .unwrap_or(0);
        Analysis {
            int_grouping,
            regular,
            min_int,
            scaling,
            prefix: p.prefix.iter().collect(),
            frac_grouping,
            min_frac,
            max_frac,
            min_exp,
            suffix: p.suffix.iter().collect(),
            picture: p.sub.clone(),
        }
    }

    fn digits(&self, s: String) -> Vec<char> {
        s.chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    char::from_u32(self.zero as u32 + (c as u32 - 48)).unwrap_or(c)
                } else {
                    c
                }
            })
            .collect()
    }
}

fn regular(indexes: &[usize]) -> usize {
    if indexes.is_empty() {
        return 0;
    }
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let factor = indexes.iter().copied().reduce(gcd).unwrap_or(0);
    if factor == 0 {
        return 0;
    }
    for i in 1..=indexes.len() {
        if !indexes.contains(&(i * factor)) {
            return 0;
        }
    }
    factor
}

fn single_char(v: Option<&Value>, default: char) -> char {
    v.and_then(|v| v.as_str())
        .and_then(|s| s.chars().next())
        .unwrap_or(default)
}

pub(crate) fn format_number(_: &Focus, args: Vec<Value>) -> R {
    let Value::Number(value) = arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let picture: Vec<char> = arg(&args, 1).as_str().unwrap_or_default().chars().collect();
    let options = arg(&args, 2);
    let opt = |k: &str| match &options {
        Value::Object(o) => o.get(k).cloned(),
        _ => None,
    };
    let props = Props {
        decimal: single_char(opt("decimal-separator").as_ref(), '.'),
        grouping: single_char(opt("grouping-separator").as_ref(), ','),
        exponent: single_char(opt("exponent-separator").as_ref(), 'e'),
        minus: opt("minus-sign")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "-".into()),
        percent: single_char(opt("percent").as_ref(), '%'),
        per_mille: single_char(opt("per-mille").as_ref(), '\u{2030}'),
        zero: single_char(opt("zero-digit").as_ref(), '0'),
        digit: single_char(opt("digit").as_ref(), '#'),
        pattern: single_char(opt("pattern-separator").as_ref(), ';'),
    };
    let subs: Vec<&[char]> = picture.split(|c| *c == props.pattern).collect();
    if subs.len() > 2 {
        return Err(JsonataError::new("D3080", None));
    }
    let parts: Vec<Parts> = subs.iter().map(|s| props.split(s)).collect();
    for p in &parts {
        props.validate(p)?;
    }
    let mut vars: Vec<Analysis> = parts.iter().map(|p| props.analyse(p)).collect();
    if vars.len() == 1 {
        let mut neg = vars[0].clone();
        neg.prefix = format!("{}{}", props.minus, neg.prefix);
        vars.push(neg);
    }
    let pic = if value >= 0.0 { &vars[0] } else { &vars[1] };
    let adjusted = if index_of(&pic.picture, props.percent).is_some() {
        value * 100.0
    } else if index_of(&pic.picture, props.per_mille).is_some() {
        value * 1000.0
    } else {
        value
    };
    let mut mantissa = adjusted;
    let mut exponent: Option<i32> = None;
    if pic.min_exp != 0 {
        let max_m = 10f64.powi(pic.scaling as i32);
        let min_m = 10f64.powi(pic.scaling as i32 - 1);
        let mut e = 0;
        if mantissa != 0.0 {
            while mantissa.abs() < min_m {
                mantissa *= 10.0;
                e -= 1;
            }
            while mantissa.abs() > max_m {
                mantissa /= 10.0;
                e += 1;
            }
        }
        exponent = Some(e);
    }
    let rounded = super::numeric::round_half_even(mantissa, pic.max_frac as i32);
    let mut s: Vec<char> = props.digits(format!("{:.*}", pic.max_frac, rounded.abs()));
    match index_of(&s, '.') {
        None => s.push(props.decimal),
        Some(i) => s[i] = props.decimal,
    }
    while s.first() == Some(&props.zero) {
        s.remove(0);
    }
    while s.last() == Some(&props.zero) {
        s.pop();
    }
    let dpos = index_of(&s, props.decimal).unwrap_or(s.len());
    let pad_left = pic.min_int as i64 - dpos as i64;
    let pad_right = pic.min_frac as i64 - (s.len() as i64 - dpos as i64 - 1);
    if pad_left > 0 {
        let mut p = vec![props.zero; pad_left as usize];
        p.extend(s);
        s = p;
    }
    if pad_right > 0 {
        s.extend(std::iter::repeat_n(props.zero, pad_right as usize));
    }
    let mut dpos = index_of(&s, props.decimal).unwrap_or(s.len());
    if let Some(groups) = dpos.saturating_sub(1).checked_div(pic.regular) {
        for g in 1..=groups {
            s.insert(dpos - g * pic.regular, props.grouping);
        }
    } else {
        for pos in &pic.int_grouping {
            if *pos <= dpos {
                s.insert(dpos - pos, props.grouping);
                dpos += 1;
            }
        }
    }
    let dpos = index_of(&s, props.decimal).unwrap_or(s.len());
    for pos in &pic.frac_grouping {
        let at = pos + dpos + 1;
        if at <= s.len() {
            s.insert(at, props.grouping);
        }
    }
    let dpos = index_of(&s, props.decimal);
    if index_of(&pic.picture, props.decimal).is_none() || dpos == Some(s.len() - 1) {
        s.pop();
    }
    let mut out: String = s.into_iter().collect();
    if let Some(e) = exponent {
        let mut es: String = props.digits(e.abs().to_string()).into_iter().collect();
        let pad = pic.min_exp as i64 - es.chars().count() as i64;
        if pad > 0 {
            es = std::iter::repeat_n(props.zero, pad as usize).collect::<String>() + &es;
        }
        out.push(props.exponent);
        if e < 0 {
            out.push_str(&props.minus);
        }
        out.push_str(&es);
    }
    Ok(Value::string(&format!(
        "{}{}{}",
        pic.prefix, out, pic.suffix
    )))
}
