//! Tokens of a PartiQL statement, each with the place DynamoDB's messages point at
//! (`line:column:length`, counted in characters from 1).

use crate::error::PartiqlError;

/// One lexeme.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare word: a keyword or an identifier, as written (case kept).
    Word(String),
    /// `"..."`: always an identifier, case-sensitive, never a keyword.
    Quoted(String),
    /// `'...'`: a string literal (with `''` read as one quote).
    Str(String),
    /// A number literal as written (`1`, `-` is a separate token, `.5`, `7.31E+6`).
    Num(String),
    /// `?`: the next positional parameter.
    Param,
    /// Punctuation and operators: `( ) [ ] { } , . : ; = <> != < <= > >= + - * << >>`.
    Punct(&'static str),
    Eof,
}

/// A lexeme and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
    pub col: u32,
    pub len: u32,
}

impl Token {
    /// `line:column:length`, the suffix DynamoDB puts after `at`.
    pub fn at(&self) -> String {
        format!("{}:{}:{}", self.line, self.col, self.len)
    }

    /// The bare word in upper case, when this is one (keywords are case-insensitive).
    pub fn keyword(&self) -> Option<String> {
        match &self.tok {
            Tok::Word(w) => Some(w.to_ascii_uppercase()),
            _ => None,
        }
    }

    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    pub fn is_punct(&self, p: &str) -> bool {
        matches!(&self.tok, Tok::Punct(q) if *q == p)
    }
}

/// Operators, longest first so that `<<` wins over `<` and `<>` over `<`.
const PUNCTS: &[&str] = &[
    "<<", ">>", "<>", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",", ".", ":", ";", "=", "<",
    ">", "+", "-", "*", "?",
];

/// Splits `src` into tokens, ending with [`Tok::Eof`]. What DynamoDB cannot read at all
/// (a `#` comment, an unterminated comment or quote, a stray character) gets the bare
/// "wasn't well formed" message with nothing after the colon, as DynamoDB sends it.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, PartiqlError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0usize;
    let (mut line, mut col) = (1u32, 1u32);
    // Advances over chars[i..j], keeping line and column right across newlines.
    let advance = |i: &mut usize, j: usize, line: &mut u32, col: &mut u32| {
        for &c in &chars[*i..j] {
            if c == '\n' {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
        }
        *i = j;
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            let next = i + 1;
            advance(&mut i, next, &mut line, &mut col);
            continue;
        }
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            let mut j = i;
            while j < chars.len() && chars[j] != '\n' {
                j += 1;
            }
            advance(&mut i, j, &mut line, &mut col);
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            let mut j = i + 2;
            loop {
                if j + 1 >= chars.len() {
                    return Err(PartiqlError::malformed(""));
                }
                if chars[j] == '*' && chars[j + 1] == '/' {
                    break;
                }
                j += 1;
            }
            advance(&mut i, j + 2, &mut line, &mut col);
            continue;
        }
        let (start_line, start_col, start) = (line, col, i);
        let tok = if c == '\'' || c == '"' {
            let mut text = String::new();
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => return Err(PartiqlError::malformed("")),
                    Some(&q) if q == c => {
                        if chars.get(j + 1) == Some(&c) {
                            text.push(c);
                            j += 2;
                        } else {
                            j += 1;
                            break;
                        }
                    }
                    Some(&other) => {
                        text.push(other);
                        j += 1;
                    }
                }
            }
            advance(&mut i, j, &mut line, &mut col);
            if c == '\'' {
                Tok::Str(text)
            } else {
                Tok::Quoted(text)
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let j = scan_number(&chars, i);
            let text: String = chars[i..j].iter().collect();
            advance(&mut i, j, &mut line, &mut col);
            Tok::Num(text)
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let mut j = i + 1;
            while j < chars.len()
                && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '$')
            {
                j += 1;
            }
            let text: String = chars[i..j].iter().collect();
            advance(&mut i, j, &mut line, &mut col);
            Tok::Word(text)
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) else {
                return Err(PartiqlError::malformed(""));
            };
            let next = i + p.chars().count();
            advance(&mut i, next, &mut line, &mut col);
            if *p == "?" { Tok::Param } else { Tok::Punct(p) }
        };
        let len = u32::try_from(i - start).unwrap_or(u32::MAX);
        out.push(Token {
            tok,
            line: start_line,
            col: start_col,
            len,
        });
    }
    out.push(Token {
        tok: Tok::Eof,
        line,
        col,
        len: 0,
    });
    Ok(out)
}

/// The end of a number literal starting at `i`: digits, an optional fraction and an optional
/// exponent (`e`, an optional sign, digits). An `e` not followed by digits is left alone, so
/// `1 e5` and `1e` read as a number and a word, as DynamoDB reads them.
fn scan_number(chars: &[char], i: usize) -> usize {
    let digits = |mut j: usize| {
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let mut j = digits(i);
    if j < chars.len() && chars[j] == '.' {
        j = digits(j + 1);
    }
    if j < chars.len() && (chars[j] == 'e' || chars[j] == 'E') {
        let mut k = j + 1;
        if k < chars.len() && (chars[k] == '+' || chars[k] == '-') {
            k += 1;
        }
        if k < chars.len() && chars[k].is_ascii_digit() {
            j = digits(k);
        }
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn words_strings_numbers_and_operators() {
        assert_eq!(
            toks("SELECT * FROM \"T\" WHERE a<>'it''s' AND b>=.5e1"),
            vec![
                Tok::Word("SELECT".into()),
                Tok::Punct("*"),
                Tok::Word("FROM".into()),
                Tok::Quoted("T".into()),
                Tok::Word("WHERE".into()),
                Tok::Word("a".into()),
                Tok::Punct("<>"),
                Tok::Str("it's".into()),
                Tok::Word("AND".into()),
                Tok::Word("b".into()),
                Tok::Punct(">="),
                Tok::Num(".5e1".into()),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn bags_after_equals_split_into_two_operators() {
        assert_eq!(
            toks("s=<<1>>"),
            vec![
                Tok::Word("s".into()),
                Tok::Punct("="),
                Tok::Punct("<<"),
                Tok::Num("1".into()),
                Tok::Punct(">>"),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn comments_are_whitespace_and_positions_count_lines() {
        let t = lex("-- note\nSELECT /* x */ a").unwrap();
        assert_eq!(t[0].at(), "2:1:6");
        assert_eq!(t[1].at(), "2:16:1");
    }

    #[test]
    fn an_exponent_needs_digits() {
        assert_eq!(
            toks("1 e5 1e"),
            vec![
                Tok::Num("1".into()),
                Tok::Word("e5".into()),
                Tok::Num("1".into()),
                Tok::Word("e".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn unreadable_input_is_not_well_formed_with_nothing_after_the_colon() {
        for src in ["a # b", "a /* b", "'abc", "\"abc", "a ` b"] {
            assert_eq!(
                lex(src).unwrap_err().0,
                "Statement wasn't well formed, can't be processed: ",
                "{src}"
            );
        }
    }
}
