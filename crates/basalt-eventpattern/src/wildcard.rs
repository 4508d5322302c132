//! `wildcard` patterns: `*` matches any run of characters (including none), `\*` is a literal
//! star and `\\` a literal backslash. Only `*` is special, so a greedy left-to-right search for
//! each literal segment is exact and linear; no backtracking automaton is needed.

/// A compiled wildcard: literal segments that sit between stars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wildcard {
    /// `segments[0]` must start the value, the last must end it; with no star there is one
    /// segment and the match is exact.
    segments: Vec<String>,
}

impl Wildcard {
    /// Parses with EventBridge's errors. Positions count UTF-8 bytes from the opening quote of the
    /// JSON string, as EventBridge reports them (its parser sees the value with its quotes).
    pub(crate) fn parse(text: &str) -> Result<Wildcard, String> {
        let bytes = text.as_bytes();
        let mut segments = vec![Vec::new()];
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'*' => {
                    if bytes.get(i + 1) == Some(&b'*') {
                        return Err(format!("Consecutive wildcard characters at pos {}", i + 1));
                    }
                    segments.push(Vec::new());
                }
                b'\\' => match bytes.get(i + 1) {
                    Some(&c @ (b'*' | b'\\')) => {
                        segments.last_mut().expect("never empty").push(c);
                        i += 1;
                    }
                    _ => return Err(format!("Invalid escape character at pos {}", i + 1)),
                },
                c => segments.last_mut().expect("never empty").push(c),
            }
            i += 1;
        }
        // Segments are cut only at ASCII bytes, so each is still valid UTF-8.
        let segments = segments
            .into_iter()
            .map(|s| String::from_utf8(s).expect("cut at ASCII"))
            .collect();
        Ok(Wildcard { segments })
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        let segs = &self.segments;
        if segs.len() == 1 {
            return value == segs[0];
        }
        let (first, last) = (&segs[0], &segs[segs.len() - 1]);
        if value.len() < first.len() + last.len()
            || !value.starts_with(first.as_str())
            || !value.ends_with(last.as_str())
        {
            return false;
        }
        let mut rest = &value[first.len()..value.len() - last.len()];
        for mid in &segs[1..segs.len() - 1] {
            match rest.find(mid.as_str()) {
                Some(at) => rest = &rest[at + mid.len()..],
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, v: &str) -> bool {
        Wildcard::parse(p).unwrap().matches(v)
    }

    #[test]
    fn matching() {
        assert!(m("dir/*.png", "dir/a.png"));
        assert!(m("dir/*.png", "dir/.png"));
        assert!(m("dir/*.png", "dir/sub/a.png"));
        assert!(!m("dir/*.png", "dir/a.jpg"));
        assert!(m("*/lib/*", "/usr/lib/x"));
        assert!(!m("*/lib/*", "/usr/libx"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "ac"));
        assert!(m("*", ""));
        assert!(!m("ab*ba", "aba"));
        assert!(m("ab*ba", "abba"));
        assert!(m("lit", "lit"));
        assert!(!m("lit", "lit2"));
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "axb"));
        assert!(m(r"a\\*", r"a\zzz"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            Wildcard::parse("a**").unwrap_err(),
            "Consecutive wildcard characters at pos 2"
        );
        assert_eq!(
            Wildcard::parse(r"a\b").unwrap_err(),
            "Invalid escape character at pos 2"
        );
        assert_eq!(
            Wildcard::parse("a\\").unwrap_err(),
            "Invalid escape character at pos 2"
        );
    }
}
