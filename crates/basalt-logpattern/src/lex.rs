//! Tokens of the inside of `{ … }` and `[ … ]` patterns, which share operators, quoting and
//! the unquoted-value alphabet.

use crate::PatternError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// `<`, `<=`, `>`, `>=`: the syntax page gives these numbers only.
    pub(crate) fn is_relational(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    LParen,
    RParen,
    And,
    Or,
    Comma,
    Op(CmpOp),
    /// An unquoted run of [`is_word_char`]: names, keywords, numbers, `*` wildcards, `...`.
    Word(String),
    /// A `"…"` string with its escapes resolved.
    Quoted(String),
    /// The text between a pair of `%`.
    Regex(String),
    /// A raw JSON property selector starting with `$` (JSON mode only).
    Selector(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Json,
    Delimited,
}

/// Characters allowed in unquoted values and names. The syntax page asks for double quotes
/// around strings with "types other than alphanumeric characters and the underscore"; `.`, `*`,
/// `+` and `-` are let through because its own unquoted examples use them (`123.123.*`,
/// `4*`, `*.html*`, `+1000`, `10e-3`, `...`).
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*' | '+' | '-')
}

/// Reads a `"…"` string whose opening quote is at `chars[start]`; returns the unescaped text
/// and the index just past the closing quote. Only `\"` and `\\` are escapes (what the AWS CDK
/// emits when it quotes a term); any other backslash stays as written, so Windows paths and
/// regex-like text survive.
pub(crate) fn read_quoted(chars: &[char], start: usize) -> Result<(String, usize), PatternError> {
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((out, i + 1)),
            '\\' if matches!(chars.get(i + 1), Some('"' | '\\')) => {
                out.push(chars[i + 1]);
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err(PatternError::invalid("unterminated quoted string"))
}

pub(crate) fn tokenize(src: &str, mode: Mode) -> Result<Vec<Token>, PatternError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let (tok, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (Token::LParen, 1),
            ')' => (Token::RParen, 1),
            ',' if mode == Mode::Delimited => (Token::Comma, 1),
            '&' if next == Some('&') => (Token::And, 2),
            '|' if next == Some('|') => (Token::Or, 2),
            '=' => (Token::Op(CmpOp::Eq), 1),
            '!' if next == Some('=') => (Token::Op(CmpOp::Ne), 2),
            '<' if next == Some('=') => (Token::Op(CmpOp::Le), 2),
            '<' => (Token::Op(CmpOp::Lt), 1),
            '>' if next == Some('=') => (Token::Op(CmpOp::Ge), 2),
            '>' => (Token::Op(CmpOp::Gt), 1),
            '"' => {
                let (text, end) = read_quoted(&chars, i)?;
                out.push(Token::Quoted(text));
                i = end;
                continue;
            }
            '%' => {
                // `%` is not in the regex alphabet, so the next one always closes.
                let close = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '%')
                    .ok_or(PatternError::invalid("unterminated regular expression"))?;
                let text: String = chars[i + 1..i + 1 + close].iter().collect();
                out.push(Token::Regex(text));
                i += close + 2;
                continue;
            }
            '$' if mode == Mode::Json => {
                let end = selector_end(&chars, i);
                out.push(Token::Selector(chars[i..end].iter().collect()));
                i = end;
                continue;
            }
            c if is_word_char(c) => {
                let len = chars[i..].iter().take_while(|&&c| is_word_char(c)).count();
                out.push(Token::Word(chars[i..i + len].iter().collect()));
                i += len;
                continue;
            }
            other => return Err(PatternError::InvalidCharacters(other.to_string())),
        };
        out.push(tok);
        i += len;
    }
    Ok(out)
}

/// A selector runs to the first space or operator outside its brackets; brackets may hold
/// quoted keys such as `['cluster.name']`, which can contain anything.
fn selector_end(chars: &[char], start: usize) -> usize {
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '[' => {
                i += 1;
                let mut quote: Option<char> = None;
                while i < chars.len() {
                    let c = chars[i];
                    i += 1;
                    match quote {
                        Some(q) if c == q => quote = None,
                        Some(_) => {}
                        None if c == '\'' || c == '"' => quote = Some(c),
                        None if c == ']' => break,
                        None => {}
                    }
                }
            }
            c if c.is_whitespace() || "=!<>&|()".contains(c) => break,
            _ => i += 1,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str, mode: Mode) -> Vec<Token> {
        tokenize(s, mode).unwrap()
    }

    #[test]
    fn operators_need_no_spaces() {
        use Token::*;
        assert_eq!(
            toks("$.a!=b&&$.c>=-1.5||($.d<2)", Mode::Json),
            vec![
                Selector("$.a".into()),
                Op(CmpOp::Ne),
                Word("b".into()),
                And,
                Selector("$.c".into()),
                Op(CmpOp::Ge),
                Word("-1.5".into()),
                Or,
                LParen,
                Selector("$.d".into()),
                Op(CmpOp::Lt),
                Word("2".into()),
                RParen,
            ]
        );
    }

    #[test]
    fn selectors_keep_bracketed_keys_whole() {
        assert_eq!(
            toks("$.['a = b'].c[*] = 1", Mode::Json)[0],
            Token::Selector("$.['a = b'].c[*]".into())
        );
    }

    #[test]
    fn quoted_strings_and_regexes() {
        assert_eq!(
            toks(r#""a \"b\" \\ \d" %x,y%"#, Mode::Delimited),
            vec![
                Token::Quoted(r#"a "b" \ \d"#.into()),
                Token::Regex("x,y".into())
            ]
        );
        assert!(tokenize("\"open", Mode::Json).is_err());
        assert!(tokenize("%open", Mode::Json).is_err());
    }

    #[test]
    fn commas_and_dollars_depend_on_mode() {
        assert_eq!(
            tokenize("a, b", Mode::Json),
            Err(PatternError::InvalidCharacters(",".into()))
        );
        assert_eq!(
            tokenize("$x", Mode::Delimited),
            Err(PatternError::InvalidCharacters("$".into()))
        );
    }

    #[test]
    fn lone_symbols_are_invalid_characters() {
        for (s, bad) in [
            ("a & b", "&"),
            ("a | b", "|"),
            ("!a", "!"),
            ("a/b", "/"),
            ("é", "é"),
        ] {
            assert_eq!(
                tokenize(s, Mode::Delimited),
                Err(PatternError::InvalidCharacters(bad.into())),
                "{s}"
            );
        }
    }
}
