//! Function signatures (`<s-n?:s>`): which argument types a function accepts, which take the
//! context when omitted (`-`), and array coercion for `a` parameters. As in jsonata-js the
//! arguments' type letters are matched against a regular expression built from the signature.

use crate::error::{Inserts, JsonataError};
use crate::value::Value;

#[derive(Debug, Clone)]
struct Param {
    regex: String,
    kind: String,
    context: bool,
    context_regex: Option<regex::Regex>,
    subtype: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Signature {
    params: Vec<Param>,
    regex: regex::Regex,
}

fn symbol(v: &Value) -> char {
    match v {
        Value::Function(_) => 'f',
        Value::String(_) => 's',
        Value::Number(_) => 'n',
        Value::Bool(_) => 'b',
        Value::Null => 'l',
        Value::Array(..) => 'a',
        Value::Object(_) => 'o',
        Value::Undefined => 'm',
    }
}

fn closing(chars: &[char], start: usize, open: char, close: char) -> usize {
    let mut depth = 1;
    let mut pos = start;
    while pos < chars.len() {
        pos += 1;
        match chars.get(pos) {
            Some(c) if *c == close => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Some(c) if *c == open => depth += 1,
            _ => {}
        }
    }
    pos
}

fn compile(re: &str) -> Result<regex::Regex, JsonataError> {
    regex::Regex::new(re).map_err(|_| JsonataError::new("S0401", None))
}

impl Signature {
    pub fn parse(sig: &str) -> Result<Signature, JsonataError> {
        let chars: Vec<char> = sig.chars().collect();
        let mut params: Vec<Param> = Vec::new();
        let blank = || Param {
            regex: String::new(),
            kind: String::new(),
            context: false,
            context_regex: None,
            subtype: None,
        };
        let mut param = blank();
        let mut pos = 1;
        while pos < chars.len() {
            let c = chars[pos];
            if c == ':' {
                break;
            }
            match c {
                's' | 'n' | 'b' | 'l' | 'o' => {
                    param.regex = format!("[{c}m]");
                    param.kind = c.to_string();
                    params.push(std::mem::replace(&mut param, blank()));
                }
                'a' => {
                    param.regex = "[asnblfom]".into();
                    param.kind = "a".into();
                    params.push(std::mem::replace(&mut param, blank()));
                }
                'f' => {
                    param.regex = "f".into();
                    param.kind = "f".into();
                    params.push(std::mem::replace(&mut param, blank()));
                }
                'j' => {
                    param.regex = "[asnblom]".into();
                    param.kind = "j".into();
                    params.push(std::mem::replace(&mut param, blank()));
                }
                'x' => {
                    param.regex = "[asnblfom]".into();
                    param.kind = "x".into();
                    params.push(std::mem::replace(&mut param, blank()));
                }
                '-' => {
                    if let Some(prev) = params.last_mut() {
                        prev.context = true;
                        prev.context_regex = Some(compile(&format!("^{}$", prev.regex))?);
                        prev.regex.push('?');
                    }
                }
                '?' | '+' => {
                    if let Some(prev) = params.last_mut() {
                        prev.regex.push(c);
                    }
                }
                '(' => {
                    let end = closing(&chars, pos, '(', ')');
                    let choice: String = chars[pos + 1..end.min(chars.len())].iter().collect();
                    if choice.contains('<') {
                        return Err(JsonataError::with(
                            "S0402",
                            Some(pos),
                            Inserts {
                                value: Some(choice),
                                ..Inserts::default()
                            },
                        ));
                    }
                    param.regex = format!("[{choice}m]");
                    param.kind = format!("({choice})");
                    pos = end;
                    params.push(std::mem::replace(&mut param, blank()));
                }
                '<' => {
                    let prev_kind = params.last().map(|p| p.kind.clone()).unwrap_or_default();
                    if prev_kind == "a" || prev_kind == "f" {
                        let end = closing(&chars, pos, '<', '>');
                        let sub: String = chars[pos + 1..end.min(chars.len())].iter().collect();
                        if let Some(prev) = params.last_mut() {
                            prev.subtype = Some(sub);
                        }
                        pos = end;
                    } else {
                        return Err(JsonataError::with(
                            "S0401",
                            Some(pos),
                            Inserts {
                                value: Some(prev_kind),
                                ..Inserts::default()
                            },
                        ));
                    }
                }
                _ => {}
            }
            pos += 1;
        }
        let re: String = params.iter().map(|p| format!("({})", p.regex)).collect();
        let regex = compile(&format!("^{re}$"))?;
        Ok(Signature { params, regex })
    }

