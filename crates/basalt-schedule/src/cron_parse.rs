//! Parsing and validating the six cron fields:
//! `Minutes Hours Day-of-month Month Day-of-week Year`.
//!
//! Every field takes `,` (lists), `-` (ranges; a range whose start is above its end wraps
//! around, so hours `20-2` are 20..23 and 0..2; not in the year field), `*` (all) and `/`
//! (increments: `a/n`, `*/n`, `a-b/n`). Day-of-month and day-of-week take `?`, and exactly one
//! of the two must be `?`. Day-of-month also takes `L` (last day), `L-n` (n days before the
//! last), `LW` (last weekday) and `nW` (weekday nearest day n); day-of-week takes `L` (alone:
//! Saturday), `dL` (last day d of the month) and `d#n` (nth day d, n = 1..5). Months are 1-12
//! or JAN-DEC, days of week 1-7 or SUN-SAT (1 = SUN), years 1970-2199; names are
//! case-insensitive.

use crate::cron::{Cron, DaySpec, DomSpec, DowSpec, MAX_YEAR, MIN_YEAR, ValueSet};
use crate::tz::Zone;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Minutes,
    Hours,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

impl Field {
    fn label(self) -> &'static str {
        match self {
            Field::Minutes => "Minutes",
            Field::Hours => "Hours",
            Field::DayOfMonth => "Day-of-month",
            Field::Month => "Month",
            Field::DayOfWeek => "Day-of-week",
            Field::Year => "Year",
        }
    }

    fn bounds(self) -> (u32, u32) {
        match self {
            Field::Minutes => (0, 59),
            Field::Hours => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (1, 7),
            Field::Year => (MIN_YEAR as u32, MAX_YEAR as u32),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &MONTHS,
            Field::DayOfWeek => &DAYS,
            _ => &[],
        }
    }

    /// Increments above this are rejected (AWS rejects `*/60` in minutes).
    fn max_step(self) -> u32 {
        let (min, max) = self.bounds();
        match self {
            Field::Year => max - min,
            _ => max,
        }
    }
}

/// Parses the text between `cron(` and `)`.
pub(crate) fn parse_cron_body(body: &str, zone: Zone) -> Result<Cron, String> {
    let parts: Vec<&str> = body.split_whitespace().collect();
    let [min, hour, dom, month, dow, year] = parts[..] else {
        return Err(format!(
            "cron({body}) has {} fields; it needs 6",
            parts.len()
        ));
    };
    let days = match (dom, dow) {
        ("?", "?") => return Err("Day-of-month and Day-of-week can't both be ?".to_string()),
        ("?", _) => DaySpec::Week(parse_dow(dow)?),
        (_, "?") => DaySpec::Month(parse_dom(dom)?),
        _ => {
            return Err(
                "one of Day-of-month and Day-of-week must be ? (both can't be specified)"
                    .to_string(),
            );
        }
    };
    let mut years = ValueSet::default();
    for y in values(Field::Year, year)?.iter() {
        years.insert(y - MIN_YEAR as u32);
    }
    Ok(Cron {
        minutes: plain_set(Field::Minutes, min)?,
        hours: plain_set(Field::Hours, hour)?,
        months: plain_set(Field::Month, month)?,
        years,
        days,
        fields: [min, hour, dom, month, dow, year].map(str::to_string),
        zone,
    })
}

fn err(field: Field, text: &str, why: &str) -> String {
    format!("{} field {text:?}: {why}", field.label())
}

fn plain_set(field: Field, text: &str) -> Result<ValueSet, String> {
    let mut set = ValueSet::default();
    for v in values(field, text)? {
        set.insert(v);
    }
    Ok(set)
}

/// All values of a field made only of plain items (no `L`, `W`, `#`, `?`).
fn values(field: Field, text: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for item in split_items(field, text)? {
        plain_item(field, item, &mut out)?;
    }
    Ok(out)
}

fn split_items(field: Field, text: &str) -> Result<Vec<&str>, String> {
    let items: Vec<&str> = text.split(',').collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(err(field, text, "empty list item"));
    }
    Ok(items)
}

/// One value: a number in range or (month, day-of-week) a three-letter name.
fn value(field: Field, text: &str) -> Result<u32, String> {
    let (min, max) = field.bounds();
    let v = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u32>()
            .map_err(|_| err(field, text, "number too large"))?
    } else if let Some(i) = field
        .names()
        .iter()
        .position(|n| n.eq_ignore_ascii_case(text))
    {
        i as u32 + 1
    } else {
        return Err(err(field, text, "not a valid value"));
    };
    if v < min || v > max {
        return Err(err(field, text, &format!("out of range {min}-{max}")));
    }
    Ok(v)
}

