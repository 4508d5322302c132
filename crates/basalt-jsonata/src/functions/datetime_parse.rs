//! `$toMillis`: ISO 8601 timestamps, and timestamps read back through a date/time picture
//! (the inverse of `$fromMillis`), filling unspecified components as XPath F&O 3.1 §9.8.4 says.

use super::datetime::{DAY, DAYS, Fragment, MONTHS, Part, analyse_picture, fragment, parts, utc};
use super::integer::{self, IntFormat};
use super::{Focus, arg};
use crate::error::{Inserts, JsonataError};
use crate::value::Value;

type R = Result<Value, JsonataError>;

fn iso_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^\d{4}(-[01]\d)?(-[0-3]\d)?(T[0-2]\d:[0-5]\d:[0-5]\d)?(\.\d+)?([+-][0-2]\d:?[0-5]\d|Z)?$")
            .expect("valid")
    })
}

/// `Date.parse` on the ISO 8601 subset the regex admits (date-only forms are UTC).
fn parse_iso(s: &str) -> Option<f64> {
    let num = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<f64>().ok());
    let year = num(0, 4)?;
    let mut month = 1.0;
    let mut day = 1.0;
    let mut i = 4;
    if s[i..].starts_with('-') {
        month = num(i + 1, i + 3)?;
        i += 3;
        if s[i..].starts_with('-') {
            day = num(i + 1, i + 3)?;
            i += 3;
        }
    }
    let (mut h, mut mi, mut sec, mut ms) = (0.0, 0.0, 0.0, 0.0);
    if s[i..].starts_with('T') {
        h = num(i + 1, i + 3)?;
        mi = num(i + 4, i + 6)?;
        sec = num(i + 7, i + 9)?;
        i += 9;
    }
    if s[i..].starts_with('.') {
        let digits: String = s[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        i += 1 + digits.len();
        ms = format!("0.{digits}").parse::<f64>().ok()? * 1000.0;
        ms = ms.floor();
    }
    let mut offset = 0.0;
    let rest = &s[i..];
    if let Some(sign) = rest.chars().next().filter(|c| *c == '+' || *c == '-') {
        let digits: String = rest[1..].chars().filter(|c| c.is_ascii_digit()).collect();
        let oh: f64 = digits.get(0..2)?.parse().ok()?;
        let om: f64 = digits.get(2..4)?.parse().ok()?;
        offset = (oh * 60.0 + om) * if sign == '-' { -1.0 } else { 1.0 };
    }
    if !(1.0..=12.0).contains(&month)
        || !(1.0..=31.0).contains(&day)
        || h > 24.0
        || mi > 59.0
        || sec > 59.0
    {
        return None;
    }
    Some(utc(year, month - 1.0, day, h, mi, sec, ms) - offset * 60_000.0)
}

pub(crate) fn to_millis(f: &Focus, args: Vec<Value>) -> R {
    let Value::String(s) = arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    match arg(&args, 1) {
        Value::String(picture) => parse_date_time(f, &s, &picture),
        _ => {
            if !iso_regex().is_match(&s) {
                return Err(JsonataError::value(
                    "D3110",
                    None,
                    serde_json::Value::String(s.to_string()).to_string(),
                ));
            }
            Ok(parse_iso(&s).map(Value::Number).unwrap_or_default())
        }
    }
}

enum Parser {
    Int(IntFormat),
    Zone(Option<char>, bool),
    Fraction,
    Names(Vec<(String, f64)>),
    None,
}

