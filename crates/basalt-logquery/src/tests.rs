//! End-to-end queries over events, mostly the examples on the AWS pages, which each test names.

use crate::{Event, MAX_RESULTS, Query, QueryOutput};

/// 2024-01-02 03:04:05.678 UTC.
const T0: i64 = 1_704_164_645_678;
const MIN: i64 = 60_000;

fn run_on(q: &str, events: &[(i64, &str)]) -> QueryOutput {
    let query = Query::parse(q).unwrap_or_else(|e| panic!("{q:?}: {e}"));
    query.run(events.iter().map(|(ts, m)| Event {
        timestamp_ms: *ts,
        ingestion_ms: *ts + 1_000,
        message: m,
        log_stream: "stream-1",
        log_group: "/my/group",
    }))
}

/// Rows as `field=value` strings joined by spaces, for compact assertions.
fn lines(q: &str, events: &[(i64, &str)]) -> Vec<String> {
    run_on(q, events)
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|(f, v)| format!("{f}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn durations() -> Vec<(i64, String)> {
    [1500, 2500, 900, 3100]
        .iter()
        .enumerate()
        .map(|(i, d)| {
            (
                T0 + i as i64 * 1000,
                format!(
                    r#"{{"duration": {d}, "f1": {i}, "f2": "v{i}", "f3": {}}}"#,
                    d / 100
                ),
            )
        })
        .collect()
}

fn refs(v: &[(i64, String)]) -> Vec<(i64, &str)> {
    v.iter().map(|(t, m)| (*t, m.as_str())).collect()
}

#[test]
fn filter_alone_shows_timestamp_and_message_newest_first() {
    // Query syntax page: "`filter (duration>2000)` is also a valid query, but ... the results
    // show the @timestamp and all log data in the @message field".
    let ev = durations();
    let out = run_on("filter (duration>2000)", &refs(&ev));
    assert_eq!(out.rows.len(), 2);
    assert_eq!(
        out.rows[0],
        [
            (
                "@timestamp".to_string(),
                "2024-01-02 03:04:08.678".to_string()
            ),
            ("@message".to_string(), ev[3].1.clone()),
        ]
    );
    assert_eq!(out.rows[1][1].1, ev[1].1);
    assert_eq!(out.records_matched, 2.0);
    assert_eq!(out.records_scanned, 4.0);
    let bytes: usize = ev.iter().map(|e| e.1.len()).sum();
    assert_eq!(out.bytes_scanned, bytes as f64);
}

#[test]
fn fields_and_filter_examples() {
    // Query syntax page: `fields f1, f2, f3 | filter (duration>2000)` and
    // `fields f1, f2 | filter (f1=10 or f3>25)`.
    let ev = durations();
    assert_eq!(
        lines("fields f1, f2, f3 | filter (duration>2000)", &refs(&ev)),
        ["f1=3 f2=v3 f3=31", "f1=1 f2=v1 f3=25"]
    );
    assert_eq!(
        lines("fields f1, f2 | filter (f1=0 or f3>25)", &refs(&ev)),
        ["f1=3 f2=v3", "f1=0 f2=v0"]
    );
    assert_eq!(
        lines(
            "fields abs(f3 - 20) as d, f2 | sort d asc | limit 2",
            &refs(&ev)
        ),
        ["d=5 f2=v1", "d=5 f2=v0"]
    );
}

#[test]
fn regex_and_substring_filters() {
    // Query syntax page: `filter statusCode like /2\d\d/` and the Exception examples.
    let ev = [
        (T0, r#"{"statusCode": 204, "f1": "java.lang.Exception: x"}"#),
        (T0 + 1, r#"{"statusCode": 404, "f1": "exception here"}"#),
        (T0 + 2, r#"{"statusCode": 200, "f1": "Exception"}"#),
    ];
    let count = |q: &str| run_on(q, &ev).rows.len();
    assert_eq!(count("fields f1 | filter statusCode like /2\\d\\d/"), 2);
    assert_eq!(count("fields f1 | filter f1 like /Exception/"), 2);
    assert_eq!(count("fields f1 | filter f1 =~ /Exception/"), 2);
    assert_eq!(count("fields f1 | filter f1 like \"Exception\""), 2);
    assert_eq!(count("fields f1 | filter f1 like /(?i)Exception/"), 3);
    assert_eq!(count("fields f1 | filter f1 =~ /^(?i)Exception$/"), 1);
    assert_eq!(count("filter @message not like /404/"), 2);
    assert_eq!(count("filter statusCode in [200, 404]"), 2);
    assert_eq!(count("filter @logStream in [\"stream-1\"]"), 3);
}

#[test]
fn sort_and_limit() {
    // The limit page: "returns only the 25 most recent log events".
    let ev: Vec<(i64, String)> = (0..40).map(|i| (T0 + i * MIN, format!("m{i}"))).collect();
    let out = run_on(
        "fields @timestamp, @message | sort @timestamp desc | limit 25",
        &refs(&ev),
    );
    assert_eq!(out.rows.len(), 25);
    assert_eq!(out.rows[0][1].1, "m39");
    assert_eq!(out.rows[24][1].1, "m15");
    assert_eq!(out.records_matched, 40.0);
    let asc = lines(
        "fields @message | sort @timestamp asc | limit 2",
        &refs(&ev),
    );
    assert_eq!(asc, ["@message=m0", "@message=m1"]);
    // Natural order and several keys.
    let ev = [
        (T0, r#"{"k": "a10", "n": 2}"#),
        (T0 + 1, r#"{"k": "a9", "n": 1}"#),
        (T0 + 2, r#"{"k": "a9", "n": 3}"#),
        (T0 + 3, r#"{"n": 0}"#),
    ];
    assert_eq!(
        lines("fields k, n | sort k asc, n desc", &ev),
        ["k=a9 n=3", "k=a9 n=1", "k=a10 n=2", "n=0"]
    );
}

#[test]
fn at_most_ten_thousand_rows() {
    let ev: Vec<(i64, &str)> = (0..10_005).map(|i| (T0 + i, "x")).collect();
    assert_eq!(run_on("fields @message", &ev).rows.len(), MAX_RESULTS);
    assert_eq!(
        run_on("fields @message | limit 20000", &ev).rows.len(),
        MAX_RESULTS
    );
    assert_eq!(run_on("fields @message | limit 0", &ev).rows.len(), 0);
}

#[test]
fn parse_glob_then_stats() {
    // The parse page's first example.
    let ev = [
        (T0, "user=alice, method:GET, latency := 10"),
        (T0 + 1, "user=alice, method:GET, latency := 30"),
        (T0 + 2, "user=bob, method:PUT, latency := 7"),
        (T0 + 3, "no match here"),
    ];
    assert_eq!(
        lines(
            "parse @message \"user=*, method:*, latency := *\" as @user, @method, @latency | stats avg(@latency) by @method, @user",
            &ev
        ),
        [
            "@method=GET @user=alice avg(@latency)=20",
            "@method=PUT @user=bob avg(@latency)=7",
            // The event the pattern missed forms a group with no values.
            ""
        ]
    );
    // Its regex twin.
    assert_eq!(
        lines(
            "parse @message /user=(?<user2>.*?), method:(?<method2>.*?), latency := (?<latency2>.*?)$/ | stats avg(latency2) by method2, user2",
            &ev
        ),
        [
            "method2=GET user2=alice avg(latency2)=20",
            "method2=PUT user2=bob avg(latency2)=7",
            ""
        ]
    );
}

#[test]
fn parse_keeps_unmatched_events_and_chains() {
    // Parse page: an event that does not match is still in the results, without the fields.
    let ev = [
        (T0, "[ERROR] disk full"),
        (T0 + 1, "plain"),
        (T0 + 2, "url=/api/v2/users/42"),
    ];
    assert_eq!(
        lines(
            "parse @message \"[*] *\" as level, text | fields @message",
            &ev
        ),
        [
            "@message=url=/api/v2/users/42",
            "@message=plain",
            "level=ERROR text=disk full @message=[ERROR] disk full"
        ]
    );
    assert_eq!(
        lines(
            "parse @message \"url=*\" as url | parse url \"/api/*/users/*\" as apiVersion, userId | display apiVersion, userId",
            &ev
        ),
        ["apiVersion=v2 userId=42", "", ""]
    );
    // The VPC flow log example extracts the ENI with a named group.
    let ev = [(
        T0,
        "2 123456789010 eni-1235b8ca123456789 172.31.16.139 ACCEPT OK",
    )];
    assert_eq!(
        lines(
            "parse @message /(?<NetworkInterface>eni-.*?) / | display NetworkInterface, @message",
            &ev
        ),
        [
            "NetworkInterface=eni-1235b8ca123456789 @message=2 123456789010 eni-1235b8ca123456789 172.31.16.139 ACCEPT OK"
        ]
    );
}

#[test]
fn display_example() {
    // The display page's example.
    let ev = [
        (T0, "[ERROR] A very strange error occurred!"),
        (T0 + 1, "[INFO] all good"),
    ];
    assert_eq!(
        lines(
            "fields @message | parse @message \"[*] *\" as loggingType, loggingMessage | filter loggingType = \"ERROR\" | display loggingMessage",
            &ev
        ),
        ["loggingMessage=A very strange error occurred!"]
    );
}

#[test]
fn dedup_example() {
    // The dedup page: the most recent event per server; events without `server` are kept.
    let ev = [
        (
            T0,
            r#"{"server": "a", "severity": "low", "message": "old a"}"#,
        ),
        (
            T0 + 1,
            r#"{"server": "b", "severity": "high", "message": "b"}"#,
        ),
        (
            T0 + 2,
            r#"{"server": "a", "severity": "high", "message": "new a"}"#,
        ),
        (T0 + 3, r#"{"severity": "x", "message": "no server 1"}"#),
        (T0 + 4, r#"{"severity": "x", "message": "no server 2"}"#),
    ];
    let out = lines(
        "fields @timestamp, server, severity, message | sort @timestamp desc | dedup server",
        &ev,
    );
    let messages: Vec<&str> = out
        .iter()
        .map(|l| l.rsplit("message=").next().unwrap())
        .collect();
    assert_eq!(messages, ["no server 2", "no server 1", "new a", "b"]);
    let out = run_on("fields server | dedup server | limit 1", &ev);
    assert_eq!(out.rows.len(), 1);
    assert_eq!(out.records_matched, 5.0);
}

#[test]
fn stats_by_bin_is_oldest_first() {
    // The stats page: `stats count(*) by bin(5m)`-style time series.
    let ev: Vec<(i64, &str)> = [0, 1, 6, 7, 8, 21]
        .iter()
        .map(|m| (T0 + m * MIN, "x"))
        .collect();
    assert_eq!(
        lines("stats count(*) by bin(5m)", &ev),
        [
            "bin(5m)=2024-01-02 03:00:00.000 count(*)=1",
            "bin(5m)=2024-01-02 03:05:00.000 count(*)=1",
            "bin(5m)=2024-01-02 03:10:00.000 count(*)=3",
            "bin(5m)=2024-01-02 03:25:00.000 count(*)=1"
        ]
    );
    let out = run_on("stats count(*) as n by bin(1h) as hour | sort n desc", &ev);
    assert_eq!(
        out.rows,
        [[
            ("hour".to_string(), "2024-01-02 03:00:00.000".to_string()),
            ("n".to_string(), "6".to_string())
        ]]
    );
    assert_eq!(out.records_matched, 6.0);
}

#[test]
fn aggregate_functions() {
    let ev = [
        (T0, r#"{"ip": "1.1.1.1", "latency": 10, "level": "INFO"}"#),
        (
            T0 + 1,
            r#"{"ip": "1.1.1.1", "latency": 20, "level": "ERROR"}"#,
        ),
        (
            T0 + 2,
            r#"{"ip": "2.2.2.2", "latency": 30, "level": "INFO"}"#,
        ),
        (T0 + 3, r#"{"ip": "3.3.3.3", "level": "INFO"}"#),
        (
            T0 + 4,
            r#"{"ip": "3.3.3.3", "latency": 40, "level": "WARN"}"#,
        ),
    ];
    let q = "stats count(*) as all, count(latency) as withLatency, count_distinct(ip) as ips, \
             sum(latency) as total, avg(latency) as mean, min(latency) as lo, max(latency) as hi, \
             pct(latency, 50) as p50, pct(latency, 95) as p95, stddev(latency) as sd, \
             earliest(level) as first, latest(level) as last, sortsFirst(level) as a, sortsLast(level) as z";
    assert_eq!(
        lines(q, &ev),
        [
            "all=5 withLatency=4 ips=3 total=100 mean=25 lo=10 hi=40 p50=20 p95=40 \
          sd=12.909944487358056 first=INFO last=WARN a=ERROR z=WARN"
        ]
    );
    assert_eq!(
        lines("stats count(*) by level", &ev),
        [
            "level=ERROR count(*)=1",
            "level=INFO count(*)=3",
            "level=WARN count(*)=1"
        ]
    );
    // Arithmetic over aggregates, and grouping by an absent field.
    assert_eq!(
        lines("stats sum(latency) / count(*) * 2 as x by nope", &ev),
        ["x=40"]
    );
    assert_eq!(
        lines("stats max(@timestamp) as newest", &ev),
        ["newest=2024-01-02 03:04:05.682"]
    );
    // No events, no aggregate row.
    assert!(lines("stats count(*)", &[]).is_empty());
}

#[test]
fn aliases_examples() {
    // Query syntax page, "Using aliases in queries".
    let ev = [
        (T0, r#"{"myField": -4, "myField2": "a", "f1": 1}"#),
        (T0 + 1, r#"{"myField": 2, "myField2": "b", "f1": 5}"#),
    ];
    assert_eq!(
        lines("fields abs(myField) as AbsoluteValuemyField, myField2", &ev),
        [
            "AbsoluteValuemyField=2 myField2=b",
            "AbsoluteValuemyField=4 myField2=a"
        ]
    );
    assert_eq!(
        lines(
            "stats avg(f1) as myAvgF1 by myField2 | sort myAvgF1 desc",
            &ev
        ),
        ["myField2=b myAvgF1=5", "myField2=a myAvgF1=1"]
    );
}

#[test]
fn two_stats_commands() {
    // The stats page's example of a second stats over the first one's results.
    let ev: Vec<(i64, String)> = (0..10)
        .map(|i| {
            (
                T0 + i * MIN,
                "x".repeat(1024 * 1024 * (1 + i as usize % 2) / 4),
            )
        })
        .collect();
    let q = "FIELDS strlen(@message) AS message_length \
             | STATS sum(message_length)/1024/1024 as logs_mb BY bin(5m) \
             | STATS max(logs_mb) AS peak_ingest_mb, min(logs_mb) AS min_ingest_mb, avg(logs_mb) AS avg_ingest_mb";
    // Events alternate between a quarter and a half MiB. The 03:00 bin holds one quarter
    // (03:04), the 03:05 bin five events (2 MiB), the 03:10 bin four (1.5 MiB).
    assert_eq!(
        lines(q, &refs(&ev)),
        ["peak_ingest_mb=2 min_ingest_mb=0.25 avg_ingest_mb=1.25"]
    );
}

#[test]
fn vpc_top_talkers() {
    // The sort page: "stats sum(packets) as packetsTransferred by srcAddr, dstAddr
    // | sort packetsTransferred desc | limit 15".
    let ev = [
        (
            T0,
            r#"{"srcAddr": "10.0.0.1", "dstAddr": "10.0.0.2", "packets": 5}"#,
        ),
        (
            T0 + 1,
            r#"{"srcAddr": "10.0.0.1", "dstAddr": "10.0.0.2", "packets": 7}"#,
        ),
        (
            T0 + 2,
            r#"{"srcAddr": "10.0.0.3", "dstAddr": "10.0.0.2", "packets": 20}"#,
        ),
        (
            T0 + 3,
            r#"{"srcAddr": "10.0.0.4", "dstAddr": "10.0.0.9", "packets": 1}"#,
        ),
    ];
    assert_eq!(
        lines(
            "stats sum(packets) as packetsTransferred by srcAddr, dstAddr | sort packetsTransferred desc | limit 2",
            &ev
        ),
        [
            "srcAddr=10.0.0.3 dstAddr=10.0.0.2 packetsTransferred=20",
            "srcAddr=10.0.0.1 dstAddr=10.0.0.2 packetsTransferred=12"
        ]
    );
}

#[test]
fn system_fields_and_nested_json() {
    let ev = [(
        T0,
        r#"{"userIdentity": {"type": "IAMUser"}, "items": [{"id": "i-1"}]}"#,
    )];
    let q = Query::parse(
        "fields @log, @logStream, @ingestionTime, userIdentity.type, items.0.id | filter userIdentity.type = \"IAMUser\"",
    )
    .unwrap();
    let event = Event {
        timestamp_ms: ev[0].0,
        ingestion_ms: ev[0].0 + 5,
        message: ev[0].1,
        log_stream: "s",
        log_group: "/g",
    };
    let row = |out: QueryOutput| -> Vec<String> {
        out.rows[0]
            .iter()
            .map(|(f, v)| format!("{f}={v}"))
            .collect()
    };
    assert_eq!(
        row(q.run_in_account("123456789012", [event])),
        [
            "@log=123456789012:/g",
            "@logStream=s",
            "@ingestionTime=2024-01-02 03:04:05.683",
            "userIdentity.type=IAMUser",
            "items.0.id=i-1"
        ]
    );
    assert_eq!(row(q.run([event]))[0], "@log=/g");
    assert_eq!(q.result_fields()[0], "@log");
}

#[test]
fn missing_fields_are_left_out_of_rows() {
    let ev = [(T0, r#"{"a": 1}"#), (T0 + 1, r#"{"b": 2}"#)];
    assert_eq!(lines("fields a, b, c", &ev), ["b=2", "a=1"]);
    assert_eq!(lines("fields nothing", &ev), ["", ""]);
    assert_eq!(
        lines(
            "fields ispresent(a) as has_a, isempty(a) as no_a | stats sum(has_a) as n",
            &ev
        ),
        ["n=1"]
    );
}

#[test]
fn events_with_equal_timestamps_keep_their_order() {
    let ev = [(T0, "first"), (T0, "second"), (T0 - 1, "older")];
    assert_eq!(
        lines("fields @message", &ev),
        ["@message=first", "@message=second", "@message=older"]
    );
}

#[test]
fn commands_compose_in_any_order() {
    let ev = [
        (T0, r#"{"level": "INFO", "host": "a"}"#),
        (T0 + 1, r#"{"level": "ERROR", "host": "a"}"#),
        (T0 + 2, r#"{"level": "ERROR", "host": "b"}"#),
        (T0 + 3, r#"{"level": "ERROR", "host": "b"}"#),
    ];
    // A column named after its expression is reached with backticks.
    assert_eq!(
        lines("stats count(*) by level | sort `count(*)` desc", &ev),
        ["level=ERROR count(*)=3", "level=INFO count(*)=1"]
    );
    assert_eq!(
        lines(
            "stats count(*) as n by host | filter n > 2 - 1 | fields n * 10 as tens",
            &ev
        ),
        ["host=a n=2 tens=20", "host=b n=2 tens=20"]
    );
    // A limit before stats aggregates only what it let through.
    let out = run_on("limit 3 | stats count(*) as n", &ev);
    assert_eq!(out.rows, [[("n".to_string(), "3".to_string())]]);
    assert_eq!(out.records_matched, 4.0);
    assert_eq!(
        lines("fields host, level | dedup host, level", &ev),
        [
            "host=b level=ERROR",
            "host=a level=ERROR",
            "host=a level=INFO"
        ]
    );
    assert_eq!(
        lines(
            "FILTER level = 'ERROR' | STATS COUNT_DISTINCT(host) AS hosts",
            &ev
        ),
        ["hosts=2"]
    );
}
