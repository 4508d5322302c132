//! GetMetricData with SEARCH expressions, the examples of the CloudWatch User Guide's
//! "CloudWatch search expression syntax" and "search expression examples" pages run against
//! a known set of metrics, with the exact series each must return.

use crate::tests::{base, cw, err, ok};
use serde_json::{Value, json};

async fn seeded() -> (std::sync::Arc<crate::CloudWatch>, f64) {
    let cw = cw();
    let t = base();
    let point = |ns: &str, name: &str, v: f64, at: f64, dims: &[(&str, &str)]| {
        json!({"Namespace": ns, "MetricData": [{"MetricName": name, "Value": v, "Timestamp": t + at,
            "Dimensions": dims.iter().map(|(k, v)| json!({"Name": k, "Value": v})).collect::<Vec<_>>()}]})
    };
    for put in [
        point("Shop", "Latency", 10.0, 1.0, &[("Api", "get")]),
        point("Shop", "Latency", 30.0, 2.0, &[("Api", "get")]),
        point("Shop", "Latency", 20.0, 61.0, &[("Api", "get")]),
        point("Shop", "Latency", 100.0, 3.0, &[("Api", "put")]),
        point(
            "Shop",
            "Latency",
            7.0,
            4.0,
            &[("Api", "get"), ("Region", "eu")],
        ),
        point("Shop", "Latency", 500.0, 5.0, &[]),
        point("Shop", "Errors", 1.0, 6.0, &[("Api", "get")]),
        point("Other", "Latency", 9.0, 7.0, &[("Api", "get")]),
    ] {
        ok(&cw, "PutMetricData", put).await;
    }
    (cw, t)
}

async fn run(cw: &crate::CloudWatch, t: f64, expression: &str) -> Vec<(String, Vec<f64>)> {
    let got = ok(
        cw,
        "GetMetricData",
        json!({"StartTime": t, "EndTime": t + 120.0, "ScanBy": "TimestampAscending",
            "MetricDataQueries": [{"Id": "e1", "Expression": expression}]}),
    )
    .await;
    got["MetricDataResults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["Id"], "e1");
            let values = r["Values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            (r["Label"].as_str().unwrap().to_owned(), values)
        })
        .collect()
}

fn series(v: &[(&str, &[f64])]) -> Vec<(String, Vec<f64>)> {
    v.iter()
        .map(|(l, p)| ((*l).to_owned(), p.to_vec()))
        .collect()
}

#[tokio::test]
async fn schema_returns_one_series_per_metric_with_exactly_those_dimensions() {
    let (cw, t) = seeded().await;
    let got = run(
        &cw,
        t,
        r#"SEARCH(' {Shop,Api} MetricName="Latency" ', 'Average', 60)"#,
    )
    .await;
    assert_eq!(
        got,
        series(&[("get Latency", &[20.0, 20.0]), ("put Latency", &[100.0])])
    );
    // {Shop} alone: the metrics of the namespace without dimensions.
    let got = run(&cw, t, "SEARCH('{Shop}', 'Maximum', 60)").await;
    assert_eq!(got, series(&[("Latency", &[500.0])]));
    // The period defaults to the request's.
    let got = run(&cw, t, "SEARCH('{Shop,Api} Errors', 'Sum')").await;
    assert_eq!(got, series(&[("get Errors", &[1.0])]));
}

#[tokio::test]
async fn search_inside_metric_math() {
    let (cw, t) = seeded().await;
    let got = run(
        &cw,
        t,
        r#"SUM(SEARCH(' {Shop,Api} MetricName="Latency" ', 'Sum', 60))"#,
    )
    .await;
    assert_eq!(got, series(&[("e1", &[140.0, 20.0])]));
    let got = run(
        &cw,
        t,
        r#"SEARCH(' {Shop,Api} MetricName="Latency" ', 'Sum', 60) * 2"#,
    )
    .await;
    assert_eq!(
        got,
        series(&[("get Latency", &[80.0, 40.0]), ("put Latency", &[200.0])])
    );
    // Another query's SEARCH by id, as the guide's `SUM(e1)`.
    let got = ok(&cw, "GetMetricData", json!({"StartTime": t, "EndTime": t + 120.0,
        "ScanBy": "TimestampAscending", "MetricDataQueries": [
            {"Id": "e1", "Expression": "SEARCH(' {Shop, Api}, MetricName=\"Latency\" ', 'Sum', 60)", "ReturnData": false},
            {"Id": "e2", "Expression": "MAX(e1)"}]})).await;
    let r = &got["MetricDataResults"];
    assert_eq!(r.as_array().unwrap().len(), 1, "{got}");
    assert_eq!(r[0]["Values"], json!([100.0, 20.0]));
}

