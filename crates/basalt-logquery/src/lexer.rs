//! Tokens of the query language.
//!
//! `/` is both division and the delimiter of a regular expression, and only the grammar knows
//! which one it is looking at; so the lexer is pulled one token at a time and the parser asks for
//! a regular expression explicitly (`regex_at`) where one may stand.

use crate::error::QueryError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare word: command, keyword, function or field name. Field names may hold `@`, `.` and
    /// digits (`@logStream`, `requestParameters.items.0.instanceId`).
    Word(String),
    /// A field name written between backticks, for names with other characters in them.
    Quoted(String),
    Str(String),
    Num(f64),
    /// A number written directly before letters: `5m`, `1h`, `30sec`.
    Period(u64, String),
    Regex(String),
    Pipe,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `=~`, a synonym of `like`.
    Tilde,
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Byte offsets in the query.
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// Whether this is the bare word `kw`, ignoring case as the service does for keywords.
    pub fn is_word(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

pub(crate) struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '@' || c == '$'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '.' || c == '$'
}

impl<'s> Lexer<'s> {
    pub fn new(src: &'s str) -> Self {
        Lexer { src, pos: 0 }
    }

    fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn err(&self, start: usize, end: usize) -> QueryError {
        let end = end.min(self.src.len()).max(start);
        QueryError::unexpected(self.src, self.src.get(start..end), start, end)
    }

    fn skip_blank(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            // `#` starts a comment running to the end of the line.
            if trimmed.starts_with('#') {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else {
                return;
            }
        }
    }

