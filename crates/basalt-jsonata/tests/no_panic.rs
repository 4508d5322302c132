//! 20,000 random expressions (token soup built from JSONata's own syntax, plus raw random
//! text) must parse or fail with a JsonataError and evaluate or fail the same way: never panic.

use basalt_jsonata::{Expression, Functions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, json};

const PIECES: &[&str] = &[
    "a",
    "b",
    "c",
    "Account",
    "Order",
    "Product",
    "Price",
    "$",
    "$$",
    "$x",
    "$y",
    "$f",
    ".",
    "..",
    "[",
    "]",
    "{",
    "}",
    "(",
    ")",
    ",",
    ";",
    ":",
    "?",
    "??",
    "?:",
    "@",
    "#",
    "%",
    "*",
    "**",
    "+",
    "-",
    "/",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&",
    "and",
    "or",
    "in",
    "~>",
    ":=",
    "^(",
    "|",
    "0",
    "1",
    "-1",
    "2.5",
    "1e3",
    "\"s\"",
    "'t'",
    "true",
    "false",
    "null",
    "function($x){$x}",
    "λ($v){$v*2}",
    "/a.c/i",
    "$sum(",
    "$count(",
    "$map(",
    "$filter(",
    "$reduce(",
    "$string(",
    "$number(",
    "$substring(",
    "$split(",
    "$join(",
    "$replace(",
    "$match(",
    "$keys(",
    "$lookup(",
    "$spread(",
    "$merge(",
    "$sort(",
    "$reverse(",
    "$distinct(",
    "$each(",
    "$sift(",
    "$zip(",
    "$append(",
    "$exists(",
    "$type(",
    "$formatNumber(",
    "$formatInteger(",
    "$fromMillis(",
    "$toMillis(",
    "$eval(",
    "$pad(",
    "$round(",
    "$power(",
    "$sqrt(",
    "$abs(",
    "$boolean(",
    "$not(",
    "$error(",
    "$assert(",
    "$uppercase(",
    "$single(",
    "$shuffle(",
    "$base64decode(",
    "$decodeUrl(",
    "`x y`",
    " ",
    "\n",
    "/*c*/",
];

/// A syntactically plausible expression from a small JSONata grammar.
fn grammar(rng: &mut StdRng, depth: u32) -> String {
    const LEAVES: &[&str] = &[
        "a",
        "b",
        "c",
        "a.b",
        "a[0]",
        "Account.Order.Product.Price",
        "$",
        "$x",
        "$y",
        "1",
        "2.5",
        "-3",
        "\"s\"",
        "true",
        "null",
        "[]",
        "{}",
        "*",
        "**",
        "a#$i",
        "a@$o",
        "$x[$ > 1]",
        "b.%",
    ];
    const BINOPS: &[&str] = &[
        "+", "-", "*", "/", "%", "=", "!=", "<", ">=", "&", "and", "or", "in", "..", "~>", "??",
        "?:", ".",
    ];
    const FUNCS: &[&str] = &[
        "$sum",
        "$count",
        "$string",
        "$keys",
        "$reverse",
        "$distinct",
        "$sort",
        "$append",
        "$exists",
        "$type",
        "$boolean",
        "$not",
        "$uppercase",
        "$length",
        "$number",
        "$round",
        "$abs",
        "$spread",
        "$merge",
        "$join",
        "$split",
        "$substring",
        "$formatNumber",
        "$formatInteger",
        "$fromMillis",
        "$eval",
        "$lookup",
        "$zip",
        "$shuffle",
    ];
    if depth == 0 {
        return LEAVES[rng.gen_range(0..LEAVES.len())].to_string();
    }
    let sub = |rng: &mut StdRng| grammar(rng, depth - 1);
    match rng.gen_range(0..12) {
        0 | 1 => format!(
            "{} {} {}",
            sub(rng),
            BINOPS[rng.gen_range(0..BINOPS.len())],
            sub(rng)
        ),
        2 => format!("{}({})", FUNCS[rng.gen_range(0..FUNCS.len())], sub(rng)),
        3 => format!(
            "{}({}, {})",
            FUNCS[rng.gen_range(0..FUNCS.len())],
            sub(rng),
            sub(rng)
        ),
        4 => format!("{}[{}]", sub(rng), sub(rng)),
        5 => format!("[{}, {}]", sub(rng), sub(rng)),
        6 => format!("{{{}: {}}}", sub(rng), sub(rng)),
        7 => format!("{} ? {} : {}", sub(rng), sub(rng), sub(rng)),
        8 => format!(
            "($f := function($v, $w){{{}}}; $f({}, {}))",
            sub(rng),
            sub(rng),
            sub(rng)
        ),
        9 => format!("{}^(>{})", sub(rng), sub(rng)),
        10 => format!("$map({}, function($v, $i){{{}}})", sub(rng), sub(rng)),
        _ => format!("{} ~> |{}|{{\"k\": {}}}|", sub(rng), sub(rng), sub(rng)),
    }
}

fn random_expression(rng: &mut StdRng) -> String {
    if rng.gen_bool(0.5) {
        let depth = rng.gen_range(0..5);
        return grammar(rng, depth);
    }
    if rng.gen_ratio(1, 10) {
        let len = rng.gen_range(0..30);
        return (0..len)
            .map(|_| char::from_u32(rng.gen_range(0x20..0x7f)).unwrap_or(' '))
            .collect();
    }
    let n = rng.gen_range(1..14);
    (0..n)
        .map(|_| PIECES[rng.gen_range(0..PIECES.len())])
        .collect::<Vec<_>>()
        .join("")
}

#[test]
fn twenty_thousand_random_expressions_never_panic() {
    let worker = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let mut rng = StdRng::seed_from_u64(0x15_0A7A);
            let input = json!({
                "a": [1, 2, {"b": "x", "c": [3, 4]}], "b": {"c": null, "d": true}, "c": "text",
                "Account": {"Order": [{"Product": [{"Price": 34.45}, {"Price": 21.67}]}]}
            });
            let mut bindings = Map::new();
            bindings.insert("x".into(), json!([1, 2, 3]));
            bindings.insert("y".into(), json!({"k": "v"}));
            let mut functions = Functions::new();
            functions
                .timeout(std::time::Duration::from_millis(200))
                .clock(|| 0)
                .random(|| 0.5);
            let (mut parsed, mut evaluated) = (0, 0);
            for _ in 0..20_000 {
                let src = random_expression(&mut rng);
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let Ok(expr) = Expression::parse(&src) else {
                        return (false, false);
                    };
                    (
                        true,
                        expr.evaluate_with(&input, &bindings, &functions).is_ok(),
                    )
                }));
                match outcome {
                    Ok((p, e)) => {
                        parsed += usize::from(p);
                        evaluated += usize::from(e);
                    }
                    Err(_) => panic!("panicked on expression {src:?}"),
                }
            }
            // The generator must reach the evaluator, or the test proves little.
            assert!(parsed > 2_000, "only {parsed} expressions parsed");
            assert!(evaluated > 1_000, "only {evaluated} expressions evaluated");
        })
        .unwrap();
    worker.join().unwrap();
}
