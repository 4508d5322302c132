//! Tokeniser. A `/` starts a regex literal only where an operand may begin, which the parser
//! signals with `prefix` (as jsonata-js does).

use crate::error::JsonataError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Name(String),
    Variable(String),
    Operator(&'static str),
    Str(String),
    Number(f64),
    True,
    False,
    Null,
    Regex { pattern: String, flags: String },
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub position: usize,
}

const SINGLE: &[&str] = &[
    ".", "[", "]", "{", "}", "(", ")", ",", "@", "#", ";", ":", "?", "+", "-", "*", "/", "%", "|",
    "=", "<", ">", "^", "&", "!", "~",
];
const DOUBLE: &[&str] = &["..", ":=", "!=", ">=", "<=", "**", "~>", "?:", "??"];

fn is_operator_char(c: char) -> bool {
    let mut buf = [0u8; 4];
    SINGLE.contains(&&*c.encode_utf8(&mut buf))
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{0B}')
}

pub(crate) struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    pub fn new(src: &str) -> Self {
        Lexer {
            chars: src.chars().collect(),
            pos: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.chars.len()
    }

    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    pub fn next(&mut self, prefix: bool) -> Result<Option<Token>, JsonataError> {
        loop {
            while self.at(self.pos).is_some_and(is_space) {
                self.pos += 1;
            }
            if self.at(self.pos) == Some('/') && self.at(self.pos + 1) == Some('*') {
                let start = self.pos;
                self.pos += 2;
                loop {
                    if self.pos >= self.chars.len() {
                        return Err(JsonataError::new("S0106", Some(start)));
                    }
                    if self.at(self.pos) == Some('*') && self.at(self.pos + 1) == Some('/') {
                        self.pos += 2;
                        break;
                    }
                    self.pos += 1;
                }
                continue;
            }
            break;
        }
        let start = self.pos;
        let Some(c) = self.at(self.pos) else {
            return Ok(None);
        };
        let token = |tok| {
            Ok(Some(Token {
                tok,
                position: start,
            }))
        };
        if !prefix && c == '/' {
            self.pos += 1;
            return self.regex(start);
        }
        if let Some(n) = self.at(self.pos + 1) {
            let pair: String = [c, n].iter().collect();
            if let Some(op) = DOUBLE.iter().find(|op| **op == pair) {
                self.pos += 2;
                return token(Tok::Operator(op));
            }
        }
        if is_operator_char(c) {
            self.pos += 1;
            let mut buf = [0u8; 4];
            let s = c.encode_utf8(&mut buf);
            let op = SINGLE.iter().find(|op| **op == s).copied().unwrap_or(".");
            return token(Tok::Operator(op));
        }
        if c == '"' || c == '\'' {
            self.pos += 1;
            return self.string(c, start);
        }
        if (c.is_ascii_digit()
            || (c == '-' && self.at(self.pos + 1).is_some_and(|d| d.is_ascii_digit())))
            && let Some(tok) = self.number(start)?
        {
            return Ok(Some(tok));
        }
        if c == '`' {
            self.pos += 1;
            let rest = &self.chars[self.pos..];
            if let Some(end) = rest.iter().position(|&ch| ch == '`') {
                let name: String = rest[..end].iter().collect();
                self.pos += end + 1;
                return token(Tok::Name(name));
            }
            self.pos = self.chars.len();
            return Err(JsonataError::new("S0105", Some(self.pos)));
        }
        let mut i = self.pos;
        while i < self.chars.len() && !is_space(self.chars[i]) && !is_operator_char(self.chars[i]) {
            i += 1;
        }
        let word: String = self.chars[self.pos..i].iter().collect();
        self.pos = i;
        if let Some(var) = word.strip_prefix('$') {
            return token(Tok::Variable(var.to_string()));
        }
        match word.as_str() {
            "or" => token(Tok::Operator("or")),
            "in" => token(Tok::Operator("in")),
            "and" => token(Tok::Operator("and")),
            "true" => token(Tok::True),
            "false" => token(Tok::False),
            "null" => token(Tok::Null),
            "" => Ok(None),
            _ => token(Tok::Name(word)),
        }
    }

    fn number(&mut self, start: usize) -> Result<Option<Token>, JsonataError> {
        // -?(0|[1-9][0-9]*)(\.[0-9]+)?([Ee][-+]?[0-9]+)?
        let mut i = self.pos;
        let digits = |i: &mut usize, chars: &[char]| {
            let s = *i;
            while chars.get(*i).is_some_and(|c| c.is_ascii_digit()) {
                *i += 1;
            }
            *i > s
        };
        if self.at(i) == Some('-') {
            i += 1;
        }
        if self.at(i) == Some('0') {
            i += 1;
        } else if !digits(&mut i, &self.chars) {
            return Ok(None);
        }
        if self.at(i) == Some('.') && self.at(i + 1).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
            digits(&mut i, &self.chars);
        }
        if matches!(self.at(i), Some('e' | 'E')) {
            let mut j = i + 1;
            if matches!(self.at(j), Some('+' | '-')) {
                j += 1;
            }
            if digits(&mut j, &self.chars) {
                i = j;
            }
        }
        let text: String = self.chars[self.pos..i].iter().collect();
        let n: f64 = text.parse().unwrap_or(f64::NAN);
        if !n.is_finite() {
            return Err(JsonataError::token("S0102", Some(start), &text));
        }
        self.pos = i;
        Ok(Some(Token {
            tok: Tok::Number(n),
            position: start,
        }))
    }

    fn string(&mut self, quote: char, start: usize) -> Result<Option<Token>, JsonataError> {
        let mut out = String::new();
        while let Some(c) = self.at(self.pos) {
            if c == '\\' {
                self.pos += 1;
                let e = self.at(self.pos).unwrap_or('\0');
                match e {
                    '"' | '\\' | '/' => out.push(e),
                    '\'' if false => out.push(e),
                    'b' => out.push('\u{08}'),
                    'f' => out.push('\u{0C}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => {
                        let hex: String = self
                            .chars
                            .get(self.pos + 1..self.pos + 5)
                            .unwrap_or(&[])
                            .iter()
                            .collect();
                        let code = (hex.len() == 4)
                            .then(|| u32::from_str_radix(&hex, 16).ok())
                            .flatten();
                        let Some(mut code) = code else {
                            return Err(JsonataError::new("S0104", Some(self.pos)));
                        };
                        self.pos += 4;
                        // A surrogate pair spelled as two escapes joins into one character.
                        if (0xD800..0xDC00).contains(&code)
                            && self.at(self.pos + 1) == Some('\\')
                            && self.at(self.pos + 2) == Some('u')
                        {
                            let low: String = self
                                .chars
                                .get(self.pos + 3..self.pos + 7)
                                .unwrap_or(&[])
                                .iter()
                                .collect();
                            if let Ok(low) = u32::from_str_radix(&low, 16)
                                && (0xDC00..0xE000).contains(&low)
                            {
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                                self.pos += 6;
                            }
                        }
                        out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                    }
                    other => {
                        return Err(JsonataError::token(
                            "S0103",
                            Some(self.pos),
                            &other.to_string(),
                        ));
                    }
                }
            } else if c == quote {
                self.pos += 1;
                return Ok(Some(Token {
                    tok: Tok::Str(out),
                    position: start,
                }));
            } else {
                out.push(c);
            }
            self.pos += 1;
        }
        Err(JsonataError::new("S0101", Some(self.pos)))
    }

    fn regex(&mut self, start: usize) -> Result<Option<Token>, JsonataError> {
        let begin = self.pos;
        let mut depth = 0i32;
        loop {
            let Some(c) = self.at(self.pos) else {
                return Err(JsonataError::new("S0302", Some(self.pos)));
            };
            if c == '/' && depth == 0 && !self.escaped(self.pos) {
                let pattern: String = self.chars[begin..self.pos].iter().collect();
                if pattern.is_empty() {
                    return Err(JsonataError::new("S0301", Some(self.pos)));
                }
                self.pos += 1;
                let mut flags = String::new();
                while let Some(f @ ('i' | 'm')) = self.at(self.pos) {
                    flags.push(f);
                    self.pos += 1;
                }
                return Ok(Some(Token {
                    tok: Tok::Regex { pattern, flags },
                    position: start,
                }));
            }
            if matches!(c, '(' | '[' | '{') && !self.escaped(self.pos) {
                depth += 1;
            }
            if matches!(c, ')' | ']' | '}') && !self.escaped(self.pos) {
                depth -= 1;
            }
            self.pos += 1;
        }
    }

    fn escaped(&self, at: usize) -> bool {
        let mut backslashes = 0;
        let mut i = at;
        while i > 0 && self.chars[i - 1] == '\\' {
            backslashes += 1;
            i -= 1;
        }
        backslashes % 2 == 1
    }
}