fn parse_date_time(f: &Focus, timestamp: &str, picture: &str) -> R {
    let spec = analyse_picture(picture)?;
    let mut regex = String::from("(?i)^");
    let mut parsers: Vec<(char, Parser)> = Vec::new();
    for part in &spec {
        match part {
            Part::Literal(l) => {
                regex += &format!("({})", regex::escape(l));
                parsers.push((' ', Parser::None));
            }
            Part::Marker(m) => {
                let c = m.component;
                if c == 'Z' || c == 'z' {
                    let f = m.int_format.as_ref();
                    let sep = f.filter(|f| f.regular).map(|f| f.separators[0].1);
                    let mut r = String::new();
                    if c == 'z' {
                        r += "GMT";
                    }
                    r += "[-+][0-9]+";
                    if let Some(s) = sep {
                        r += &format!("{}[0-9]+", regex::escape(&s.to_string()));
                    }
                    regex += &format!("({r})");
                    parsers.push((c, Parser::Zone(sep, c == 'z')));
                } else if c == 'f' {
                    regex += "([0-9]+)";
                    parsers.push((c, Parser::Fraction));
                } else if let Some(intf) = &m.int_format {
                    regex += &format!("({})", integer::matcher(intf)?);
                    parsers.push((c, Parser::Int(intf.clone())));
                } else {
                    let max = m.width.and_then(|w| w.1);
                    let cut = |s: &str| match max {
                        Some(n) => s.chars().take(n).collect::<String>(),
                        None => s.to_string(),
                    };
                    let lookup: Vec<(String, f64)> = match c {
                        'M' | 'x' => MONTHS
                            .iter()
                            .enumerate()
                            .map(|(i, n)| (cut(n), (i + 1) as f64))
                            .collect(),
                        'F' => DAYS
                            .iter()
                            .enumerate()
                            .skip(1)
                            .map(|(i, n)| (cut(n), i as f64))
                            .collect(),
                        'P' => vec![
                            ("am".into(), 0.0),
                            ("AM".into(), 0.0),
                            ("pm".into(), 1.0),
                            ("PM".into(), 1.0),
                        ],
                        _ => {
                            return Err(JsonataError::with(
                                "D3133",
                                None,
                                Inserts {
                                    value: Some(format!("\"{c}\"")),
                                    ..Inserts::default()
                                },
                            ));
                        }
                    };
                    regex += "([a-zA-Z]+)";
                    parsers.push((c, Parser::Names(lookup)));
                }
            }
        }
    }
    regex.push('$');
    let re = regex::Regex::new(&regex).map_err(|_| JsonataError::new("D3136", None))?;
    let Some(caps) = re.captures(timestamp) else {
        return Ok(Value::Undefined);
    };
    let mut comps: std::collections::HashMap<char, f64> = std::collections::HashMap::new();
    for (i, (c, parser)) in parsers.iter().enumerate() {
        let text = caps.get(i + 1).map(|m| m.as_str()).unwrap_or("");
        let v = match parser {
            Parser::None => continue,
            Parser::Int(intf) => integer::parse_value(intf, text),
            Parser::Fraction => format!("0.{}", text.chars().take(3).collect::<String>())
                .parse::<f64>()
                .ok()
                .map(|x| x * 1000.0),
            Parser::Names(lookup) => lookup.iter().find(|(n, _)| n == text).map(|(_, v)| *v),
            Parser::Zone(sep, gmt) => {
                let value = if *gmt { &text[3..] } else { text };
                let int = |s: &str| s.trim_start_matches('+').parse::<f64>().ok();
                match sep {
                    Some(s) => {
                        let i = value.find(*s).unwrap_or(value.len());
                        let h = int(&value[..i]).unwrap_or(0.0);
                        let m = int(value.get(i + 1..).unwrap_or("")).unwrap_or(0.0);
                        Some(h * 60.0 + m)
                    }
                    None => {
                        if value.len() - 1 <= 2 {
                            int(value).map(|h| h * 60.0)
                        } else {
                            let h = int(&value[..3]).unwrap_or(0.0);
                            let m = int(&value[3..]).unwrap_or(0.0);
                            Some(h * 60.0 + m)
                        }
                    }
                }
            }
        };
        if let Some(v) = v {
            comps.insert(*c, v);
        } else {
            // jsonata-js stores `undefined`, which still counts as present for the mask below
            comps.insert(*c, f64::NAN);
        }
    }
    if comps.is_empty() {
        return Ok(Value::Undefined);
    }
    let mask_of = |letters: &str| -> u32 {
        letters.chars().fold(0, |m, c| {
            (m << 1) | u32::from(comps.get(&c).is_some_and(|v| !v.is_nan() && *v != 0.0))
        })
    };
    let is_type = |t: u32, mask: u32| (!t & mask) == 0 && (t & mask) != 0;
    let dmask = mask_of("YXMxWwdD");
    let date_a = is_type(161, dmask);
    let date_b = !date_a && is_type(130, dmask);
    let date_c = is_type(84, dmask);
    let date_d = !date_c && is_type(72, dmask);
    let tmask = mask_of("PHhmsf");
    let time_a = is_type(23, tmask);
    let time_b = !time_a && is_type(47, tmask);
    let date_comps = if date_b {
        "YD"
    } else if date_c {
        "XxwF"
    } else if date_d {
        "XWF"
    } else {
        "YMD"
    };
    let time_comps = if time_b { "Phmsf" } else { "Hmsf" };
    let now = parts(f.ctx.timestamp as f64);
    let (mut start_specified, mut end_specified) = (false, false);
    for c in date_comps.chars().chain(time_comps.chars()) {
        let present = comps.get(&c).is_some_and(|v| !v.is_nan());
        if !present {
            if start_specified {
                comps.insert(c, if "MDd".contains(c) { 1.0 } else { 0.0 });
                end_specified = true;
            } else {
                let v = match fragment(&now, c) {
                    Fragment::Num(n) => n,
                    Fragment::Text(t) => {
                        if t == "pm" {
                            1.0
                        } else {
                            0.0
                        }
                    }
                    Fragment::None => 0.0,
                };
                comps.insert(c, v);
            }
        } else {
            start_specified = true;
            if end_specified {
                return Err(JsonataError::new("D3136", None));
            }
        }
    }
    let get = |c: char| {
        comps
            .get(&c)
            .copied()
            .filter(|v| !v.is_nan())
            .unwrap_or(0.0)
    };
    let mut month0 = if get('M') > 0.0 { get('M') - 1.0 } else { 0.0 };
    let mut day = get('D');
    if date_b {
        let derived = parts(utc(get('Y'), 0.0, 1.0, 0.0, 0.0, 0.0, 0.0) + (get('d') - 1.0) * DAY);
        month0 = derived.month0 as f64;
        day = derived.day as f64;
    }
    if date_c || date_d {
        return Err(JsonataError::new("D3136", None));
    }
    let mut hours = get('H');
    if time_b {
        hours = if get('h') == 12.0 { 0.0 } else { get('h') };
        if get('P') == 1.0 {
            hours += 12.0;
        }
    }
    let mut millis = utc(get('Y'), month0, day, hours, get('m'), get('s'), get('f'));
    let zone = if get('Z') != 0.0 { get('Z') } else { get('z') };
    if zone != 0.0 {
        millis -= zone * 60_000.0;
    }
    Ok(Value::Number(millis))
}
