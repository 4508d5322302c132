//! The right-hand side of a condition (`= 404`, `!= "x*"`, `= %re%`) and how it compares with
//! a JSON value or a space-delimited field.

use crate::PatternError;
use crate::lex::{CmpOp, Token};

#[derive(Debug, Clone)]
pub(crate) enum Literal {
    /// `text` is kept for comparing with fields that are not numbers: `= 1.0` against the
    /// string "1.0x" compares the strings.
    Number {
        value: f64,
        text: String,
    },
    Text(Glob),
    Regex(regex::Regex),
}

impl Literal {
    /// Builds the literal that follows `op`. The syntax page offers `<`, `>`, `<=`, `>=` for
    /// numbers only, so anything else after them is refused.
    pub(crate) fn from_token(tok: Option<&Token>, op: CmpOp) -> Result<Literal, PatternError> {
        let number = |text: &str| {
            parse_number(text).map(|value| Literal::Number {
                value,
                text: text.to_owned(),
            })
        };
        match tok {
            Some(Token::Word(w)) => match number(w) {
                Some(n) => Ok(n),
                None if op.is_relational() => Err(PatternError::invalid("expected a number")),
                None => Ok(Literal::Text(Glob::new(w))),
            },
            Some(Token::Quoted(q)) if op.is_relational() => {
                number(q).ok_or(PatternError::invalid("expected a number"))
            }
            Some(Token::Quoted(q)) => Ok(Literal::Text(Glob::new(q))),
            Some(Token::Regex(_)) if op.is_relational() => {
                Err(PatternError::invalid("a regular expression needs = or !="))
            }
            Some(Token::Regex(r)) => Ok(Literal::Regex(crate::regexp::compile(r)?)),
            _ => Err(PatternError::invalid("expected a value")),
        }
    }

    pub(crate) fn is_regex(&self) -> bool {
        matches!(self, Literal::Regex(_))
    }
}

/// A string with `*` wildcards. Only a leading and a trailing `*` are wildcards: the old syntax
/// page says "*Event will match PutEvent", "Event* will match EventId" but "Ev*ent will only
/// match the actual string Ev*ent".
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    core: String,
    any_before: bool,
    any_after: bool,
}

impl Glob {
    pub(crate) fn new(s: &str) -> Glob {
        let (any_before, rest) = match s.strip_prefix('*') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let (any_after, core) = match rest.strip_suffix('*') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        Glob {
            core: core.to_owned(),
            any_before,
            any_after,
        }
    }

    pub(crate) fn matches(&self, s: &str) -> bool {
        let core = self.core.as_str();
        match (self.any_before, self.any_after) {
            (true, true) => s.contains(core),
            (true, false) => s.ends_with(core),
            (false, true) => s.starts_with(core),
            (false, false) => s == core,
        }
    }
}

/// A value a condition can look at: the syntax page calls strings and numbers "value nodes";
/// anything else (objects, arrays, null, booleans) never satisfies `=`, `!=` or the numeric
/// operators.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scalar<'a> {
    Text(&'a str),
    Number(&'a serde_json::Number),
}

impl Scalar<'_> {
    fn as_number(self) -> Option<f64> {
        match self {
            Scalar::Text(s) => parse_number(s),
            Scalar::Number(n) => n.as_f64(),
        }
    }

    fn with_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Scalar::Text(s) => f(s),
            Scalar::Number(n) => f(&n.to_string()),
        }
    }
}

pub(crate) fn compare(op: CmpOp, lit: &Literal, value: Scalar<'_>) -> bool {
    match lit {
        Literal::Text(glob) => value.with_text(|s| glob.matches(s)) == (op == CmpOp::Eq),
        Literal::Regex(re) => value.with_text(|s| re.is_match(s)) == (op == CmpOp::Eq),
        Literal::Number { value: want, text } => match value.as_number() {
            Some(have) => match op {
                CmpOp::Eq => have == *want,
                CmpOp::Ne => have != *want,
                CmpOp::Lt => have < *want,
                CmpOp::Le => have <= *want,
                CmpOp::Gt => have > *want,
                CmpOp::Ge => have >= *want,
            },
            // A field that is not a number: equality falls back to the text as written, the
            // ordering operators have nothing to compare.
            None => match op {
                CmpOp::Eq => value.with_text(|s| s == text),
                CmpOp::Ne => value.with_text(|s| s != text),
                _ => false,
            },
        },
    }
}

