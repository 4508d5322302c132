//! Field values, how they convert, compare and render.

use std::borrow::Cow;
use std::cmp::Ordering;

/// A field's value. Log fields are text (a JSON number keeps the digits it was written with);
/// functions and aggregates produce numbers, booleans and timestamps.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// The field is absent. Absent fields are left out of result rows.
    Null,
    Str(String),
    Num(f64),
    Bool(bool),
    /// Epoch milliseconds.
    Time(i64),
}

impl Value {
    /// A number, or `Null` for NaN and infinities, which no field can hold.
    pub fn num(f: f64) -> Value {
        if f.is_finite() {
            Value::Num(f)
        } else {
            Value::Null
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a number: numbers, timestamps (as epoch milliseconds), booleans (1 and 0)
    /// and text that is entirely a decimal number.
    pub fn as_num(&self) -> Option<f64> {
        match self {
            Value::Null => None,
            Value::Num(f) => Some(*f),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            #[allow(clippy::cast_precision_loss)]
            Value::Time(ms) => Some(*ms as f64),
            Value::Str(s) => parse_number(s),
        }
    }

    /// The value as shown in results; `None` when absent.
    pub fn render(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Str(s) => Some(s.clone()),
            Value::Num(f) => Some(render_num(*f)),
            // Insights treats booleans as the numbers 1 and 0 (which is why
            // `stats sum(ispresent(f))` counts), and shows them that way.
            Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
            Value::Time(ms) => Some(crate::time::render(*ms)),
        }
    }

    /// The value as text for string functions and pattern matching; `None` when absent.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Str(s) => Some(Cow::Borrowed(s)),
            other => other.render().map(Cow::Owned),
        }
    }

    /// Epoch milliseconds, for functions that take a timestamp: timestamps, and numbers read
    /// as epoch milliseconds.
    pub fn as_time(&self) -> Option<i64> {
        match self {
            Value::Time(ms) => Some(*ms),
            other => other.as_num().and_then(f64_to_i64),
        }
    }

    /// Whether `filter` keeps a row for which its condition evaluated to this.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Time(_) => true,
            Value::Num(f) => *f != 0.0,
            Value::Str(s) => {
                s.eq_ignore_ascii_case("true") || parse_number(s).is_some_and(|f| f != 0.0)
            }
        }
    }
}

/// Converts when `f` is integral and in range.
pub(crate) fn f64_to_i64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; anything at or beyond it is out of range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.is_finite() && f.trunc() == f && (-LIMIT..LIMIT).contains(&f) {
        #[allow(clippy::cast_possible_truncation)]
        Some(f as i64)
    } else {
        None
    }
}

/// Integral numbers render without a fraction (`3`, not `3.0`); others with the shortest digits
/// that read back to the same number.
pub(crate) fn render_num(f: f64) -> String {
    if f.trunc() == f && f.abs() < 1e15 {
        #[allow(clippy::cast_possible_truncation)]
        let i = f as i64;
        i.to_string()
    } else {
        f.to_string()
    }
}

/// Reads text that is entirely a decimal number (`-12`, `3.5`, `1e3`, surrounding blanks
/// allowed). Rust's parser alone would also take `inf` and `NaN`, which are not numbers in logs.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// `=` and `!=`: numerically when both sides read as numbers (so `statusCode = 200` matches the
/// text "200"), else as text. `None` when either side is absent.
pub(crate) fn loose_eq(a: &Value, b: &Value) -> Option<bool> {
    if a.is_null() || b.is_null() {
        return None;
    }
    if let (Some(x), Some(y)) = (a.as_num(), b.as_num()) {
        return Some(x == y);
    }
    Some(a.text()? == b.text()?)
}

/// `<`, `<=`, `>`, `>=`: like `loose_eq`, numerically when both sides are numbers, else by text.
pub(crate) fn loose_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    if a.is_null() || b.is_null() {
        return None;
    }
    if let (Some(x), Some(y)) = (a.as_num(), b.as_num()) {
        return x.partial_cmp(&y);
    }
    Some(a.text()?.cmp(&b.text()?))
}