/// `*`, `v`, `a-b`, each optionally followed by `/step`.
fn plain_item(field: Field, item: &str, out: &mut Vec<u32>) -> Result<(), String> {
    let (min, max) = field.bounds();
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => {
            if step.is_empty() || !step.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(field, item, "increment is not a positive integer"));
            }
            let step: u32 = step
                .parse()
                .map_err(|_| err(field, item, "increment too large"))?;
            if step == 0 || step > field.max_step() {
                return Err(err(
                    field,
                    item,
                    &format!("increment must be 1-{}", field.max_step()),
                ));
            }
            (base, Some(step))
        }
        None => (item, None),
    };
    let (start, end) = if base == "*" {
        (min, max)
    } else if let Some((a, b)) = base.split_once('-') {
        let (a, b) = (value(field, a)?, value(field, b)?);
        if a > b && field == Field::Year {
            return Err(err(field, item, "year range runs backwards"));
        }
        (a, b)
    } else {
        let v = value(field, base)?;
        // `v/n` runs from v to the end of the field's range; a lone `v` is just v.
        (v, if step.is_some() { max } else { v })
    };
    let step = step.unwrap_or(1);
    // Walk start..=end, wrapping past max back to min when start > end.
    let len = if start <= end {
        end - start + 1
    } else {
        (max - start + 1) + (end - min + 1)
    };
    let span = max - min + 1;
    for i in (0..len).step_by(step as usize) {
        out.push(min + (start - min + i) % span);
    }
    Ok(())
}

fn parse_dom(text: &str) -> Result<DomSpec, String> {
    let field = Field::DayOfMonth;
    let mut spec = DomSpec::default();
    let mut plain = Vec::new();
    for item in split_items(field, text)? {
        if item == "L" {
            spec.last_minus.push(0);
        } else if let Some(n) = item.strip_prefix("L-") {
            let n = n
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=30).contains(n) && n.to_string().len() <= 2)
                .ok_or_else(|| err(field, item, "L-n needs n in 1-30"))?;
            spec.last_minus.push(n);
        } else if item == "LW" {
            spec.last_weekday = true;
        } else if let Some(n) = item.strip_suffix('W') {
            spec.nearest_weekday
                .push(value(field, n).map_err(|_| err(field, item, "nW needs n in 1-31"))?);
        } else if item.contains(['L', 'W', '#', '?']) {
            return Err(err(field, item, "misplaced L, W, # or ?"));
        } else {
            plain_item(field, item, &mut plain)?;
        }
    }
    for v in plain {
        spec.days.insert(v);
    }
    Ok(spec)
}

