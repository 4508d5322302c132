//! Running the commands in order, each over the rows the previous one left.

use std::cmp::Ordering;
use std::collections::HashSet;

use crate::ast::{Command, ParseSpec};
use crate::eval::eval;
use crate::row::Row;
use crate::stats;
use crate::value::sort_cmp;

/// What the pipeline left, and how many event rows matched the query's filters: the rows that
/// reached the first `stats`, `limit` or `dedup` (those stop counting events one by one), or
/// the end.
pub(crate) struct Outcome {
    pub rows: Vec<Row>,
    pub matched: usize,
}

pub(crate) fn execute(commands: &[Command], mut rows: Vec<Row>) -> Outcome {
    let mut matched = None;
    for command in commands {
        if matches!(
            command,
            Command::Stats(_) | Command::Limit(_) | Command::Dedup(_)
        ) && matched.is_none()
        {
            matched = Some(rows.len());
        }
        match command {
            Command::Fields(items) => {
                for row in &mut rows {
                    // Left to right, so an item may use an alias made before it.
                    for item in items {
                        let v = eval(&item.expr, row, &[]);
                        row.set(&item.name, v);
                    }
                }
            }
            Command::Filter(cond) => rows.retain(|row| eval(cond, row, &[]).truthy()),
            Command::Parse(spec) => {
                for row in &mut rows {
                    parse_into(spec, row);
                }
            }
            Command::Stats(s) => rows = stats::run(s, rows),
            Command::Sort(keys) => rows.sort_by(|a, b| {
                keys.iter()
                    .map(|k| sort_cmp(a.get(&k.field), b.get(&k.field), k.descending))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            }),
            Command::Limit(n) => rows.truncate(*n),
            Command::Dedup(fields) => dedup(fields, &mut rows),
            Command::Display(_) => {}
        }
    }
    let matched = matched.unwrap_or(rows.len());
    Outcome { rows, matched }
}

/// "If a log event doesn't match the specified pattern, you still see it in the results, but
/// without the extracted fields."
fn parse_into(spec: &ParseSpec, row: &mut Row) {
    let Some(text) = row.get(&spec.source).text().map(|t| t.into_owned()) else {
        return;
    };
    let Some(caps) = spec.regex.captures(&text) else {
        return;
    };
    for (group, name) in &spec.outputs {
        if let Some(m) = caps.get(*group) {
            row.set(name, crate::value::Value::Str(m.as_str().to_string()));
        }
    }
}

/// Keeps the first row, in the current order, for each combination of values; "Log events
/// with null values for any of the specified fields are retained."
fn dedup(fields: &[String], rows: &mut Vec<Row>) {
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    rows.retain(|row| {
        let key: Option<Vec<String>> = fields.iter().map(|f| row.get(f).render()).collect();
        key.is_none_or(|k| seen.insert(k))
    });
}

/// The fields result rows show, in order. `fields` and `parse` add theirs; `stats` replaces
/// everything before it with its columns; the last `display` overrides all of it. A query
/// with neither `fields` nor `stats` shows `@timestamp` and `@message` first, as the query
/// syntax page says of `filter (duration>2000)`.
pub(crate) fn output_fields(commands: &[Command]) -> Vec<String> {
    if let Some(Command::Display(names)) = commands
        .iter()
        .rev()
        .find(|c| matches!(c, Command::Display(_)))
    {
        return unique(names.iter().cloned());
    }
    let mut out: Vec<String> = Vec::new();
    let mut explicit = false;
    for c in commands {
        match c {
            Command::Fields(items) => {
                explicit = true;
                out.extend(items.iter().map(|i| i.name.clone()));
            }
            Command::Parse(spec) => out.extend(spec.outputs.iter().map(|(_, n)| n.clone())),
            Command::Stats(s) => {
                explicit = true;
                out.clear();
                out.extend(s.by.iter().chain(&s.items).map(|i| i.name.clone()));
            }
            _ => {}
        }
    }
    if !explicit {
        out.splice(0..0, ["@timestamp".to_string(), "@message".to_string()]);
    }
    unique(out.into_iter())
}

fn unique(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    names.filter(|n| seen.insert(n.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(q: &str) -> Vec<String> {
        output_fields(&crate::parser::parse(q).unwrap_or_else(|e| panic!("{q}: {e}")))
    }

    #[test]
    fn result_fields() {
        assert_eq!(out("filter (duration>2000)"), ["@timestamp", "@message"]);
        assert_eq!(
            out("fields f1, f2, f3 | filter (duration>2000)"),
            ["f1", "f2", "f3"]
        );
        assert_eq!(
            out("fields @timestamp | fields @message, @timestamp, concat(a, b) as c"),
            ["@timestamp", "@message", "c"]
        );
        assert_eq!(
            out("parse @message \"[*] *\" as level, text"),
            ["@timestamp", "@message", "level", "text"]
        );
        // The display page's example.
        assert_eq!(
            out(
                "fields @message | parse @message \"[*] *\" as loggingType, loggingMessage | filter loggingType = \"ERROR\" | display loggingMessage"
            ),
            ["loggingMessage"]
        );
        assert_eq!(out("display a | display b, b"), ["b"]);
        assert_eq!(
            out("fields x | stats count(*) as n, avg(x) by bin(5m), y"),
            ["bin(5m)", "y", "n", "avg(x)"]
        );
        assert_eq!(
            out("stats count(*) as n by y | fields n * 2 as double"),
            ["y", "n", "double"]
        );
    }
}
