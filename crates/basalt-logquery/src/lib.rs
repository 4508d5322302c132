//! The CloudWatch Logs Insights query language (Logs Insights QL): a parser and an in-memory
//! engine behind `StartQuery` and `GetQueryResults`.
//!
//! The reference is AWS's "CloudWatch Logs Insights language query syntax"
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html>) and the
//! pages under it, one per command; comments cite them as "the <command> page".
//!
//! Supported: the commands `fields`, `filter`, `stats`, `sort`, `limit`, `parse` (glob and
//! regular-expression forms), `display` and `dedup`, separated by `|` and in any order;
//! `#` comments; the system fields `@timestamp`, `@message`, `@ingestionTime`, `@logStream`
//! and `@log`, and the fields of JSON messages (`a.b`, `a.0`); arithmetic, comparison,
//! boolean, `like`/`=~`/`not like` and `in`/`not in` operators; the string, numeric, general
//! and datetime functions listed in `ast::Func`; and the aggregates `count`, `count_distinct`,
//! `sum`, `avg`, `min`, `max`, `pct`, `stddev`, `earliest`, `latest`, `sortsFirst` and
//! `sortsLast`, also inside arithmetic (`sum(bytes)/1024 as kb`).
//!
//! Not supported, and refused as malformed rather than silently ignored: the commands that
//! need machine learning or other services (`pattern`, `anomaly`, `diff`, `unmask`,
//! `filterIndex`, `lookup`, `SOURCE`, ...), `parse` in multi-match, logfmt and CSV modes, and
//! the JSON, IP-address and `now()` functions (`now()` would make results depend on the clock).
//! Regular expressions use Rust's `regex` syntax, which lacks look-around and back-references.
//!
//! Parsing does every check, so `run` cannot fail and never panics.

mod ast;
mod error;
mod eval;
mod exec;
mod expr;
mod lexer;
mod parser;
mod row;
mod stats;
mod time;
mod value;

pub use error::QueryError;

/// Most rows a query returns: "If you omit `limit`, the query will return as many as 10,000
/// log events in the results" (the limit page); a larger `limit` is cut to this too.
pub const MAX_RESULTS: usize = 10_000;

/// One log event as Insights sees it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub timestamp_ms: i64,
    pub ingestion_ms: i64,
    pub message: &'a str,
    pub log_stream: &'a str,
    /// The log group's name; `@log` adds the account ID in front when `run_in_account` is told
    /// it.
    pub log_group: &'a str,
}

/// A parsed query, ready to run over any number of event sets.
///
/// ```
/// use basalt_logquery::{Event, Query};
///
/// let q = Query::parse("filter level = \"ERROR\" | stats count(*) as errors by bin(1h)").unwrap();
/// let event = |ts, message| Event {
///     timestamp_ms: ts,
///     ingestion_ms: ts,
///     message,
///     log_stream: "web-1",
///     log_group: "/app",
/// };
/// let out = q.run([
///     event(1_704_164_645_678, r#"{"level": "ERROR"}"#),
///     event(1_704_164_700_000, r#"{"level": "INFO"}"#),
/// ]);
/// assert_eq!(
///     out.rows,
///     [[
///         ("bin(1h)".to_string(), "2024-01-02 03:00:00.000".to_string()),
///         ("errors".to_string(), "1".to_string()),
///     ]]
/// );
/// assert_eq!((out.records_matched, out.records_scanned), (1.0, 2.0));
///
/// let e = Query::parse("sort bin(1d) desc").unwrap_err();
/// assert_eq!(e.to_string(), "unexpected symbol found ( at line 1 and position 8");
/// ```
#[derive(Debug, Clone)]
pub struct Query {
    commands: Vec<ast::Command>,
    output: Vec<String>,
}

/// What a query produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryOutput {
    /// Result rows. Each holds `(field, value)` pairs in the order the query names the fields,
    /// leaving out fields the row has no value for, as `GetQueryResults` does.
    pub rows: Vec<Vec<(String, String)>>,
    /// Events that passed the query's filters (`recordsMatched`).
    pub records_matched: f64,
    /// Events read (`recordsScanned`).
    pub records_scanned: f64,
    /// Bytes of the messages read (`bytesScanned`).
    pub bytes_scanned: f64,
}

impl Query {
    /// Parses and checks `text`, refusing it with the service's `MalformedQueryException`
    /// message when it is not a valid query.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let commands = parser::parse(text)?;
        let output = exec::output_fields(&commands);
        Ok(Query { commands, output })
    }

    /// The fields result rows may hold, in order.
    pub fn result_fields(&self) -> &[String] {
        &self.output
    }

    /// Runs over events (any order); returns result rows, each row a list of (field, value)
    /// pairs in the order Insights returns them, values rendered as Insights renders them
    /// (strings; timestamps as "2024-01-02 03:04:05.678"), plus statistics.
    ///
    /// `@log` holds the bare log group name, since no account is known here; see
    /// `run_in_account`.
    pub fn run<'a>(&self, events: impl IntoIterator<Item = Event<'a>>) -> QueryOutput {
        self.execute(None, events)
    }

    /// `run`, with `@log` in the documented `account-id:log-group-name` form.
    pub fn run_in_account<'a>(
        &self,
        account_id: &str,
        events: impl IntoIterator<Item = Event<'a>>,
    ) -> QueryOutput {
        self.execute(Some(account_id), events)
    }

    #[allow(clippy::cast_precision_loss)]
    fn execute<'a>(
        &self,
        account_id: Option<&str>,
        events: impl IntoIterator<Item = Event<'a>>,
    ) -> QueryOutput {
        let mut bytes = 0usize;
        let mut rows: Vec<row::Row> = events
            .into_iter()
            .map(|e| {
                bytes = bytes.saturating_add(e.message.len());
                row::Row::from_event(&e, account_id)
            })
            .collect();
        let scanned = rows.len();
        // Unsorted results come newest first, the order the dedup page calls "the default
        // descending sort order using @timestamp"; the sort is stable, so events with equal
        // timestamps keep the order they were given in.
        rows.sort_by_key(|r| std::cmp::Reverse(r.ts));
        let outcome = exec::execute(&self.commands, rows);
        let rows = outcome
            .rows
            .iter()
            .take(MAX_RESULTS)
            .map(|r| {
                self.output
                    .iter()
                    .filter_map(|f| r.get(f).render().map(|v| (f.clone(), v)))
                    .collect()
            })
            .collect();
        QueryOutput {
            rows,
            records_matched: outcome.matched as f64,
            records_scanned: scanned as f64,
            bytes_scanned: bytes as f64,
        }
    }
}

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;
