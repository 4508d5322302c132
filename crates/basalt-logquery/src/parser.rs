//! Query text to commands: the command level of the grammar, and the checks the service makes
//! across commands. Expressions are in `expr.rs`.

use std::collections::{HashSet, VecDeque};

use regex::{Regex, RegexBuilder};

use crate::ast::{Agg, Command, Expr, Item, ParseSpec, SortKey, Stats};
use crate::error::QueryError;
use crate::lexer::{Lexer, Tok, Token};

/// Deepest nesting of expressions accepted, so that hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 100;

/// Compiled-program budget for each regular expression in a query.
const REGEX_SIZE_LIMIT: usize = 1 << 21;

/// Words that cannot stand alone as a field name (they would be ambiguous); a field with such
/// a name can still be written in backticks.
const RESERVED: &[&str] = &["and", "or", "not", "like", "in", "as", "by"];

pub(crate) struct Parser<'s> {
    pub src: &'s str,
    lex: Lexer<'s>,
    buf: VecDeque<Token>,
    /// End of the last token taken, to cut an item's text out of the query.
    pub prev_end: usize,
    depth: usize,
    /// Aggregates met while parsing a `stats` item; `None` where aggregates are not allowed.
    pub aggs: Option<Vec<Agg>>,
    /// Inside a `stats` command, where an aggregate may still be misplaced (nested, or in
    /// `by`).
    pub in_stats: bool,
}

/// A command with the position of its keyword, for errors found after parsing.
struct Located {
    command: Command,
    keyword: Token,
}

pub(crate) fn parse(src: &str) -> Result<Vec<Command>, QueryError> {
    let mut p = Parser {
        src,
        lex: Lexer::new(src),
        buf: VecDeque::new(),
        prev_end: 0,
        depth: 0,
        aggs: None,
        in_stats: false,
    };
    let mut commands = Vec::new();
    loop {
        commands.push(p.command()?);
        let t = p.bump()?;
        match t.tok {
            Tok::Pipe => {}
            Tok::Eof => break,
            _ => return Err(p.unexpected(&t)),
        }
    }
    check(src, &commands)?;
    Ok(commands.into_iter().map(|c| c.command).collect())
}

/// Rules that span commands.
fn check(src: &str, commands: &[Located]) -> Result<(), QueryError> {
    // The dedup page: "The only query command that you can use in a query after the dedup
    // command is limit."
    if let Some(i) = commands
        .iter()
        .position(|c| matches!(c.command, Command::Dedup(_)))
        && let Some(bad) = commands[i + 1..]
            .iter()
            .find(|c| !matches!(c.command, Command::Limit(_)))
    {
        let k = &bad.keyword;
        return Err(QueryError::unexpected(
            src,
            src.get(k.start..k.end),
            k.start,
            k.end,
        ));
    }
    // The service refuses to define an extracted ("ephemeral") field twice, including naming
    // a field made by `parse` again in a later `fields`. Aggregation starts a new set of
    // fields, so `stats` forgets what came before.
    let mut defined: HashSet<&str> = HashSet::new();
    for c in commands {
        let (names, aliases): (Vec<&str>, Vec<bool>) = match &c.command {
            Command::Parse(spec) => spec.outputs.iter().map(|(_, n)| (n.as_str(), true)).unzip(),
            Command::Fields(items) => items
                .iter()
                .map(|i| {
                    let plain = matches!(&i.expr, Expr::Field(f) if *f == i.name);
                    (i.name.as_str(), !plain)
                })
                .unzip(),
            Command::Stats(_) => {
                defined.clear();
                continue;
            }
            _ => continue,
        };
        for (name, defines) in names.into_iter().zip(aliases) {
            if defined.contains(name) {
                let k = &c.keyword;
                return Err(QueryError::at(
                    format!("Ephemeral field is already defined: {name}"),
                    src,
                    k.start,
                    k.end,
                ));
            }
            if defines {
                defined.insert(name);
            }
        }
    }
    Ok(())
}

impl<'s> Parser<'s> {
    fn fill(&mut self, n: usize) -> Result<(), QueryError> {
        while self.buf.len() < n {
            let t = self.lex.next_token()?;
            self.buf.push_back(t);
        }
        Ok(())
    }

    pub fn peek(&mut self) -> Result<&Token, QueryError> {
        self.fill(1)?;
        Ok(&self.buf[0])
    }

