//! Garbage in, no panic out: random text, random token soup and mutated real queries are fed to
//! `Query::parse`, and whatever parses is run over a handful of awkward events.

use crate::{Event, MAX_RESULTS, Query};

/// xorshift64*: deterministic, so a failure reproduces; no dependency needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const TOKENS: &[&str] = &[
    "fields",
    "filter",
    "stats",
    "sort",
    "limit",
    "parse",
    "display",
    "dedup",
    "as",
    "by",
    "and",
    "or",
    "not",
    "like",
    "in",
    "asc",
    "desc",
    "|",
    ",",
    "(",
    ")",
    "[",
    "]",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=~",
    "@timestamp",
    "@message",
    "@logStream",
    "@log",
    "@ingestionTime",
    "a",
    "b.c",
    "items.0",
    "`x-y`",
    "\"s\"",
    "'q'",
    "\"*\"",
    "\"[*] *\"",
    "/re/",
    "/(?<n>\\w+)/",
    "/(/",
    "0",
    "1",
    "-1",
    "2.5",
    "1e3",
    "99999999999999999999",
    "5m",
    "1h",
    "0s",
    "3mo",
    "1q",
    "1y",
    "7x",
    "count",
    "count(*)",
    "sum",
    "avg",
    "min",
    "max",
    "pct",
    "stddev",
    "count_distinct",
    "earliest",
    "latest",
    "sortsFirst",
    "bin",
    "bin(5m)",
    "datefloor",
    "dateceil",
    "fromMillis",
    "toMillis",
    "strlen",
    "concat",
    "substr",
    "replace",
    "trim",
    "ltrim",
    "abs",
    "round",
    "greatest",
    "coalesce",
    "ispresent",
    "isempty",
    "isblank",
    "strcontains",
    "#",
    "\n",
    " ",
    "é",
    "`",
    "\"",
    "'",
    "\\",
    "!",
    ";",
    "{",
    "}",
    "$",
    "?",
];

const QUERIES: &[&str] = &[
    "fields @timestamp, @message | sort @timestamp desc | limit 25",
    "filter (duration>2000) | fields f1, f2, abs(f3-f4) as d",
    "parse @message \"user=*, method:*, latency := *\" as @user, @method, @latency | stats avg(@latency) by @method, @user",
    "parse @message /(?<NetworkInterface>eni-.*?) / | display NetworkInterface, @message",
    "stats count(*) as n, pct(latency, 95), stddev(latency) by bin(5m) | sort n desc",
    "fields strlen(@message) as len | stats sum(len)/1024 as kb by bin(1h) | stats max(kb)",
    "fields @timestamp, server | sort @timestamp desc | dedup server | limit 3",
    "filter @message like /(?i)error/ and not ispresent(x) or a in [1, \"b\"]",
    "fields concat(substr(@message, 1, 3), toupper(@logStream)) as c, datefloor(@timestamp, 1mo) as m, fromMillis(toMillis(@timestamp) + 1) as t",
    "fields greatest(a, 1, \"z\"), least(b), coalesce(q, r, 3), round(2.5 ^ 3 % 7, 1), trim(' x ', 'x')",
];

fn events() -> Vec<(i64, i64, String)> {
    vec![
        (0, 0, String::new()),
        (
            1_704_164_645_678,
            1_704_164_645_700,
            r#"{"a": 1, "b": {"c": [1, "two", null, {"d": true}]}, "@x": "y", "latency": 12.5, "server": "s1"}"#.to_string(),
        ),
        (i64::MAX, i64::MIN, "user=bob, method:GET, latency := 3".to_string()),
        (i64::MIN, i64::MAX, "2 eni-123 x é ✓ \u{0} \n second line".to_string()),
        (-1, 1, "{\"a\": \"1e400\", \"latency\": -0.0, \"server\": \"s1\"}".to_string()),
        (42, 42, format!("{}{}", "[".repeat(200), "]".repeat(200))),
    ]
}