/// The order `sort ... asc` puts values in, from the sort page
/// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Sort.html>): every
/// non-number before every number; numbers by value; other values split into runs of digits and
/// runs of non-digits, compared run by run, digit runs by length and then value, everything else
/// by Unicode code point. Absent values are not ordered here; callers put them last.
pub(crate) fn natural_cmp(a: &Value, b: &Value) -> Ordering {
    let key = |v: &Value| match v {
        Value::Str(s) => parse_number(s),
        other => other.as_num(),
    };
    match (key(a), key(b)) {
        (Some(x), Some(y)) => x
            .partial_cmp(&y)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.text().cmp(&b.text())),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => chunk_cmp(
            a.text().as_deref().unwrap_or(""),
            b.text().as_deref().unwrap_or(""),
        ),
    }
}

fn chunks(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let digit = first.is_ascii_digit();
        let n = rest
            .find(|c: char| c.is_ascii_digit() != digit)
            .unwrap_or(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

fn chunk_cmp(a: &str, b: &str) -> Ordering {
    let mut ca = chunks(a);
    let mut cb = chunks(b);
    loop {
        match (ca.next(), cb.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let both_digits = x.starts_with(|c: char| c.is_ascii_digit())
                    && y.starts_with(|c: char| c.is_ascii_digit());
                let ord = if both_digits {
                    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
                } else {
                    // UTF-8 byte order is code point order.
                    x.cmp(y)
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// `natural_cmp` with absent values after all others, whichever the direction.
pub(crate) fn sort_cmp(a: &Value, b: &Value, descending: bool) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) if descending => natural_cmp(b, a),
        (false, false) => natural_cmp(a, b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.to_string())
    }

    #[test]
    fn sort_page_example_order() {
        // The ascending example on
        // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Sort.html
        let expected = [
            "!:",
            "#",
            "*%04",
            "0#",
            "5A",
            "111A",
            "2345_",
            "@",
            "@_",
            "A",
            "A9876fghj",
            "a12345hfh",
            "0",
            "01",
            "1",
            "2",
            "3",
        ];
        let mut shuffled: Vec<Value> = expected.iter().rev().map(|x| s(x)).collect();
        shuffled.swap(0, 7);
        shuffled.swap(3, 12);
        shuffled.sort_by(natural_cmp);
        let got: Vec<String> = shuffled.iter().map(|v| v.render().unwrap()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn numbers_sort_by_value_and_absent_values_last() {
        let mut v = vec![s("10"), Value::Null, Value::Num(9.5), s("-3"), s("abc")];
        v.sort_by(|a, b| sort_cmp(a, b, false));
        assert_eq!(
            v,
            vec![s("abc"), s("-3"), Value::Num(9.5), s("10"), Value::Null]
        );
        v.sort_by(|a, b| sort_cmp(a, b, true));
        assert_eq!(
            v,
            vec![s("10"), Value::Num(9.5), s("-3"), s("abc"), Value::Null]
        );
        assert_eq!(
            natural_cmp(&Value::Time(5), &Value::Time(7)),
            Ordering::Less
        );
    }

    #[test]
    fn rendering() {
        assert_eq!(Value::Num(3.0).render().unwrap(), "3");
        assert_eq!(Value::Num(-0.0).render().unwrap(), "0");
        assert_eq!(Value::Num(2.5).render().unwrap(), "2.5");
        assert_eq!(Value::Num(1e20).render().unwrap(), "100000000000000000000");
        assert_eq!(Value::Bool(true).render().unwrap(), "1");
        assert_eq!(
            Value::Time(1_704_164_645_678).render().unwrap(),
            "2024-01-02 03:04:05.678"
        );
        assert_eq!(Value::Null.render(), None);
        assert_eq!(Value::num(f64::NAN), Value::Null);
    }

    #[test]
    fn loose_comparisons() {
        assert_eq!(loose_eq(&s("200"), &Value::Num(200.0)), Some(true));
        assert_eq!(loose_eq(&s("200.0"), &s("200")), Some(true));
        assert_eq!(loose_eq(&s("abc"), &s("abc")), Some(true));
        assert_eq!(loose_eq(&s("abc"), &Value::Null), None);
        assert_eq!(loose_cmp(&s("9"), &s("10")), Some(Ordering::Less));
        assert_eq!(loose_cmp(&s("b"), &s("a")), Some(Ordering::Greater));
        assert_eq!(parse_number(" 1e3 "), Some(1000.0));
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("12abc"), None);
        assert_eq!(parse_number("-"), None);
        assert!(s("1").truthy() && !s("0").truthy() && s("TRUE").truthy() && !s("x").truthy());
        assert_eq!(f64_to_i64(9.3e18), None);
        assert_eq!(f64_to_i64(-3.0), Some(-3));
    }
}
