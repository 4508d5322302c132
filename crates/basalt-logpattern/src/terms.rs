//! Patterns for unstructured events: terms and "quoted phrases" that must appear, `-` ones that
//! must not, `?` ones of which one must.
//!
//! From the syntax page, "Using filter patterns to match terms in unstructured log events":
//! * matching is case sensitive and a term matches anywhere in the message (the old syntax page:
//!   `ERROR` matches "Exiting with ERRORCODE: -1");
//! * "Enclose exact phrases and terms that include non-alphanumeric characters in double
//!   quotation marks"; the old page adds "other than alphanumeric or underscore", and the
//!   service answers "Invalid character(s) in term ':'" for an unquoted colon;
//! * `?` terms: "If you combine "?" with other filter patterns, all question mark terms will be
//!   ignored" (`?ERROR ?ARGUMENTS REQUEST` matches every event containing REQUEST);
//! * `" "` matches everything (and the old page: `""` matches all log events).

use crate::PatternError;
use crate::lex::read_quoted;

#[derive(Debug, Clone)]
pub(crate) struct Terms {
    include: Vec<Term>,
    exclude: Vec<Term>,
    optional: Vec<Term>,
}

#[derive(Debug, Clone)]
enum Term {
    Text(String),
    /// A blank quoted phrase, which the syntax pages say matches every event.
    Anything,
}

impl Term {
    fn found_in(&self, message: &str) -> bool {
        match self {
            Term::Text(t) => message.contains(t.as_str()),
            Term::Anything => true,
        }
    }
}

/// Unicode letters and digits are let through unquoted: the rule is about symbols, and
/// refusing non-English words would only get in users' way.
fn is_term_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

pub(crate) fn parse(pattern: &str) -> Result<Terms, PatternError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut terms = Terms {
        include: Vec::new(),
        exclude: Vec::new(),
        optional: Vec::new(),
    };
    let mut i = 0;
    let skip_space = |mut i: usize| {
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        i
    };
    loop {
        i = skip_space(i);
        let Some(&c) = chars.get(i) else { break };
        // The old syntax page writes `"ERROR" - "Exiting"`, so a sign may stand apart from its
        // term.
        let list = match c {
            '-' => {
                i = skip_space(i + 1);
                &mut terms.exclude
            }
            '?' => {
                i = skip_space(i + 1);
                &mut terms.optional
            }
            _ => &mut terms.include,
        };
        let term = match chars.get(i) {
            None => return Err(PatternError::invalid("a - or ? with no term after it")),
            Some('"') => {
                let (text, end) = read_quoted(&chars, i)?;
                i = end;
                if text.trim().is_empty() {
                    Term::Anything
                } else {
                    Term::Text(text)
                }
            }
            Some(_) => {
                let start = i;
                while let Some(&c) = chars.get(i) {
                    if c.is_whitespace() || c == '"' {
                        break;
                    }
                    if !is_term_char(c) {
                        return Err(PatternError::InvalidCharacters(c.to_string()));
                    }
                    i += 1;
                }
                Term::Text(chars[start..i].iter().collect())
            }
        };
        list.push(term);
    }
    Ok(terms)
}

