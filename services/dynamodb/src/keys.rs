//! Primary keys: validation with DynamoDB's messages, and the ordered encoding of key values
//! into store keys.
//!
//! Each key value becomes a prefix-free ASCII string whose byte order is DynamoDB's order of
//! that type: numbers through [`Number::order_key`]; strings and binaries as the hex of their
//! bytes followed by `!`, which sorts below every hex digit (so `ab` < `abc`, and UTF-8 byte
//! order is kept). Because no encoding is a prefix of another, concatenations of encodings
//! (table key, index key + table key) compare component by component.

use basalt_core::AwsError;
use basalt_dynamodb_expr::{AttributeValue, Item};

use crate::model::{IndexRec, KeySchema, TableRec};

/// DynamoDB's limits on key sizes, in bytes.
const MAX_HASH_BYTES: usize = 2048;
const MAX_RANGE_BYTES: usize = 1024;
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Appends the ordered encoding of a key value.
pub fn encode_into(v: &AttributeValue, out: &mut String) {
    match v {
        AttributeValue::N(n) => out.push_str(&n.order_key()),
        AttributeValue::S(s) => hex_into(s.as_bytes(), out),
        AttributeValue::B(b) => hex_into(b, out),
        // Never a key type: validation rejects these before any encoding.
        other => hex_into(other.type_name().as_bytes(), out),
    }
}

fn hex_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2 + 1);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out.push('!');
}

/// The encoding of a string or binary prefix, for `begins_with`: the hex without the
/// terminator, so every value starting with those bytes starts with it.
pub fn encode_prefix(v: &AttributeValue) -> String {
    let mut s = String::new();
    encode_into(v, &mut s);
    if matches!(v, AttributeValue::S(_) | AttributeValue::B(_)) {
        s.pop();
    }
    s
}

/// Smallest string above every string that starts with `prefix` (all keys are ASCII, so the
/// last byte can always be raised).
pub fn upper(prefix: &str) -> String {
    let mut b = prefix.as_bytes().to_vec();
    while let Some(last) = b.pop() {
        if last < 0x7f {
            b.push(last + 1);
            return String::from_utf8(b).unwrap_or_default();
        }
    }
    "\u{7f}".to_owned()
}

/// Prefix of all of a table's items.
pub fn table_prefix(t: &TableRec) -> String {
    format!("{}/", t.uid)
}

/// Prefix of all entries of one index.
pub fn index_prefix(t: &TableRec, ix: &IndexRec) -> String {
    format!("{}/{}/", t.uid, ix.name)
}

/// Store key of an item whose key attributes are valid for `schema`.
pub fn item_key(t: &TableRec, item: &Item) -> String {
    let mut k = table_prefix(t);
    encode_key_into(&t.key, item, &mut k);
    k
}

fn encode_key_into(schema: &KeySchema, item: &Item, out: &mut String) {
    for name in schema.names() {
        if let Some(v) = item.get(name) {
            encode_into(v, out);
        }
    }
}

/// Store key of the index entry of `item`, or `None` when the item lacks one of the index's
/// key attributes (a sparse index) or holds one of another type.
pub fn index_key(t: &TableRec, ix: &IndexRec, item: &Item) -> Option<String> {
    let ok =
        |name: &str, ty: crate::model::ScalarType| item.get(name).is_some_and(|v| ty.matches(v));
    if !ok(&ix.key.hash.name, ix.key.hash.ty) {
        return None;
    }
    if let Some(r) = &ix.key.range
        && !ok(&r.name, r.ty)
    {
        return None;
    }
    let mut k = index_prefix(t, ix);
    encode_key_into(&ix.key, item, &mut k);
    encode_key_into(&t.key, item, &mut k);
    Some(k)
}

/// The table's key attributes of an item.
pub fn key_of(schema: &KeySchema, item: &Item) -> Item {
    schema
        .names()
        .filter_map(|n| item.get(n).map(|v| (n.to_owned(), v.clone())))
        .collect()
}

/// Bytes of a key's attributes (names and values), as stream records count them.
pub fn key_size(key: &Item) -> usize {
    key.iter().map(|(n, v)| n.len() + v.size()).sum()
}

pub fn schema_mismatch() -> AwsError {
    AwsError::validation("The provided key element does not match the schema")
}

/// A `Key` parameter (GetItem, DeleteItem, UpdateItem, ...): exactly the schema's attributes,
/// of their types.
pub fn validate_key(t: &TableRec, key: &Item) -> Result<(), AwsError> {
    if key.len() != t.key.names().count() {
        return Err(schema_mismatch());
    }
    for attr in std::iter::once(&t.key.hash).chain(t.key.range.as_ref()) {
        match key.get(&attr.name) {
            Some(v) if attr.ty.matches(v) => check_key_value(&attr.name, v, attr == &t.key.hash)?,
            _ => return Err(schema_mismatch()),
        }
    }
    Ok(())
}

