//! A cursor over tokens with DynamoDB's syntax error message.

use super::lexer::{Tok, Token, tokenize};
use crate::error::{ExprError, ExprKind};

/// DynamoDB's limit on an expression string, counted on the raw text.
const MAX_EXPRESSION_BYTES: usize = 4096;

pub(crate) struct Cursor<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    kind: ExprKind,
}

impl<'a> Cursor<'a> {
    /// `Err` with DynamoDB's message for an empty expression.
    pub fn new(src: &'a str, kind: ExprKind) -> Result<Cursor<'a>, ExprError> {
        if src.is_empty() {
            return Err(kind.error("The expression can not be empty;"));
        }
        if src.len() > MAX_EXPRESSION_BYTES {
            // Only condition and filter expressions add the size, as DynamoDB does.
            let size = match kind {
                ExprKind::Condition | ExprKind::Filter => {
                    format!(" expression size: {}", src.len())
                }
                _ => String::new(),
            };
            return Err(kind.error(format_args!(
                "Expression size has exceeded the maximum allowed size;{size}"
            )));
        }
        Ok(Cursor {
            src,
            toks: tokenize(src),
            pos: 0,
            kind,
        })
    }

    pub fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    pub fn peek_at(&self, ahead: usize) -> &Tok {
        &self.toks[(self.pos + ahead).min(self.toks.len() - 1)].tok
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Backtracks to a position from [`Cursor::pos`].
    pub fn reset(&mut self, pos: usize) {
        self.pos = pos;
    }

    pub fn bump(&mut self) -> Tok {
        let t = self.toks[self.pos].tok.clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    pub fn at_eof(&self) -> bool {
        *self.peek() == Tok::Eof
    }

    pub fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    pub fn eat_punct(&mut self, p: &str) -> bool {
        let hit = self.is_punct(p);
        if hit {
            self.bump();
        }
        hit
    }

    pub fn expect_punct(&mut self, p: &str) -> Result<(), ExprError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// Whether the next token is the (case-insensitive) keyword.
    pub fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    pub fn eat_keyword(&mut self, kw: &str) -> bool {
        let hit = self.is_keyword(kw);
        if hit {
            self.bump();
        }
        hit
    }

    /// A syntax error at the current token.
    pub fn error(&self) -> ExprError {
        self.error_at(self.pos)
    }

    /// `Syntax error; token: "<tok>", near: "<prev tok><tok><next tok>"`: DynamoDB quotes the
    /// offending token with its neighbours and the whitespace between them.
    pub fn error_at(&self, idx: usize) -> ExprError {
        let bad = &self.toks[idx];
        let start = if idx > 0 {
            self.toks[idx - 1].start
        } else {
            bad.start
        };
        let end = self.toks.get(idx + 1).map_or(bad.end, |t| t.end);
        let near = &self.src[start..end.max(start)];
        self.kind.error(format_args!(
            "Syntax error; token: \"{}\", near: \"{near}\"",
            bad.text(self.src)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_neighbours() {
        let mut c = Cursor::new("SET path = VALUE 1", ExprKind::Update).unwrap();
        for _ in 0..4 {
            c.bump();
        }
        assert_eq!(
            c.error().0,
            "Invalid UpdateExpression: Syntax error; token: \"1\", near: \"VALUE 1\""
        );
        let mut c = Cursor::new("foo", ExprKind::Condition).unwrap();
        c.bump();
        assert_eq!(
            c.error().0,
            "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"foo\""
        );
        let c = Cursor::new("a b  c d", ExprKind::Filter).unwrap();
        assert_eq!(
            c.error_at(2).0,
            "Invalid FilterExpression: Syntax error; token: \"c\", near: \"b  c d\""
        );
        assert_eq!(
            Cursor::new("", ExprKind::Projection).err().unwrap().0,
            "Invalid ProjectionExpression: The expression can not be empty;"
        );
        let long = "a".repeat(4097);
        assert!(Cursor::new(&long[..4096], ExprKind::Projection).is_ok());
        assert_eq!(
            Cursor::new(&long, ExprKind::Projection).err().unwrap().0,
            "Invalid ProjectionExpression: Expression size has exceeded the maximum allowed size;"
        );
        assert_eq!(
            Cursor::new(&long, ExprKind::Filter).err().unwrap().0,
            "Invalid FilterExpression: Expression size has exceeded the maximum allowed size; expression size: 4097"
        );
    }
}
