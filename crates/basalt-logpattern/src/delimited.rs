//! `[ … ]` patterns: conditions on the whitespace-separated fields of an event, from the syntax
//! page's "Using filter patterns to match terms in space-delimited log events".
//!
//! Three behaviours come from examples rather than prose:
//! * Without `...`, the last field takes the rest of the line. The syntax page's `[w1=ERROR,
//!   w2]` "returns log events where the first word in the log events is ERROR" for seven-field
//!   events, and it insists on the "blank w2 indicator", which only matters if `w2` soaks up
//!   what follows. An event with fewer fields than the pattern does not match.
//! * With `...`, every named field is exactly one event field, and `...` covers the rest.
//! * An empty entry is an unnamed field: the old syntax page's `[..., request=*.html*,
//!   status_code=4*,]` extracts a seventh field from a trailing comma.
//!
//! A field's conditions may only name that field: the old syntax page's
//! `status_code = 4* && bytes > 1000` is refused by the service with "Invalid filter pattern"
//! (awsdocs/amazon-cloudwatch-logs-user-guide#21).

use crate::PatternError;
use crate::expr::{self, Cursor, Expr};
use crate::lex::{self, CmpOp, Mode, Token};
use crate::value::{self, Literal, Scalar};

#[derive(Debug, Clone)]
pub(crate) struct Delimited {
    entries: Vec<Entry>,
    has_ellipsis: bool,
}

#[derive(Debug, Clone)]
enum Entry {
    Ellipsis,
    /// A field, named or not (`[a, , b]`), with its conditions.
    Field {
        name: Option<String>,
        cond: Option<Expr<FieldCond>>,
    },
}

#[derive(Debug, Clone)]
struct FieldCond {
    op: CmpOp,
    lit: Literal,
}

pub(crate) fn parse(inner: &str) -> Result<Delimited, PatternError> {
    let toks = lex::tokenize(inner, Mode::Delimited)?;
    if toks.is_empty() {
        return Err(PatternError::invalid(
            "a space-delimited pattern needs fields",
        ));
    }
    let entries = toks
        .split(|t| *t == Token::Comma)
        .map(entry)
        .collect::<Result<Vec<_>, _>>()?;
    let regexes = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Field {
                cond: Some(expr), ..
            } => Some(expr.leaves().iter().filter(|c| c.lit.is_regex()).count()),
            _ => None,
        })
        .sum::<usize>();
    if regexes > crate::json::MAX_REGEXES {
        return Err(PatternError::invalid("more than two regular expressions"));
    }
    let has_ellipsis = entries.iter().any(|e| matches!(e, Entry::Ellipsis));
    Ok(Delimited {
        entries,
        has_ellipsis,
    })
}

fn check_name(name: &str) -> Result<(), PatternError> {
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        Some(bad) => Err(PatternError::InvalidCharacters(bad.to_string())),
        None => Ok(()),
    }
}

fn entry(toks: &[Token]) -> Result<Entry, PatternError> {
    match toks {
        [] => Ok(Entry::Field {
            name: None,
            cond: None,
        }),
        [Token::Word(w)] if w == "..." => Ok(Entry::Ellipsis),
        [Token::Word(name)] => check_name(name).map(|()| Entry::Field {
            name: Some(name.clone()),
            cond: None,
        }),
        _ => {
            let mut field: Option<String> = None;
            let expr = expr::parse(toks, &mut |c: &mut Cursor<'_>| {
                let Some(Token::Word(name)) = c.next() else {
                    return Err(PatternError::invalid(
                        "a condition starts with a field name",
                    ));
                };
                check_name(name)?;
                match &field {
                    None => field = Some(name.clone()),
                    Some(f) if f == name => {}
                    Some(_) => {
                        return Err(PatternError::invalid("a condition names another field"));
                    }
                }
                let Some(Token::Op(op)) = c.next() else {
                    return Err(PatternError::invalid(
                        "expected an operator after the field name",
                    ));
                };
                Ok(FieldCond {
                    op: *op,
                    lit: Literal::from_token(c.next(), *op)?,
                })
            })?;
            Ok(Entry::Field {
                name: field,
                cond: Some(expr),
            })
        }
    }
}

