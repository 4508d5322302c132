//! IAM wildcards: `*` matches any run of characters (including none), `?` exactly one.
//! Nothing escapes them, so a literal `*` in a policy is always a wildcard.
//!
//! Patterns are classified once at parse time so that the shapes policies actually use
//! (`*`, `s3:Get*`, an exact ARN) match without running the general matcher.

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `*` alone, or any run of `*`.
    Any,
    /// No wildcard at all.
    Exact(Box<str>),
    /// A literal followed by a single trailing `*`.
    Prefix(Box<str>),
    /// Anything else.
    Glob(Box<str>),
}

/// How literal characters compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    Sensitive,
    /// ASCII case folding. Only actions use it, and action names are ASCII; the pattern is
    /// stored lowercased so only the input needs folding.
    AsciiInsensitive,
}

impl Pattern {
    pub(crate) fn new(p: &str, case: Case) -> Pattern {
        let p = match case {
            Case::Sensitive => p.to_owned(),
            Case::AsciiInsensitive => p.to_ascii_lowercase(),
        };
        if !p.is_empty() && p.bytes().all(|b| b == b'*') {
            return Pattern::Any;
        }
        let wild = p.bytes().filter(|&b| b == b'*' || b == b'?').count();
        if wild == 0 {
            Pattern::Exact(p.into())
        } else if wild == 1 && p.ends_with('*') {
            let mut p = p;
            p.pop();
            Pattern::Prefix(p.into())
        } else {
            Pattern::Glob(p.into())
        }
    }

    pub(crate) fn has_wildcard(&self) -> bool {
        !matches!(self, Pattern::Exact(_))
    }

    pub(crate) fn matches(&self, s: &str, case: Case) -> bool {
        let fold = case == Case::AsciiInsensitive;
        match self {
            Pattern::Any => true,
            Pattern::Exact(p) => eq(p.as_bytes(), s.as_bytes(), fold),
            Pattern::Prefix(p) => {
                s.len() >= p.len() && eq(p.as_bytes(), &s.as_bytes()[..p.len()], fold)
            }
            Pattern::Glob(p) => glob(p.as_bytes(), s.as_bytes(), fold),
        }
    }
}

fn eq(p: &[u8], s: &[u8], fold: bool) -> bool {
    if fold {
        p.eq_ignore_ascii_case(s)
    } else {
        p == s
    }
}

/// Length of the UTF-8 sequence that starts with `b`; `?` consumes one character, not one
/// byte, so an object key in Japanese matches `?` per character as it does on AWS.
fn char_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Iterative matcher with single-star backtracking: linear in practice and never recursive,
/// so a hostile pattern such as `*a*a*a*a*b` cannot blow the stack.
fn glob(p: &[u8], s: &[u8], fold: bool) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    // Where to resume after the last `*`: the pattern index after it and the input index it
    // has absorbed up to.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    pi += 1;
                    star = Some((pi, si));
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si = (si + char_len(s[si])).min(s.len());
                    continue;
                }
                c if c == s[si] || (fold && c.eq_ignore_ascii_case(&s[si])) => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                let next = (ss + char_len(s[ss])).min(s.len());
                star = Some((sp, next));
                pi = sp;
                si = next;
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::new(p, Case::Sensitive).matches(s, Case::Sensitive)
    }

    fn mi(p: &str, s: &str) -> bool {
        Pattern::new(p, Case::AsciiInsensitive).matches(s, Case::AsciiInsensitive)
    }

    #[test]
    fn classification() {
        assert_eq!(Pattern::new("*", Case::Sensitive), Pattern::Any);
        assert_eq!(Pattern::new("**", Case::Sensitive), Pattern::Any);
        assert_eq!(
            Pattern::new("abc", Case::Sensitive),
            Pattern::Exact("abc".into())
        );
        assert_eq!(
            Pattern::new("ab*", Case::Sensitive),
            Pattern::Prefix("ab".into())
        );
        assert_eq!(
            Pattern::new("a*b", Case::Sensitive),
            Pattern::Glob("a*b".into())
        );
        assert_eq!(
            Pattern::new("ab?", Case::Sensitive),
            Pattern::Glob("ab?".into())
        );
        assert_eq!(Pattern::new("", Case::Sensitive), Pattern::Exact("".into()));
        assert!(!Pattern::new("abc", Case::Sensitive).has_wildcard());
        assert!(Pattern::new("a?c", Case::Sensitive).has_wildcard());
    }

    #[test]
    fn exact_and_prefix() {
        assert!(m("arn:aws:s3:::b/k", "arn:aws:s3:::b/k"));
        assert!(!m("arn:aws:s3:::b/k", "arn:aws:s3:::b/K"));
        assert!(!m("arn:aws:s3:::b/k", "arn:aws:s3:::b/k2"));
        assert!(m("arn:aws:s3:::b/*", "arn:aws:s3:::b/"));
        assert!(m("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b/c"));
        assert!(!m("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
        assert!(!m("arn:aws:s3:::b/*", "arn:aws:s3:::c/x"));
        assert!(m("", ""));
        assert!(!m("", "a"));
    }

    #[test]
    fn glob_forms() {
        assert!(m("a*c", "ac"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbbd"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(!m("a?c", "abbc"));
        assert!(m("*b*", "abc"));
        assert!(m("*.jpg", "x/y.jpg"));
        assert!(!m("*.jpg", "x/y.jpeg"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(m("?*", "x"));
        assert!(!m("?*", ""));
        assert!(m("*a*a*a*a*a*b", &format!("{}b", "a".repeat(200))));
        assert!(!m("*a*a*a*a*a*b", &"a".repeat(200)));
    }

    #[test]
    fn question_mark_is_one_character() {
        assert!(m("k?y", "kéy"));
        assert!(m("?", "日"));
        assert!(!m("??", "日"));
        assert!(m("*?本", "日本"));
    }

    #[test]
    fn ascii_insensitive() {
        assert!(mi("s3:GetObject", "S3:GETOBJECT"));
        assert!(mi("s3:Get*", "s3:getobjectacl"));
        assert!(mi("S3:*Object", "s3:PutObject"));
        assert!(mi("s3:Get?bject", "s3:getOBJECT"));
        assert!(!mi("s3:Get*", "s3:PutObject"));
        assert!(!m("s3:Get*", "s3:getObject"));
    }
}
