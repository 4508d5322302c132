//! CloudWatch Logs filter patterns: the syntax shared by `FilterLogEvents`, metric filters,
//! subscription filters and Live Tail.
//!
//! The reference is AWS's "Filter pattern syntax for metric filters, subscription filters,
//! filter log events, and Live Tail"
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html>,
//! called "the syntax page" in comments below). Its earlier revision, "Filter and Pattern
//! Syntax" (github.com/awsdocs/amazon-cloudwatch-logs-user-guide,
//! `doc_source/FilterAndPatternSyntax.md`, called "the old syntax page"), is cited where it is
//! the only page that settles a point.
//!
//! A pattern takes one of five shapes, chosen by its first character once trimmed:
//! * nothing: every event matches;
//! * `{ … }`: conditions on the fields of JSON events (`json.rs`);
//! * `[ … ]`: conditions on the fields of space-delimited events (`delimited.rs`);
//! * `%…%`: a regular expression searched for in the event (`regexp.rs`);
//! * anything else: terms and quoted phrases that must, may or must not appear (`terms.rs`).
//!
//! Parsing does all validation, so that a bad pattern is refused when a filter is created
//! rather than silently matching nothing later; matching never fails and never panics.

mod delimited;
mod expr;
mod json;
mod lex;
mod regexp;
mod terms;
mod value;

pub use json::JsonSelector;

/// What the syntax modules' tests share.
#[cfg(test)]
mod test_util {
    use crate::{FilterPattern, PatternError};

    pub fn m(pattern: &str, message: &str) -> bool {
        FilterPattern::parse(pattern)
            .unwrap_or_else(|e| panic!("{pattern:?}: {e:?}"))
            .matches(message)
    }

    pub fn err(pattern: &str) -> PatternError {
        FilterPattern::parse(pattern).expect_err(pattern)
    }
}

/// A parsed filter pattern, ready to test log event messages against.
///
/// ```
/// use basalt_logpattern::FilterPattern;
///
/// let p = FilterPattern::parse(r#"{ $.eventType = "UpdateTrail" }"#).unwrap();
/// assert!(p.matches(r#"{"eventType": "UpdateTrail"}"#));
/// assert!(!p.matches("UpdateTrail"));
///
/// let p = FilterPattern::parse("ERROR -ARGUMENTS").unwrap();
/// assert!(p.matches("[ERROR 400] BAD REQUEST"));
/// assert!(!p.matches("[ERROR 419] MISSING ARGUMENTS"));
///
/// let e = FilterPattern::parse("user@example.com").unwrap_err();
/// assert_eq!(e.to_string(), "Invalid character(s) in term '@'");
/// ```
#[derive(Debug, Clone)]
pub struct FilterPattern {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Everything,
    Terms(terms::Terms),
    Regex(regex::Regex),
    Json(json::JsonPattern),
    Delimited(delimited::Delimited),
}

impl FilterPattern {
    /// Parses `pattern`; an empty or blank pattern matches every event.
    pub fn parse(pattern: &str) -> Result<FilterPattern, PatternError> {
        let p = pattern.trim();
        let kind = if p.is_empty() {
            Kind::Everything
        } else if let Some(rest) = p.strip_prefix('{') {
            let inner = rest.strip_suffix('}').ok_or(PatternError::Unterminated {
                open: '{',
                close: '}',
            })?;
            Kind::Json(json::parse(inner)?)
        } else if let Some(rest) = p.strip_prefix('[') {
            let inner = rest.strip_suffix(']').ok_or(PatternError::Unterminated {
                open: '[',
                close: ']',
            })?;
            Kind::Delimited(delimited::parse(inner)?)
        } else if let Some(inner) = p.strip_prefix('%').and_then(|r| r.strip_suffix('%')) {
            Kind::Regex(regexp::compile(inner)?)
        } else {
            Kind::Terms(terms::parse(p)?)
        };
        Ok(FilterPattern { kind })
    }

    /// Whether the log event `message` matches.
    pub fn matches(&self, message: &str) -> bool {
        match &self.kind {
            Kind::Everything => true,
            Kind::Terms(t) => t.matches(message),
            Kind::Regex(r) => r.is_match(message),
            Kind::Json(j) => j.matches(message),
            Kind::Delimited(d) => d.matches(message),
        }
    }
}

impl FilterPattern {
    /// Whether this is a `{ … }` pattern on JSON events.
    pub fn is_json(&self) -> bool {
        matches!(self.kind, Kind::Json(_))
    }

    /// Whether this is a `[ … ]` pattern on space-delimited events.
    pub fn is_delimited(&self) -> bool {
        matches!(self.kind, Kind::Delimited(_))
    }