fn check(query: &str, events: &[(i64, i64, String)]) {
    let Ok(q) = Query::parse(query) else {
        return;
    };
    let out = q.run(events.iter().map(|(t, i, m)| Event {
        timestamp_ms: *t,
        ingestion_ms: *i,
        message: m,
        log_stream: "stream",
        log_group: "group",
    }));
    assert!(out.rows.len() <= MAX_RESULTS, "{query:?}");
    assert!(out.records_matched <= out.records_scanned, "{query:?}");
    assert_eq!(out.records_scanned, events.len() as f64);
    for row in &out.rows {
        for (field, _) in row {
            assert!(q.result_fields().contains(field), "{query:?}: {field}");
        }
    }
}

#[test]
fn random_text_never_panics() {
    let ev = events();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let alphabet: Vec<char> = "abcxyz019@._`'\"/\\|,()[]{}+-*%^=!<>~# \n\téλ✓*?$:;"
        .chars()
        .collect();
    for _ in 0..3_000 {
        let len = rng.below(60);
        let text: String = (0..len).map(|_| *rng.pick(&alphabet)).collect();
        check(&text, &ev);
    }
}

#[test]
fn random_token_soup_never_panics() {
    let ev = events();
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut parsed = 0;
    for _ in 0..6_000 {
        let n = 1 + rng.below(14);
        let mut q = String::new();
        // Starting with a command keyword makes it likelier to get past the first token.
        if rng.below(3) > 0 {
            q.push_str(TOKENS[rng.below(8)]);
            q.push(' ');
        }
        for _ in 0..n {
            q.push_str(TOKENS[rng.below(TOKENS.len())]);
            if rng.below(3) > 0 {
                q.push(' ');
            }
        }
        parsed += usize::from(Query::parse(&q).is_ok());
        check(&q, &ev);
    }
    // The generator must reach the engine, not only the parser's error paths.
    assert!(parsed > 50, "only {parsed} random queries parsed");
}

#[test]
fn mutated_queries_never_panic() {
    let ev = events();
    for q in QUERIES {
        assert!(Query::parse(q).is_ok(), "{q}");
        check(q, &ev);
    }
    let mut rng = Rng(0x94D0_49BB_1331_11EB);
    for _ in 0..6_000 {
        let mut chars: Vec<char> = (*rng.pick(QUERIES)).chars().collect();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(chars.len() + 1);
            match rng.below(3) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 => {
                    let tok: Vec<char> = (*rng.pick(TOKENS)).chars().collect();
                    chars.splice(at..at, tok);
                }
                _ if at < chars.len() => {
                    chars[at] = *rng.pick(&['(', ')', '|', '"', '/', ' ', '*', 'x', '5'])
                }
                _ => {}
            }
        }
        let q: String = chars.into_iter().collect();
        check(&q, &ev);
    }
}

#[test]
fn hostile_shapes_never_panic() {
    let ev = events();
    for q in [
        format!("filter {}", "(".repeat(100_000)),
        format!("fields {}", "-".repeat(100_000)),
        format!("filter a{}", " or a".repeat(3_000)),
        format!("fields a{}", "+a".repeat(3_000)),
        format!("fields concat({})", vec!["a"; 3_000].join(",")),
        format!("filter a in [{}]", vec!["1"; 3_000].join(",")),
        format!("parse @message \"{}\" as {}", "*".repeat(500), (0..500).map(|i| format!("f{i}")).collect::<Vec<_>>().join(",")),
        format!("filter @message like /{}/", "(a*)*".repeat(200)),
        format!("filter @message like /{}/", "a{1000}".repeat(50)),
        "stats count(*) by bin(18446744073709551615ms)".to_string(),
        "stats count(*) by bin(9223372036854775807w), bin(99999999999y)".to_string(),
        "fields datefloor(@timestamp, 99999999999y), dateceil(@ingestionTime, 1q), fromMillis(-99999999999999999999999999)".to_string(),
        "fields substr(@message, 99999999999999999999999, -99999999999999999999999), round(99999999999999999999999, 400), round(1, -400), 99999999999999999999 ^ 99999999999999999999".to_string(),
        "limit 99999999999999999999999".to_string(),
        "\u{feff}fields a".to_string(),
    ] {
        check(&q, &ev);
    }
}
