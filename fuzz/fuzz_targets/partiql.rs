#![no_main]
//! PartiQL statements on arbitrary input: parsed with zero to three parameters, then every key
//! question the service asks, projections, conditions and updates run on a sample item.
//! Nothing may panic, whatever the statement holds.
use basalt_dynamodb_expr::{AttributeValue, Item, Number};
use basalt_partiql::{Statement, parse};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let params = [
        AttributeValue::S("a".into()),
        AttributeValue::N(Number::from_i64(1)),
        AttributeValue::Ss(vec!["x".into()]),
    ];
    let mut item = Item::new();
    item.insert("pk".into(), AttributeValue::S("a".into()));
    item.insert("sk".into(), AttributeValue::N(Number::from_i64(1)));
    item.insert("l".into(), AttributeValue::L(vec![AttributeValue::Null]));
    for n in 0..=params.len() {
        let Ok(stmt) = parse(text, &params[..n]) else { continue };
        match stmt {
            Statement::Select(s) => {
                let _ = s.key_condition("pk", Some("sk"));
                let _ = s.get_key("pk", Some("sk"));
                let _ = s.check_order_by("pk", Some("sk"));
                if s.condition.as_ref().is_none_or(|c| c.eval(&item)) {
                    s.project(&item);
                }
            }
            Statement::Update(u) => {
                let _ = u.key("pk", Some("sk"));
                let mut copy = item.clone();
                let _ = u.update.apply(&mut copy);
            }
            Statement::Delete(d) => {
                let _ = d.key("pk", None);
            }
            Statement::Exists(e) => {
                let _ = e.check("pk", Some("sk"));
            }
            Statement::Insert(_) => {}
        }
    }
});