/// The syntax page's numbers: "an integer with an optional + or - sign, a decimal with an
/// optional + or - sign, or a number in scientific notation". Checked by hand because
/// `f64::from_str` also takes `inf` and `NaN`.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        (i, i - start)
    };
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let (after_int, int_digits) = digits(i);
    i = after_int;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        (i, frac_digits) = digits(i + 1);
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let (after_exp, exp_digits) = digits(i);
        if exp_digits == 0 {
            return None;
        }
        i = after_exp;
    }
    if i != b.len() {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_documented_grammar() {
        // Forms from the syntax page's numeric examples.
        for (s, v) in [
            ("500", 500.0),
            ("+1000", 1000.0),
            ("-1", -1.0),
            ("55.5", 55.5),
            ("10e3", 10e3),
            ("10e-3", 10e-3),
            ("1e+3", 1e3),
            (".5", 0.5),
            ("5.", 5.0),
        ] {
            assert_eq!(parse_number(s), Some(v), "{s}");
        }
        for s in [
            "", "+", "-", ".", "e5", "1e", "1e+", "inf", "NaN", "0x10", "1.2.3", "4*", "1 ",
        ] {
            assert_eq!(parse_number(s), None, "{s:?}");
        }
    }

    #[test]
    fn globs_only_wildcard_the_ends() {
        // The old syntax page's examples.
        assert!(Glob::new("*Event").matches("PutEvent"));
        assert!(Glob::new("*Event").matches("GetEvent"));
        assert!(Glob::new("Event*").matches("EventId"));
        assert!(Glob::new("Event*").matches("EventName"));
        assert!(!Glob::new("Ev*ent").matches("Event"));
        assert!(Glob::new("Ev*ent").matches("Ev*ent"));
        assert!(Glob::new("*html*").matches("GET /index.html HTTP/1.0"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("**").matches("x"));
        assert!(!Glob::new("4*").matches("500"));
    }

    fn lit(tok: Token, op: CmpOp) -> Literal {
        Literal::from_token(Some(&tok), op).unwrap()
    }

    #[test]
    fn numbers_compare_with_numeric_text_and_json_numbers() {
        let n404: serde_json::Number = 404.into();
        let eq = lit(Token::Word("404".into()), CmpOp::Eq);
        assert!(compare(CmpOp::Eq, &eq, Scalar::Text("404")));
        assert!(compare(CmpOp::Eq, &eq, Scalar::Text("404.0")));
        assert!(compare(CmpOp::Eq, &eq, Scalar::Number(&n404)));
        assert!(!compare(CmpOp::Eq, &eq, Scalar::Text("-")));
        assert!(compare(CmpOp::Ne, &eq, Scalar::Text("-")));
        let gt = lit(Token::Word("1000".into()), CmpOp::Gt);
        assert!(compare(CmpOp::Gt, &gt, Scalar::Text("1534")));
        assert!(!compare(CmpOp::Gt, &gt, Scalar::Text("999")));
        assert!(!compare(CmpOp::Gt, &gt, Scalar::Text("-")));
        let gt = lit(Token::Quoted("1000".into()), CmpOp::Gt);
        assert!(!compare(CmpOp::Gt, &gt, Scalar::Number(&n404)));
    }

    #[test]
    fn text_compares_with_the_text_of_numbers() {
        let n404: serde_json::Number = 404.into();
        let four = lit(Token::Word("4*".into()), CmpOp::Eq);
        assert!(compare(CmpOp::Eq, &four, Scalar::Number(&n404)));
        assert!(!compare(CmpOp::Ne, &four, Scalar::Number(&n404)));
        let quoted = lit(Token::Quoted("404".into()), CmpOp::Eq);
        assert!(compare(CmpOp::Eq, &quoted, Scalar::Number(&n404)));
    }

    #[test]
    fn ordering_operators_need_numbers() {
        for tok in [
            Token::Word("abc".into()),
            Token::Word("4*".into()),
            Token::Regex("1".into()),
        ] {
            assert!(Literal::from_token(Some(&tok), CmpOp::Lt).is_err());
        }
        assert!(Literal::from_token(None, CmpOp::Eq).is_err());
        assert!(Literal::from_token(Some(&Token::And), CmpOp::Eq).is_err());
    }
}
