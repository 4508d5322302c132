//! Pratt (top-down operator precedence) parser producing the raw tree; `process` then flattens
//! paths. Binding powers and the token rules mirror jsonata-js so precedence matches exactly.

use crate::ast::{Kind, Node, SortTerm};
use crate::error::{Inserts, JsonataError};
use crate::lexer::{Lexer, Tok, Token};
use std::sync::Arc;

fn lbp(id: &str) -> u32 {
    match id {
        "." => 75,
        "[" | "(" | "@" | "#" => 80,
        "{" => 70,
        "?" => 20,
        "+" | "-" => 50,
        "*" | "/" | "%" => 60,
        "=" | "<" | ">" | "^" | "!=" | "<=" | ">=" | "~>" | "?:" | "??" | "in" => 40,
        "&" => 50,
        ":=" => 10,
        "and" => 30,
        "or" => 25,
        _ => 0,
    }
}

struct Cur {
    id: &'static str,
    tok: Option<Tok>,
    position: usize,
}

pub(crate) struct Parser {
    lexer: Lexer,
    cur: Cur,
    source_len: usize,
}

const MAX_DEPTH: usize = 400;

pub(crate) fn parse(src: &str) -> Result<Node, JsonataError> {
    let lexer = Lexer::new(src);
    let source_len = lexer.len();
    let mut p = Parser {
        lexer,
        cur: Cur {
            id: "(end)",
            tok: None,
            position: 0,
        },
        source_len,
    };
    p.advance(None, false)?;
    let expr = p.expression(0, 0)?;
    if p.cur.id != "(end)" {
        return Err(JsonataError::token(
            "S0201",
            Some(p.cur.position),
            &p.cur_value(),
        ));
    }
    Ok(expr)
}

impl Parser {
    fn cur_value(&self) -> String {
        match &self.cur.tok {
            Some(Tok::Name(s)) | Some(Tok::Variable(s)) | Some(Tok::Str(s)) => s.clone(),
            Some(Tok::Number(n)) => crate::value::js_number_string(*n),
            Some(Tok::Operator(op)) => op.to_string(),
            Some(Tok::True) => "true".into(),
            Some(Tok::False) => "false".into(),
            Some(Tok::Null) => "null".into(),
            Some(Tok::Regex { pattern, .. }) => pattern.clone(),
            None => "(end)".into(),
        }
    }

    fn advance(&mut self, expect: Option<&str>, infix: bool) -> Result<(), JsonataError> {
        if let Some(id) = expect
            && self.cur.id != id
        {
            let code = if self.cur.id == "(end)" {
                "S0203"
            } else {
                "S0202"
            };
            let inserts = Inserts {
                token: Some(self.cur_value()),
                value: Some(serde_json::Value::String(id.to_string()).to_string()),
                ..Inserts::default()
            };
            return Err(JsonataError::with(code, Some(self.cur.position), inserts));
        }
        match self.lexer.next(infix)? {
            None => {
                self.cur = Cur {
                    id: "(end)",
                    tok: None,
                    position: self.source_len,
                };
            }
            Some(Token { tok, position }) => {
                let id = match &tok {
                    Tok::Name(_) | Tok::Variable(_) => "(name)",
                    Tok::Operator(op) => {
                        if matches!(*op, "!" | "~") {
                            return Err(JsonataError::token("S0204", Some(position), op));
                        }
                        op
                    }
                    Tok::Regex { .. } => "(regex)",
                    _ => "(literal)",
                };
                self.cur = Cur {
                    id,
                    tok: Some(tok),
                    position,
                };
            }
        }
        Ok(())
    }

    fn expression(&mut self, rbp: u32, depth: usize) -> Result<Node, JsonataError> {
        if depth > MAX_DEPTH {
            return Err(JsonataError::new("S0201", Some(self.cur.position)));
        }
        let t = std::mem::replace(
            &mut self.cur,
            Cur {
                id: "(end)",
                tok: None,
                position: 0,
            },
        );
        self.advance(None, true)?;
        let mut left = self.nud(t, depth + 1)?;
        while rbp < lbp(self.cur.id) {
            let t = std::mem::replace(
                &mut self.cur,
                Cur {
                    id: "(end)",
                    tok: None,
                    position: 0,
                },
            );
            self.advance(None, false)?;
            left = self.led(t, left, depth + 1)?;
        }
        Ok(left)
    }