#[tokio::test]
async fn terms_without_a_schema_span_namespaces() {
    let (cw, t) = seeded().await;
    // Exact match on a dimension value, in every namespace.
    let got = run(&cw, t, r#"SEARCH(' "get" ', 'Maximum', 60)"#).await;
    assert_eq!(
        got,
        series(&[
            ("get Latency", &[9.0]),
            ("get Errors", &[1.0]),
            ("get Latency", &[30.0, 20.0]),
            ("get eu Latency", &[7.0]),
        ])
    );
    // Partial match and NOT on a property.
    let got = run(
        &cw,
        t,
        "SEARCH(' latency NOT Namespace=Other ', 'SampleCount', 60)",
    )
    .await;
    assert_eq!(
        got,
        series(&[
            ("Latency", &[1.0]),
            ("get Latency", &[2.0, 1.0]),
            ("get eu Latency", &[1.0]),
            ("put Latency", &[1.0]),
        ])
    );
    // OR with grouping, a dimension designator.
    let got = run(
        &cw,
        t,
        r#"SEARCH(' MetricName="Errors" OR (Region=eu AND Latency) ', 'Sum', 60)"#,
    )
    .await;
    assert_eq!(
        got,
        series(&[("get Errors", &[1.0]), ("get eu Latency", &[7.0])])
    );
    // Nothing found: no series at all.
    let got = run(&cw, t, r#"SEARCH(' "nothing" ', 'Sum', 60)"#).await;
    assert!(got.is_empty());
}

fn query(expression: &str) -> Value {
    json!({"StartTime": 0, "EndTime": 60, "MetricDataQueries": [{"Id": "e1", "Expression": expression}]})
}

#[tokio::test]
async fn malformed_searches_and_limits() {
    let cw = cw();
    for bad in [
        "SEARCH('{Shop', 'Sum', 60)",
        "SEARCH('(a', 'Sum', 60)",
        "SEARCH('a', 'Median', 60)",
        "SEARCH('a', 'Sum', 61)",
        "SEARCH('a')",
        "SEARCH(a, 'Sum')",
    ] {
        let e = err(&cw, "GetMetricData", query(bad)).await;
        assert_eq!(e.code, "ValidationError", "{bad}: {e}");
        assert!(
            e.message.starts_with("Error in expression e1"),
            "{bad}: {e}"
        );
    }
    let long = format!("SEARCH('{}', 'Sum', 60)", "a".repeat(1025));
    let e = err(&cw, "GetMetricData", query(&long)).await;
    assert!(e.message.contains("1024"), "{e}");
    let many: Vec<String> = (0..101).map(|_| "SEARCH('a', 'Sum', 60)".into()).collect();
    let e = err(&cw, "GetMetricData", query(&many.join(" + "))).await;
    assert!(e.message.contains("100 SEARCH"), "{e}");
    // An alarm watches one series: SEARCH is refused there.
    let e = err(&cw, "PutMetricAlarm", json!({
        "AlarmName": "s", "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold",
        "Metrics": [{"Id": "e1", "Expression": "MAX(SEARCH('{Shop,Api} Latency', 'Sum', 60))", "ReturnData": true}]})).await;
    assert!(e.message.contains("not supported in alarms"), "{e}");
}

#[tokio::test]
async fn at_most_500_series_per_search() {
    let cw = cw();
    let t = base();
    for chunk in 0..6 {
        let data: Vec<Value> = (0..100)
            .map(|i| {
                json!({"MetricName": "Hits", "Value": 1.0, "Timestamp": t + 1.0,
                "Dimensions": [{"Name": "Host", "Value": format!("h{:03}", chunk * 100 + i)}]})
            })
            .collect();
        ok(
            &cw,
            "PutMetricData",
            json!({"Namespace": "Big", "MetricData": data}),
        )
        .await;
    }
    let got = run(&cw, t, "SEARCH('{Big,Host} Hits', 'Sum', 60)").await;
    assert_eq!(got.len(), 500);
    assert_eq!(got[0].0, "h000 Hits");
    assert_eq!(got[499].0, "h499 Hits");
}