    /// The named fields of a space-delimited pattern, in order; empty for other shapes.
    pub fn field_names(&self) -> Vec<&str> {
        match &self.kind {
            Kind::Delimited(d) => d.field_names(),
            _ => Vec::new(),
        }
    }

    /// Whether `message` matches, with the values the pattern extracts from it (metric filters'
    /// `extractedValues`): for a space-delimited pattern every field of the event, keyed
    /// `$name` where the pattern names it and `$N` (1-based position) elsewhere; for the other
    /// shapes nothing ("If you are not using a space-delimited filter, this will be empty",
    /// the old syntax page). `None` when the event does not match.
    pub fn extract(&self, message: &str) -> Option<Vec<(String, String)>> {
        match &self.kind {
            Kind::Delimited(d) => d.extract(message),
            _ => self.matches(message).then(Vec::new),
        }
    }
}

/// Why a filter pattern was refused. `Display` is the message CloudWatch Logs puts in its
/// `InvalidParameterException`.
///
/// The wordings were taken from real service responses quoted in public bug reports, since the
/// API reference lists none: "Invalid filter pattern" (aws/aws-toolkit-jetbrains#3219,
/// awsdocs/amazon-cloudwatch-logs-user-guide#21), "Invalid character(s) in term '('"
/// (ministryofjustice/modernisation-platform-environments#5137 and others) and "If a filter
/// pattern starts with '{' it must end with '}'" (jorgebastida/awslogs#210).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A term, selector or regular expression holds characters the syntax does not allow
    /// unquoted; the service quotes the offending character(s).
    #[error("Invalid character(s) in term '{0}'")]
    InvalidCharacters(String),
    /// The `'['` variant of this wording was not seen in any report; it is extrapolated from the
    /// observed `'{'` one.
    #[error("If a filter pattern starts with '{open}' it must end with '{close}'")]
    Unterminated { open: char, close: char },
    /// Any other malformed pattern. The service says only "Invalid filter pattern"; `reason` is
    /// kept for `Debug` output and tests, never shown to clients.
    #[error("Invalid filter pattern")]
    Invalid { reason: &'static str },
}