    fn nud(&mut self, t: Cur, depth: usize) -> Result<Node, JsonataError> {
        let pos = t.position;
        let Some(tok) = t.tok else {
            return Err(JsonataError::new("S0207", Some(pos)));
        };
        let kind = match tok {
            Tok::Name(n) => Kind::Name(n),
            Tok::Variable(v) => Kind::Variable(v),
            Tok::Str(s) => Kind::Str(s),
            Tok::Number(n) => Kind::Number(n),
            Tok::True => Kind::Bool(true),
            Tok::False => Kind::Bool(false),
            Tok::Null => Kind::Null,
            Tok::Regex { pattern, flags } => Kind::Regex(Arc::new(
                crate::functions::regex::compile(&pattern, &flags, pos)?,
            )),
            Tok::Operator(op) => match op {
                "and" | "or" | "in" => Kind::Name(op.to_string()),
                "-" => Kind::Negate(Box::new(self.expression(70, depth)?)),
                "*" => Kind::Wildcard,
                "**" => Kind::Descendant,
                "%" => Kind::Parent(None),
                "(" => {
                    let mut exprs = Vec::new();
                    while self.cur.id != ")" {
                        exprs.push(self.expression(0, depth)?);
                        if self.cur.id != ";" {
                            break;
                        }
                        self.advance(Some(";"), false)?;
                    }
                    self.advance(Some(")"), true)?;
                    Kind::Block(exprs)
                }
                "[" => {
                    let mut items = Vec::new();
                    if self.cur.id != "]" {
                        loop {
                            let mut item = self.expression(0, depth)?;
                            if self.cur.id == ".." {
                                let rpos = self.cur.position;
                                self.advance(Some(".."), false)?;
                                let rhs = self.expression(0, depth)?;
                                item = Node::new(
                                    Kind::Binary("..", Box::new(item), Box::new(rhs)),
                                    rpos,
                                );
                            }
                            items.push(item);
                            if self.cur.id != "," {
                                break;
                            }
                            self.advance(Some(","), false)?;
                        }
                    }
                    self.advance(Some("]"), true)?;
                    Kind::ArrayCons(items)
                }
                "{" => Kind::ObjectCons(self.object_pairs(depth)?),
                "|" => {
                    let pattern = self.expression(0, depth)?;
                    self.advance(Some("|"), false)?;
                    let update = self.expression(0, depth)?;
                    let mut delete: Option<Arc<Node>> = None;
                    if self.cur.id == "," {
                        self.advance(Some(","), false)?;
                        delete = Some(Arc::new(self.expression(0, depth)?));
                    }
                    self.advance(Some("|"), false)?;
                    Kind::Transform {
                        pattern: Arc::new(pattern),
                        update: Arc::new(update),
                        delete,
                    }
                }
                other => return Err(JsonataError::token("S0211", Some(pos), other)),
            },
        };
        Ok(Node::new(kind, pos))
    }

    fn object_pairs(&mut self, depth: usize) -> Result<Vec<(Node, Node)>, JsonataError> {
        let mut pairs = Vec::new();
        if self.cur.id != "}" {
            loop {
                let k = self.expression(0, depth)?;
                self.advance(Some(":"), false)?;
                let v = self.expression(0, depth)?;
                pairs.push((k, v));
                if self.cur.id != "," {
                    break;
                }
                self.advance(Some(","), false)?;
            }
        }
        self.advance(Some("}"), true)?;
        Ok(pairs)
    }

