//! 20,000 statements strung together from the language's own tokens: none may panic, in the
//! parser or in anything the service then asks of the statement (the fuzz target
//! `fuzz/fuzz_targets/partiql.rs` does the same with arbitrary bytes).

use basalt_dynamodb_expr::{AttributeValue, Item, Number};
use basalt_partiql::{Statement, parse};

const TOKENS: &[&str] = &[
    "SELECT",
    "INSERT",
    "INTO",
    "VALUE",
    "VALUES",
    "UPDATE",
    "DELETE",
    "FROM",
    "WHERE",
    "SET",
    "REMOVE",
    "RETURNING",
    "ALL",
    "MODIFIED",
    "OLD",
    "NEW",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "EXISTS",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "IN",
    "IS",
    "MISSING",
    "NULL",
    "TRUE",
    "FALSE",
    "STRING",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
    "list_append",
    "set_add",
    "set_delete",
    "pk",
    "sk",
    "l",
    "m",
    "\"t\"",
    "\"i\"",
    "inner",
    "'a'",
    "'S'",
    "''",
    "1",
    "-1",
    "2.5",
    "1e3",
    ".5",
    "1e126",
    "?",
    "*",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "<<",
    ">>",
    ",",
    ".",
    ":",
    ";",
    "=",
    "<>",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "--",
    "/*",
    "*/",
    "#",
    "\n",
];

/// A small deterministic generator, so that a failure reproduces.
struct Lcg(u64);

/// Conditions and values from which statements are assembled; one in three statements then
/// has a random token inserted or one of its tokens dropped.
const TERMS: &[&str] = &[
    "pk = ?",
    "sk < 1",
    "sk BETWEEN 1 AND ?",
    "pk IN [?, 'b']",
    "attribute_exists(l)",
    "size(l) > 0",
    "begins_with(pk, 'a')",
    "contains(l, NULL)",
    "l[0] IS NULL",
    "m IS MISSING",
    "attribute_type(pk, 'S')",
    "l = [NULL]",
    "m.x.y[1] <> {'a': 1}",
    "sk = 1e126",
    "pk = <<'a'>>",
];
const VALUES: &[&str] = &[
    "1",
    "?",
    "'s'",
    "[1, ?]",
    "{'k': <<1, 2>>}",
    "l",
    "l[0]",
    "list_append(l, [1])",
    "set_add(m, <<'x'>>)",
    "set_delete(m, ?)",
    "sk + 1",
    "sk - ?",
    "MISSING",
    "NULL",
];

fn condition(rng: &mut Lcg, depth: usize) -> String {
    match rng.below(if depth > 3 { 1 } else { 4 }) {
        0 => TERMS[rng.below(TERMS.len())].to_string(),
        1 => format!(
            "{} AND {}",
            condition(rng, depth + 1),
            condition(rng, depth + 1)
        ),
        2 => format!(
            "{} OR {}",
            condition(rng, depth + 1),
            condition(rng, depth + 1)
        ),
        _ => format!("NOT ({})", condition(rng, depth + 1)),
    }
}

fn statement(rng: &mut Lcg) -> String {
    let value = |rng: &mut Lcg| VALUES[rng.below(VALUES.len())];
    let text = match rng.below(5) {
        0 => format!(
            "SELECT * FROM \"t\" WHERE {} ORDER BY sk DESC",
            condition(rng, 0)
        ),
        1 => format!(
            "SELECT l[0], m.x FROM \"t\".\"i\" WHERE {}",
            condition(rng, 0)
        ),
        2 => format!(
            "UPDATE \"t\" SET m = {} REMOVE l[1] WHERE {} RETURNING MODIFIED NEW *",
            value(rng),
            condition(rng, 0)
        ),
        3 => format!(
            "DELETE FROM \"t\" WHERE {} RETURNING ALL OLD *",
            condition(rng, 0)
        ),
        _ => format!("INSERT INTO \"t\" VALUE {{'pk': ?, 'v': {}}}", value(rng)),
    };
    if rng.below(3) != 0 {
        return text;
    }
    let mut words: Vec<&str> = text.split(' ').collect();
    let at = rng.below(words.len());
    if rng.below(2) == 0 {
        words.insert(at, TOKENS[rng.below(TOKENS.len())]);
    } else {
        words.remove(at);
    }
    words.join(" ")
}

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

#[test]
fn token_soup_never_panics() {
    let params = [
        AttributeValue::S("a".into()),
        AttributeValue::N(Number::from_i64(1)),
        AttributeValue::Ss(vec!["x".into()]),
    ];
    let mut item = Item::new();
    item.insert("pk".into(), AttributeValue::S("a".into()));
    item.insert("sk".into(), AttributeValue::N(Number::from_i64(1)));
    item.insert("l".into(), AttributeValue::L(vec![AttributeValue::Null]));
    let mut rng = Lcg(7);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let text = statement(&mut rng);
        for n in 0..=params.len() {
            let Ok(stmt) = parse(&text, &params[..n]) else {
                continue;
            };
            accepted += 1;
            match stmt {
                Statement::Select(s) => {
                    let _ = s.key_condition("pk", Some("sk"));
                    let _ = s.get_key("pk", Some("sk"));
                    let _ = s.check_order_by("pk", None);
                    if s.condition.as_ref().is_none_or(|c| c.eval(&item)) {
                        s.project(&item);
                    }
                }
                Statement::Update(u) => {
                    let _ = u.key("pk", Some("sk"));
                    let _ = u.update.apply(&mut item.clone());
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
    }
    // The soup must reach past the parser often enough for the rest to be exercised.
    assert!(accepted > 5_000, "only {accepted} statements parsed");
}
