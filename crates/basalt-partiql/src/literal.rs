//! Literals and parameters to DynamoDB values: `'s'`, numbers, `TRUE`, `NULL`, `{...}` maps,
//! `[...]` lists, `<<...>>` sets and `?`. Messages name where in the value a problem sits the
//! way DynamoDB does: `root` for the value itself, `root.x` for a map member, `root[1]` for a
//! list element.

use crate::error::PartiqlError;
use crate::syntax::Expr;
use basalt_dynamodb_expr::{AttributeValue, Item, Number};

/// The value of a literal expression, with `?` bound to `params` (already counted).
pub(crate) fn value_of(
    e: &Expr,
    params: &[AttributeValue],
) -> Result<AttributeValue, PartiqlError> {
    convert(e, params, "root")
}

fn convert(e: &Expr, params: &[AttributeValue], at: &str) -> Result<AttributeValue, PartiqlError> {
    Ok(match e {
        Expr::Str(s, _) => AttributeValue::S(s.clone()),
        Expr::Num(text, _) => AttributeValue::N(number(text, at)?),
        Expr::Bool(b, _) => AttributeValue::Bool(*b),
        Expr::Null(_) => AttributeValue::Null,
        Expr::Param(i, _) => params[*i].clone(),
        Expr::List(items, _) => AttributeValue::L(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| convert(x, params, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Map(entries, _) => AttributeValue::M(map(entries, params, at)?),
        Expr::Bag(items, _) => bag(items, params, at)?,
        Expr::Missing(_) => {
            return Err(PartiqlError(format!(
                "Unsupported data type: MISSING under key {at}"
            )));
        }
        Expr::Call(name, _, pos) => {
            return Err(PartiqlError(format!(
                "Unsupported data type: {name} under key {at} at {}",
                pos.at()
            )));
        }
        other => {
            return Err(PartiqlError(format!(
                "Unsupported data type: expression under key {at} at {}",
                other.pos().at()
            )));
        }
    })
}

/// The entries of a `{...}` literal: string keys, each once.
pub(crate) fn map(
    entries: &[(Expr, Expr)],
    params: &[AttributeValue],
    at: &str,
) -> Result<Item, PartiqlError> {
    let mut out = Item::new();
    for (k, v) in entries {
        let key = match convert(k, params, at)? {
            AttributeValue::S(s) => s,
            other => {
                return Err(PartiqlError(format!(
                    "Tuple keys must be of type String. Actual type: {} under {at}",
                    other.type_name()
                )));
            }
        };
        let value = convert(v, params, &format!("{at}.{key}"))?;
        if out.contains_key(&key) {
            return Err(PartiqlError(format!(
                "Duplicate keys in tuple. Key: {key} under {at}"
            )));
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// An item to INSERT: its top-level attributes each start a fresh `root`, as DynamoDB names
/// them (`{'pk': 1e126}` is "under root", `{'m': {'x': 1e126}}` is "under root.x").
pub(crate) fn item(
    entries: &[(Expr, Expr)],
    params: &[AttributeValue],
) -> Result<Item, PartiqlError> {
    let mut out = Item::new();
    for (k, v) in entries {
        let key = match convert(k, params, "root")? {
            AttributeValue::S(s) => s,
            other => {
                return Err(PartiqlError(format!(
                    "Tuple keys must be of type String. Actual type: {} under root",
                    other.type_name()
                )));
            }
        };
        let value = convert(v, params, "root")?;
        if out.contains_key(&key) {
            return Err(PartiqlError(format!(
                "Duplicate keys in tuple. Key: {key} under root"
            )));
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// A `<<...>>` literal: a string, number or binary set by its members' type.
fn bag(
    items: &[Expr],
    params: &[AttributeValue],
    at: &str,
) -> Result<AttributeValue, PartiqlError> {
    if items.is_empty() {
        return Err(PartiqlError::msg("Empty bags are not supported"));
    }
    let values = items
        .iter()
        .map(|x| convert(x, params, at))
        .collect::<Result<Vec<_>, _>>()?;
    // The members as written, for the duplicates message ("[2, 2.0]").
    let shown: Vec<String> = items
        .iter()
        .zip(&values)
        .map(|(x, v)| match (x, v) {
            (Expr::Num(text, _), _) => text.clone(),
            (_, AttributeValue::S(s)) => s.clone(),
            (_, AttributeValue::N(n)) => n.to_string(),
            (_, other) => other.type_name().to_string(),
        })
        .collect();
    let unsupported = || {
        PartiqlError::msg(
            "Unsupported data type in Bag. DynamoDB only supports either numbers or strings in bags",
        )
    };
    let duplicates = |suffix: &str| {
        PartiqlError(format!(
            "One or more parameter values were invalid: Input collection [{}] contains duplicates{suffix}",
            shown.join(", ")
        ))
    };
    match &values[0] {
        AttributeValue::S(_) => {
            let mut out: Vec<String> = Vec::new();
            for v in values {
                let AttributeValue::S(s) = v else {
                    return Err(unsupported());
                };
                if out.contains(&s) {
                    return Err(duplicates("."));
                }
                out.push(s);
            }
            Ok(AttributeValue::Ss(out))
        }
        AttributeValue::N(_) => {
            let mut out: Vec<Number> = Vec::new();
            for v in values {
                let AttributeValue::N(n) = v else {
                    return Err(unsupported());
                };
                if out.contains(&n) {
                    return Err(duplicates(&format!("! under {at}")));
                }
                out.push(n);
            }
            Ok(AttributeValue::Ns(out))
        }
        AttributeValue::B(_) => {
            let mut out: Vec<Vec<u8>> = Vec::new();
            for v in values {
                let AttributeValue::B(b) = v else {
                    return Err(unsupported());
                };
                if out.contains(&b) {
                    return Err(duplicates("."));
                }
                out.push(b);
            }
            Ok(AttributeValue::Bs(out))
        }
        _ => Err(unsupported()),
    }
}

/// A number literal with DynamoDB's checks. An exponent, or a scale (digits after the point
/// less the exponent), outside a 32-bit integer cannot be read at all, and DynamoDB says so
/// with nothing after the colon; a readable number out of DynamoDB's range gets the number
/// message with the place appended.
fn number(text: &str, at: &str) -> Result<Number, PartiqlError> {
    let body = text.trim_start_matches(['-', '+']);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let exp: i64 = match exponent {
        Some(e) => e
            .parse::<i32>()
            .map(i64::from)
            .map_err(|_| PartiqlError::malformed(""))?,
        None => 0,
    };
    let fraction = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i64);
    if i32::try_from(fraction - exp).is_err() {
        return Err(PartiqlError::malformed(""));
    }
    Number::parse(text).map_err(|e| PartiqlError(format!("{e} under {at}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;
    use crate::syntax::SynStatement;

    /// The INSERT item of `INSERT INTO t VALUE <lit>`, bound to `params`.
    fn insert_item(lit: &str, params: &[AttributeValue]) -> Result<Item, PartiqlError> {
        let p = parse(&format!("INSERT INTO t VALUE {lit}")).unwrap();
        let SynStatement::Insert {
            item: Expr::Map(entries, _),
            ..
        } = p.stmt
        else {
            panic!("not a map insert")
        };
        item(&entries, params)
    }

    fn n(s: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(s).unwrap())
    }

    #[test]
    fn every_literal_kind() {
        let it = insert_item(
            "{'s': 'it''s', 'n': -7.31e6, 'b': TRUE, 'z': null, 'l': [1, 'x'], 'm': {'k': 2}, 'ss': <<'a','b'>>, 'ns': <<1, 4.5>>, 'p': ?}",
            &[AttributeValue::B(vec![1, 2])],
        )
        .unwrap();
        assert_eq!(it["s"], AttributeValue::S("it's".into()));
        assert_eq!(it["n"], n("-7310000"));
        assert_eq!(it["b"], AttributeValue::Bool(true));
        assert_eq!(it["z"], AttributeValue::Null);
        assert_eq!(
            it["l"],
            AttributeValue::L(vec![n("1"), AttributeValue::S("x".into())])
        );
        assert_eq!(
            it["m"],
            AttributeValue::M(Item::from([("k".to_string(), n("2"))]))
        );
        assert_eq!(it["ss"], AttributeValue::Ss(vec!["a".into(), "b".into()]));
        assert_eq!(
            it["ns"],
            AttributeValue::Ns(vec![
                Number::parse("1").unwrap(),
                Number::parse("4.5").unwrap()
            ])
        );
        assert_eq!(it["p"], AttributeValue::B(vec![1, 2]));
    }

    #[test]
    fn number_limits_name_their_place() {
        let overflow = "Number overflow. Attempting to store a number with magnitude larger than supported range";
        assert_eq!(
            insert_item("{'pk': 1e126}", &[]).unwrap_err().0,
            format!("{overflow} under root")
        );
        assert_eq!(
            insert_item("{'pk': 1, 'm': {'x': 1e126}}", &[])
                .unwrap_err()
                .0,
            format!("{overflow} under root.x")
        );
        assert_eq!(
            insert_item("{'pk': 1, 'l': [1, 1e126]}", &[])
                .unwrap_err()
                .0,
            format!("{overflow} under root[1]")
        );
        assert_eq!(
            insert_item("{'pk': 1e-131}", &[]).unwrap_err().0,
            "Number underflow. Attempting to store a number with magnitude smaller than supported range under root"
        );
        assert_eq!(
            insert_item("{'pk': 123456789012345678901234567890123456789}", &[])
                .unwrap_err()
                .0,
            "Attempting to store more than 38 significant digits in a Number under root"
        );
    }

    #[test]
    fn unreadable_exponents_have_nothing_after_the_colon() {
        for lit in ["1e2147483648", "1e99999999999", "1.5e-2147483647"] {
            assert_eq!(
                insert_item(&format!("{{'pk': {lit}}}"), &[]).unwrap_err().0,
                "Statement wasn't well formed, can't be processed: ",
                "{lit}"
            );
        }
    }

    #[test]
    fn bags() {
        assert_eq!(
            insert_item("{'s': <<>>}", &[]).unwrap_err().0,
            "Empty bags are not supported"
        );
        assert_eq!(
            insert_item("{'s': <<'x', 'x'>>}", &[]).unwrap_err().0,
            "One or more parameter values were invalid: Input collection [x, x] contains duplicates."
        );
        assert_eq!(
            insert_item("{'s': <<2, 2.0>>}", &[]).unwrap_err().0,
            "One or more parameter values were invalid: Input collection [2, 2.0] contains duplicates! under root"
        );
        assert_eq!(
            insert_item("{'s': <<1, 'a'>>}", &[]).unwrap_err().0,
            "Unsupported data type in Bag. DynamoDB only supports either numbers or strings in bags"
        );
        assert_eq!(
            insert_item("{'s': <<true>>}", &[]).unwrap_err().0,
            "Unsupported data type in Bag. DynamoDB only supports either numbers or strings in bags"
        );
    }

    #[test]
    fn map_keys() {
        assert_eq!(
            insert_item("{'a': 1, 'a': 2}", &[]).unwrap_err().0,
            "Duplicate keys in tuple. Key: a under root"
        );
        assert_eq!(
            insert_item("{'a': {1: 2}}", &[]).unwrap_err().0,
            "Tuple keys must be of type String. Actual type: N under root"
        );
    }

    #[test]
    fn a_function_in_a_value_names_itself_and_its_place() {
        let src = "{'pk': 'x', 'ss': set_add(<<'a'>>, <<'b'>>)}";
        let col = "INSERT INTO t VALUE ".len() + src.find("set_add").unwrap() + 1;
        assert_eq!(
            insert_item(src, &[]).unwrap_err().0,
            format!("Unsupported data type: set_add under key root at 1:{col}:7")
        );
    }
}
