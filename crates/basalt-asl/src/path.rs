//! Reference paths and JSONPath as Step Functions accepts them (Jayway-style): `$.a.b`,
//! `$['a']`, `$.a[0]`, `$.a[*].b`, `$..x`, unions `[0,2]`, slices `[1:3]`, filters
//! `[?(@.x > 1)]`; `$$` for the context object and `$name` for a variable (Assign).

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub enum Root {
    Input,
    Context,
    Var(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Child(String),
    Index(i64),
    Wildcard,
    /// `..name` or `..*`
    Descend(Option<String>),
    Union(Vec<Sel>),
    Slice(Option<i64>, Option<i64>, i64),
    Filter(Expr),
}

#[derive(Clone, Debug, PartialEq)]
enum Sel {
    Name(String),
    Index(i64),
}

#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(Box<Expr>, &'static str, Box<Expr>),
    /// `@` followed by child/index segments.
    Current(Vec<Seg>),
    Lit(Value),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    pub root: Root,
    segs: Vec<Seg>,
    /// The path as written, for error messages.
    pub text: String,
}

impl Path {
    pub fn parse(text: &str) -> Result<Path, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
            text,
        };
        let path = p.path()?;
        if p.i != p.s.len() {
            return Err(format!("unexpected '{}' at {}", &text[p.i..], p.i));
        }
        Ok(path)
    }

    /// A definite path names at most one node (a Reference Path in the spec).
    pub fn is_definite(&self) -> bool {
        self.segs
            .iter()
            .all(|s| matches!(s, Seg::Child(_) | Seg::Index(_)))
    }

    /// Every node the path selects, in document order.
    pub fn select<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut cur = vec![root];
        for seg in &self.segs {
            let mut next = Vec::new();
            for v in cur {
                apply(seg, v, &mut next);
            }
            cur = next;
        }
        cur
    }

    /// The value a `.$` field takes: the node for a definite path, an array of matches
    /// otherwise; `None` when a definite path matches nothing.
    pub fn read(&self, root: &Value) -> Option<Value> {
        let found = self.select(root);
        if self.is_definite() {
            found.first().map(|v| (*v).clone())
        } else {
            Some(Value::Array(found.into_iter().cloned().collect()))
        }
    }

    /// ResultPath: put `value` at the path inside `target`, creating objects on the way.
    /// Fails when an intermediate node is not an object (States.ResultPathMatchFailure).
    pub fn write(&self, target: &mut Value, value: Value) -> Result<(), String> {
        if !self.is_definite() {
            return Err("ResultPath must be a reference path".into());
        }
        let mut cur = target;
        for seg in &self.segs {
            cur = match seg {
                Seg::Child(name) => match cur {
                    Value::Object(m) => m.entry(name.clone()).or_insert(Value::Null),
                    _ => return Err(format!("cannot set field '{name}' on a non-object")),
                },
                Seg::Index(i) => match cur {
                    Value::Array(a) if *i >= 0 && (*i as usize) < a.len() => &mut a[*i as usize],
                    _ => return Err(format!("index {i} is out of range")),
                },
                _ => unreachable!("definite paths hold only children and indexes"),
            };
            if cur.is_null() && !std::ptr::eq(seg, self.segs.last().unwrap()) {
                *cur = Value::Object(Default::default());
            }
        }
        *cur = value;
        Ok(())
    }
}

fn apply<'a>(seg: &Seg, v: &'a Value, out: &mut Vec<&'a Value>) {
    match seg {
        Seg::Child(n) => {
            if let Some(x) = v.as_object().and_then(|m| m.get(n)) {
                out.push(x)
            }
        }
        Seg::Index(i) => {
            if let Some(a) = v.as_array() {
                let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                if idx >= 0 && (idx as usize) < a.len() {
                    out.push(&a[idx as usize]);
                }
            }
        }
        Seg::Wildcard => children(v, out),
        Seg::Descend(name) => descend(v, name.as_deref(), out),
        Seg::Union(sels) => {
            for s in sels {
                match s {
                    Sel::Name(n) => apply(&Seg::Child(n.clone()), v, out),
                    Sel::Index(i) => apply(&Seg::Index(*i), v, out),
                }
            }
        }
        Seg::Slice(start, end, step) => {
            if let Some(a) = v.as_array() {
                let len = a.len() as i64;
                let norm = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                let s = start.map(norm).unwrap_or(0);
                let e = end.map(norm).unwrap_or(len);
                let mut i = s;
                while i < e {
                    out.push(&a[i as usize]);
                    i += (*step).max(1);
                }
            }
        }
        Seg::Filter(expr) => {
            let mut kids = Vec::new();
            children(v, &mut kids);
            for k in kids {
                if truthy(&eval(expr, k)) {
                    out.push(k);
                }
            }
        }
    }
}