fn parse_dow(text: &str) -> Result<DowSpec, String> {
    let field = Field::DayOfWeek;
    let mut spec = DowSpec::default();
    let mut plain = Vec::new();
    for item in split_items(field, text)? {
        if item == "L" {
            spec.days.insert(7);
        } else if let Some((d, n)) = item.split_once('#') {
            let d = value(field, d)?;
            let n = match n {
                "1" | "2" | "3" | "4" | "5" => n.parse::<u32>().expect("one digit"),
                _ => return Err(err(field, item, "d#n needs n in 1-5")),
            };
            spec.nth.push((d, n));
        } else if let Some(d) = item.strip_suffix('L').filter(|d| !d.is_empty()) {
            spec.last_of.push(value(field, d)?);
        } else if item.contains(['W', '?']) {
            return Err(err(field, item, "misplaced W or ?"));
        } else {
            plain_item(field, item, &mut plain)?;
        }
    }
    for v in plain {
        spec.days.insert(v);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Cron {
        parse_cron_body(body, Zone::UTC).unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    fn minutes(body: &str) -> Vec<u32> {
        let c = ok(body);
        (0..60).filter(|&m| c.minutes.contains(m)).collect()
    }

    fn hours(body: &str) -> Vec<u32> {
        let c = ok(body);
        (0..24).filter(|&h| c.hours.contains(h)).collect()
    }

    #[test]
    fn list_range_step_wildcards() {
        assert_eq!(minutes("0/15 * * * ? *"), [0, 15, 30, 45]);
        assert_eq!(minutes("1/10 * * * ? *"), [1, 11, 21, 31, 41, 51]);
        assert_eq!(minutes("*/20 * * * ? *"), [0, 20, 40]);
        assert_eq!(minutes("5,10,50-52 * * * ? *"), [5, 10, 50, 51, 52]);
        assert_eq!(minutes("10-30/10 * * * ? *"), [10, 20, 30]);
        assert_eq!(minutes("1-31/30 1-1 ? * 1,7 *"), [1, 31]);
        assert_eq!(minutes("30-30 13-13 ? * 2,4,6 *"), [30]);
        assert_eq!(minutes("0-15/1 8-8 ? * 2,3,4,5,6,7 *").len(), 16);
        assert_eq!(hours("0 20-2 ? * MON-FRI *"), [0, 1, 2, 20, 21, 22, 23]);
        assert_eq!(hours("0 22-3/2 ? * MON-FRI *"), [0, 2, 22]);
        assert_eq!(hours("0 * * * ? *").len(), 24);
    }

    #[test]
    fn names_and_numbers() {
        let c = ok("0 0 ? jan,Mar-MAY mon-fri *");
        assert_eq!(
            (1..=12)
                .filter(|&m| c.months.contains(m))
                .collect::<Vec<_>>(),
            [1, 3, 4, 5]
        );
        let DaySpec::Week(w) = &c.days else { panic!() };
        assert_eq!(
            (1..=7).filter(|&d| w.days.contains(d)).collect::<Vec<_>>(),
            [2, 3, 4, 5, 6]
        );
        // Wrapping day-of-week range: Friday to Monday.
        let c = ok("0 0 ? * FRI-MON *");
        let DaySpec::Week(w) = &c.days else { panic!() };
        assert_eq!(
            (1..=7).filter(|&d| w.days.contains(d)).collect::<Vec<_>>(),
            [1, 2, 6, 7]
        );
        // Years.
        let c = ok("0 0 1 1 ? 2020-2030/5");
        let ys: Vec<u32> = (0..230)
            .filter(|&y| c.years.contains(y))
            .map(|y| y + 1970)
            .collect();
        assert_eq!(ys, [2020, 2025, 2030]);
    }

    #[test]
    fn special_day_forms() {
        let DaySpec::Month(m) = ok("0 0 L * ? *").days else {
            panic!()
        };
        assert_eq!(m.last_minus, [0]);
        let DaySpec::Month(m) = ok("0 0 L-3 * ? *").days else {
            panic!()
        };
        assert_eq!(m.last_minus, [3]);
        let DaySpec::Month(m) = ok("0 0 LW * ? *").days else {
            panic!()
        };
        assert!(m.last_weekday);
        let DaySpec::Month(m) = ok("0 0 15W * ? *").days else {
            panic!()
        };
        assert_eq!(m.nearest_weekday, [15]);
        let DaySpec::Week(w) = ok("0 0 ? * L *").days else {
            panic!()
        };
        assert!(w.days.contains(7));
        let DaySpec::Week(w) = ok("0 0 ? * 5L *").days else {
            panic!()
        };
        assert_eq!(w.last_of, [5]);
        let DaySpec::Week(w) = ok("0 0 ? * FRIL *").days else {
            panic!()
        };
        assert_eq!(w.last_of, [6]);
        let DaySpec::Week(w) = ok("0 0 ? * 3#2 *").days else {
            panic!()
        };
        assert_eq!(w.nth, [(3, 2)]);
        let DaySpec::Week(w) = ok("0 0 ? * MON#1 *").days else {
            panic!()
        };
        assert_eq!(w.nth, [(2, 1)]);
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            // Field count.
            "* * * * *",
            "* * * * ? * *",
            "",
            "0 10 * * ?",
            // Day-of-month / day-of-week exclusivity (the second from a real PutRule rejection).
            "0 10 * * * *",
            "7 20 * * 1-7 *",
            "0 10 ? * ? *",
            "0 10 1 * MON *",
            // Ranges.
            "60 * * * ? *",
            "0 24 * * ? *",
            "0 0 0 * ? *",
            "0 0 32 * ? *",
            "0 0 1 0 ? *",
            "0 0 1 13 ? *",
            "0 0 ? * 0 *",
            "0 0 ? * 8 *",
            "0 0 1 1 ? 1969",
            "0 0 1 1 ? 2200",
            "15 12 ? * -1 *",
            "-5 * * * ? *",
            // Increments.
            "*/0 * * * ? *",
            "*/60 * * * ? *",
            "0/ * * * ? *",
            "0/x * * * ? *",
            "0 */24 * * ? *",
            // Malformed items.
            "5- * * * ? *",
            "a * * * ? *",
            "1,,2 * * * ? *",
            "1, * * * ? *",
            "1-2-3 * * * ? *",
            "0 0 1 1 ? 2030-2020",
            "0.5 * * * ? *",
            "+1 * * * ? *",
            // Specials in the wrong place.
            "L * * * ? *",
            "0 L * * ? *",
            "0 0 * L ? *",
            "0 0 ? * 3W *",
            "0 0 3#2 * ? *",
            "0 0 ? * 3#6 *",
            "0 0 ? * 3#0 *",
            "0 0 ? * 8L *",
            "0 0 32W * ? *",
            "0 0 W * ? *",
            "0 0 L-0 * ? *",
            "0 0 L-31 * ? *",
            "0 0 ? * #2 *",
            "? 0 * * ? *",
            "0 0 1 ? ? *",
            // Names in the wrong field.
            "0 0 ? JAN-MON * *",
            "0 0 ? * JAN *",
            "0 0 MON * ? *",
            "0 0 1 * ? JAN",
        ] {
            assert!(
                parse_cron_body(bad, Zone::UTC).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
