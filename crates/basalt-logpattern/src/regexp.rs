//! The regular expressions written between `%` signs, translated to the `regex` crate.
//!
//! The syntax page ("Supported regular expressions (regex) syntax") allows only ASCII letters
//! and digits, the symbols `: _ # = @ / ; , -`, and the operators `^ $ ? [ ] { } | \ * + .`;
//! parentheses and multi-byte characters are refused; `\d \D \s \S \w \W \xhh` are the escape
//! classes. Anything outside that alphabet is refused with the service's "Invalid
//! character(s) in term" wording (ministryofjustice/modernisation-platform-environments#5137
//! got it for parentheses in a regex). Translating rather than handing the text to `regex`
//! as-is keeps the classes ASCII (`regex` would make `\w` and `\d` Unicode-aware) and keeps
//! `regex`-only syntax (`\b`, `\p{…}`, nested classes) out.

use crate::PatternError;
use regex::{Regex, RegexBuilder};

/// Compiled programs larger than this are refused: `a{1000}{1000}` must fail to parse, not eat
/// memory.
const SIZE_LIMIT: usize = 1 << 20;

/// Besides the listed symbols the space is let through: the syntax page's own examples use it
/// (`%^starting|^initializing|^shutting down%`, and "` at` (starting with a space)").
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || ":_#=@/;,- ^$?[]{}|\\*+.".contains(c)
}

/// `\s`: "Whitespace characters include the tab, space, and newline"; the other ASCII
/// whitespace characters are included as in every other regex dialect.
const SPACE: &str = r"\t\n\x0B\x0C\r\x20";
const WORD: &str = "a-zA-Z0-9_";
const DIGIT: &str = "0-9";

pub(crate) fn compile(src: &str) -> Result<Regex, PatternError> {
    if let Some(bad) = src.chars().find(|&c| !allowed(c)) {
        return Err(PatternError::InvalidCharacters(bad.to_string()));
    }
    if src.is_empty() {
        return Err(PatternError::invalid("empty regular expression"));
    }
    // ASCII only from here on, so bytes are characters.
    let b = src.as_bytes();
    // `.` "matches any single character", newlines included.
    let mut out = String::from("(?s)");
    let mut in_class = false;
    // Just after `[` or `[^`, where `]` is a literal member.
    let mut class_start = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        i += 1;
        if c == '\\' {
            let Some(&e) = b.get(i) else {
                return Err(PatternError::invalid("trailing backslash"));
            };
            i += 1;
            class_start = false;
            let class = |set: &str, negated: bool| match (negated, in_class) {
                (false, true) => set.to_owned(),
                (false, false) => format!("[{set}]"),
                // A negated set inside a class: `regex` accepts a nested class as a union.
                (true, _) => format!("[^{set}]"),
            };
            match e {
                b'd' => out.push_str(&class(DIGIT, false)),
                b'D' => out.push_str(&class(DIGIT, true)),
                b'w' => out.push_str(&class(WORD, false)),
                b'W' => out.push_str(&class(WORD, true)),
                b's' => out.push_str(&class(SPACE, false)),
                b'S' => out.push_str(&class(SPACE, true)),
                b'x' => {
                    let hex = b
                        .get(i..i + 2)
                        .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                    let Some(hex) = hex else {
                        return Err(PatternError::invalid("\\x needs two hexadecimal digits"));
                    };
                    out.push_str(&format!("\\x{{{}}}", String::from_utf8_lossy(hex)));
                    i += 2;
                }
                // Escaped punctuation is that character; writing it as a code point avoids
                // relying on which escapes `regex` accepts.
                e if !e.is_ascii_alphanumeric() => out.push_str(&format!("\\x{{{e:02X}}}")),
                _ => return Err(PatternError::invalid("unsupported escape")),
            }
            continue;
        }
        if in_class {
            let first = class_start;
            class_start = false;
            match c {
                ']' if first => out.push_str(r"\]"),
                ']' => {
                    out.push(']');
                    in_class = false;
                }
                '^' if first && b[i - 2] == b'[' => {
                    out.push('^');
                    class_start = true;
                }
                // Literal inside a POSIX class, but an operator in `regex` classes.
                '[' | '^' => {
                    out.push('\\');
                    out.push(c);
                }
                // `--` is set difference in `regex` classes.
                '-' if b.get(i) == Some(&b'-') => out.push_str(r"\-"),
                _ => out.push(c),
            }
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = true;
                out.push('[');
            }
            ']' => out.push_str(r"\]"),
            '}' => out.push_str(r"\}"),
            '{' => {
                let close = b[i..]
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or(PatternError::invalid("unclosed {"))?;
                out.push_str(&repetition(&src[i..i + close])?);
                i += close + 1;
            }
            _ => out.push(c),
        }
    }
    if in_class {
        return Err(PatternError::invalid("unclosed ["));
    }
    RegexBuilder::new(&out)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|_| PatternError::invalid("regular expression does not compile"))
}