    /// Takes characters while `f` holds and returns them.
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'s str {
        let rest = self.rest();
        let n = rest.find(|c: char| !f(c)).unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }

    pub fn next_token(&mut self) -> Result<Token, QueryError> {
        self.skip_blank();
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            return Ok(Token {
                tok: Tok::Eof,
                start,
                end: start,
            });
        };
        let tok = if is_word_start(c) {
            Tok::Word(self.take_while(is_word_char).to_string())
        } else if c.is_ascii_digit() {
            self.number(start)?
        } else if c == '"' || c == '\'' {
            Tok::Str(self.string(c, start)?)
        } else if c == '`' {
            self.pos += 1;
            let name = self.take_while(|c| c != '`');
            if self.peek_char() != Some('`') || name.is_empty() {
                return Err(self.err(start, self.pos));
            }
            self.pos += 1;
            Tok::Quoted(name.to_string())
        } else {
            self.pos += c.len_utf8();
            let two = |l: &mut Self, next: char, yes: Tok, no: Tok| {
                if l.peek_char() == Some(next) {
                    l.pos += 1;
                    yes
                } else {
                    no
                }
            };
            match c {
                '|' => Tok::Pipe,
                ',' => Tok::Comma,
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                '[' => Tok::LBracket,
                ']' => Tok::RBracket,
                '+' => Tok::Plus,
                '-' => Tok::Minus,
                '*' => Tok::Star,
                '/' => Tok::Slash,
                '%' => Tok::Percent,
                '^' => Tok::Caret,
                '=' => match self.peek_char() {
                    Some('~') => {
                        self.pos += 1;
                        Tok::Tilde
                    }
                    // `==` is accepted as `=`, as most query languages do.
                    Some('=') => {
                        self.pos += 1;
                        Tok::Eq
                    }
                    _ => Tok::Eq,
                },
                '!' if self.peek_char() == Some('=') => {
                    self.pos += 1;
                    Tok::Ne
                }
                '<' => two(self, '=', Tok::Le, Tok::Lt),
                '>' => two(self, '=', Tok::Ge, Tok::Gt),
                _ => return Err(self.err(start, self.pos)),
            }
        };
        Ok(Token {
            tok,
            start,
            end: self.pos,
        })
    }

    fn number(&mut self, start: usize) -> Result<Tok, QueryError> {
        self.take_while(|c| c.is_ascii_digit());
        let mut fraction = false;
        if self.rest().starts_with('.')
            && self.rest()[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            fraction = true;
            self.pos += 1;
            self.take_while(|c| c.is_ascii_digit());
        }
        let digits = &self.src[start..self.pos];
        if self.peek_char().is_some_and(|c| c.is_ascii_alphabetic()) {
            let unit = self.take_while(|c| c.is_ascii_alphabetic());
            return match (fraction, digits.parse::<u64>()) {
                (false, Ok(n)) => Ok(Tok::Period(n, unit.to_string())),
                _ => Err(self.err(start, self.pos)),
            };
        }
        digits
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Tok::Num)
            .ok_or_else(|| self.err(start, self.pos))
    }

    fn string(&mut self, quote: char, start: usize) -> Result<String, QueryError> {
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, e @ ('\\' | '"' | '\''))) => out.push(e),
                    // Other escapes stay as written, so that a string used as a pattern keeps
                    // its meaning.
                    Some((_, e)) => {
                        out.push('\\');
                        out.push(e);
                    }
                    None => break,
                },
                c if c == quote => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        self.pos = self.src.len();
        Err(self.err(start, self.pos))
    }

    /// Lexes a `/regex/` starting at byte `start` (where the parser saw a `/`). Inside it, `\/`
    /// stands for `/`; every other escape is left for the regex engine.
    pub fn regex_at(&mut self, start: usize) -> Result<Token, QueryError> {
        self.pos = start + 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, '/')) => out.push('/'),
                    Some((_, e)) => {
                        out.push('\\');
                        out.push(e);
                    }
                    None => break,
                },
                '/' => {
                    self.pos += i + 1;
                    return Ok(Token {
                        tok: Tok::Regex(out),
                        start,
                        end: self.pos,
                    });
                }
                c => out.push(c),
            }
        }
        self.pos = self.src.len();
        Err(self.err(start, self.pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        let mut l = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let t = l.next_token().unwrap_or_else(|e| panic!("{src:?}: {e}"));
            if t.tok == Tok::Eof {
                return out;
            }
            out.push(t.tok);
        }
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.to_string())
    }

    #[test]
    fn words_numbers_and_operators() {
        assert_eq!(
            toks("fields `foo-bar`, action, abs(f3-f4)"),
            vec![
                w("fields"),
                Tok::Quoted("foo-bar".into()),
                Tok::Comma,
                w("action"),
                Tok::Comma,
                w("abs"),
                Tok::LParen,
                w("f3"),
                Tok::Minus,
                w("f4"),
                Tok::RParen
            ]
        );
        assert_eq!(
            toks("a<=1.5 != >= == =~ ^ %"),
            vec![
                w("a"),
                Tok::Le,
                Tok::Num(1.5),
                Tok::Ne,
                Tok::Ge,
                Tok::Eq,
                Tok::Tilde,
                Tok::Caret,
                Tok::Percent
            ]
        );
        assert_eq!(
            toks("@logStream requestParameters.instancesSet.items.0.instanceId"),
            vec![
                w("@logStream"),
                w("requestParameters.instancesSet.items.0.instanceId")
            ]
        );
    }

    #[test]
    fn periods_strings_and_comments() {
        assert_eq!(
            toks("bin(5m) # a comment | not a pipe\n'it''s' \"a\\\"b\\n\""),
            vec![
                w("bin"),
                Tok::LParen,
                Tok::Period(5, "m".into()),
                Tok::RParen,
                Tok::Str("it".into()),
                Tok::Str("s".into()),
                Tok::Str("a\"b\n".into()),
            ]
        );
        assert_eq!(toks("\"\\d+\""), vec![Tok::Str("\\d+".into())]);
    }

    #[test]
    fn regex_is_lexed_on_request() {
        let src = "like /a\\/b|c\\d/ x";
        let mut l = Lexer::new(src);
        assert!(l.next_token().unwrap().is_word("LIKE"));
        let slash = l.next_token().unwrap();
        assert_eq!(slash.tok, Tok::Slash);
        let re = l.regex_at(slash.start).unwrap();
        assert_eq!(re.tok, Tok::Regex("a/b|c\\d".into()));
        assert_eq!(l.next_token().unwrap().tok, w("x"));
    }

    #[test]
    fn malformed_tokens_are_errors() {
        for (src, msg) in [
            (
                "\"abc",
                "unexpected symbol found \"abc at line 1 and position 0",
            ),
            (
                "a ; b",
                "unexpected symbol found ; at line 1 and position 2",
            ),
            ("`x", "unexpected symbol found `x at line 1 and position 0"),
            (
                "1.5h",
                "unexpected symbol found 1.5h at line 1 and position 0",
            ),
            ("é", "unexpected symbol found é at line 1 and position 0"),
        ] {
            let mut l = Lexer::new(src);
            let e = loop {
                match l.next_token() {
                    Ok(t) if t.tok == Tok::Eof => panic!("{src:?} lexed"),
                    Ok(_) => {}
                    Err(e) => break e,
                }
            };
            assert_eq!(e.to_string(), msg, "{src:?}");
        }
        let mut l = Lexer::new("/abc");
        assert!(l.regex_at(0).is_err());
    }
}
