//! The public API as the Step Functions interpreter uses it: bindings, undefined results,
//! host functions, the injectable clock and random source, limits, and error shapes.

use basalt_jsonata::{Expression, Functions, JsonataError, evaluate};
use serde_json::{Map, Value, json};

fn eval(expr: &str, input: Value) -> Result<Option<Value>, JsonataError> {
    evaluate(expr, &input, &Map::new())
}

#[test]
fn path_navigation_and_aggregation() {
    let input = json!({"Account": {"Order": [
        {"Product": [{"Price": 34.45, "Quantity": 2}, {"Price": 21.67, "Quantity": 1}]},
        {"Product": [{"Price": 34.45, "Quantity": 4}]}
    ]}});
    assert_eq!(
        eval(
            "$sum(Account.Order.Product.(Price * Quantity))",
            input.clone()
        )
        .unwrap(),
        Some(json!(228.37))
    );
    assert_eq!(
        eval("Account.Order[0].Product.Price", input.clone()).unwrap(),
        Some(json!([34.45, 21.67]))
    );
    assert_eq!(
        eval("Account.Order[1].Product.Price", input.clone()).unwrap(),
        Some(json!(34.45))
    );
    assert_eq!(
        eval("Account.Order[1].Product[].Price", input).unwrap(),
        Some(json!([34.45]))
    );
}

#[test]
fn undefined_is_none_and_null_is_null() {
    assert_eq!(eval("missing", json!({"a": 1})).unwrap(), None);
    assert_eq!(eval("a", json!({"a": null})).unwrap(), Some(Value::Null));
}

#[test]
fn numbers_come_back_as_json_integers_when_whole() {
    assert_eq!(eval("1 + 2", Value::Null).unwrap(), Some(json!(3)));
    assert_eq!(
        eval("0.1 + 0.2", Value::Null).unwrap(),
        Some(json!(0.30000000000000004))
    );
    assert_eq!(
        eval("$string(0.1 + 0.2)", Value::Null).unwrap(),
        Some(json!("0.3"))
    );
    assert_eq!(
        eval("$string(1e21)", Value::Null).unwrap(),
        Some(json!("1e+21"))
    );
    assert_eq!(
        eval("$string(1/3)", Value::Null).unwrap(),
        Some(json!("0.333333333333333"))
    );
}

#[test]
fn bindings_are_variables() {
    let mut b = Map::new();
    b.insert("states".into(), json!({"input": {"n": 4}}));
    assert_eq!(
        evaluate("$states.input.n * 2", &Value::Null, &b).unwrap(),
        Some(json!(8))
    );
}

#[test]
fn parse_once_evaluate_many() {
    let e = Expression::parse("$.n + 1").unwrap();
    for n in 0..5 {
        assert_eq!(
            e.evaluate(&json!({"n": n}), &Map::new()).unwrap(),
            Some(json!(n + 1))
        );
    }
}

#[test]
fn host_functions_are_callable_and_shadow_nothing_else() {
    let mut f = Functions::new();
    f.register("partition", |args: &[Value]| {
        let items = args[0].as_array().cloned().unwrap_or_default();
        let size = args[1].as_u64().unwrap_or(1).max(1) as usize;
        Ok(Value::Array(
            items
                .chunks(size)
                .map(|c| Value::Array(c.to_vec()))
                .collect(),
        ))
    });
    let e = Expression::parse("$partition([1,2,3,4,5], 2)").unwrap();
    assert_eq!(
        e.evaluate_with(&Value::Null, &Map::new(), &f).unwrap(),
        Some(json!([[1, 2], [3, 4], [5]]))
    );
    let e = Expression::parse("$sum([1,2])").unwrap();
    assert_eq!(
        e.evaluate_with(&Value::Null, &Map::new(), &f).unwrap(),
        Some(json!(3))
    );
}

#[test]
fn host_function_errors_propagate() {
    let mut f = Functions::new();
    f.register("boom", |_: &[Value]| {
        Err(JsonataError::custom("States.Runtime", "no"))
    });
    let err = Expression::parse("$boom()")
        .unwrap()
        .evaluate_with(&Value::Null, &Map::new(), &f)
        .unwrap_err();
    assert_eq!(err.code, "States.Runtime");
}

#[test]
fn clock_is_injectable_and_read_once() {
    let mut f = Functions::new();
    f.clock(|| 1_700_000_000_123);
    let e = Expression::parse("[$millis(), $now(), $millis() = $millis()]").unwrap();
    assert_eq!(
        e.evaluate_with(&Value::Null, &Map::new(), &f).unwrap(),
        Some(json!([
            1_700_000_000_123_i64,
            "2023-11-14T22:13:20.123Z",
            true
        ]))
    );
}

#[test]
fn random_is_injectable() {
    let mut f = Functions::new();
    f.random(|| 0.25);
    let e = Expression::parse("$random()").unwrap();
    assert_eq!(
        e.evaluate_with(&Value::Null, &Map::new(), &f).unwrap(),
        Some(json!(0.25))
    );
}

#[test]
fn errors_carry_code_message_and_position() {
    let err = eval("1 + \"a\"", Value::Null).unwrap_err();
    assert_eq!(err.code, "T2002");
    assert_eq!(
        err.message,
        "The right side of the \"+\" operator must evaluate to a number"
    );
    assert_eq!(
        err.to_string(),
        "T2002: The right side of the \"+\" operator must evaluate to a number"
    );
    let err = Expression::parse("(1 + ").unwrap_err();
    assert_eq!(err.code, "S0207");
    let err = eval("$error(\"custom\")", Value::Null).unwrap_err();
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        ("D3137", "custom")
    );
}

#[test]
fn runaway_recursion_fails_cleanly_on_a_small_stack() {
    // A tokio worker has 2 MiB of stack; deep non-tail recursion must end in D1011, not a crash.
    let worker = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let mut f = Functions::new();
            f.max_depth(300);
            Expression::parse("($f := function($n){$n = 0 ? 0 : 1 + $f($n - 1)}; $f(100000))")
                .unwrap()
                .evaluate_with(&Value::Null, &Map::new(), &f)
        })
        .unwrap();
    assert_eq!(worker.join().unwrap().unwrap_err().code, "D1011");
}

#[test]
fn timeout_stops_infinite_loops() {
    let mut f = Functions::new();
    f.timeout(std::time::Duration::from_millis(50));
    let err = Expression::parse("($inf := function(){$inf()}; $inf())")
        .unwrap()
        .evaluate_with(&Value::Null, &Map::new(), &f)
        .unwrap_err();
    assert_eq!(err.code, "D1012");
}

#[test]
fn deeply_nested_source_is_a_syntax_error_not_a_crash() {
    let src = "(".repeat(5000) + "1" + &")".repeat(5000);
    assert!(Expression::parse(&src).is_err());
}

#[test]
fn expressions_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expression>();
    assert_send_sync::<Functions>();
}

#[test]
fn transform_patterns_see_the_objects_as_they_are() {
    // The pattern's predicate counts keys: nothing internal may leak into the matched objects.
    let input = json!({"a": {"x": 1}, "b": {"x": 1, "y": 2}});
    let out = eval(
        "$ ~> | *[$count($keys($)) = 1] | {\"one\": true}, \"x\" |",
        input.clone(),
    )
    .unwrap();
    assert_eq!(
        out,
        Some(json!({"a": {"one": true}, "b": {"x": 1, "y": 2}}))
    );
    // The input itself is left as it was.
    assert_eq!(eval("$", input.clone()).unwrap(), Some(input));
}
