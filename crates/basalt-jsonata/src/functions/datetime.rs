//! Date/time functions: `$now`, `$millis`, `$fromMillis`, `$toMillis`, with XPath F&O 3.1
//! picture strings (`[Y0001]-[M01]-[D01]`, names, ordinals, ISO weeks, time zones), in UTC
//! arithmetic of our own so results match JavaScript's `Date.UTC` exactly.

use super::integer::{self, IntFormat};
use super::{Focus, arg};
use crate::error::{Inserts, JsonataError};
use crate::value::Value;

type R = Result<Value, JsonataError>;

pub(super) const DAY: f64 = 86_400_000.0;
pub(super) const DAYS: [&str; 8] = [
    "",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
pub(super) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `Date.UTC(y, m0, d, h, mi, s, ms)` with JavaScript's overflow normalisation.
pub(super) fn utc(y: f64, m0: f64, d: f64, h: f64, mi: f64, s: f64, ms: f64) -> f64 {
    let y = y + (m0 / 12.0).floor();
    let m = m0.rem_euclid(12.0);
    let days = days_from_civil(y as i64, m as i64 + 1, 1) as f64 + d - 1.0;
    days * DAY + h * 3_600_000.0 + mi * 60_000.0 + s * 1000.0 + ms
}

#[derive(Clone, Copy)]
pub(super) struct Parts {
    year: i64,
    pub month0: i64,
    pub day: i64,
    weekday: i64, // 0 = Sunday
    hours: i64,
    minutes: i64,
    seconds: i64,
    millis: i64,
    time: f64,
}

pub(super) fn parts(ms: f64) -> Parts {
    let days = (ms / DAY).floor();
    let rem = (ms - days * DAY) as i64;
    let (y, m, d) = civil_from_days(days as i64);
    Parts {
        year: y,
        month0: m - 1,
        day: d,
        weekday: (days as i64 + 4).rem_euclid(7),
        hours: rem / 3_600_000,
        minutes: rem / 60_000 % 60,
        seconds: rem / 1000 % 60,
        millis: rem % 1000,
        time: ms,
    }
}

fn start_of_first_week(year: i64, month0: i64) -> f64 {
    let jan1 = utc(year as f64, month0 as f64, 1.0, 0.0, 0.0, 0.0, 0.0);
    let mut dow = parts(jan1).weekday;
    if dow == 0 {
        dow = 7;
    }
    if dow > 4 {
        jan1 + (8 - dow) as f64 * DAY
    } else {
        jan1 - (dow - 1) as f64 * DAY
    }
}

fn next_month(y: i64, m: i64) -> (i64, i64) {
    if m == 11 { (y + 1, 0) } else { (y, m + 1) }
}

fn prev_month(y: i64, m: i64) -> (i64, i64) {
    if m == 0 { (y - 1, 11) } else { (y, m - 1) }
}

fn delta_weeks(start: f64, end: f64) -> f64 {
    (end - start) / (DAY * 7.0) + 1.0
}

pub(super) enum Fragment {
    Num(f64),
    Text(&'static str),
    None,
}

pub(super) fn fragment(p: &Parts, component: char) -> Fragment {
    use Fragment::*;
    match component {
        'Y' => Num(p.year as f64),
        'M' => Num((p.month0 + 1) as f64),
        'D' => Num(p.day as f64),
        'd' => {
            let today = utc(
                p.year as f64,
                p.month0 as f64,
                p.day as f64,
                0.0,
                0.0,
                0.0,
                0.0,
            );
            let jan1 = utc(p.year as f64, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0);
            Num((today - jan1) / DAY + 1.0)
        }
        'F' => Num(if p.weekday == 0 {
            7.0
        } else {
            p.weekday as f64
        }),
        'W' => {
            let start = start_of_first_week(p.year, 0);
            let today = utc(
                p.year as f64,
                p.month0 as f64,
                p.day as f64,
                0.0,
                0.0,
                0.0,
                0.0,
            );
            let mut week = delta_weeks(start, today);
            if week > 52.0 {
                if today >= start_of_first_week(p.year + 1, 0) {
                    week = 1.0;
                }
            } else if week < 1.0 {
                week = delta_weeks(start_of_first_week(p.year - 1, 0), today);
            }
            Num(week.floor())
        }
        'w' => {
            let start = start_of_first_week(p.year, p.month0);
            let today = utc(
                p.year as f64,
                p.month0 as f64,
                p.day as f64,
                0.0,
                0.0,
                0.0,
                0.0,
            );
            let mut week = delta_weeks(start, today);
            if week > 4.0 {
                let (ny, nm) = next_month(p.year, p.month0);
                if today >= start_of_first_week(ny, nm) {
                    week = 1.0;
                }
            } else if week < 1.0 {
                let (py, pm) = prev_month(p.year, p.month0);
                week = delta_weeks(start_of_first_week(py, pm), today);
            }
            Num(week.floor())
        }
        'X' => {
            let start = start_of_first_week(p.year, 0);
            let end = start_of_first_week(p.year + 1, 0);
            Num(if p.time < start {
                (p.year - 1) as f64
            } else if p.time >= end {
                (p.year + 1) as f64
            } else {
                p.year as f64
            })
        }
        'x' => {
            let start = start_of_first_week(p.year, p.month0);
            let (ny, nm) = next_month(p.year, p.month0);
            let end = start_of_first_week(ny, nm);
            Num(if p.time < start {
                (prev_month(p.year, p.month0).1 + 1) as f64
            } else if p.time >= end {
                (nm + 1) as f64
            } else {
                (p.month0 + 1) as f64
            })
        }
        'H' => Num(p.hours as f64),
        'h' => {
            let h = p.hours % 12;
            Num(if h == 0 { 12.0 } else { h as f64 })
        }
        'P' => Text(if p.hours >= 12 { "pm" } else { "am" }),
        'm' => Num(p.minutes as f64),
        's' => Num(p.seconds as f64),
        'f' => Num(p.millis as f64),
        'C' | 'E' => Text("ISO"),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Names {
    Upper,
    Lower,
    Title,
}

pub(super) struct Marker {
    pub component: char,
    pub width: Option<(Option<usize>, Option<usize>)>,
    presentation1: String,
    presentation2: Option<char>,
    names: Option<Names>,
    pub int_format: Option<IntFormat>,
    n: i64,
}

pub(super) enum Part {
    Literal(String),
    Marker(Marker),
}

fn default_presentation(c: char) -> Option<&'static str> {
    Some(match c {
        'Y' | 'M' | 'D' | 'd' | 'W' | 'w' | 'X' | 'x' | 'H' | 'h' | 'f' => "1",
        'F' | 'P' | 'C' | 'E' => "n",
        'm' | 's' => "01",
        'Z' | 'z' => "01:01",
        _ => return None,
    })
}

pub(super) fn analyse_picture(picture: &str) -> Result<Vec<Part>, JsonataError> {
    let chars: Vec<char> = picture.chars().collect();
    let mut spec: Vec<Part> = Vec::new();
    let add_literal = |spec: &mut Vec<Part>, from: usize, to: usize| {
        if to > from {
            let lit: String = chars[from..to].iter().collect();
            spec.push(Part::Literal(lit.replace("]]", "]")));
        }
    };
    let (mut start, mut pos) = (0, 0);
    while pos < chars.len() {
        if chars[pos] == '[' {
            if chars.get(pos + 1) == Some(&'[') {
                add_literal(&mut spec, start, pos);
                spec.push(Part::Literal("[".into()));
                pos += 2;
                start = pos;
                continue;
            }
            add_literal(&mut spec, start, pos);
            start = pos;
            let Some(end) = chars[start..]
                .iter()
                .position(|c| *c == ']')
                .map(|p| p + start)
            else {
                return Err(JsonataError::new("D3135", None));
            };
            pos = end;
            let marker: String = chars[start + 1..pos]
                .iter()
                .filter(|c| !c.is_whitespace())
                .collect();
            let mchars: Vec<char> = marker.chars().collect();
            let component = mchars.first().copied().unwrap_or(' ');
            let mut def = Marker {
                component,
                width: None,
                presentation1: String::new(),
                presentation2: None,
                names: None,
                int_format: None,
                n: -1,
            };
            let pres: String = match marker.rfind(',') {
                Some(comma) => {
                    let wm = &marker[comma + 1..];
                    let parse_w = |s: &str| {
                        if s == "*" || s.is_empty() {
                            None
                        } else {
                            s.parse::<usize>().ok()
                        }
                    };
                    let (min, max) = match wm.find('-') {
                        None => (parse_w(wm), None),
                        Some(d) => (parse_w(&wm[..d]), parse_w(&wm[d + 1..])),
                    };
                    def.width = Some((min, max));
                    marker[component.len_utf8()..comma].to_string()
                }
                None => marker.get(component.len_utf8()..).unwrap_or("").to_string(),
            };
            let pc: Vec<char> = pres.chars().collect();
            if pc.len() == 1 {
                def.presentation1 = pres.clone();
            } else if pc.len() > 1 {
                let last = pc[pc.len() - 1];
                if "atco".contains(last) {
                    def.presentation2 = Some(last);
                    def.presentation1 = pc[..pc.len() - 1].iter().collect();
                } else {
                    def.presentation1 = pres.clone();
                }
            } else {
                match default_presentation(component) {
                    Some(p) => def.presentation1 = p.to_string(),
                    None => {
                        return Err(JsonataError::with(
                            "D3132",
                            None,
                            Inserts {
                                value: Some(format!("\"{component}\"")),
                                ..Inserts::default()
                            },
                        ));
                    }
                }
            }
            let p1: Vec<char> = def.presentation1.chars().collect();
            if p1.first() == Some(&'n') {
                def.names = Some(Names::Lower);
            } else if p1.first() == Some(&'N') {
                def.names = Some(if p1.get(1) == Some(&'n') {
                    Names::Title
                } else {
                    Names::Upper
                });
            } else if "YMDdFWwXxHhmsf".contains(component) {
                let mut pattern = def.presentation1.clone();
                if let Some(p2) = def.presentation2 {
                    pattern.push(';');
                    pattern.push(p2);
                }
                let mut f = integer::analyse(&pattern)?;
                if let Some((Some(min), _)) = def.width
                    && f.mandatory_digits < min
                {
                    f.mandatory_digits = min;
                }
                if component == 'Y' {
                    def.n = -1;
                    if let Some((_, Some(max))) = def.width {
                        def.n = max as i64;
                        f.mandatory_digits = max;
                    } else {
                        let w = f.mandatory_digits + f.optional_digits;
                        if w >= 2 {
                            def.n = w as i64;
                        }
                    }
                }
                if let Some(Part::Marker(prev)) = spec.last_mut()
                    && let Some(pf) = prev.int_format.as_mut()
                {
                    pf.parse_width = Some(pf.mandatory_digits);
                }
                def.int_format = Some(f);
            }
            if component == 'Z' || component == 'z' {
                def.int_format = Some(integer::analyse(&def.presentation1)?);
            }
            spec.push(Part::Marker(def));
            start = pos + 1;
        }
        pos += 1;
    }
    add_literal(&mut spec, start, pos.min(chars.len()));
    Ok(spec)
}

fn format_component(
    p: &Parts,
    m: &Marker,
    offset_hours: i64,
    offset_minutes: i64,
) -> Result<String, JsonataError> {
    let c = m.component;
    let frag = fragment(p, c);
    if "YMDdFWwXxHhms".contains(c) {
        let Fragment::Num(mut v) = frag else {
            return Ok(String::new());
        };
        if c == 'Y' && m.n != -1 {
            v %= 10f64.powi(m.n as i32);
        }
        if let Some(names) = m.names {
            let mut name = if c == 'M' || c == 'x' {
                MONTHS[(v as usize).saturating_sub(1).min(11)].to_string()
            } else if c == 'F' {
                DAYS[(v as usize).min(7)].to_string()
            } else {
                return Err(JsonataError::with(
                    "D3133",
                    None,
                    Inserts {
                        value: Some(format!("\"{c}\"")),
                        ..Inserts::default()
                    },
                ));
            };
            name = match names {
                Names::Upper => name.to_uppercase(),
                Names::Lower => name.to_lowercase(),
                Names::Title => name,
            };
            if let Some((_, Some(max))) = m.width
                && name.chars().count() > max
            {
                name = name.chars().take(max).collect();
            }
            return Ok(name);
        }
        return integer::format(
            v,
            m.int_format
                .as_ref()
                .ok_or_else(|| JsonataError::new("D3132", None))?,
        );
    }
    match c {
        'f' => {
            let Fragment::Num(v) = frag else {
                return Ok(String::new());
            };
            integer::format(
                v,
                m.int_format
                    .as_ref()
                    .ok_or_else(|| JsonataError::new("D3132", None))?,
            )
        }
        'Z' | 'z' => {
            let f = m
                .int_format
                .as_ref()
                .ok_or_else(|| JsonataError::new("D3132", None))?;
            let offset = offset_hours * 100 + offset_minutes;
            let mut s = if f.regular {
                integer::format(offset as f64, f)?
            } else {
                match f.mandatory_digits {
                    1 | 2 => {
                        let mut s = integer::format(offset_hours as f64, f)?;
                        if offset_minutes != 0 {
                            s += &format!(
                                ":{}",
                                integer::format(offset_minutes as f64, &integer::analyse("00")?)?
                            );
                        }
                        s
                    }
                    3 | 4 => integer::format(offset as f64, f)?,
                    n => return Err(JsonataError::value("D3134", None, n.to_string())),
                }
            };
            if offset >= 0 {
                s.insert(0, '+');
            }
            if c == 'z' {
                s.insert_str(0, "GMT");
            }
            if offset == 0 && m.presentation2 == Some('t') {
                s = "Z".into();
            }
            Ok(s)
        }
        'P' => {
            let Fragment::Text(t) = frag else {
                return Ok(String::new());
            };
            Ok(if m.names == Some(Names::Upper) {
                t.to_uppercase()
            } else {
                t.to_string()
            })
        }
        _ => Ok(match frag {
            Fragment::Text(t) => t.to_string(),
            Fragment::Num(n) => crate::value::js_number_string(n),
            Fragment::None => String::new(),
        }),
    }
}

const ISO_PICTURE: &str = "[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01].[f001][Z01:01t]";

fn format_date_time(
    millis: f64,
    picture: Option<&str>,
    timezone: Option<&str>,
) -> Result<String, JsonataError> {
    let (mut oh, mut om) = (0i64, 0i64);
    if let Some(tz) = timezone {
        let digits: String = tz
            .trim()
            .chars()
            .enumerate()
            .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')))
            .map(|(_, c)| c)
            .collect();
        if let Ok(offset) = digits.parse::<i64>() {
            oh = offset.div_euclid(100);
            om = offset.rem_euclid(100);
            if offset < 0 && om != 0 {
                // JavaScript: Math.floor(offset / 100) and offset % 100 (sign follows the dividend)
                om -= 100;
            }
        }
    }
    let spec = analyse_picture(picture.unwrap_or(ISO_PICTURE))?;
    let p = parts(millis + ((60 * oh + om) * 60_000) as f64);
    let mut out = String::new();
    for part in &spec {
        match part {
            Part::Literal(l) => out.push_str(l),
            Part::Marker(m) => out.push_str(&format_component(&p, m, oh, om)?),
        }
    }
    Ok(out)
}

pub(crate) fn millis(f: &Focus, _: Vec<Value>) -> R {
    Ok(Value::Number(f.ctx.timestamp as f64))
}

pub(crate) fn now(f: &Focus, args: Vec<Value>) -> R {
    let mut a = vec![Value::Number(f.ctx.timestamp as f64)];
    a.extend(args);
    from_millis(f, a)
}

pub(crate) fn from_millis(_: &Focus, args: Vec<Value>) -> R {
    let Value::Number(ms) = arg(&args, 0) else {
        return Ok(Value::Undefined);
    };
    let picture = arg(&args, 1);
    let tz = arg(&args, 2);
    Ok(Value::string(&format_date_time(
        ms,
        picture.as_str(),
        tz.as_str(),
    )?))
}
