//! DynamoDB's `N` type: an exact decimal with up to 38 significant digits and a magnitude
//! between 1E-130 and 9.9999999999999999999999999999999999999E+125 (or zero).
//!
//! Numbers are normalized when parsed (no leading or trailing zeros, scientific exponent), so
//! the derived `Eq` and `Hash` are numeric: `1`, `1.0`, `01` and `1e0` are one value. No binary
//! floating point is used anywhere except the explicitly approximate [`Number::to_f64`].
//! Reference: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.DataTypes.Number>

use crate::value::ValueError;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The most significant digits DynamoDB keeps.
pub const MAX_DIGITS: usize = 38;
/// Largest scientific exponent (9.99…E+125).
const MAX_EXP: i64 = 125;
/// Smallest scientific exponent (1E-130).
const MIN_EXP: i64 = -130;

const OVERFLOW: &str =
    "Number overflow. Attempting to store a number with magnitude larger than supported range";
const UNDERFLOW: &str =
    "Number underflow. Attempting to store a number with magnitude smaller than supported range";
const PRECISION: &str = "Attempting to store more than 38 significant digits in a Number";

/// An exact DynamoDB number. The value is `±d1.d2d3…dn × 10^exp`; zero has no digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    /// Significant digits (0..=9), first and last non-zero; empty for zero.
    digits: Vec<u8>,
    /// Scientific exponent of the first digit.
    exp: i32,
}

impl Number {
    /// Zero.
    pub fn zero() -> Number {
        Number {
            negative: false,
            digits: Vec::new(),
            exp: 0,
        }
    }