/// An item to be written: its key attributes present and typed, its index keys typed.
pub fn validate_item(t: &TableRec, item: &Item) -> Result<(), AwsError> {
    for attr in std::iter::once(&t.key.hash).chain(t.key.range.as_ref()) {
        match item.get(&attr.name) {
            None => {
                return Err(AwsError::validation(format!(
                    "One or more parameter values were invalid: Missing the key {} in the item",
                    attr.name
                )));
            }
            Some(v) if !attr.ty.matches(v) => {
                return Err(AwsError::validation(format!(
                    "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                    attr.name,
                    attr.ty.as_str(),
                    v.type_name()
                )));
            }
            Some(v) => check_key_value(&attr.name, v, attr == &t.key.hash)?,
        }
    }
    for ix in t.live_indexes() {
        for attr in std::iter::once(&ix.key.hash).chain(ix.key.range.as_ref()) {
            match item.get(&attr.name) {
                Some(v) if !attr.ty.matches(v) => {
                    return Err(AwsError::validation(format!(
                        "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
                        attr.name,
                        attr.ty.as_str(),
                        v.type_name(),
                        ix.name
                    )));
                }
                Some(v) if is_empty_scalar(v) => {
                    return Err(AwsError::validation(format!(
                        "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty string value. IndexName: {}, IndexKey: {}",
                        ix.name, attr.name
                    )));
                }
                _ => {}
            }
        }
    }
    if basalt_dynamodb_expr::item_size(item) > MAX_ITEM_BYTES {
        return Err(AwsError::validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    Ok(())
}

fn is_empty_scalar(v: &AttributeValue) -> bool {
    match v {
        AttributeValue::S(s) => s.is_empty(),
        AttributeValue::B(b) => b.is_empty(),
        _ => false,
    }
}

fn check_key_value(name: &str, v: &AttributeValue, hash: bool) -> Result<(), AwsError> {
    if is_empty_scalar(v) {
        return Err(AwsError::validation(format!(
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {} value. Key: {name}",
            if matches!(v, AttributeValue::S(_)) {
                "string"
            } else {
                "binary"
            }
        )));
    }
    let size = v.size();
    if hash && size > MAX_HASH_BYTES {
        return Err(AwsError::validation(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
        ));
    }
    if !hash && size > MAX_RANGE_BYTES {
        return Err(AwsError::validation(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_dynamodb_expr::Number;

    fn enc(v: &AttributeValue) -> String {
        let mut s = String::new();
        encode_into(v, &mut s);
        s
    }

    #[test]
    fn strings_keep_byte_order_and_are_prefix_free() {
        let mut words = vec![
            "",
            "a",
            "ab",
            "abc",
            "b",
            "B",
            "é",
            "\u{0}",
            "a\u{0}",
            "zz",
            "\u{10ffff}",
        ];
        let mut encoded: Vec<String> = words
            .iter()
            .map(|w| enc(&AttributeValue::S((*w).into())))
            .collect();
        words.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        encoded.sort();
        let expect: Vec<String> = words
            .iter()
            .map(|w| enc(&AttributeValue::S((*w).into())))
            .collect();
        assert_eq!(encoded, expect);
        // Concatenations compare by their first component first.
        let a = enc(&AttributeValue::S("a".into())) + &enc(&AttributeValue::S("z".into()));
        let ab = enc(&AttributeValue::S("ab".into())) + &enc(&AttributeValue::S("a".into()));
        assert!(a < ab);
    }

    #[test]
    fn begins_with_prefixes_bound_the_range() {
        let p = encode_prefix(&AttributeValue::S("ab".into()));
        let hi = upper(&p);
        for (w, inside) in [
            ("ab", true),
            ("abz", true),
            ("a", false),
            ("ac", false),
            ("aa", false),
        ] {
            let e = enc(&AttributeValue::S(w.into()));
            assert_eq!(e.as_str() >= p.as_str() && e < hi, inside, "{w}");
        }
    }

    #[test]
    fn numbers_order_numerically() {
        let vals = ["-100", "-1.5", "-1", "0", "0.001", "1", "1.5", "10", "99"];
        let encoded: Vec<String> = vals
            .iter()
            .map(|v| enc(&AttributeValue::N(Number::parse(v).unwrap())))
            .collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(encoded, sorted);
    }

    #[test]
    fn upper_bounds_ascii() {
        assert_eq!(upper("ab"), "ac");
        assert_eq!(upper("a\u{7f}"), "b");
        assert_eq!(upper(""), "\u{7f}");
        assert!(upper("").as_str() > "f0!");
    }
}
