//! Composite alarm rules: `ALARM(name)`, `OK(name)`, `INSUFFICIENT_DATA(name)`, `TRUE`,
//! `FALSE`, combined with `AND`, `OR`, `NOT` and parentheses. Names may be quoted.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rule {
    State(String, String),
    Const(bool),
    Not(Box<Rule>),
    And(Box<Rule>, Box<Rule>),
    Or(Box<Rule>, Box<Rule>),
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn word(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn peek_word(&mut self) -> String {
        let save = self.i;
        let w = self.word();
        self.i = save;
        w
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Rule, String> {
        let mut left = self.and()?;
        while self.peek_word() == "OR" {
            self.word();
            left = Rule::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Rule, String> {
        let mut left = self.not()?;
        while self.peek_word() == "AND" {
            self.word();
            left = Rule::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Rule, String> {
        if self.peek_word() == "NOT" {
            self.word();
            return Ok(Rule::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Rule, String> {
        if self.eat(b'(') {
            let r = self.or()?;
            if !self.eat(b')') {
                return Err("Error in alarm rule: missing closing parenthesis".into());
            }
            return Ok(r);
        }
        let w = self.word();
        match w.as_str() {
            "TRUE" => Ok(Rule::Const(true)),
            "FALSE" => Ok(Rule::Const(false)),
            "ALARM" | "OK" | "INSUFFICIENT_DATA" => {
                if !self.eat(b'(') {
                    return Err(format!("Error in alarm rule: expected ( after {w}"));
                }
                self.ws();
                let name = if self.eat(b'"') {
                    let start = self.i;
                    while self.i < self.s.len() && self.s[self.i] != b'"' {
                        self.i += 1;
                    }
                    let n = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                    if !self.eat(b'"') {
                        return Err("Error in alarm rule: unterminated alarm name".into());
                    }
                    n
                } else {
                    let start = self.i;
                    while self.i < self.s.len() && self.s[self.i] != b')' {
                        self.i += 1;
                    }
                    String::from_utf8_lossy(&self.s[start..self.i])
                        .trim()
                        .to_owned()
                };
                if !self.eat(b')') || name.is_empty() {
                    return Err(format!("Error in alarm rule: invalid {w} function"));
                }
                Ok(Rule::State(w, name))
            }
            "" => Err("Error in alarm rule: unexpected end of rule".into()),
            other => Err(format!("Error in alarm rule: unknown function {other}")),
        }
    }
}

pub(crate) fn parse(rule: &str) -> Result<Rule, String> {
    if rule.len() > 10240 {
        return Err("The alarm rule must not be longer than 10240 characters.".into());
    }
    let mut p = P {
        s: rule.as_bytes(),
        i: 0,
    };
    let r = p.or()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!(
            "Error in alarm rule: unexpected text at position {}",
            p.i
        ));
    }
    Ok(r)
}

/// The alarm names a rule refers to.
pub(crate) fn children(r: &Rule) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(r: &Rule, out: &mut Vec<String>) {
        match r {
            Rule::State(_, n) => {
                if !out.contains(n) {
                    out.push(n.clone());
                }
            }
            Rule::Const(_) => {}
            Rule::Not(x) => walk(x, out),
            Rule::And(a, b) | Rule::Or(a, b) => {
                walk(a, out);
                walk(b, out);
            }
        }
    }
    walk(r, &mut out);
    out
}

/// Evaluates a rule given each child's state (`None`: no such alarm, never in any state).
pub(crate) fn eval(r: &Rule, state: &dyn Fn(&str) -> Option<String>) -> bool {
    match r {
        Rule::State(want, name) => state(name).is_some_and(|s| &s == want),
        Rule::Const(b) => *b,
        Rule::Not(x) => !eval(x, state),
        Rule::And(a, b) => eval(a, state) && eval(b, state),
        Rule::Or(a, b) => eval(a, state) || eval(b, state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_evaluate() {
        let r = parse(r#"ALARM("cpu") AND NOT (OK(mem) OR INSUFFICIENT_DATA("disk io"))"#).unwrap();
        assert_eq!(children(&r), ["cpu", "mem", "disk io"]);
        let states = |n: &str| match n {
            "cpu" => Some("ALARM".to_owned()),
            "mem" => Some("ALARM".to_owned()),
            _ => Some("OK".to_owned()),
        };
        assert!(eval(&r, &states));
        assert!(!eval(&parse("FALSE OR OK(cpu)").unwrap(), &states));
        assert!(parse("ALARM(").is_err());
        assert!(parse("SOMETHING(x)").is_err());
        assert!(parse("ALARM(a) junk").is_err());
    }
}