    /// Parses what DynamoDB accepts: an optional sign, digits with an optional point, and an
    /// optional exponent (`e`/`E`, optional sign). No whitespace, no `Infinity` or `NaN`.
    pub fn parse(s: &str) -> Result<Number, ValueError> {
        let bad = || {
            ValueError(format!(
                "The parameter cannot be converted to a numeric value: {s}"
            ))
        };
        let b = s.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            negative = b[i] == b'-';
            i += 1;
        }
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_part = &b[int_start..i];
        let mut frac_part: &[u8] = &[];
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let f = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac_part = &b[f..i];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let mut e: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut eneg = false;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                eneg = b[i] == b'-';
                i += 1;
            }
            let es = i;
            while i < b.len() && b[i].is_ascii_digit() {
                // Saturate: any exponent this large is out of range anyway (unless the
                // mantissa is zero, which ignores it).
                e = (e * 10 + i64::from(b[i] - b'0')).min(1 << 40);
                i += 1;
            }
            if i == es {
                return Err(bad());
            }
            if eneg {
                e = -e;
            }
        }
        if i != b.len() {
            return Err(bad());
        }
        let all: Vec<u8> = int_part.iter().chain(frac_part).map(|c| c - b'0').collect();
        let Some(first) = all.iter().position(|&d| d != 0) else {
            return Ok(Number::zero());
        };
        let last = all.iter().rposition(|&d| d != 0).unwrap_or(first);
        let sci = int_part.len() as i64 - 1 - first as i64 + e;
        Number::build(negative, all[first..=last].to_vec(), sci)
    }

    /// Checks DynamoDB's limits on already-trimmed digits.
    fn build(negative: bool, digits: Vec<u8>, exp: i64) -> Result<Number, ValueError> {
        if digits.is_empty() {
            return Ok(Number::zero());
        }
        if exp > MAX_EXP {
            return Err(ValueError(OVERFLOW.to_string()));
        }
        if exp < MIN_EXP {
            return Err(ValueError(UNDERFLOW.to_string()));
        }
        if digits.len() > MAX_DIGITS {
            return Err(ValueError(PRECISION.to_string()));
        }
        Ok(Number {
            negative,
            digits,
            exp: exp as i32,
        })
    }

    /// The exact sum, or DynamoDB's overflow, underflow or precision error.
    pub fn checked_add(&self, other: &Number) -> Result<Number, ValueError> {
        if self.is_zero() {
            return Ok(other.clone());
        }
        if other.is_zero() {
            return Ok(self.clone());
        }
        // Lay both magnitudes out as little-endian digit arrays over a common range of powers.
        let low = self.low_power().min(other.low_power());
        let high = i64::from(self.exp.max(other.exp)) + 1;
        let width = (high - low + 1) as usize;
        let a = self.spread(low, width);
        let b = other.spread(low, width);
        let (negative, mag) = if self.negative == other.negative {
            (self.negative, add_mag(&a, &b))
        } else {
            match cmp_mag(&a, &b) {
                Ordering::Equal => return Ok(Number::zero()),
                Ordering::Greater => (self.negative, sub_mag(&a, &b)),
                Ordering::Less => (other.negative, sub_mag(&b, &a)),
            }
        };
        // Back to big-endian significant digits.
        let top = mag.iter().rposition(|&d| d != 0).unwrap_or(0);
        let bottom = mag.iter().position(|&d| d != 0).unwrap_or(0);
        let digits: Vec<u8> = mag[bottom..=top].iter().rev().copied().collect();
        Number::build(negative, digits, low + top as i64)
    }

    /// `self - other`, exactly.
    pub fn checked_sub(&self, other: &Number) -> Result<Number, ValueError> {
        self.checked_add(&other.negated())
    }

    /// `-self`.
    pub fn negated(&self) -> Number {
        let mut n = self.clone();
        n.negative = !n.is_zero() && !n.negative;
        n
    }

    /// Always in range: an i64 has at most 19 digits.
    pub fn from_i64(v: i64) -> Number {
        Number::parse(&v.to_string()).expect("an i64 is a valid DynamoDB number")
    }

    /// The value when it is an integer that fits an i64.
    pub fn to_i64(&self) -> Option<i64> {
        if self.is_zero() {
            return Some(0);
        }
        if self.exp < 0 || self.exp > 18 || self.digits.len() as i32 - 1 > self.exp {
            return None;
        }
        let mut v: i128 = 0;
        for i in 0..=self.exp as usize {
            v = v * 10 + i128::from(*self.digits.get(i).unwrap_or(&0));
        }
        if self.negative {
            v = -v;
        }
        i64::try_from(v).ok()
    }

    /// Approximate; for display and metrics only, never for stored values.
    pub fn to_f64(&self) -> f64 {
        self.to_string().parse().unwrap_or(0.0)
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// How many significant digits the value has (zero counts one), which drives its stored size.
    pub fn significant_digits(&self) -> usize {
        self.digits.len().max(1)
    }

    /// An order-preserving, prefix-free string: `a < b` exactly when
    /// `a.order_key() < b.order_key()` byte-wise, so keys can be concatenated in storage keys.
    /// Zero is `2`; a positive number is `3`, its exponent offset by 130 on three digits, its
    /// digits and `!` (below every digit, so a shorter mantissa sorts first); a negative number
    /// is `1`, `999 -` that offset, each digit `9 - d` and `~` (above every digit).
    pub fn order_key(&self) -> String {
        if self.is_zero() {
            return "2".to_string();
        }
        let offset = i64::from(self.exp) - MIN_EXP;
        let mut s = String::with_capacity(self.digits.len() + 5);
        if self.negative {
            s.push('1');
            s.push_str(&format!("{:03}", 999 - offset));
            s.extend(self.digits.iter().map(|d| char::from(b'0' + 9 - d)));
            s.push('~');
        } else {
            s.push('3');
            s.push_str(&format!("{offset:03}"));
            s.extend(self.digits.iter().map(|d| char::from(b'0' + d)));
            s.push('!');
        }
        s
    }

    /// Power of ten of the last significant digit.
    fn low_power(&self) -> i64 {
        i64::from(self.exp) - (self.digits.len() as i64 - 1)
    }

    /// The magnitude as `width` little-endian digits starting at power `low`.
    fn spread(&self, low: i64, width: usize) -> Vec<u8> {
        let mut out = vec![0u8; width];
        for (i, d) in self.digits.iter().enumerate() {
            let power = i64::from(self.exp) - i as i64;
            out[(power - low) as usize] = *d;
        }
        out
    }

    fn cmp_magnitude(&self, other: &Number) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            // Normalized mantissas: the exponent decides, then the digits (no trailing zeros,
            // so a proper prefix is the smaller value).
            _ => self
                .exp
                .cmp(&other.exp)
                .then_with(|| self.digits.cmp(&other.digits)),
        }
    }
}

fn add_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let mut carry = 0;
    for (x, y) in a.iter().zip(b) {
        let s = x + y + carry;
        out.push(s % 10);
        carry = s / 10;
    }
    // `high` leaves one spare digit at the top, so the final carry always fits.
    debug_assert_eq!(carry, 0);
    out
}

/// `a - b` where `a >= b`.
fn sub_mag(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let mut borrow = 0i8;
    for (x, y) in a.iter().zip(b) {
        let mut d = *x as i8 - *y as i8 - borrow;
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        out.push(d as u8);
    }
    out
}

fn cmp_mag(a: &[u8], b: &[u8]) -> Ordering {
    a.iter().rev().cmp(b.iter().rev())
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        let class = |n: &Number| match (n.is_zero(), n.negative) {
            (true, _) => 1,
            (false, true) => 0,
            (false, false) => 2,
        };
        match class(self).cmp(&class(other)) {
            Ordering::Equal if self.negative => other.cmp_magnitude(self),
            Ordering::Equal => self.cmp_magnitude(other),
            o => o,
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// DynamoDB's canonical output: plain digits, never an exponent, no redundant zeros.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let mut s = String::with_capacity(self.digits.len() + 4);
        if self.negative {
            s.push('-');
        }
        let digit = |d: &u8| char::from(b'0' + d);
        let n = self.digits.len() as i32;
        if self.exp < 0 {
            s.push_str("0.");
            s.extend(std::iter::repeat_n('0', (-self.exp - 1) as usize));
            s.extend(self.digits.iter().map(digit));
        } else if self.exp >= n - 1 {
            s.extend(self.digits.iter().map(digit));
            s.extend(std::iter::repeat_n('0', (self.exp - (n - 1)) as usize));
        } else {
            let point = self.exp as usize + 1;
            s.extend(self.digits[..point].iter().map(digit));
            s.push('.');
            s.extend(self.digits[point..].iter().map(digit));
        }
        f.write_str(&s)
    }
}

