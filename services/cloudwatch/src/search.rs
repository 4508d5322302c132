//! The query language of `SEARCH(' {Namespace, DimName, ...} SearchTerm ', 'Stat', Period)`,
//! as the CloudWatch User Guide's "CloudWatch search expression syntax" page describes it:
//!
//! * a metric schema in braces: the namespace and the exact set of dimension names a metric
//!   must have (names with spaces or punctuation in double quotes);
//! * search terms matched against the metric's name, namespace, dimension names and values:
//!   partial (by tokens: `count` finds `CustomCount1`; a term of several tokens, like
//!   `CustomCount`, must match consecutive tokens with their case) or exact in double quotes
//!   (`"CustomCount1"`, with `\" \\ \( \)` escaped);
//! * property designators (`MetricName=`, `Namespace=`, a dimension name) that restrict a term
//!   to one property;
//! * `AND` (also implied between terms), `OR`, `NOT` (case sensitive) and parentheses.
//!
//! This module parses a query and decides whether one metric identity matches; `data.rs`
//! fetches the matching series.

use std::collections::{BTreeMap, BTreeSet};

/// The longest query CloudWatch accepts.
pub(crate) const MAX_QUERY_CHARS: usize = 1024;
/// The most time series one search returns.
pub(crate) const MAX_RESULTS: usize = 500;
/// The most SEARCH expressions one request may hold.
pub(crate) const MAX_SEARCHES: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    pub schema: Option<Schema>,
    term: Option<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Schema {
    pub namespace: String,
    pub dimensions: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Term {
        property: Option<String>,
        pattern: Pattern,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Pattern {
    Exact(String),
    /// The term's tokens, each with whether it must match with its case (it came from a
    /// word of several tokens: a composite match), and the term's letters and digits run
    /// together in lowercase.
    Partial(Vec<(String, bool)>, String),
}

/// What a metric is matched against.
pub(crate) struct Identity<'a> {
    pub namespace: &'a str,
    pub metric: &'a str,
    pub dimensions: &'a BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Eq,
    Quoted(String),
    Word(String),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::Open);
            }
            ')' => {
                chars.next();
                out.push(Tok::Close);
            }
            '=' => {
                chars.next();
                out.push(Tok::Eq);
            }
            '"' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated double quote".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '(' | ')')) => text.push(e),
                            Some(other) => {
                                return Err(format!(
                                    "invalid escape \\{other}: only \\\" \\\\ \\( \\) are allowed"
                                ));
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(ch) => text.push(ch),
                    }
                }
                out.push(Tok::Quoted(text));
            }
            _ => {
                let mut word = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || matches!(ch, '(' | ')' | '=' | '"') {
                        break;
                    }
                    word.push(ch);
                    chars.next();
                }
                out.push(Tok::Word(word));
            }
        }
    }
    Ok(out)
}

/// Splits a name into the tokens the User Guide describes: non-alphanumeric characters
/// delimit; inside a word a new token starts at a lower-to-upper case change, at the last
/// capital of a run followed by a lowercase letter (`SDBFailure`: `SDB`, `Failure`) and
/// where letters and digits meet. Case is kept.
fn tokens(s: &str) -> Vec<Vec<String>> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let chars: Vec<char> = w.chars().collect();
            let mut parts = Vec::new();
            let mut start = 0;
            for i in 1..chars.len() {
                let (p, c) = (chars[i - 1], chars[i]);
                let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
                let boundary = (c.is_numeric() != p.is_numeric())
                    || (c.is_uppercase() && p.is_lowercase())
                    || (c.is_uppercase() && p.is_uppercase() && next_lower);
                if boundary {
                    parts.push(chars[start..i].iter().collect());
                    start = i;
                }
            }
            parts.push(chars[start..].iter().collect());
            parts
        })
        .collect()
}

fn partial(text: &str) -> Result<Pattern, String> {
    let words = tokens(text);
    let atoms: Vec<(String, bool)> = words
        .iter()
        .flat_map(|w| {
            let composite = w.len() > 1;
            w.iter().map(move |t| (t.clone(), composite))
        })
        .collect();
    if atoms.is_empty() {
        return Err(format!("the search term {text} has nothing to search for"));
    }
    Ok(Pattern::Partial(atoms, run_together(text)))
}

