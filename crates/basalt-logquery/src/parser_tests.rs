//! Command-level parsing. Queries are taken from the AWS pages where possible; each test names
//! its page.

use super::*;
use crate::ast::AggFunc;

fn ok(src: &str) -> Vec<Command> {
    parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"))
}

fn err(src: &str) -> String {
    match parse(src) {
        Ok(c) => panic!("{src:?} parsed: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn examples_from_the_query_syntax_pages_parse() {
    // CWL_QuerySyntax.html and the command pages under it.
    for q in [
        "fields `foo-bar`, action, abs(f3-f4)",
        "fields f1, f2, f3 | filter (duration>2000)",
        "filter (duration>2000)",
        "fields f1, f2 | filter (f1=10 or f3>25)",
        "fields f1 | filter statusCode like /2\\d\\d/",
        "stats avg (f1) by f2",
        "fields f1, f2, f3 | sort f1 desc",
        "fields f1, f2 | sort @timestamp desc | limit 25",
        "parse @message \"user=*, method:*, latency := *\" as @user, @method, @latency | stats avg(@latency) by @method, @user",
        "parse @message /(?<time>[0-9]{10}\\.[0-9]{1,3}) .* (?<code>[A-Z_]+\\/[0-9]{3}) (?<url>[a-zA-Z.]+:[0-9]{1,5})/",
        "fields f1, f2, f3 | filter f1 like /Exception/",
        "fields f1, f2, f3 | filter f1 =~ /Exception/",
        "fields f1, f2, f3 | filter f1 like \"Exception\"",
        "fields f1, f2, f3 | filter f1 like /(?i)Exception/ ",
        "fields f1, f2, f3 | filter f1 =~ /^(?i)Exception$/",
        "fields abs(myField) as AbsoluteValuemyField, myField2",
        "stats avg(f1) as myAvgF1 | sort myAvgF1 desc",
        "fields @timestamp, @message | sort @timestamp desc | limit 25",
        "fields @message | parse @message \"[*] *\" as loggingType, loggingMessage | filter loggingType = \"ERROR\" | display loggingMessage",
        "fields @timestamp, server, severity, message | sort @timestamp desc | dedup server",
        "stats count(*) by queryType, bin(1h)",
        "stats avg(myfield1) by bin(5m)",
        "stats avg(myfield1), min(myfield2), max(myfield3) by bin(5m)",
        "stats sum(packets) as packetsTransferred by srcAddr, dstAddr | sort packetsTransferred  desc | limit 15",
        "parse @logStream \"*/*/*/*\" as env, service, instance, shard | stats count(*) by env, service",
        "parse @message \"url=*\" as url | parse url \"/api/*/users/*\" as apiVersion, userId | display apiVersion, userId",
        "parse @message /(?<NetworkInterface>eni-.*?) / | display NetworkInterface, @message",
        "parse @message \"'fieldsA': '*', 'fieldsB': ['*']\" as fld, array",
        "FIELDS strlen(@message) AS message_length | STATS sum(message_length)/1024/1024 as logs_mb BY bin(5m) | STATS max(logs_mb) AS peak_ingest_mb, min(logs_mb) AS min_ingest_mb, avg(logs_mb) AS avg_ingest_mb",
        "fields @timestamp, @message\n| sort @timestamp desc\n| limit 20",
        "# comment line\nfields @timestamp # trailing comment\n| limit 5",
        "filter @logStream in [\"a\", \"b\"] and statusCode not in [300, 400]",
        "stats count() as c, count_distinct(ip), pct(latency, 95), stddev(latency), earliest(x), latest(x), sortsFirst(x), sortsLast(x), sum(b) by bin(1h) as hour",
    ] {
        ok(q);
    }
}

#[test]
fn item_names_and_aliases() {
    let c = ok("fields `foo-bar`, abs(f3-f4), concat(a, b) as c, @timestamp");
    let Command::Fields(items) = &c[0] else {
        panic!()
    };
    let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["foo-bar", "abs(f3-f4)", "c", "@timestamp"]);
    let c = ok("stats count(*), avg (f1) as a, sum(x)/2 by bin(5m), f2 as g");
    let Command::Stats(s) = &c[0] else { panic!() };
    let names: Vec<&str> = s.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["count(*)", "a", "sum(x)/2"]);
    let by: Vec<&str> = s.by.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(by, ["bin(5m)", "g"]);
    let funcs: Vec<AggFunc> = s.aggs.iter().map(|a| a.func).collect();
    assert_eq!(funcs, [AggFunc::Count, AggFunc::Avg, AggFunc::Sum]);
    assert!(s.aggs[0].arg.is_none());
}

#[test]
fn sort_direction_defaults_to_descending() {
    let c = ok("sort a, b asc, c desc, @timestamp");
    let Command::Sort(keys) = &c[0] else { panic!() };
    let got: Vec<(&str, bool)> = keys
        .iter()
        .map(|k| (k.field.as_str(), k.descending))
        .collect();
    assert_eq!(
        got,
        [("a", true), ("b", false), ("c", true), ("@timestamp", true)]
    );
}

#[test]
fn keywords_ignore_case() {
    ok("FILTER a LIKE /x/ AND NOT b IN [1] OR c NOT LIKE 'y' | SORT a ASC | LIMIT 3");
    ok("Stats Count(*) By Bin(5M)");
}