impl FromStr for Number {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Number, ValueError> {
        Number::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        Number::parse(s).unwrap()
    }

    #[test]
    fn spellings_of_one_value_are_equal() {
        for s in [
            "1", "1.0", "01", "1e0", "+1", "0.1E1", "10e-1", "1.", "001.000",
        ] {
            assert_eq!(n(s), n("1"), "{s}");
        }
        assert_eq!(n("-0"), n("0"));
        assert_eq!(n("-0").to_string(), "0");
        assert_eq!(n(".5").to_string(), "0.5");
    }

    #[test]
    fn display_is_plain_digits() {
        assert_eq!(n("1E+30").to_string(), "1000000000000000000000000000000");
        assert_eq!(n("1.5E-10").to_string(), "0.00000000015");
        assert_eq!(n("-123.4500").to_string(), "-123.45");
        assert_eq!(n("0.000").to_string(), "0");
        assert_eq!(n("12.5e1").to_string(), "125");
        assert_eq!(n("1234.5e-2").to_string(), "12.345");
    }

    #[test]
    fn rejects_what_dynamodb_rejects() {
        for s in [
            "", "abc", " 1", "1 ", "1e", "e5", ".", "+", "1..2", "NaN", "Infinity", "0x10", "1e+",
        ] {
            assert_eq!(
                Number::parse(s).unwrap_err().0,
                format!("The parameter cannot be converted to a numeric value: {s}"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn limits() {
        assert!(Number::parse("9.9999999999999999999999999999999999999E+125").is_ok());
        assert_eq!(Number::parse("1E+126").unwrap_err().0, OVERFLOW);
        assert_eq!(Number::parse("-1E+126").unwrap_err().0, OVERFLOW);
        assert!(Number::parse("1E-130").is_ok());
        assert_eq!(Number::parse("1E-131").unwrap_err().0, UNDERFLOW);
        assert_eq!(
            Number::parse("1e99999999999999999999").unwrap_err().0,
            OVERFLOW
        );
        assert_eq!(n("0e99999999999999999999"), Number::zero());
        let d38 = "12345678901234567890123456789012345678";
        assert!(Number::parse(d38).is_ok());
        assert_eq!(Number::parse(&format!("{d38}9")).unwrap_err().0, PRECISION);
        // Trailing zeros are not significant.
        assert!(Number::parse(&format!("{d38}000")).is_ok());
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(n("0.1").checked_add(&n("0.2")).unwrap(), n("0.3"));
        assert_eq!(n("1").checked_sub(&n("1.0")).unwrap(), Number::zero());
        assert_eq!(n("-5").checked_add(&n("3")).unwrap(), n("-2"));
        assert_eq!(n("3").checked_sub(&n("5")).unwrap(), n("-2"));
        assert_eq!(n("99").checked_add(&n("1")).unwrap().to_string(), "100");
        assert_eq!(
            n("1E+20").checked_add(&n("1E-10")).unwrap().to_string(),
            "100000000000000000000.0000000001"
        );
        assert_eq!(n("1E+100").checked_add(&n("1")).unwrap_err().0, PRECISION);
        assert_eq!(
            n("9.9999999999999999999999999999999999999E+125")
                .checked_add(&n("1E+125"))
                .unwrap_err()
                .0,
            OVERFLOW
        );
        assert_eq!(n("-0.5").checked_sub(&n("-0.5")).unwrap(), Number::zero());
    }

    #[test]
    fn integer_conversion() {
        assert_eq!(n("42.0").to_i64(), Some(42));
        assert_eq!(n("-1e3").to_i64(), Some(-1000));
        assert_eq!(n("1.5").to_i64(), None);
        assert_eq!(n("1e19").to_i64(), None);
        assert_eq!(Number::from_i64(i64::MIN).to_i64(), Some(i64::MIN));
        assert_eq!(Number::from_i64(i64::MAX).to_string(), i64::MAX.to_string());
        assert_eq!(n("0.25").to_f64(), 0.25);
    }

    #[test]
    fn ordering_is_numeric() {
        let sorted = [
            "-1E+100", "-10", "-9.5", "-1", "-0.001", "0", "1E-130", "0.5", "1", "1.01", "2", "10",
            "1E+125",
        ];
        for w in sorted.windows(2) {
            assert!(n(w[0]) < n(w[1]), "{} < {}", w[0], w[1]);
            assert!(
                n(w[0]).order_key() < n(w[1]).order_key(),
                "key {} < {}",
                w[0],
                w[1]
            );
        }
    }
}