/// The token a whole name makes: its letters and digits, lowercase (`customcount1`).
fn run_together(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn partial_matches(atoms: &[(String, bool)], whole: &str, field: &str) -> bool {
    if run_together(field) == whole {
        return true;
    }
    let words = tokens(field);
    let field_atoms: Vec<&String> = words.iter().flatten().collect();
    field_atoms.windows(atoms.len()).any(|window| {
        window.iter().zip(atoms).all(|(have, (want, case))| {
            if *case {
                *have == want
            } else {
                have.to_lowercase() == want.to_lowercase()
            }
        })
    })
}

impl Pattern {
    fn matches(&self, field: &str) -> bool {
        match self {
            Pattern::Exact(s) => s == field,
            Pattern::Partial(atoms, whole) => partial_matches(atoms, whole, field),
        }
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn or(&mut self) -> Result<Node, String> {
        let mut left = self.and()?;
        while self.is_word("OR") {
            self.pos += 1;
            let right = self.and()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, String> {
        let mut left = self.not()?;
        loop {
            if self.is_word("AND") {
                self.pos += 1;
            } else if self.peek().is_none()
                || self.is_word("OR")
                || self.peek() == Some(&Tok::Close)
            {
                return Ok(left);
            }
            // Terms side by side are ANDed.
            let right = self.not()?;
            left = Node::And(Box::new(left), Box::new(right));
        }
    }

    fn not(&mut self) -> Result<Node, String> {
        if self.is_word("NOT") {
            self.pos += 1;
            return Ok(Node::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, String> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Open) => {
                let inner = self.or()?;
                match self.toks.get(self.pos) {
                    Some(Tok::Close) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err("missing closing parenthesis".into()),
                }
            }
            Some(Tok::Word(w)) if matches!(w.as_str(), "AND" | "OR") => {
                Err(format!("{w} needs a search term on each side"))
            }
            Some(first @ (Tok::Word(_) | Tok::Quoted(_))) => {
                if self.peek() == Some(&Tok::Eq) {
                    self.pos += 1;
                    let property = match first {
                        Tok::Word(w) | Tok::Quoted(w) => w,
                        _ => unreachable!("matched above"),
                    };
                    let value = self.toks.get(self.pos).cloned();
                    self.pos += 1;
                    let pattern = match value {
                        Some(Tok::Quoted(v)) => Pattern::Exact(v),
                        Some(Tok::Word(v)) => partial(&v)?,
                        _ => return Err(format!("{property}= needs a value")),
                    };
                    return Ok(Node::Term {
                        property: Some(property),
                        pattern,
                    });
                }
                let pattern = match first {
                    Tok::Quoted(v) => Pattern::Exact(v),
                    Tok::Word(v) => partial(&v)?,
                    _ => unreachable!("matched above"),
                };
                Ok(Node::Term {
                    property: None,
                    pattern,
                })
            }
            Some(Tok::Close) => Err("unexpected closing parenthesis".into()),
            Some(Tok::Eq) => Err("= needs a property name before it".into()),
            None => Err("the search term ends too early".into()),
        }
    }
}

/// Splits `{ns, "dim name", ...}` into names, honouring double quotes.
fn schema(body: &str) -> Result<Schema, String> {
    let mut names = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => cur.extend(chars.next()),
            ',' if !quoted => names.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated double quote in the metric schema".into());
    }
    names.push(cur);
    let mut names = names.into_iter().map(|n| n.trim().to_owned());
    let namespace = names.next().unwrap_or_default();
    if namespace.is_empty() {
        return Err("the metric schema must name a namespace".into());
    }
    let mut dimensions = BTreeSet::new();
    for d in names {
        if d.is_empty() {
            return Err("empty dimension name in the metric schema".into());
        }
        dimensions.insert(d);
    }
    Ok(Schema {
        namespace,
        dimensions,
    })
}

/// Finds the `}` that closes the schema, skipping quoted text.
fn schema_end(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

pub(crate) fn parse(query: &str) -> Result<Query, String> {
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(format!(
            "the search query is longer than {MAX_QUERY_CHARS} characters"
        ));
    }
    let mut rest = query.trim_start();
    let mut parsed_schema = None;
    if let Some(body) = rest.strip_prefix('{') {
        let end = schema_end(body).ok_or("the metric schema has no closing }")?;
        parsed_schema = Some(schema(&body[..end])?);
        rest = body[end + 1..].trim_start();
        // The guide writes both `{...} term` and `{...}, term`.
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    let toks = lex(rest)?;
    let term = if toks.is_empty() {
        None
    } else {
        let mut p = Parser { toks, pos: 0 };
        let node = p.or()?;
        if p.pos < p.toks.len() {
            return Err("unexpected closing parenthesis".into());
        }
        Some(node)
    };
    if parsed_schema.is_none() && term.is_none() {
        return Err("a search needs a metric schema, a search term or both".into());
    }
    Ok(Query {
        schema: parsed_schema,
        term,
    })
}

fn term_matches(property: Option<&str>, pattern: &Pattern, m: &Identity<'_>) -> bool {
    match property {
        Some("MetricName") => pattern.matches(m.metric),
        Some("Namespace") => pattern.matches(m.namespace),
        Some(dim) => m.dimensions.get(dim).is_some_and(|v| pattern.matches(v)),
        None => {
            pattern.matches(m.metric)
                || pattern.matches(m.namespace)
                || m.dimensions
                    .iter()
                    .any(|(k, v)| pattern.matches(k) || pattern.matches(v))
        }
    }
}

fn node_matches(n: &Node, m: &Identity<'_>) -> bool {
    match n {
        Node::And(a, b) => node_matches(a, m) && node_matches(b, m),
        Node::Or(a, b) => node_matches(a, m) || node_matches(b, m),
        Node::Not(a) => !node_matches(a, m),
        Node::Term { property, pattern } => term_matches(property.as_deref(), pattern, m),
    }
}

impl Query {
    pub(crate) fn matches(&self, m: &Identity<'_>) -> bool {
        if let Some(s) = &self.schema {
            let same_names = m.dimensions.len() == s.dimensions.len()
                && m.dimensions.keys().all(|k| s.dimensions.contains(k));
            if s.namespace != m.namespace || !same_names {
                return false;
            }
        }
        self.term.as_ref().is_none_or(|t| node_matches(t, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id<'a>(ns: &'a str, metric: &'a str, dims: &'a BTreeMap<String, String>) -> Identity<'a> {
        Identity {
            namespace: ns,
            metric,
            dimensions: dims,
        }
    }

    fn dims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn flat(s: &str) -> Vec<String> {
        tokens(s).into_iter().flatten().collect()
    }

    // The tokenization table of "CloudWatch search expressions: Tokenization".
    #[test]
    fn tokenization_table() {
        assert_eq!(flat("CustomCount1"), ["Custom", "Count", "1"]);
        assert_eq!(flat("SDBFailure"), ["SDB", "Failure"]);
        assert_eq!(flat("Project2-trial333"), ["Project", "2", "trial", "333"]);
        assert_eq!(flat("CPUUtilization"), ["CPU", "Utilization"]);
        assert_eq!(flat("Network-Errors_2"), ["Network", "Errors", "2"]);
    }

    fn finds(query: &str, field: &str) -> bool {
        let q = parse(query).unwrap();
        let d = BTreeMap::new();
        q.matches(&id("NS", field, &d))
    }

    // "Partial matches": count/Count/COUNT find CustomCount1, couNT does not; composite
    // tokens match with their case.
    #[test]
    fn partial_matches_by_token() {
        for q in [
            "count",
            "Count",
            "COUNT",
            "custom",
            "1",
            "customcount1",
            "CustomCount",
            "Count1",
        ] {
            assert!(finds(q, "CustomCount1"), "{q}");
        }
        for q in ["couNT", "customcount", "count1", "Custom1", "ount"] {
            assert!(!finds(q, "CustomCount1"), "{q}");
        }
        assert!(finds("project2trial333", "Project2-trial333"));
        assert!(finds("sdb", "SDBFailure"));
    }

    // "Non-alphanumeric characters": all of these find Network-Errors-2 and NetworkErrors2.
    #[test]
    fn punctuation_in_terms_marks_composite_tokens() {
        for q in [
            "network/errors",
            "network+errors",
            "network-errors",
            "Network_Errors",
        ] {
            assert!(finds(q, "Network-Errors-2"), "{q}");
            assert!(finds(q, "NetworkErrors2"), "{q}");
        }
        assert!(!finds("errors/network", "NetworkErrors2"));
    }

    // "Exact matches" and the escapes of "Non-alphanumeric characters".
    #[test]
    fn exact_matches() {
        assert!(finds(r#" "CustomCount1" "#, "CustomCount1"));
        assert!(!finds(r#" "customcount1" "#, "CustomCount1"));
        assert!(!finds(r#" "Custom" "#, "CustomCount1"));
        assert!(finds(r#" "Network-Errors-2" "#, "Network-Errors-2"));
        assert!(!finds(r#" "Network_Errors_2" "#, "Network-Errors-2"));
        assert!(finds(
            r#" "Europe\\France Traffic\(Network\)" "#,
            r"Europe\France Traffic(Network)"
        ));
        assert!(parse(r#" "bad\x" "#).is_err());
    }

    #[test]
    fn schema_is_namespace_and_exact_dimension_names() {
        let q = parse(r#" {AWS/EC2,InstanceId} MetricName="CPUUtilization" "#).unwrap();
        assert_eq!(
            q.schema,
            Some(Schema {
                namespace: "AWS/EC2".into(),
                dimensions: BTreeSet::from(["InstanceId".into()]),
            })
        );
        let one = dims(&[("InstanceId", "i-1")]);
        let two = dims(&[("InstanceId", "i-1"), ("InstanceType", "t2.micro")]);
        let none = BTreeMap::new();
        assert!(q.matches(&id("AWS/EC2", "CPUUtilization", &one)));
        assert!(!q.matches(&id("AWS/EC2", "CPUUtilization", &two)));
        assert!(!q.matches(&id("AWS/EC2", "CPUUtilization", &none)));
        assert!(!q.matches(&id("AWS/EBS", "CPUUtilization", &one)));
        assert!(!q.matches(&id("AWS/EC2", "CPUCreditUsage", &one)));
        // {AWS/EC2} alone: the metrics without dimensions.
        let q = parse("{AWS/EC2}").unwrap();
        assert!(q.matches(&id("AWS/EC2", "CPUUtilization", &none)));
        assert!(!q.matches(&id("AWS/EC2", "CPUUtilization", &one)));
        // Quoted names and the comma after the schema.
        let q = parse(r#" {"My Namespace", "Dimension@Name"}, "Custom:Name[Special_Characters" "#)
            .unwrap();
        let d = dims(&[("Dimension@Name", "x")]);
        assert!(q.matches(&id("My Namespace", "Custom:Name[Special_Characters", &d)));
    }

    #[test]
    fn properties_restrict_a_term() {
        let micro = dims(&[("InstanceType", "t2.micro")]);
        let large = dims(&[("InstanceType", "m5.large")]);
        let q = parse(" InstanceType=micro ").unwrap();
        assert!(q.matches(&id("AWS/EC2", "CPUUtilization", &micro)));
        assert!(!q.matches(&id("AWS/EC2", "CPUUtilization", &large)));
        let q = parse(r#" InstanceType="t2.micro" Namespace="AWS/EC2" "#).unwrap();
        assert!(q.matches(&id("AWS/EC2", "CPUUtilization", &micro)));
        assert!(!q.matches(&id("AWS/EBS", "CPUUtilization", &micro)));
        // The metric name `micro` is not the property InstanceType.
        let none = BTreeMap::new();
        assert!(!q.matches(&id("AWS/EC2", "micro", &none)));
        // Without a designator, a dimension value matches too.
        assert!(parse(" micro ").unwrap().matches(&id("X", "Y", &micro)));
    }

    // "Boolean operators".
    #[test]
    fn boolean_operators() {
        let lambda = |name: &'static str, f: &'static str| (name, dims(&[("FunctionName", f)]));
        let q = parse(
            r#" {AWS/Lambda,FunctionName} MetricName="Errors" OR (MetricName="Invocations" AND (ProjectA OR ProjectB)) "#,
        )
        .unwrap();
        let cases = [
            (lambda("Errors", "other"), true),
            (lambda("Invocations", "ProjectA-fn"), true),
            (lambda("Invocations", "fn-ProjectB"), true),
            (lambda("Invocations", "other"), false),
            (lambda("Duration", "ProjectA-fn"), false),
        ];
        for ((name, d), want) in cases {
            assert_eq!(q.matches(&id("AWS/Lambda", name, &d)), want, "{name} {d:?}");
        }
        // NOT, repeated, and implicit AND.
        let q = parse(r#" MetricName="CPUUtilization" NOT "ProjectA" NOT "ProjectB" "#).unwrap();
        let a = dims(&[("Project", "ProjectA")]);
        let c = dims(&[("Project", "ProjectC")]);
        assert!(!q.matches(&id("N", "CPUUtilization", &a)));
        assert!(q.matches(&id("N", "CPUUtilization", &c)));
        let none = BTreeMap::new();
        let q = parse(" NOT Namespace=AWS ").unwrap();
        assert!(q.matches(&id("MyApp", "X", &none)));
        assert!(!q.matches(&id("AWS/EC2", "X", &none)));
        assert_eq!(
            parse(" network AND packets ").unwrap().term,
            parse(" network packets ").unwrap().term
        );
        // Operators are case sensitive: `and` is a search term.
        assert!(!parse(" network and packets ").unwrap().matches(&id(
            "N",
            "NetworkPackets",
            &none
        )));
        assert!(
            parse(" network AND packets ")
                .unwrap()
                .matches(&id("N", "NetworkPackets", &none))
        );
    }

    #[test]
    fn malformed_queries_are_refused() {
        for q in [
            "",
            "   ",
            "{",
            "{}",
            "{AWS/EC2,,X}",
            "(a",
            "a)",
            "a OR",
            "AND a",
            "NOT",
            "MetricName=",
            "=x",
            "\"open",
            "{\"open}",
        ] {
            assert!(parse(q).is_err(), "{q:?}");
        }
        assert!(parse(&"a".repeat(MAX_QUERY_CHARS + 1)).is_err());
        assert!(parse(&"a".repeat(MAX_QUERY_CHARS)).is_ok());
    }
}