    /// Checks and coerces `args` (context fills `-` parameters; scalars become arrays for `a`).
    pub fn validate(&self, args: &[Value], context: &Value) -> Result<Vec<Value>, JsonataError> {
        let supplied: String = args.iter().map(symbol).collect();
        let Some(caps) = self.regex.captures(&supplied) else {
            return Err(self.validation_error(&supplied));
        };
        let mut out = Vec::with_capacity(self.params.len());
        let mut arg_index = 0;
        for (i, param) in self.params.iter().enumerate() {
            let matched = caps.get(i + 1).map(|m| m.as_str()).unwrap_or("");
            if matched.is_empty() {
                if param.context && param.context_regex.is_some() {
                    let ctx = symbol(context).to_string();
                    if param
                        .context_regex
                        .as_ref()
                        .is_some_and(|r| r.is_match(&ctx))
                    {
                        out.push(context.clone());
                    } else {
                        return Err(JsonataError::with(
                            "T0411",
                            None,
                            Inserts {
                                index: Some(arg_index + 1),
                                ..Inserts::default()
                            },
                        ));
                    }
                } else {
                    out.push(args.get(arg_index).cloned().unwrap_or_default());
                    arg_index += 1;
                }
                continue;
            }
            for single in matched.chars() {
                let arg = args.get(arg_index).cloned().unwrap_or_default();
                if param.kind == "a" {
                    if single == 'm' {
                        out.push(Value::Undefined);
                    } else {
                        let mut ok = true;
                        if let Some(sub) = &param.subtype {
                            if single != 'a' && matched != sub {
                                ok = false;
                            } else if single == 'a' {
                                let items = arg.as_array().unwrap_or(&[]);
                                if let Some(first) = items.first() {
                                    let t = symbol(first);
                                    ok = sub.starts_with(t) && items.iter().all(|v| symbol(v) == t);
                                }
                            }
                        }
                        if !ok {
                            let kind = match param.subtype.as_deref().and_then(|s| s.chars().next())
                            {
                                Some('a') => "arrays",
                                Some('b') => "booleans",
                                Some('f') => "functions",
                                Some('n') => "numbers",
                                Some('o') => "objects",
                                Some('s') => "strings",
                                _ => "",
                            };
                            return Err(JsonataError::with(
                                "T0412",
                                None,
                                Inserts {
                                    index: Some(arg_index + 1),
                                    kind: Some(kind.into()),
                                    ..Inserts::default()
                                },
                            ));
                        }
                        out.push(if single == 'a' {
                            arg
                        } else {
                            Value::array(vec![arg])
                        });
                    }
                } else {
                    out.push(arg);
                }
                arg_index += 1;
            }
        }
        Ok(out)
    }

    fn validation_error(&self, supplied: &str) -> JsonataError {
        let mut pattern = String::from("^");
        let mut good = 0;
        for p in &self.params {
            pattern.push_str(&p.regex);
            match regex::Regex::new(&pattern)
                .ok()
                .and_then(|r| r.find(supplied).map(|m| m.end()))
            {
                Some(end) => good = end,
                None => break,
            }
        }
        JsonataError::with(
            "T0410",
            None,
            Inserts {
                index: Some(good + 1),
                ..Inserts::default()
            },
        )
    }
}