impl PatternError {
    pub(crate) fn invalid(reason: &'static str) -> Self {
        PatternError::Invalid { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::m;

    #[test]
    fn empty_and_blank_patterns_match_everything() {
        for p in ["", "   ", "\t\n"] {
            let f = FilterPattern::parse(p).unwrap();
            assert!(f.matches(""));
            assert!(f.matches("anything at all"));
            assert!(f.matches("{\"a\":1}"));
        }
    }

    #[test]
    fn shape_is_chosen_by_the_first_character() {
        assert!(matches!(
            FilterPattern::parse("ERROR").unwrap().kind,
            Kind::Terms(_)
        ));
        assert!(matches!(
            FilterPattern::parse(" { $.a = 1 } ").unwrap().kind,
            Kind::Json(_)
        ));
        assert!(matches!(
            FilterPattern::parse("[a, b]").unwrap().kind,
            Kind::Delimited(_)
        ));
        assert!(matches!(
            FilterPattern::parse("%ab+c%").unwrap().kind,
            Kind::Regex(_)
        ));
    }

    #[test]
    fn unbalanced_outer_brackets_use_the_service_wording() {
        // Wording observed in jorgebastida/awslogs#210.
        let e = FilterPattern::parse("{$.kubernetes.namespace_name=\"abc\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "If a filter pattern starts with '{' it must end with '}'"
        );
        let e = FilterPattern::parse("[a, b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "If a filter pattern starts with '[' it must end with ']'"
        );
        assert_eq!(
            FilterPattern::parse("{").unwrap_err(),
            PatternError::Unterminated {
                open: '{',
                close: '}'
            }
        );
    }

    #[test]
    fn error_messages() {
        // "Invalid character(s) in term '('" is what PutMetricFilter answered for an unquoted
        // parenthesis (ministryofjustice/modernisation-platform-environments#5137).
        let e = FilterPattern::parse("foo(bar)").unwrap_err();
        assert_eq!(e.to_string(), "Invalid character(s) in term '('");
        // A colon in an unquoted term, as reported against filter-log-events.
        let e = FilterPattern::parse("?Status: timeout").unwrap_err();
        assert_eq!(e.to_string(), "Invalid character(s) in term ':'");
        let e = FilterPattern::parse("{ }").unwrap_err();
        assert_eq!(e.to_string(), "Invalid filter pattern");
    }

    #[test]
    fn a_lone_percent_sign_is_a_term_not_a_regex() {
        assert_eq!(
            FilterPattern::parse("%").unwrap_err(),
            PatternError::InvalidCharacters("%".into())
        );
        assert!(FilterPattern::parse("%%").is_err());
    }

    #[test]
    fn filter_pattern_is_clone_and_debug() {
        let f = FilterPattern::parse("{ $.a = %x% }").unwrap();
        let g = f.clone();
        assert!(g.matches("{\"a\":\"xyz\"}"));
        assert!(!format!("{f:?}").is_empty());
    }

    /// A small deterministic generator, so the test needs no extra dependency and a failure
    /// reproduces.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        // Pieces that exercise every lexer branch, glued at random; plus single characters,
        // including multi-byte ones, so that slicing bugs would show.
        const PIECES: &[&str] = &[
            "{", "}", "[", "]", "(", ")", "$", ".", "$.", "$.a", "$.*", "[*]", "[0]", "['a.b']",
            "\"", "'", "%", "\\", "\\x2", "\\x41", "\\d", "=", "!=", "<", "<=", ">", ">=", "!",
            "&&", "||", "&", "|", ",", "...", "..", "*", "?", "-", "+", "e", "1e5", "-3.5", " ",
            "  ", "\t", "IS", "NULL", "TRUE", "FALSE", "NOT", "EXISTS", "a", "ERROR", "w1",
            "{3,5}", "{,2}", "{", "^", "é", "日本", "\u{0}", "😀", "\n",
        ];
        const MESSAGES: &[&str] = &[
            "",
            "ERROR 09/25/2014 12:00:02 Failed to process request",
            "127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] \"GET /index.html HTTP/1.0\" 404 1534",
            "{\"a\": {\"b\": [1, \"x\", null, true]}, \"a.b\": 2, \"e\": 1e5}",
            "{\"unterminated",
            "[[[ \"\"\" ]]] é 日本 😀",
        ];
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let mut pattern = String::new();
            let wrap = rng.below(4);
            pattern.push_str(["", "{ ", "[", "%"][wrap]);
            for _ in 0..rng.below(12) {
                pattern.push_str(PIECES[rng.below(PIECES.len())]);
                if rng.below(3) == 0 {
                    pattern.push(' ');
                }
            }
            if rng.below(4) != 0 {
                pattern.push_str(["", " }", "]", "%"][wrap]);
            }
            if let Ok(f) = FilterPattern::parse(&pattern) {
                for msg in MESSAGES {
                    let _ = f.matches(msg);
                }
            }
        }
        // Mutations of valid patterns reach deeper into the parsers and matchers than random
        // text does.
        const VALID: &[&str] = &[
            "?ERROR ?ARGUMENTS REQUEST",
            "\"ERROR\" -\"MISSING ARGUMENTS\"",
            "{ ($.a.b[1] = \"x*\") && $.* = %^[a-z]{1,3}$% || $.c NOT EXISTS }",
            "{ $.['a.b'] >= -1e3 || $.a.b[*] IS NULL }",
            "[ip=%127\\.0\\.0\\.[1-9]%, ..., status_code = 4* && status_code != 403, bytes > 1000]",
            "[w1=ERROR || w1=WARNING, w2,]",
            "%^starting|^init[a-z]+\\d\\x3A%",
        ];
        for p in VALID {
            assert!(FilterPattern::parse(p).is_ok(), "{p}");
        }
        let mut parsed = 0;
        for _ in 0..20_000 {
            let mut p: Vec<char> = VALID[rng.below(VALID.len())].chars().collect();
            for _ in 0..=rng.below(3) {
                let at = rng.below(p.len() + 1);
                match rng.below(3) {
                    0 if at < p.len() => {
                        p.remove(at);
                    }
                    1 if at + 1 < p.len() => p.swap(at, at + 1),
                    _ => {
                        let piece: Vec<char> = PIECES[rng.below(PIECES.len())].chars().collect();
                        p.splice(at..at, piece);
                    }
                }
            }
            let pattern: String = p.into_iter().collect();
            if let Ok(f) = FilterPattern::parse(&pattern) {
                parsed += 1;
                for msg in MESSAGES {
                    let _ = f.matches(msg);
                }
            }
        }
        assert!(parsed > 1_000, "only {parsed} mutated patterns parsed");
        // Deep nesting must be refused, not overflow the stack.
        let deep = format!(
            "{{ {}$.a = 1{} }}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert!(FilterPattern::parse(&deep).is_err());
        // Long inputs of every shape stay well-behaved.
        let long = "a ".repeat(50_000);
        assert!(m(&long, &long));
        let many = format!("[{}]", vec!["..."; 5_000].join(","));
        assert!(m(&many, "x y z"));
    }
}