/// `{m,n}`, `{m,}`, `{,n}` or `{m}`; the syntax page writes `{m, n}` with a space and lets
/// either bound be omitted, which `regex` does not accept as such.
fn repetition(body: &str) -> Result<String, PatternError> {
    let body: String = body.chars().filter(|c| *c != ' ').collect();
    let bad = || PatternError::invalid("malformed {m,n}");
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (lo, hi) = match body.split_once(',') {
        Some((lo, hi)) => (lo, Some(hi)),
        None => (body.as_str(), None),
    };
    if !digits(lo) || !hi.is_none_or(digits) {
        return Err(bad());
    }
    match (lo, hi) {
        ("", None | Some("")) => Err(bad()),
        (lo, None) => Ok(format!("{{{lo}}}")),
        ("", Some(hi)) => Ok(format!("{{0,{hi}}}")),
        (lo, Some(hi)) => Ok(format!("{{{lo},{hi}}}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(src: &str) -> Regex {
        compile(src).unwrap_or_else(|e| panic!("{src:?}: {e:?}"))
    }

    // Every example below is from the syntax page, "Usage of supported operators".

    #[test]
    fn anchors() {
        assert!(re("^[hc]at").is_match("hat trick"));
        assert!(re("^[hc]at").is_match("cat"));
        assert!(!re("^[hc]at").is_match("that"));
        assert!(re("[hc]at$").is_match("that"));
        assert!(!re("[hc]at$").is_match("cats"));
    }

    #[test]
    fn optional_and_repetition() {
        assert!(re("colou?r").is_match("color"));
        assert!(re("colou?r").is_match("colour"));
        let a35 = re("^a{3,5}$");
        assert!(!a35.is_match("aa"));
        assert!(a35.is_match("aaa"));
        assert!(a35.is_match("aaaaa"));
        assert!(!a35.is_match("aaaaaa"));
        // "Either m or n can be omitted", and the page itself writes `{m, n}` with a space.
        assert!(re("^a{, 2}$").is_match("aa"));
        assert!(!re("^a{,2}$").is_match("aaa"));
        assert!(re("^a{2,}$").is_match("aaaa"));
        assert!(re("^a{2}$").is_match("aa"));
        assert!(compile("a{,}").is_err());
        assert!(compile("a{x}").is_err());
        assert!(compile("a{2").is_err());
    }

    #[test]
    fn classes() {
        for c in ["a", "b", "c"] {
            assert!(re("^[abc]$").is_match(c));
        }
        assert!(!re("^[abc]$").is_match("d"));
        assert!(re("^[a-z]$").is_match("q"));
        assert!(!re("^[a-z]$").is_match("Q"));
        for c in ["a", "b", "c", "x", "y", "z"] {
            assert!(re("^[abcx-z]$").is_match(c));
        }
        assert!(!re("^[abcx-z]$").is_match("w"));
        assert!(re("^[^c]$").is_match("a"));
        assert!(!re("^[^c]$").is_match("c"));
        assert!(compile("[abc").is_err());
    }

    #[test]
    fn alternation() {
        assert!(re("gra|ey").is_match("gray"));
        assert!(re("gra|ey").is_match("grey"));
        let r = re("^starting|^initializing|^shutting down");
        assert!(r.is_match("starting ..."));
        assert!(r.is_match("initializing ..."));
        assert!(r.is_match("shutting down"));
        assert!(!r.is_match("skipping initializing ..."));
        let r = re("abcc|ab[^c]$");
        assert!(r.is_match("abcc ..."));
        assert!(r.is_match("aba"));
        assert!(!r.is_match("aac ..."));
    }

    #[test]
    fn escapes() {
        let r = re(r"\[.\]");
        for s in ["[a]", "[b]", "[7]", "[@]", "[]]", "[ ]"] {
            assert!(r.is_match(s), "{s}");
        }
        assert!(re(r"10\.10\.0\.1").is_match("10.10.0.1"));
        assert!(!re(r"10\.10\.0\.1").is_match("10010,051"));
        // The unescaped form "can match 10010,051".
        assert!(re("10.10.0.1").is_match("10010,051"));
        assert!(re(r"\x3A").is_match(":"));
        assert!(re(r"\x28").is_match("("));
        assert!(compile(r"\x2").is_err());
        assert!(compile(r"\xZZ").is_err());
        assert!(compile("a\\").is_err());
        // `regex`-only escapes are not part of the documented dialect.
        assert!(compile(r"\bword").is_err());
    }

    #[test]
    fn quantifiers_and_dot() {
        for s in ["ac", "abc", "abbbc"] {
            assert!(re("^ab*c$").is_match(s));
        }
        for s in ["ab", "ab0", "ab129"] {
            assert!(re("^ab[0-9]*$").is_match(s));
        }
        assert!(re("ab+c").is_match("abbc"));
        assert!(!re("ab+c").is_match("ac"));
        for s in ["hat", "cat", "bat", "4at", "#at", " at"] {
            assert!(re("^.at$").is_match(s), "{s:?}");
        }
    }

    #[test]
    fn escape_classes_are_ascii() {
        assert!(re(r"^\d$").is_match("7"));
        assert!(!re(r"^\d$").is_match("٧"));
        assert!(re(r"^\D$").is_match("x"));
        assert!(re(r"^\w+$").is_match("a_Z9"));
        assert!(!re(r"^\w$").is_match("é"));
        assert!(re(r"^\W$").is_match("-"));
        assert!(re(r"a\sb").is_match("a\tb"));
        assert!(re(r"a\sb").is_match("a\nb"));
        assert!(re(r"^\S+$").is_match("ab"));
        assert!(re(r"^[\d_]+$").is_match("1_2"));
        assert!(re(r"^[\Dx]+$").is_match("ab"));
        assert!(!re(r"^[\D]+$").is_match("12"));
    }

    #[test]
    fn characters_outside_the_alphabet_are_refused() {
        // "%something!% would be rejected since '!' is not supported."
        assert_eq!(
            compile("something!").unwrap_err(),
            PatternError::InvalidCharacters("!".into())
        );
        // "The ( and ) operators are not supported."
        assert_eq!(
            compile("(ab)+").unwrap_err(),
            PatternError::InvalidCharacters("(".into())
        );
        // "Multi-byte characters are not supported."
        assert_eq!(
            compile("caf\u{e9}").unwrap_err(),
            PatternError::InvalidCharacters("\u{e9}".into())
        );
        assert!(compile("").is_err());
    }

    #[test]
    fn documented_symbols_are_literals() {
        assert!(re("a:b_c#d=e@f/g;h,i-j").is_match("a:b_c#d=e@f/g;h,i-j"));
        assert!(re("^[]a]+$").is_match("]a"));
        assert!(re("^[a[]+$").is_match("[a"));
        assert!(re("^[a^]+$").is_match("^a"));
        assert!(re("^[a--]+$").is_match("a-"));
        assert!(re("x]").is_match("x]"));
        assert!(re("x}").is_match("x}"));
    }

    #[test]
    fn huge_repetitions_are_refused_not_built() {
        assert!(compile("a{1000}{1000}").is_err());
        assert!(compile("*a").is_err());
    }
}