#[test]
fn parse_forms() {
    let c = ok("parse \"[*] *\" as level, text");
    let Command::Parse(p) = &c[0] else { panic!() };
    assert_eq!(p.source, "@message");
    assert_eq!(
        p.outputs,
        [(1, "level".to_string()), (2, "text".to_string())]
    );
    let c = ok("parse url /(?<a>x)(y)(?<b>z)/");
    let Command::Parse(p) = &c[0] else { panic!() };
    assert_eq!(p.source, "url");
    assert_eq!(p.outputs, [(1, "a".to_string()), (3, "b".to_string())]);
}

#[test]
fn syntax_errors_use_the_service_wording() {
    // Quoted from real responses in public reports.
    assert_eq!(
        err(""),
        "unexpected symbol found <EOF> at line 1 and position 0"
    );
    assert_eq!(
        err("stats count(*) by bin(1d) | sort bin(1d) desc"),
        "unexpected symbol found ( at line 1 and position 36"
    );
    // Others in the same form.
    for (q, msg) in [
        (
            "fields a |",
            "unexpected symbol found <EOF> at line 1 and position 10",
        ),
        (
            "fields a | count()",
            "unexpected symbol found count at line 1 and position 11",
        ),
        (
            "pattern @message",
            "unexpected symbol found pattern at line 1 and position 0",
        ),
        (
            "fields a b",
            "unexpected symbol found b at line 1 and position 9",
        ),
        (
            "fields",
            "unexpected symbol found <EOF> at line 1 and position 6",
        ),
        (
            "filter a =",
            "unexpected symbol found <EOF> at line 1 and position 10",
        ),
        (
            "limit 2.5",
            "unexpected symbol found 2.5 at line 1 and position 6",
        ),
        (
            "limit x",
            "unexpected symbol found x at line 1 and position 6",
        ),
        (
            "sort a up",
            "unexpected symbol found up at line 1 and position 7",
        ),
        (
            "fields a as and",
            "unexpected symbol found and at line 1 and position 12",
        ),
        (
            "filter and",
            "unexpected symbol found and at line 1 and position 7",
        ),
        (
            "parse @message \"*\" x",
            "unexpected symbol found x at line 1 and position 19",
        ),
        (
            "parse @message 5",
            "unexpected symbol found 5 at line 1 and position 15",
        ),
        (
            "filter a in (1)",
            "unexpected symbol found ( at line 1 and position 12",
        ),
        (
            "filter a in [1 2]",
            "unexpected symbol found 2 at line 1 and position 15",
        ),
        (
            "fields a\n| fields (b",
            "unexpected symbol found <EOF> at line 2 and position 11",
        ),
        (
            "| fields a",
            "unexpected symbol found | at line 1 and position 0",
        ),
    ] {
        assert_eq!(err(q), msg, "{q}");
    }
}

#[test]
fn dedup_may_only_be_followed_by_limit() {
    // The dedup page: "The only query command that you can use in a query after the dedup
    // command is limit."
    ok("fields @timestamp, server | sort @timestamp desc | dedup server | limit 5");
    assert_eq!(
        err("dedup server | sort server"),
        "unexpected symbol found sort at line 1 and position 15"
    );
}

#[test]
fn ephemeral_fields_cannot_be_redefined() {
    assert_eq!(
        err("parse @message \"* *\" as srcAddr, dst | fields srcAddr"),
        "Ephemeral field is already defined: srcAddr"
    );
    assert_eq!(
        err("fields strlen(@message) as n | parse @message \"*\" as n"),
        "Ephemeral field is already defined: n"
    );
    assert_eq!(
        err("fields a as x | fields b as x"),
        "Ephemeral field is already defined: x"
    );
    // Using an extracted field is fine, as is naming a log field twice or reusing a name
    // after stats.
    ok("parse @message \"* *\" as a, b | fields concat(a, b) as c | display a, c");
    ok("fields @timestamp, @message | fields @timestamp");
    ok("fields a as x | stats count(*) as x by a");
    ok("stats count(*) as n by y | fields n * 2 as d");
}

#[test]
fn semantic_errors() {
    assert_eq!(
        err("stats avg(x), y"),
        "stats needs an aggregate function: y"
    );
    assert_eq!(
        err("stats count(*) by sum(x)"),
        "Aggregate function sum is not allowed here"
    );
    assert_eq!(
        err("parse @message \"* *\" as a"),
        "parse pattern has 2 wildcard(s) but 1 field name(s)"
    );
    assert_eq!(
        err("parse @message /(x)/"),
        "parse with a regular expression needs at least one named capturing group (?<name>...)"
    );
    assert!(err("parse @message /(?<a>/").starts_with("Invalid regular expression"));
    let e = parse("fields nosuch(1)").unwrap_err();
    assert_eq!(e.span(), Some((7, 13)));
}

#[test]
fn glob_patterns() {
    let re = |g: &str| compile_regex(&glob_to_regex(g)).unwrap();
    let caps = re("[*] *").captures("[ERROR] disk full").unwrap();
    assert_eq!(&caps[1], "ERROR");
    assert_eq!(&caps[2], "disk full");
    let caps = re("user=*, method:*, latency := *")
        .captures("ts user=bob, method:GET, latency := 12")
        .unwrap();
    assert_eq!((&caps[1], &caps[2], &caps[3]), ("bob", "GET", "12"));
    // Regex characters in a glob are literal.
    assert!(re("a.b(*)").captures("axb(1)").is_none());
    assert_eq!(&re("a.b(*)").captures("a.b(1)").unwrap()[1], "1");
}
