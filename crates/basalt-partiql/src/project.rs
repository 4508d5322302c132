//! What a SELECT with a projection list returns. Unlike a ProjectionExpression, DynamoDB
//! flattens each projected path into one top-level attribute named after its last map key
//! with any list indexes after it: `SELECT Devices.FireStick.DateWatched[0]` returns
//! `{"DateWatched[0]": ...}` and `SELECT l[0]` returns `{"l[0]": ...}`
//! (ql-reference.select; DynamoDB's own answer for `l[0]`).

use basalt_dynamodb_expr::{AttributeValue, Item, Path, PathElement};

/// The attribute name a projected path gets.
pub(crate) fn flat_name(path: &Path) -> String {
    let mut name = String::new();
    for e in &path.elements {
        match e {
            PathElement::Attr(a) => name = a.clone(),
            PathElement::Index(i) => name.push_str(&format!("[{i}]")),
        }
    }
    name
}

/// The value at `path` in `item`, if there is one.
fn lookup<'a>(item: &'a Item, path: &Path) -> Option<&'a AttributeValue> {
    let mut elements = path.elements.iter();
    let Some(PathElement::Attr(first)) = elements.next() else {
        return None;
    };
    let mut v = item.get(first)?;
    for e in elements {
        v = match (e, v) {
            (PathElement::Attr(a), AttributeValue::M(m)) => m.get(a)?,
            (PathElement::Index(i), AttributeValue::L(l)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

/// `item` through the projection list, flattened; paths the item lacks are left out, so an
/// item with none of them projects to `{}` (ql-reference.multiplestatements.transactions).
pub(crate) fn project(item: &Item, paths: &[Path]) -> Item {
    paths
        .iter()
        .filter_map(|p| lookup(item, p).map(|v| (flat_name(p), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_dynamodb_expr::Number;

    #[test]
    fn names_are_the_last_key_with_its_indexes() {
        let p = Path::attr("Devices")
            .child("FireStick")
            .child("DateWatched")
            .index(0);
        assert_eq!(flat_name(&p), "DateWatched[0]");
        assert_eq!(flat_name(&Path::attr("l").index(0).index(2)), "l[0][2]");
        assert_eq!(flat_name(&Path::attr("a")), "a");
    }

    #[test]
    fn missing_paths_are_left_out() {
        let mut item = Item::new();
        item.insert(
            "l".into(),
            AttributeValue::L(vec![
                AttributeValue::S("a".into()),
                AttributeValue::N(Number::from_i64(2)),
            ]),
        );
        let out = project(
            &item,
            &[
                Path::attr("l").index(1),
                Path::attr("l").index(5),
                Path::attr("x"),
            ],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out["l[1]"], AttributeValue::N(Number::from_i64(2)));
    }
}
