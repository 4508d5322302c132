#![no_main]
//! DynamoDB expressions on arbitrary input: the bytes are an expression, fed to every parser
//! (condition, filter, update, projection, key condition) with a fixed set of names and
//! values. Nothing may panic; what parses is evaluated or applied against a small item, and a
//! failed update must leave the item unchanged.
use basalt_dynamodb_expr::{
    ExprKind, Params, item_from_json, parse_condition, parse_key_condition, parse_projection, parse_update,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(expr) = std::str::from_utf8(data) else { return };
    let names = serde_json::json!({"#n": "a", "#m": "l", "#k": "pk"});
    let values = serde_json::json!({
        ":v": {"N": "1"}, ":s": {"S": "x"}, ":l": {"L": [{"N": "1"}]}, ":ss": {"SS": ["x"]}, ":t": {"S": "N"}
    });
    let item = item_from_json(&serde_json::json!({
        "a": {"N": "5"}, "b": {"S": "x"}, "pk": {"S": "p"}, "sk": {"N": "2"},
        "l": {"L": [{"N": "1"}, {"M": {"a": {"S": "y"}}}]}, "m": {"M": {"a": {"SS": ["x"]}}}
    }))
    .expect("fixed item");
    let mut params = Params::new(Some(&names), Some(&values)).expect("fixed params");
    for kind in [ExprKind::Condition, ExprKind::Filter] {
        if let Ok(c) = parse_condition(expr, kind, &mut params) {
            c.eval(&item);
        }
    }
    if let Ok(u) = parse_update(expr, &mut params) {
        let mut copy = item.clone();
        if u.apply(&mut copy).is_err() {
            assert_eq!(copy, item);
        }
        u.top_level_names();
    }
    if let Ok(p) = parse_projection(expr, &mut params) {
        p.apply(&item);
    }
    if let Ok(k) = parse_key_condition(expr, &mut params) {
        if let Ok(r) = k.resolve("pk", Some("sk")) {
            if let Some(rc) = r.range {
                rc.matches(&item["sk"]);
            }
        }
    }
    let _ = params.finish();
});