fn children<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => out.extend(m.values()),
        Value::Array(a) => out.extend(a.iter()),
        _ => {}
    }
}

fn descend<'a>(v: &'a Value, name: Option<&str>, out: &mut Vec<&'a Value>) {
    match name {
        Some(n) => {
            if let Some(x) = v.as_object().and_then(|m| m.get(n)) {
                out.push(x);
            }
        }
        None => children(v, out),
    }
    let mut kids = Vec::new();
    children(v, &mut kids);
    for k in kids {
        descend(k, name, out);
    }
}

fn truthy(v: &Option<Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => true,
    }
}

fn eval(e: &Expr, at: &Value) -> Option<Value> {
    match e {
        Expr::Lit(v) => Some(v.clone()),
        Expr::Current(segs) => {
            let p = Path {
                root: Root::Input,
                segs: segs.clone(),
                text: String::new(),
            };
            p.select(at).first().map(|v| (*v).clone())
        }
        Expr::Not(x) => Some(Value::Bool(!truthy(&eval(x, at)))),
        Expr::And(a, b) => Some(Value::Bool(truthy(&eval(a, at)) && truthy(&eval(b, at)))),
        Expr::Or(a, b) => Some(Value::Bool(truthy(&eval(a, at)) || truthy(&eval(b, at)))),
        Expr::Cmp(a, op, b) => {
            let (Some(x), Some(y)) = (eval(a, at), eval(b, at)) else {
                return Some(Value::Bool(false));
            };
            let ord = match (&x, &y) {
                (Value::Number(p), Value::Number(q)) => p.as_f64().partial_cmp(&q.as_f64()),
                (Value::String(p), Value::String(q)) => Some(p.cmp(q)),
                _ => None,
            };
            use std::cmp::Ordering::*;
            let r = match *op {
                "==" => ord.map(|o| o == Equal).unwrap_or(x == y),
                "!=" => !ord.map(|o| o == Equal).unwrap_or(x == y),
                "<" => ord == Some(Less),
                "<=" => matches!(ord, Some(Less | Equal)),
                ">" => ord == Some(Greater),
                _ => matches!(ord, Some(Greater | Equal)),
            };
            Some(Value::Bool(r))
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at position {} of '{}'", self.i, self.text))
    }

    fn path(&mut self) -> Result<Path, String> {
        if !self.eat(b'$') {
            return self.err("a path must begin with '$'");
        }
        let root = if self.eat(b'$') {
            Root::Context
        } else if self.peek().is_some_and(is_name_start) {
            Root::Var(self.name())
        } else {
            Root::Input
        };
        let segs = self.segments(false)?;
        Ok(Path {
            root,
            segs,
            text: self.text.to_string(),
        })
    }

    fn name(&mut self) -> String {
        let start = self.i;
        while self.peek().is_some_and(is_name_char) {
            self.i += 1;
        }
        // Multi-byte UTF-8 continues a name: field names may be any Unicode text.
        self.text[start..self.i].to_string()
    }

    fn segments(&mut self, in_filter: bool) -> Result<Vec<Seg>, String> {
        let mut segs = Vec::new();
        loop {
            if in_filter {
                self.ws_none();
            }
            match self.peek() {
                Some(b'.') => {
                    self.i += 1;
                    if self.eat(b'.') {
                        if self.eat(b'*') {
                            segs.push(Seg::Descend(None));
                        } else if self.peek() == Some(b'[') {
                            // `..['x']`
                            self.i += 1;
                            let n = self.quoted()?;
                            if !self.eat(b']') {
                                return self.err("expected ']'");
                            }
                            segs.push(Seg::Descend(Some(n)));
                        } else {
                            let n = self.name();
                            if n.is_empty() {
                                return self.err("expected a name after '..'");
                            }
                            segs.push(Seg::Descend(Some(n)));
                        }
                    } else if self.eat(b'*') {
                        segs.push(Seg::Wildcard);
                    } else {
                        let n = self.name();
                        if n.is_empty() {
                            return self.err("expected a name after '.'");
                        }
                        segs.push(Seg::Child(n));
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    self.ws();
                    segs.push(self.bracket()?);
                    self.ws();
                    if !self.eat(b']') {
                        return self.err("expected ']'");
                    }
                }
                _ => return Ok(segs),
            }
        }
    }

    fn ws_none(&mut self) {}

    fn quoted(&mut self) -> Result<String, String> {
        let q = match self.peek() {
            Some(c @ (b'\'' | b'"')) => c,
            _ => return self.err("expected a quoted name"),
        };
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            if c == q {
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            if c == b'\\'
                && let Some(n) = self.peek()
            {
                self.i += 1;
                out.push(n);
                continue;
            }
            out.push(c);
        }
        self.err("unterminated quoted name")
    }

    fn int(&mut self) -> Option<i64> {
        let start = self.i;
        self.eat(b'-');
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.text[start..self.i].parse().ok().or_else(|| {
            self.i = start;
            None
        })
    }

    fn bracket(&mut self) -> Result<Seg, String> {
        match self.peek() {
            Some(b'*') => {
                self.i += 1;
                Ok(Seg::Wildcard)
            }
            Some(b'?') => {
                self.i += 1;
                self.ws();
                if !self.eat(b'(') {
                    return self.err("expected '(' after '?'");
                }
                let e = self.or()?;
                self.ws();
                if !self.eat(b')') {
                    return self.err("expected ')'");
                }
                Ok(Seg::Filter(e))
            }
            Some(b'\'' | b'"') => {
                let mut names = vec![Sel::Name(self.quoted()?)];
                self.ws();
                while self.eat(b',') {
                    self.ws();
                    names.push(Sel::Name(self.quoted()?));
                    self.ws();
                }
                Ok(match names.as_slice() {
                    [Sel::Name(n)] => Seg::Child(n.clone()),
                    _ => Seg::Union(names),
                })
            }
            _ => {
                let first = self.int();
                self.ws();
                if self.eat(b':') {
                    self.ws();
                    let end = self.int();
                    self.ws();
                    let step = if self.eat(b':') {
                        self.int().unwrap_or(1)
                    } else {
                        1
                    };
                    return Ok(Seg::Slice(first, end, step));
                }
                let Some(first) = first else {
                    return self.err("expected an index, a quoted name, '*', a slice or a filter");
                };
                let mut idx = vec![Sel::Index(first)];
                while self.eat(b',') {
                    self.ws();
                    match self.int() {
                        Some(i) => idx.push(Sel::Index(i)),
                        None => return self.err("expected an index"),
                    }
                    self.ws();
                }
                Ok(match idx.as_slice() {
                    [Sel::Index(i)] => Seg::Index(*i),
                    _ => Seg::Union(idx),
                })
            }
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        loop {
            self.ws();
            if self.s[self.i..].starts_with(b"||") {
                self.i += 2;
                let r = self.and()?;
                l = Expr::Or(Box::new(l), Box::new(r));
            } else {
                return Ok(l);
            }
        }
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.cmp()?;
        loop {
            self.ws();
            if self.s[self.i..].starts_with(b"&&") {
                self.i += 2;
                let r = self.cmp()?;
                l = Expr::And(Box::new(l), Box::new(r));
            } else {
                return Ok(l);
            }
        }
    }

    fn cmp(&mut self) -> Result<Expr, String> {
        let l = self.unary()?;
        self.ws();
        for op in ["==", "!=", "<=", ">=", "<", ">"] {
            if self.s[self.i..].starts_with(op.as_bytes()) {
                self.i += op.len();
                self.ws();
                let r = self.unary()?;
                return Ok(Expr::Cmp(Box::new(l), op, Box::new(r)));
            }
        }
        Ok(l)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.ws();
        match self.peek() {
            Some(b'!') => {
                self.i += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(b'(') => {
                self.i += 1;
                let e = self.or()?;
                self.ws();
                if !self.eat(b')') {
                    return self.err("expected ')'");
                }
                Ok(e)
            }
            Some(b'@') => {
                self.i += 1;
                Ok(Expr::Current(self.segments(true)?))
            }
            Some(b'\'' | b'"') => Ok(Expr::Lit(Value::String(self.quoted()?))),
            _ => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                {
                    self.i += 1;
                }
                let word = &self.text[start..self.i];
                match word {
                    "true" => Ok(Expr::Lit(Value::Bool(true))),
                    "false" => Ok(Expr::Lit(Value::Bool(false))),
                    "null" => Ok(Expr::Lit(Value::Null)),
                    _ => match serde_json::from_str::<serde_json::Number>(word) {
                        Ok(n) => Ok(Expr::Lit(Value::Number(n))),
                        Err(_) => {
                            self.i = start;
                            self.err("expected a value in the filter")
                        }
                    },
                }
            }
        }
    }
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'$' | b':') || c >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(p: &str, v: &Value) -> Option<Value> {
        Path::parse(p).unwrap().read(v)
    }

    #[test]
    fn reference_paths() {
        let v = json!({"a": {"b": [10, 20, {"c": "x"}]}, "d e": 1});
        assert_eq!(read("$", &v), Some(v.clone()));
        assert_eq!(read("$.a.b[1]", &v), Some(json!(20)));
        assert_eq!(read("$.a.b[-1].c", &v), Some(json!("x")));
        assert_eq!(read("$['d e']", &v), Some(json!(1)));
        assert_eq!(read("$.missing", &v), None);
    }

    #[test]
    fn indefinite_paths_give_arrays() {
        let v = json!({"items": [{"p": 1, "n": "a"}, {"p": 5, "n": "b"}, {"p": 9}]});
        assert_eq!(read("$.items[*].p", &v), Some(json!([1, 5, 9])));
        assert_eq!(read("$..n", &v), Some(json!(["a", "b"])));
        assert_eq!(read("$.items[?(@.p > 2)].p", &v), Some(json!([5, 9])));
        assert_eq!(read("$.items[?(@.n == 'b')].p", &v), Some(json!([5])));
        assert_eq!(read("$.items[?(@.n)].p", &v), Some(json!([1, 5])));
        assert_eq!(read("$.items[0:2].p", &v), Some(json!([1, 5])));
        assert_eq!(read("$.items[0,2].p", &v), Some(json!([1, 9])));
        assert_eq!(
            read("$.items[?(@.p > 2 && @.p < 6)].p", &v),
            Some(json!([5]))
        );
        assert_eq!(read("$.missing[*]", &v), Some(json!([])));
    }

    #[test]
    fn roots() {
        assert_eq!(Path::parse("$$.Execution.Id").unwrap().root, Root::Context);
        assert_eq!(
            Path::parse("$myVar.x").unwrap().root,
            Root::Var("myVar".into())
        );
        assert!(Path::parse("a.b").is_err());
        assert!(Path::parse("$.a[").is_err());
        assert!(Path::parse("$.").is_err());
    }

    #[test]
    fn write_creates_objects_and_refuses_scalars() {
        let mut v = json!({"a": 1});
        Path::parse("$.x.y")
            .unwrap()
            .write(&mut v, json!(2))
            .unwrap();
        assert_eq!(v, json!({"a": 1, "x": {"y": 2}}));
        assert!(
            Path::parse("$.a.b")
                .unwrap()
                .write(&mut v, json!(3))
                .is_err()
        );
        let mut root = json!(1);
        Path::parse("$")
            .unwrap()
            .write(&mut root, json!({"k": 1}))
            .unwrap();
        assert_eq!(root, json!({"k": 1}));
    }
}