    fn led(&mut self, t: Cur, left: Node, depth: usize) -> Result<Node, JsonataError> {
        let pos = t.position;
        let op = t.id;
        let kind = match op {
            "??" => {
                let rhs = self.expression(0, depth)?;
                let exists = Node::new(Kind::Variable("exists".into()), pos);
                let cond = Node::new(
                    Kind::Call {
                        procedure: Box::new(exists),
                        args: vec![left.clone()],
                        partial: false,
                    },
                    pos,
                );
                Kind::Condition(Box::new(cond), Box::new(left), Some(Box::new(rhs)))
            }
            "?:" => {
                let rhs = self.expression(0, depth)?;
                Kind::Condition(Box::new(left.clone()), Box::new(left), Some(Box::new(rhs)))
            }
            "?" => {
                let then = self.expression(0, depth)?;
                let mut otherwise = None;
                if self.cur.id == ":" {
                    self.advance(Some(":"), false)?;
                    otherwise = Some(Box::new(self.expression(0, depth)?));
                }
                Kind::Condition(Box::new(left), Box::new(then), otherwise)
            }
            "(" => return self.call(left, pos, depth),
            "[" => {
                if self.cur.id == "]" {
                    // `expr[]`: keep singleton arrays on the step this applies to.
                    let mut left = left;
                    mark_keep_array(&mut left);
                    self.advance(Some("]"), false)?;
                    return Ok(left);
                }
                let rhs = self.expression(0, depth)?;
                self.advance(Some("]"), true)?;
                Kind::Filter(Box::new(left), Box::new(rhs))
            }
            "^" => {
                self.advance(Some("("), false)?;
                let mut terms = Vec::new();
                loop {
                    let mut descending = false;
                    if self.cur.id == "<" {
                        self.advance(Some("<"), false)?;
                    } else if self.cur.id == ">" {
                        descending = true;
                        self.advance(Some(">"), false)?;
                    }
                    let expression = self.expression(0, depth)?;
                    terms.push(SortTerm {
                        descending,
                        expression,
                    });
                    if self.cur.id != "," {
                        break;
                    }
                    self.advance(Some(","), false)?;
                }
                self.advance(Some(")"), false)?;
                Kind::OrderBy(Box::new(left), terms)
            }
            "{" => Kind::GroupBy(Box::new(left), self.object_pairs(depth)?),
            ":=" => {
                let Kind::Variable(name) = &left.kind else {
                    return Err(JsonataError::token(
                        "S0212",
                        Some(left.position),
                        &token_text(&left),
                    ));
                };
                let rhs = self.expression(lbp(":=") - 1, depth)?;
                Kind::Bind(name.clone(), Box::new(rhs))
            }
            "@" | "#" => {
                let rhs = self.expression(80, depth)?;
                let Kind::Variable(name) = rhs.kind else {
                    return Err(JsonataError::token("S0214", Some(rhs.position), op));
                };
                if op == "@" {
                    Kind::Focus(Box::new(left), name)
                } else {
                    Kind::IndexBind(Box::new(left), name)
                }
            }
            "~>" => {
                let rhs = self.expression(40, depth)?;
                Kind::Apply(Box::new(left), Box::new(rhs))
            }
            "." | "+" | "-" | "*" | "/" | "%" | "=" | "<" | ">" | "!=" | "<=" | ">=" | "&"
            | "and" | "or" | "in" => {
                let rhs = self.expression(lbp(op), depth)?;
                Kind::Binary(op, Box::new(left), Box::new(rhs))
            }
            other => return Err(JsonataError::token("S0201", Some(pos), other)),
        };
        Ok(Node::new(kind, pos))
    }

    fn call(&mut self, procedure: Node, pos: usize, depth: usize) -> Result<Node, JsonataError> {
        let mut args = Vec::new();
        let mut partial = false;
        if self.cur.id != ")" {
            loop {
                if self.cur.id == "?" {
                    partial = true;
                    args.push(Node::new(Kind::Placeholder, self.cur.position));
                    self.advance(Some("?"), false)?;
                } else {
                    args.push(self.expression(0, depth)?);
                }
                if self.cur.id != "," {
                    break;
                }
                self.advance(Some(","), false)?;
            }
        }
        self.advance(Some(")"), true)?;
        let is_lambda =
            matches!(&procedure.kind, Kind::Name(n) if n == "function" || n == "\u{3BB}");
        if !is_lambda {
            return Ok(Node::new(
                Kind::Call {
                    procedure: Box::new(procedure),
                    args,
                    partial,
                },
                pos,
            ));
        }
        let mut params = Vec::new();
        for (i, arg) in args.iter().enumerate() {
            match &arg.kind {
                Kind::Variable(v) => params.push(v.clone()),
                _ => {
                    let inserts = Inserts {
                        token: Some(token_text(arg)),
                        value: Some((i + 1).to_string()),
                        ..Inserts::default()
                    };
                    return Err(JsonataError::with("S0208", Some(arg.position), inserts));
                }
            }
        }
        let mut signature = None;
        if self.cur.id == "<" {
            let sig_pos = self.cur.position;
            let mut nesting = 1;
            let mut text = String::from("<");
            while nesting > 0 && self.cur.id != "{" && self.cur.id != "(end)" {
                self.advance(None, false)?;
                if self.cur.id == ">" {
                    nesting -= 1;
                } else if self.cur.id == "<" {
                    nesting += 1;
                }
                text.push_str(&self.cur_value());
            }
            self.advance(Some(">"), false)?;
            signature = Some(Arc::new(
                crate::signature::Signature::parse(&text).map_err(|e| e.at(sig_pos))?,
            ));
        }
        self.advance(Some("{"), false)?;
        let body = self.expression(0, depth)?;
        self.advance(Some("}"), false)?;
        Ok(Node::new(
            Kind::Lambda {
                params,
                signature,
                body: Arc::new(body),
                thunk: false,
            },
            pos,
        ))
    }
}

fn token_text(node: &Node) -> String {
    match &node.kind {
        Kind::Name(s) | Kind::Variable(s) | Kind::Str(s) => s.clone(),
        Kind::Number(n) => crate::value::js_number_string(*n),
        _ => node.kind_name().to_string(),
    }
}

fn mark_keep_array(node: &mut Node) {
    let mut step = node;
    while let Kind::Filter(lhs, _) = &mut step.kind {
        step = lhs;
    }
    step.keep_array = true;
}