impl Terms {
    pub(crate) fn matches(&self, message: &str) -> bool {
        if !self.include.is_empty() || !self.exclude.is_empty() {
            self.include.iter().all(|t| t.found_in(message))
                && !self.exclude.iter().any(|t| t.found_in(message))
        } else if !self.optional.is_empty() {
            self.optional.iter().any(|t| t.found_in(message))
        } else {
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::PatternError;
    use crate::test_util::{err, m};

    // The events of the syntax page's unstructured examples.
    const E400: &str = "[ERROR 400] BAD REQUEST";
    const E401: &str = "[ERROR 401] UNAUTHORIZED REQUEST";
    const E419: &str = "[ERROR 419] MISSING ARGUMENTS";
    const E420: &str = "[ERROR 420] INVALID ARGUMENTS";
    const E500: &str = "[ERROR 500] INTERNAL SERVER ERROR";

    #[test]
    fn single_term() {
        // Syntax page, "Example: Match a single term".
        for e in [E400, E401, E419, E420] {
            assert!(m("ERROR", e));
        }
        assert!(!m("ERROR", "[INFO] all good"));
        // Old syntax page: a term matches inside a longer word.
        assert!(m("ERROR", "Exiting with ERRORCODE: -1"));
    }

    #[test]
    fn terms_are_case_sensitive() {
        assert!(!m("ERROR", "error: disk full"));
        assert!(!m("error", E400));
    }

    #[test]
    fn multiple_terms_must_all_appear() {
        // Syntax page, "Example: Match multiple terms".
        assert!(m("ERROR ARGUMENTS", E419));
        assert!(m("ERROR ARGUMENTS", E420));
        assert!(!m("ERROR ARGUMENTS", E400));
        assert!(!m("ERROR ARGUMENTS", E401));
        // Old syntax page: each word of an unquoted sentence is its own term.
        assert!(m(
            "Failed to process the request",
            "[WARN] Failed to process the request"
        ));
        assert!(m(
            "Failed to process the request",
            "the request: Failed to process"
        ));
    }

    #[test]
    fn optional_terms() {
        // Syntax page, "Example: Match optional terms".
        for e in [E400, E401, E419, E420] {
            assert!(m("?ERROR ?ARGUMENTS", e));
        }
        assert!(m("?ERROR ?ARGUMENTS", "MISSING ARGUMENTS"));
        assert!(!m("?ERROR ?ARGUMENTS", "[INFO] REQUEST FAILED"));
        // Old syntax page, "OR Pattern Matching".
        assert!(m("?ERROR ?WARN", "ERROR WARN message"));
        assert!(m("?ERROR ?WARN", "ERROR message"));
        assert!(m("?ERROR ?WARN", "WARN message"));
        assert!(!m("?ERROR ?WARN", "INFO message"));
        assert!(m("?\"Failure\" ?\"access denied\"", "x access denied y"));
    }

    #[test]
    fn optional_terms_are_ignored_beside_other_terms() {
        // Syntax page: "?ERROR ?ARGUMENTS REQUEST" matches every event containing REQUEST.
        let p = "?ERROR ?ARGUMENTS REQUEST";
        assert!(m(p, "[INFO] REQUEST FAILED"));
        assert!(m(p, "[WARN] UNAUTHORIZED REQUEST"));
        assert!(m(p, "[ERROR] 400 BAD REQUEST"));
        assert!(!m(p, "[ERROR 419] MISSING ARGUMENTS"));
        // The same goes for exclusions.
        assert!(m("?ERROR -DEBUG", "all quiet"));
        assert!(!m("?ERROR -DEBUG", "ERROR DEBUG"));
    }

    #[test]
    fn exact_phrases() {
        // Syntax page, "Example: Match exact phrases".
        assert!(m("\"INTERNAL SERVER ERROR\"", E500));
        assert!(!m("\"INTERNAL SERVER ERROR\"", "INTERNAL ERROR on SERVER"));
        // awsdocs/amazon-cloudwatch-logs-user-guide#31: each quoted term is matched on its own.
        assert!(m(
            "\"ERROR\" \"Exception\"",
            "[ERROR] Caught IllegalArgumentException"
        ));
    }

    #[test]
    fn include_and_exclude() {
        // Syntax page, "Example: Include and exclude terms".
        assert!(m("ERROR -ARGUMENTS", E400));
        assert!(m("ERROR -ARGUMENTS", E401));
        assert!(!m("ERROR -ARGUMENTS", E419));
        assert!(!m("ERROR -ARGUMENTS", E420));
        // Old syntax page: `"ERROR" - "Exiting"`, a sign apart from its quoted term.
        assert!(m(
            "\"ERROR\" - \"Exiting\"",
            "[ERROR] A fatal exception has occurred"
        ));
        assert!(!m("\"ERROR\" - \"Exiting\"", "Exiting with ERRORCODE: -1"));
        // Old syntax page: "ERROR -WARN matches example 2".
        assert!(!m("ERROR -WARN", "ERROR WARN message"));
        assert!(m("ERROR -WARN", "ERROR message"));
        assert!(!m("ERROR -WARN", "WARN message"));
        assert!(m("-\"MISSING ARGUMENTS\"", E420));
        assert!(!m("-\"MISSING ARGUMENTS\"", E419));
        // Only exclusions: everything else matches.
        assert!(m("-DEBUG", "anything"));
    }

    #[test]
    fn blank_quotes_match_everything() {
        // Syntax page, "Example: Match everything": `" "`; old syntax page: `""`.
        for p in ["\" \"", "\"\""] {
            assert!(m(p, "x"));
            assert!(m(p, ""));
        }
        assert!(m("\"\" ERROR", E400));
        assert!(!m("\"\" ERROR", "ok"));
    }

    #[test]
    fn quoted_terms_take_any_character_and_cdk_escapes() {
        assert!(m("\"user@example.com\"", "login user@example.com ok"));
        assert!(m("\"(x)\" \"[y]\" \"{z}\"", "(x) [y] {z}"));
        // The AWS CDK escapes `"` and `\` inside the quotes it adds.
        assert!(m(r#""say \"hi\"""#, r#"they say "hi" twice"#));
        assert!(m(r#""C:\\temp""#, r"open C:\temp failed"));
        assert!(m(r#""a\d""#, r"a\d"));
        assert!(m("日本 \"東京\"", "日本の首都は東京"));
    }

    #[test]
    fn unquoted_symbols_are_refused() {
        // Service wordings quoted in public reports.
        assert_eq!(
            err("?Status: timeout"),
            PatternError::InvalidCharacters(":".into())
        );
        assert_eq!(err("foo(bar)"), PatternError::InvalidCharacters("(".into()));
        assert_eq!(
            err(r"level\error"),
            PatternError::InvalidCharacters("\\".into())
        );
        assert_eq!(
            err("user@example.com"),
            PatternError::InvalidCharacters("@".into())
        );
        assert_eq!(
            err("ERROR-WARN"),
            PatternError::InvalidCharacters("-".into())
        );
        assert_eq!(
            err("\u{201c}x\u{201d}"),
            PatternError::InvalidCharacters("\u{201c}".into())
        );
        assert_eq!(err("ERR*"), PatternError::InvalidCharacters("*".into()));
        assert_eq!(err("a }"), PatternError::InvalidCharacters("}".into()));
        assert_eq!(err("--x"), PatternError::InvalidCharacters("-".into()));
        assert_eq!(err("-?x"), PatternError::InvalidCharacters("?".into()));
    }

    #[test]
    fn dangling_signs_and_quotes_are_refused() {
        for p in ["ERROR -", "?", "- ", "\"open", "ERROR \"open"] {
            assert!(matches!(err(p), PatternError::Invalid { .. }), "{p:?}");
        }
    }

    #[test]
    fn underscores_and_digits_need_no_quotes() {
        assert!(m("user_id 404", "user_id=7 status 404"));
    }
}