/// One field of an event: its text without the quotes or brackets that grouped it, and the
/// byte offset where it starts in the event (quote or bracket included).
struct Field<'a> {
    text: &'a str,
    start: usize,
}

/// Splits on runs of whitespace; "The characters between a pair of square brackets [] or two
/// double quotes ("") are treated as a single field" (old syntax page). An unclosed quote or
/// bracket runs to the end of the event.
fn split(message: &str) -> Vec<Field<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(c) = message[i..].chars().next() {
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let close = match c {
            '"' => Some('"'),
            '[' => Some(']'),
            _ => None,
        };
        match close {
            Some(close) => {
                let body = i + 1;
                let end = message[body..]
                    .find(close)
                    .map_or(message.len(), |r| body + r);
                out.push(Field {
                    text: &message[body..end],
                    start: i,
                });
                i = (end + 1).min(message.len());
            }
            None => {
                let end = message[i..]
                    .find(char::is_whitespace)
                    .map_or(message.len(), |r| i + r);
                out.push(Field {
                    text: &message[i..end],
                    start: i,
                });
                i = end;
            }
        }
    }
    out
}

fn field_ok(cond: &Option<Expr<FieldCond>>, text: &str) -> bool {
    cond.as_ref().is_none_or(|e| {
        e.eval(&mut |c: &FieldCond| value::compare(c.op, &c.lit, Scalar::Text(text)))
    })
}

impl Delimited {
    pub(crate) fn matches(&self, message: &str) -> bool {
        let fields = split(message);
        if self.has_ellipsis {
            self.matches_with_ellipsis(&fields)
        } else {
            self.matches_positionally(message, &fields)
        }
    }

