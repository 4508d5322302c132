//! Tokens of the expression languages. Whitespace is skipped but every token keeps its byte
//! span, so syntax errors can quote the source around the offending token as DynamoDB does.

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// `[A-Za-z0-9_]+` with at least one non-digit: an attribute name, keyword or function.
    Word(String),
    /// `[0-9]+`: only valid as a list index.
    Digits(String),
    /// `#name`
    Name(String),
    /// `:value`
    Value(String),
    /// One of `( ) [ ] , . = <> < <= > >= + -`.
    Punct(&'static str),
    /// Anything else (one character), always a syntax error.
    Other(String),
    Eof,
}

/// A token and where it is in the source.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// The token as DynamoDB quotes it in syntax errors.
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        if self.tok == Tok::Eof {
            "<EOF>"
        } else {
            &src[self.start..self.end]
        }
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Splits `src` into tokens; the last one is always `Eof`.
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
            continue;
        }
        let start = i;
        let tok = if is_word(c) {
            while i < b.len() && is_word(b[i]) {
                i += 1;
            }
            let w = &src[start..i];
            if w.bytes().all(|c| c.is_ascii_digit()) {
                Tok::Digits(w.to_string())
            } else {
                Tok::Word(w.to_string())
            }
        } else if c == b'#' || c == b':' {
            i += 1;
            while i < b.len() && is_word(b[i]) {
                i += 1;
            }
            let w = src[start..i].to_string();
            if c == b'#' {
                Tok::Name(w)
            } else {
                Tok::Value(w)
            }
        } else {
            // Bytes, not a str slice: the next character may be multi-byte.
            let two = if i + 1 < b.len() {
                &b[i..i + 2]
            } else {
                &b[i..i]
            };
            let p = match two {
                b"<>" => Some("<>"),
                b"<=" => Some("<="),
                b">=" => Some(">="),
                _ => None,
            };
            if let Some(p) = p {
                i += 2;
                Tok::Punct(p)
            } else {
                let p = match c {
                    b'(' => Some("("),
                    b')' => Some(")"),
                    b'[' => Some("["),
                    b']' => Some("]"),
                    b',' => Some(","),
                    b'.' => Some("."),
                    b'=' => Some("="),
                    b'<' => Some("<"),
                    b'>' => Some(">"),
                    b'+' => Some("+"),
                    b'-' => Some("-"),
                    _ => None,
                };
                match p {
                    Some(p) => {
                        i += 1;
                        Tok::Punct(p)
                    }
                    None => {
                        // One whole character, however many bytes it takes.
                        let ch = src[i..].chars().next().map_or(1, char::len_utf8);
                        i += ch;
                        Tok::Other(src[start..i].to_string())
                    }
                }
            }
        };
        out.push(Token { tok, start, end: i });
    }
    out.push(Token {
        tok: Tok::Eof,
        start: src.len(),
        end: src.len(),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        tokenize(s).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn splits_the_language() {
        assert_eq!(
            kinds("a.b[12] <> :v AND #n>=x"),
            vec![
                Tok::Word("a".into()),
                Tok::Punct("."),
                Tok::Word("b".into()),
                Tok::Punct("["),
                Tok::Digits("12".into()),
                Tok::Punct("]"),
                Tok::Punct("<>"),
                Tok::Value(":v".into()),
                Tok::Word("AND".into()),
                Tok::Name("#n".into()),
                Tok::Punct(">="),
                Tok::Word("x".into()),
                Tok::Eof
            ]
        );
        assert_eq!(
            kinds("ü!"),
            vec![Tok::Other("ü".into()), Tok::Other("!".into()), Tok::Eof]
        );
        assert_eq!(
            kinds("<ü"),
            vec![Tok::Punct("<"), Tok::Other("ü".into()), Tok::Eof]
        );
        let t = tokenize("  x ");
        assert_eq!((t[0].start, t[0].end, t[1].start), (2, 3, 4));
        assert_eq!(t[1].text("  x "), "<EOF>");
    }
}