    pub fn peek2(&mut self) -> Result<&Token, QueryError> {
        self.fill(2)?;
        Ok(&self.buf[1])
    }

    pub fn bump(&mut self) -> Result<Token, QueryError> {
        self.fill(1)?;
        let t = self
            .buf
            .pop_front()
            .ok_or_else(|| QueryError::new("internal"))?;
        self.prev_end = t.end;
        Ok(t)
    }

    pub fn unexpected(&self, t: &Token) -> QueryError {
        let text = match t.tok {
            Tok::Eof => None,
            _ => self.src.get(t.start..t.end),
        };
        QueryError::unexpected(self.src, text, t.start, t.end)
    }

    pub fn expect(&mut self, want: &Tok) -> Result<Token, QueryError> {
        let t = self.bump()?;
        if t.tok == *want {
            Ok(t)
        } else {
            Err(self.unexpected(&t))
        }
    }

    /// Takes the keyword `kw` if it is next.
    pub fn eat_word(&mut self, kw: &str) -> Result<bool, QueryError> {
        if self.peek()?.is_word(kw) {
            self.bump()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    pub fn enter(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let t = self.peek()?.clone();
            return Err(QueryError::at(
                "Query is too deeply nested",
                self.src,
                t.start,
                t.end,
            ));
        }
        Ok(())
    }

    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Whether `word` may be read as a bare field name.
    pub fn is_field_word(word: &str) -> bool {
        !RESERVED.iter().any(|r| word.eq_ignore_ascii_case(r))
    }

    /// A field name: a bare word or a backtick-quoted name.
    pub fn field_name(&mut self) -> Result<String, QueryError> {
        let t = self.bump()?;
        match t.tok {
            Tok::Word(w) if Self::is_field_word(&w) => Ok(w),
            Tok::Quoted(q) => Ok(q),
            _ => Err(self.unexpected(&t)),
        }
    }

    fn field_names(&mut self) -> Result<Vec<String>, QueryError> {
        let mut names = vec![self.field_name()?];
        while self.peek()?.tok == Tok::Comma {
            self.bump()?;
            names.push(self.field_name()?);
        }
        Ok(names)
    }

    /// The `/regex/` that must come next, compiled. The lexer took the `/` for division; the
    /// text is lexed again from there.
    pub fn regex(&mut self) -> Result<(Regex, usize, usize), QueryError> {
        let t = self.peek()?.clone();
        if t.tok != Tok::Slash {
            self.bump()?;
            return Err(self.unexpected(&t));
        }
        self.buf.clear();
        let r = self.lex.regex_at(t.start)?;
        self.prev_end = r.end;
        let Tok::Regex(text) = r.tok else {
            return Err(self.unexpected(&r));
        };
        let regex =
            compile_regex(&text).map_err(|e| QueryError::at(e, self.src, r.start, r.end))?;
        Ok((regex, r.start, r.end))
    }

    fn command(&mut self) -> Result<Located, QueryError> {
        let keyword = self.bump()?;
        let Tok::Word(word) = &keyword.tok else {
            return Err(self.unexpected(&keyword));
        };
        let command = match word.to_ascii_lowercase().as_str() {
            "fields" => Command::Fields(self.items()?),
            "display" => Command::Display(self.field_names()?),
            "filter" => Command::Filter(self.expr()?),
            "stats" => Command::Stats(self.stats()?),
            "sort" => Command::Sort(self.sort_keys()?),
            "limit" => Command::Limit(self.limit()?),
            "parse" => Command::Parse(self.parse_spec()?),
            "dedup" => Command::Dedup(self.field_names()?),
            _ => return Err(self.unexpected(&keyword)),
        };
        Ok(Located { command, keyword })
    }

    /// `expr [as alias]`. Without an alias a column is named after its text, as the service
    /// names `count(*)` or `abs(f3-f4)`.
    fn item(&mut self) -> Result<Item, QueryError> {
        let start = self.peek()?.start;
        let expr = self.expr()?;
        let end = self.prev_end;
        let name = if self.eat_word("as")? {
            self.field_name()?
        } else if let Expr::Field(f) = &expr {
            f.clone()
        } else {
            self.src
                .get(start..end)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        Ok(Item { expr, name })
    }

    fn items(&mut self) -> Result<Vec<Item>, QueryError> {
        let mut items = vec![self.item()?];
        while self.peek()?.tok == Tok::Comma {
            self.bump()?;
            items.push(self.item()?);
        }
        Ok(items)
    }

    fn stats(&mut self) -> Result<Stats, QueryError> {
        self.in_stats = true;
        let stats = self.stats_body();
        self.in_stats = false;
        stats
    }

    fn stats_body(&mut self) -> Result<Stats, QueryError> {
        self.aggs = Some(Vec::new());
        let mut items = Vec::new();
        loop {
            let start = self.peek()?.start;
            let before = self.aggs.as_ref().map_or(0, Vec::len);
            let item = self.item()?;
            if self.aggs.as_ref().map_or(0, Vec::len) == before {
                return Err(QueryError::at(
                    format!("stats needs an aggregate function: {}", item.name),
                    self.src,
                    start,
                    self.prev_end,
                ));
            }
            items.push(item);
            if self.peek()?.tok != Tok::Comma {
                break;
            }
            self.bump()?;
        }
        let aggs = self.aggs.take().unwrap_or_default();
        let by = if self.eat_word("by")? {
            self.items()?
        } else {
            Vec::new()
        };
        Ok(Stats { items, aggs, by })
    }

    /// `sort f1 [asc|desc], ...`. Only field names may be sorted on: the service answers
    /// `sort bin(1d) desc` with "unexpected symbol found (". Without a direction the order is
    /// descending.
    fn sort_keys(&mut self) -> Result<Vec<SortKey>, QueryError> {
        let mut keys = Vec::new();
        loop {
            let field = self.field_name()?;
            let descending = if self.eat_word("asc")? {
                false
            } else {
                self.eat_word("desc")?;
                true
            };
            keys.push(SortKey { field, descending });
            if self.peek()?.tok != Tok::Comma {
                return Ok(keys);
            }
            self.bump()?;
        }
    }

    fn limit(&mut self) -> Result<usize, QueryError> {
        let t = self.bump()?;
        match t.tok {
            Tok::Num(n) if n.fract() == 0.0 && n >= 0.0 =>
            {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(n.min(1e9) as usize)
            }
            _ => Err(self.unexpected(&t)),
        }
    }

    /// `parse [field] "glob" as a, b` or `parse [field] /regex/`; the field defaults to
    /// `@message`.
    fn parse_spec(&mut self) -> Result<ParseSpec, QueryError> {
        let source = match self.peek()?.tok {
            Tok::Str(_) | Tok::Slash => "@message".to_string(),
            _ => self.field_name()?,
        };
        let t = self.peek()?.clone();
        if let Tok::Str(glob) = t.tok {
            self.bump()?;
            let as_kw = self.bump()?;
            if !as_kw.is_word("as") {
                return Err(self.unexpected(&as_kw));
            }
            let names = self.field_names()?;
            let wildcards = glob.matches('*').count();
            if wildcards != names.len() {
                return Err(QueryError::at(
                    format!(
                        "parse pattern has {wildcards} wildcard(s) but {} field name(s)",
                        names.len()
                    ),
                    self.src,
                    t.start,
                    self.prev_end,
                ));
            }
            let regex = compile_regex(&glob_to_regex(&glob))
                .map_err(|e| QueryError::at(e, self.src, t.start, t.end))?;
            let outputs = names
                .into_iter()
                .enumerate()
                .map(|(i, n)| (i + 1, n))
                .collect();
            return Ok(ParseSpec {
                source,
                regex,
                outputs,
            });
        }
        let (regex, start, end) = self.regex()?;
        let outputs: Vec<(usize, String)> = regex
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i, n.to_string())))
            .collect();
        if outputs.is_empty() {
            return Err(QueryError::at(
                "parse with a regular expression needs at least one named capturing group (?<name>...)",
                self.src,
                start,
                end,
            ));
        }
        Ok(ParseSpec {
            source,
            regex,
            outputs,
        })
    }
}

pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(MAX_DEPTH as u32)
        .build()
        .map_err(|e| format!("Invalid regular expression: {}", last_line(&e.to_string())))
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim()
}

/// A glob matches anywhere in the field. Each `*` takes as little as it can, except a final
/// one, which takes the rest, so `"[*] *"` splits `"[ERROR] disk full"` into `ERROR` and
/// `disk full`.
fn glob_to_regex(glob: &str) -> String {
    let parts: Vec<&str> = glob.split('*').collect();
    let mut re = String::from("(?s)");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            let last = i == parts.len() - 1 && part.is_empty();
            re.push_str(if last { "(.*)" } else { "(.*?)" });
        }
        re.push_str(&regex::escape(part));
    }
    re
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