    fn matches_positionally(&self, message: &str, fields: &[Field<'_>]) -> bool {
        let m = self.entries.len();
        if fields.len() < m {
            return false;
        }
        self.entries.iter().enumerate().all(|(k, entry)| {
            let Entry::Field { cond, .. } = entry else {
                return false;
            };
            let text = if k + 1 == m && fields.len() > m {
                message[fields[k].start..].trim_end()
            } else {
                fields[k].text
            };
            field_ok(cond, text)
        })
    }

    /// `reach[j]`: the entries so far can cover exactly the first `j` fields. Linear in
    /// entries × fields, whatever the number of `...`.
    fn matches_with_ellipsis(&self, fields: &[Field<'_>]) -> bool {
        let n = fields.len();
        let mut reach = vec![false; n + 1];
        reach[0] = true;
        for entry in &self.entries {
            let mut next = vec![false; n + 1];
            match entry {
                Entry::Ellipsis => {
                    let mut seen = false;
                    for (r, x) in reach.iter().zip(next.iter_mut()) {
                        seen |= *r;
                        *x = seen;
                    }
                }
                Entry::Field { cond, .. } => {
                    for (j, f) in fields.iter().enumerate() {
                        next[j + 1] = reach[j] && field_ok(cond, f.text);
                    }
                }
            }
            if !next.contains(&true) {
                return false;
            }
            reach = next;
        }
        reach[n]
    }

    /// The names of the pattern's named fields, in order.
    pub(crate) fn field_names(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Field { name: Some(n), .. } => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The fields of a matching event, as TestMetricFilter reports them: `$name` for a field
    /// the pattern names, `$N` (its 1-based position in the event) for the others, those an
    /// `...` covers included (the old syntax page's example for `[..., request=*.html*,
    /// status_code=4*,]` lists `$1` to `$4` and `$7`). `None` when the event does not match.
    pub(crate) fn extract(&self, message: &str) -> Option<Vec<(String, String)>> {
        let fields = split(message);
        // The entry each event field belongs to (`None`: covered by `...`), and its text.
        let mut owners: Vec<(Option<usize>, &str)> = Vec::with_capacity(fields.len());
        if self.has_ellipsis {
            let assigned = self.assign_with_ellipsis(&fields)?;
            owners.extend(assigned.into_iter().zip(fields.iter().map(|f| f.text)));
        } else {
            if !self.matches_positionally(message, &fields) {
                return None;
            }
            let m = self.entries.len();
            for (k, f) in fields.iter().take(m).enumerate() {
                let text = if k + 1 == m && fields.len() > m {
                    message[f.start..].trim_end()
                } else {
                    f.text
                };
                owners.push((Some(k), text));
            }
        }
        Some(
            owners
                .into_iter()
                .enumerate()
                .map(|(i, (owner, text))| {
                    let name = match owner.map(|k| &self.entries[k]) {
                        Some(Entry::Field { name: Some(n), .. }) => format!("${n}"),
                        _ => format!("${}", i + 1),
                    };
                    (name, text.to_owned())
                })
                .collect(),
        )
    }

    /// Which entry covers each field (`None` for `...`) in a match, or `None` without one.
    /// Named fields take their earliest possible position: going backwards, each `...` takes
    /// as many fields as it can.
    fn assign_with_ellipsis(&self, fields: &[Field<'_>]) -> Option<Vec<Option<usize>>> {
        let n = fields.len();
        // reach[e][j]: the first `e` entries can cover exactly the first `j` fields.
        let mut reach = vec![vec![false; n + 1]];
        reach[0][0] = true;
        for entry in &self.entries {
            let prev = reach.last().expect("seeded");
            let mut next = vec![false; n + 1];
            match entry {
                Entry::Ellipsis => {
                    let mut seen = false;
                    for (r, x) in prev.iter().zip(next.iter_mut()) {
                        seen |= *r;
                        *x = seen;
                    }
                }
                Entry::Field { cond, .. } => {
                    for (j, f) in fields.iter().enumerate() {
                        next[j + 1] = prev[j] && field_ok(cond, f.text);
                    }
                }
            }
            reach.push(next);
        }
        if !reach[self.entries.len()][n] {
            return None;
        }
        let mut owners = vec![None; n];
        let mut j = n;
        for (e, entry) in self.entries.iter().enumerate().rev() {
            match entry {
                Entry::Ellipsis => {
                    j = (0..=j).find(|&k| reach[e][k]).expect("reachable");
                }
                Entry::Field { .. } => {
                    j -= 1;
                    owners[j] = Some(e);
                }
            }
        }
        Some(owners)
    }
}

#[cfg(test)]
mod tests {
    use super::split;
    use crate::PatternError;
    use crate::test_util::{err, m};

    /// The syntax page's space-delimited event.
    const APACHE: &str =
        "127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] \"GET /index.html HTTP/1.0\" 404 1534";

    /// The syntax page's events for ordered terms.
    const GET: &str = "INFO 09/25/2014 12:00:00 GET /service/resource/67 1200";
    const POST: &str = "INFO 09/25/2014 12:00:01 POST /service/resource/67/part/111 1310";
    const WARNING: &str = "WARNING 09/25/2014 12:00:02 Invalid user request";
    const ERROR: &str = "ERROR 09/25/2014 12:00:02 Failed to process request";

    fn extracted(pattern: &str, message: &str) -> Option<Vec<(String, String)>> {
        match crate::FilterPattern::parse(pattern).unwrap().kind {
            crate::Kind::Delimited(d) => d.extract(message),
            _ => panic!("not delimited"),
        }
    }

    fn pairs(v: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            v.iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn extraction_names_fields_as_the_old_syntax_page_shows() {
        // The old syntax page's example: unnamed fields and those `...` covers by position.
        assert_eq!(
            extracted("[..., request=*.html*, status_code=4*,]", APACHE),
            pairs(&[
                ("$1", "127.0.0.1"),
                ("$2", "Prod"),
                ("$3", "frank"),
                ("$4", "10/Oct/2000:13:25:15 -0700"),
                ("$request", "GET /index.html HTTP/1.0"),
                ("$status_code", "404"),
                ("$7", "1534"),
            ])
        );
        assert_eq!(
            extracted("[..., request=*.html*, status_code=5*,]", APACHE),
            None
        );
        // Without `...`, the last field takes the rest of the event.
        assert_eq!(
            extracted("[level, rest]", "ERROR 09/25 bad thing"),
            pairs(&[("$level", "ERROR"), ("$rest", "09/25 bad thing")])
        );
        assert_eq!(extracted("[a, b, c]", "only two"), None);
        // A named field between two ellipses takes its earliest match.
        assert_eq!(
            extracted("[..., code=4*, ...]", "x 404 y 410"),
            pairs(&[("$1", "x"), ("$code", "404"), ("$3", "y"), ("$4", "410")])
        );
    }

    #[test]
    fn splitting_groups_quotes_and_brackets() {
        let texts: Vec<&str> = split(APACHE).iter().map(|f| f.text).collect();
        assert_eq!(
            texts,
            [
                "127.0.0.1",
                "Prod",
                "frank",
                "10/Oct/2000:13:25:15 -0700",
                "GET /index.html HTTP/1.0",
                "404",
                "1534"
            ]
        );
        let texts: Vec<&str> = split("  a\t\"b c\"d [e  \"é\" [x")
            .iter()
            .map(|f| f.text)
            .collect();
        assert_eq!(texts, ["a", "b c", "d", "e  \"é\" [x"]);
        assert!(split("   ").is_empty());
        let texts: Vec<&str> = split("\"").iter().map(|f| f.text).collect();
        assert_eq!(texts, [""]);
    }

    #[test]
    fn the_documented_seven_field_pattern() {
        // Syntax page, "Writing filter patterns that match terms in a space-delimited log event".
        let p = r"[ip=%127\.0\.0\.[1-9]%, user, username, timestamp, request =*.html*, status_code = 4*, bytes]";
        assert!(m(p, APACHE));
        assert!(!m(p, &APACHE.replace("127.0.0.1", "127.0.0.0")));
        assert!(!m(p, &APACHE.replace("index.html", "index.php")));
        assert!(!m(p, &APACHE.replace(" 404 ", " 500 ")));
        assert!(m(
            "[..., request =*.html*, status_code = 4*, bytes]",
            APACHE
        ));
        let p = "[ip, user, username, timestamp, request =*.html*, status_code = 404 || status_code = 410, bytes]";
        assert!(m(p, APACHE));
        assert!(m(p, &APACHE.replace(" 404 ", " 410 ")));
        assert!(!m(p, &APACHE.replace(" 404 ", " 403 ")));
    }

    #[test]
    fn ordered_terms() {
        // Syntax page, "Example: Match terms in order" and the two after it.
        let p = "[w1=ERROR, w2]";
        assert!(m(p, ERROR));
        for e in [GET, POST, WARNING] {
            assert!(!m(p, e));
        }
        let p = "[w1=ERROR || w1=WARNING, w2]";
        assert!(m(p, ERROR) && m(p, WARNING) && !m(p, GET) && !m(p, POST));
        let p = "[w1!=ERROR && w1!=WARNING, w2]";
        assert!(!m(p, ERROR) && !m(p, WARNING) && m(p, GET) && m(p, POST));
    }

    #[test]
    fn regex_fields() {
        // Syntax page, "Match the top level item" / "Match the child level item in a resource
        // URI".
        let top = "[logLevel, date, time, method, url=%/service/resource/[0-9]+$%, response_time]";
        assert!(m(top, GET));
        assert!(!m(top, POST));
        assert!(!m(top, WARNING));
        let child = "[logLevel, date, time, method, url=%/service/resource/[0-9]+/part/[0-9]+$%, response_time]";
        assert!(!m(child, GET));
        assert!(m(child, POST));
        assert!(m("[level != %^INF%, ...]", ERROR));
        assert!(!m("[level != %^INF%, ...]", GET));
    }

    /// The old syntax page's Apache lines.
    const OLD: [&str; 3] = [
        "127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 1534",
        "127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] \"GET /apache_pb.gif HTTP/1.0\" 500 5324",
        "127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 4355",
    ];

    fn which(pattern: &str) -> Vec<usize> {
        (0..OLD.len()).filter(|&i| m(pattern, OLD[i])).collect()
    }

    #[test]
    fn old_page_examples() {
        assert_eq!(
            which("[ip, user, username, timestamp, request, status_code, bytes]"),
            [0, 1, 2]
        );
        assert_eq!(which("[..., status_code, bytes]"), [0, 1, 2]);
        assert_eq!(which("[ip, user, ..., status_code, bytes]"), [0, 1, 2]);
        assert_eq!(which("[ip, user, ...]"), [0, 1, 2]);
        assert_eq!(
            which("[ip, user, username, timestamp, request, status_code, bytes > 1000]"),
            [0, 1, 2]
        );
        assert_eq!(
            which("[ip, user, username, timestamp, request, status_code, bytes > 5000]"),
            [1]
        );
        assert_eq!(
            which("[ip, user, username, timestamp, request, status_code = 200, bytes]"),
            [0, 2]
        );
        assert_eq!(
            which("[ip, user, username, timestamp, request, status_code = 5*, bytes]"),
            [1]
        );
        assert_eq!(
            which("[ip, user, username, timestamp, request = *gif*, status_code = 4*, bytes]"),
            [0usize; 0]
        );
        assert_eq!(
            which(
                "[ip, user, username, timestamp, request, status_code = 5* && status_code != 503, bytes]"
            ),
            [1]
        );
        assert_eq!(
            which(
                "[ip, user, username, timestamp, request, status_code = 403 || status_code = 500, bytes]"
            ),
            [1]
        );
        // A trailing comma is a seventh, unnamed field.
        let line =
            "127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] \"GET /index.html HTTP/1.0\" 404 1534";
        assert!(m("[..., request=*.html*, status_code=4*,]", line));
        assert!(!m("[..., request=*.html*, status_code=4*]", line));
    }

    #[test]
    fn conditions_on_other_fields_are_refused() {
        // awsdocs/amazon-cloudwatch-logs-user-guide#21: the service answers "Invalid filter
        // pattern" for this old-page example.
        let e = err("[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000]");
        assert_eq!(e.to_string(), "Invalid filter pattern");
    }

    #[test]
    fn the_last_field_takes_the_rest_without_an_ellipsis() {
        assert!(m("[a]", "x y z"));
        // The rest is taken as written, inner spacing included.
        assert!(m("[a = \"x y z\"]", "x y z  "));
        assert!(!m("[a = \"x y z\"]", "x  y z"));
        assert!(!m("[a = x]", "x y"));
        assert!(m("[a = x, b]", "x y z"));
        assert!(!m("[a, b, c]", "x y"));
        assert!(!m("[a]", ""));
        assert!(m("[a, b = *z]", "x y z"));
        // With an ellipsis fields are exact.
        assert!(!m("[..., a = x]", "x y"));
        assert!(m("[..., a = y]", "x y"));
        assert!(m("[...]", ""));
        assert!(m("[a, ..., b]", "x y"));
        assert!(!m("[a, ..., b]", "x"));
        assert!(m("[..., a = 2, ..., b = 4, ...]", "1 2 3 4 5"));
        assert!(!m("[..., a = 4, ..., b = 2, ...]", "1 2 3 4 5"));
    }

    #[test]
    fn numeric_conditions_on_text_fields() {
        assert!(m("[a, b >= 1e3]", "x 1000"));
        assert!(!m("[a, b < 10]", "x -"));
        assert!(m("[a, b != 10]", "x -"));
        assert!(m("[a, b = 1534]", "x 1534"));
        assert!(m("[a, b = -]", "x -"));
        assert!(m("[a = \"two words\", b]", "\"two words\" y"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for p in [
            "[]",
            "[a b]",
            "[a =]",
            "[= ERROR]",
            "[a = 1 &&]",
            "[a > x]",
            "[a > %1%]",
            "[a = 1 b = 2]",
            "[(a = 1]",
            "[a = 1 || b = 2]",
            "[a = %x%, b = %y%, c = %z%]",
        ] {
            assert!(matches!(err(p), PatternError::Invalid { .. }), "{p}");
        }
        assert_eq!(err("[a, b/c]"), PatternError::InvalidCharacters("/".into()));
        assert_eq!(err("[.., a]"), PatternError::InvalidCharacters(".".into()));
        assert_eq!(err("[a-b]"), PatternError::InvalidCharacters("-".into()));
        assert_eq!(
            err("[a = x@y]"),
            PatternError::InvalidCharacters("@".into())
        );
        assert_eq!(
            err("[$.a = 1]"),
            PatternError::InvalidCharacters("$".into())
        );
    }

    #[test]
    fn parentheses_group_conditions() {
        let p = "[a, b = 1 && (c = 2 || c = 3)]";
        assert!(matches!(err(p), PatternError::Invalid { .. }));
        assert!(m("[a, (b = 1 || b = 2) && b != 3]", "x 2"));
        assert!(m("[a = %x% || a = %y%, ...]", "y"));
    }
}
