//! Every parser on 20,000 random strings built from the languages' own tokens (and some
//! junk): whatever they hold, the parsers answer `Ok` or `Err`, never panic, and what parses
//! evaluates and applies without panicking.

use basalt_dynamodb_expr::{
    ExprKind, Params, item_from_json, parse_condition, parse_key_condition, parse_projection,
    parse_update,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const TOKENS: &[&str] = &[
    "a",
    "b",
    "pk",
    "sk",
    "l",
    "m",
    "#n",
    "#m",
    "#undefined",
    ":v",
    ":s",
    ":l",
    ":ss",
    ":undefined",
    "(",
    ")",
    "[",
    "]",
    "[0]",
    "[1]",
    "[99999999999999999999999]",
    ".",
    ",",
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "AND",
    "or",
    "NOT",
    "BETWEEN",
    "IN",
    "SET",
    "remove",
    "ADD",
    "DELETE",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
    "if_not_exists",
    "list_append",
    "Comment",
    "0",
    "12",
    "ü",
    "!",
    "\"",
    " ",
    "  ",
    "\n",
    "#",
    ":",
    "_x",
    "9a",
];

fn pick<'a>(rng: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs[rng.gen_range(0..xs.len())]
}

fn gen_path(rng: &mut StdRng) -> String {
    pick(
        rng,
        &[
            "a", "b", "l[0]", "l[1].a", "m.a", "#n", "#m[0]", "pk", "sk", "zz.q", "l[5]",
        ],
    )
    .to_string()
}

fn gen_operand(rng: &mut StdRng) -> String {
    match rng.gen_range(0..4) {
        0 => pick(rng, &[":v", ":s", ":l", ":ss", ":t"]).to_string(),
        1 => format!("size({})", gen_path(rng)),
        _ => gen_path(rng),
    }
}

/// A mostly well-formed condition, so that the evaluator gets exercised.
fn gen_cond(rng: &mut StdRng, depth: u32) -> String {
    let choice = if depth > 2 {
        rng.gen_range(0..7)
    } else {
        rng.gen_range(0..11)
    };
    let (a, b, c) = (gen_operand(rng), gen_operand(rng), gen_operand(rng));
    let p = gen_path(rng);
    match choice {
        0 => format!("{a} {} {b}", pick(rng, &["=", "<>", "<", "<=", ">", ">="])),
        1 => format!("{a} BETWEEN {b} AND {c}"),
        2 => format!("{a} IN ({b}, {c})"),
        3 => format!("attribute_exists({p})"),
        4 => format!("attribute_not_exists({p})"),
        5 => format!("begins_with({p}, {})", pick(rng, &[":s", ":v"])),
        6 => format!("contains({p}, {b})"),
        7 => format!("NOT ({})", gen_cond(rng, depth + 1)),
        8 => format!(
            "{} AND {}",
            gen_cond(rng, depth + 1),
            gen_cond(rng, depth + 1)
        ),
        9 => format!(
            "{} OR {}",
            gen_cond(rng, depth + 1),
            gen_cond(rng, depth + 1)
        ),
        _ => format!("attribute_type({p}, :t)"),
    }
}

/// A mostly well-formed update expression.
fn gen_update(rng: &mut StdRng) -> String {
    let mut clauses = Vec::new();
    for kw in ["SET", "REMOVE", "ADD", "DELETE"] {
        if rng.gen_bool(0.5) {
            continue;
        }
        let n = rng.gen_range(1..3);
        let actions: Vec<String> = (0..n)
            .map(|_| {
                let p = gen_path(rng);
                match kw {
                    "SET" => match rng.gen_range(0..4) {
                        0 => format!("{p} = {} + :v", gen_path(rng)),
                        1 => format!("{p} = if_not_exists({}, :v)", gen_path(rng)),
                        2 => format!("{p} = list_append({}, :l)", gen_path(rng)),
                        _ => format!("{p} = {}", pick(rng, &[":v", ":s", ":l", ":ss"])),
                    },
                    "REMOVE" => p,
                    _ => format!("{p} {}", pick(rng, &[":v", ":ss", ":s"])),
                }
            })
            .collect();
        clauses.push(format!("{kw} {}", actions.join(", ")));
    }
    clauses.join(" ")
}

/// A structured expression, perhaps with one token dropped or inserted.
fn structured(rng: &mut StdRng) -> String {
    let base = match rng.gen_range(0..4) {
        0 => gen_update(rng),
        1 => format!("{}, {}", gen_path(rng), gen_path(rng)),
        2 => format!(
            "pk = :s AND sk {} :v",
            pick(rng, &["=", "<", ">=", "BETWEEN :v AND"])
        ),
        _ => gen_cond(rng, 0),
    };
    let mut toks: Vec<&str> = base.split(' ').collect();
    if rng.gen_bool(0.3) && !toks.is_empty() {
        let at = rng.gen_range(0..toks.len());
        if rng.gen_bool(0.5) {
            toks.remove(at);
        } else {
            toks.insert(at, TOKENS[rng.gen_range(0..TOKENS.len())]);
        }
    }
    toks.join(" ")
}

fn random_expr(rng: &mut StdRng) -> String {
    if rng.gen_bool(0.5) {
        return structured(rng);
    }
    let n = rng.gen_range(0..24);
    (0..n)
        .map(|_| TOKENS[rng.gen_range(0..TOKENS.len())])
        .collect::<Vec<_>>()
        .join(if rng.gen_bool(0.5) { " " } else { "" })
}

#[test]
fn parsers_never_panic() {
    let names = json!({"#n": "a", "#m": "l"});
    let values = json!({":v": {"N": "1"}, ":s": {"S": "x"}, ":l": {"L": [{"N": "1"}]}, ":ss": {"SS": ["x"]}, ":t": {"S": "N"}});
    let item = item_from_json(&json!({
        "a": {"N": "5"}, "b": {"S": "x"}, "pk": {"S": "p"}, "sk": {"N": "2"},
        "l": {"L": [{"N": "1"}, {"M": {"a": {"S": "y"}}}]}, "m": {"M": {"a": {"SS": ["x"]}}}
    }))
    .unwrap();
    let mut rng = StdRng::seed_from_u64(0xFEED);
    let mut parsed = 0;
    for _ in 0..20_000 {
        let expr = random_expr(&mut rng);
        let mut params = Params::new(Some(&names), Some(&values)).unwrap();
        for kind in [ExprKind::Condition, ExprKind::Filter] {
            if let Ok(c) = parse_condition(&expr, kind, &mut params) {
                c.eval(&item);
                parsed += 1;
            }
        }
        if let Ok(u) = parse_update(&expr, &mut params) {
            let mut copy = item.clone();
            if u.apply(&mut copy).is_err() {
                assert_eq!(copy, item, "a failed update leaves the item alone: {expr}");
            }
            parsed += 1;
        }
        if let Ok(p) = parse_projection(&expr, &mut params) {
            p.apply(&item);
            parsed += 1;
        }
        if let Ok(k) = parse_key_condition(&expr, &mut params) {
            if let Ok(r) = k.resolve("pk", Some("sk"))
                && let Some(rc) = r.range
            {
                rc.matches(&item["sk"]);
            }
            parsed += 1;
        }
        let _ = params.finish();
    }
    // The generator must reach the evaluators, not only the syntax errors.
    assert!(parsed > 5_000, "only {parsed} expressions parsed");
}
