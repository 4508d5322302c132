//! Which items a statement names: Query keys of a SELECT, the one key of an UPDATE or DELETE,
//! the GetItem of a transaction read, ORDER BY rules.
//! Source: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ql-reference.select.html
//! (equality or IN on the partition key avoids a scan), ql-reference.update / ql-reference.delete
//! ("This condition must resolve to a single primary key value").

use basalt_dynamodb_expr::{AttributeValue, Item, Number, RangeCondition, ResolvedKey};
use basalt_partiql::{Select, Statement, parse};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(Number::from_i64(v))
}

fn select(src: &str) -> Select {
    match parse(src, &[]).unwrap() {
        Statement::Select(s) => s,
        other => panic!("not a select: {other:?}"),
    }
}

fn hashes(keys: &[ResolvedKey]) -> Vec<AttributeValue> {
    keys.iter().map(|k| k.hash.clone()).collect()
}

#[test]
fn equality_on_the_partition_key_is_a_query() {
    let q = select("SELECT * FROM \"Orders\" WHERE OrderID = 100 and Address='some address'");
    let keys = q.key_condition("OrderID", None).unwrap();
    assert_eq!(
        keys,
        vec![ResolvedKey {
            hash: n(100),
            range: None
        }]
    );
}

#[test]
fn or_of_partition_equalities_and_in_are_several_partitions() {
    let q = select("SELECT * FROM \"Orders\" WHERE OrderID = 100 or OrderID = 200");
    assert_eq!(
        hashes(&q.key_condition("OrderID", None).unwrap()),
        vec![n(100), n(200)]
    );
    let q = select("SELECT * FROM \"Orders\" WHERE OrderID IN [100, 300, 234]");
    assert_eq!(
        hashes(&q.key_condition("OrderID", None).unwrap()),
        vec![n(100), n(300), n(234)]
    );
    let q = select("SELECT * FROM \"Orders\" WHERE OrderID IN (100, 100)");
    assert_eq!(
        hashes(&q.key_condition("OrderID", None).unwrap()),
        vec![n(100)]
    );
}

#[test]
fn the_guides_full_scans_are_scans() {
    for src in [
        "SELECT * FROM \"Orders\" WHERE OrderID > 1",
        "SELECT * FROM \"Orders\" WHERE Address='some address'",
        "SELECT * FROM \"Orders\" WHERE OrderID = 100 OR Address='some address'",
        "SELECT * FROM \"Orders\"",
        "SELECT * FROM \"Orders\" WHERE NOT OrderID = 1",
        "SELECT * FROM \"Orders\" WHERE OrderID <> 1",
    ] {
        assert_eq!(select(src).key_condition("OrderID", None), None, "{src}");
    }
}

#[test]
fn sort_key_conditions_ride_along() {
    let cases: Vec<(&str, Vec<RangeCondition>)> = vec![
        ("sk = 'a'", vec![RangeCondition::Eq(s("a"))]),
        ("sk < 'a'", vec![RangeCondition::Lt(s("a"))]),
        ("'a' < sk", vec![RangeCondition::Gt(s("a"))]),
        ("sk >= 'a'", vec![RangeCondition::Ge(s("a"))]),
        (
            "sk BETWEEN 'a' AND 'c'",
            vec![RangeCondition::Between(s("a"), s("c"))],
        ),
        (
            "begins_with(sk, 'ab')",
            vec![RangeCondition::BeginsWith(s("ab"))],
        ),
        (
            "sk IN ['1', '3']",
            vec![RangeCondition::Eq(s("1")), RangeCondition::Eq(s("3"))],
        ),
    ];
    for (cond, want) in cases {
        let q = select(&format!("SELECT * FROM t WHERE pk = 'p' AND {cond}"));
        let got: Vec<RangeCondition> = q
            .key_condition("pk", Some("sk"))
            .unwrap()
            .into_iter()
            .map(|k| k.range.unwrap())
            .collect();
        assert_eq!(got, want, "{cond}");
    }
    // A negated sort key condition is a filter only.
    let q = select("SELECT * FROM t WHERE pk = 'p' AND NOT sk = '1'");
    assert_eq!(
        q.key_condition("pk", Some("sk")).unwrap(),
        vec![ResolvedKey {
            hash: s("p"),
            range: None
        }]
    );
}

#[test]
fn overlapping_branches_on_one_partition_read_it_once() {
    let q = select("SELECT * FROM t WHERE pk = 'p' AND sk > '1' OR pk = 'p' AND sk = '2'");
    assert_eq!(
        q.key_condition("pk", Some("sk")).unwrap(),
        vec![ResolvedKey {
            hash: s("p"),
            range: None
        }]
    );
    let q = select("SELECT * FROM t WHERE pk = 'p' AND sk = '1' OR pk = 'p' AND sk = '2'");
    assert_eq!(q.key_condition("pk", Some("sk")).unwrap().len(), 2);
    let q = select("SELECT * FROM t WHERE (pk = 'a' OR pk = 'b') AND sk = 'x'");
    let keys = q.key_condition("pk", Some("sk")).unwrap();
    assert_eq!(hashes(&keys), vec![s("a"), s("b")]);
}

#[test]
fn contradictory_partitions_read_nothing() {
    let q = select("SELECT * FROM t WHERE pk = 'a' AND pk = 'b'");
    assert_eq!(q.key_condition("pk", None), Some(vec![]));
}

fn key_of(src: &str, hash: &str, range: Option<&str>) -> Result<Item, String> {
    match parse(src, &[]).unwrap() {
        Statement::Update(u) => u.key(hash, range),
        Statement::Delete(d) => d.key(hash, range),
        other => panic!("not a write: {other:?}"),
    }
    .map_err(|e| e.0)
}

#[test]
fn writes_need_every_key_attribute_with_equals() {
    let key = key_of(
        "DELETE FROM \"Music\" WHERE \"Artist\" = 'Acme Band' AND \"SongTitle\" = 'PartiQL Rocks'",
        "Artist",
        Some("SongTitle"),
    )
    .unwrap();
    assert_eq!(key.len(), 2);
    assert_eq!(key["Artist"], s("Acme Band"));
    let incomplete = "Where clause does not contain a mandatory equality on all key attributes";
    for src in [
        "DELETE FROM \"Music\" WHERE Artist = 'Acme Band'",
        "DELETE FROM \"Music\" WHERE Artist = 'a' OR SongTitle = 'b'",
        "UPDATE \"Music\" SET a = 1 WHERE Artist = 'a' AND SongTitle > 'b'",
        "UPDATE \"Music\" SET a = 1 WHERE Artist = 'a' AND NOT SongTitle = 'b'",
        "UPDATE \"Music\" SET a = 1 WHERE Artist IN ['a'] AND SongTitle = 'b'",
    ] {
        assert_eq!(
            key_of(src, "Artist", Some("SongTitle")).unwrap_err(),
            incomplete,
            "{src}"
        );
    }
    assert_eq!(
        key_of("UPDATE t SET a = 1 WHERE pk = 'a' AND pk = 'b'", "pk", None).unwrap_err(),
        "Multiple conditions on same key pk. Only single item Update/Insert/Delete are supported"
    );
    assert!(key_of("UPDATE t SET a = 1 WHERE 'a' = pk AND pk = 'a'", "pk", None).is_ok());
}

#[test]
fn transaction_reads_are_key_equalities_only() {
    let q = select("SELECT * FROM t WHERE (sk='1') AND pk='keyed' AND pk='keyed'");
    let key = q.get_key("pk", Some("sk")).unwrap();
    assert_eq!(key["pk"], s("keyed"));
    for src in [
        "SELECT * FROM t WHERE pk='keyed' AND sk='1' AND flag='right'",
        "SELECT * FROM t WHERE pk='keyed' AND sk='1' AND pk='reads'",
        "SELECT * FROM t WHERE pk='keyed'",
        "SELECT * FROM t",
    ] {
        assert_eq!(select(src).get_key("pk", Some("sk")), None, "{src}");
    }
}

#[test]
fn exists_needs_the_key_and_one_more_condition() {
    let check = |src: &str| match parse(src, &[]).unwrap() {
        Statement::Exists(e) => e.check("Artist", Some("SongTitle")).map_err(|e| e.0),
        other => panic!("not EXISTS: {other:?}"),
    };
    let (key, _) = check(
        "EXISTS(SELECT * FROM \"Music\" where Artist='No One You Know' and SongTitle='Call Me Today' and Awards is  MISSING)",
    )
    .unwrap();
    assert_eq!(key["SongTitle"], s("Call Me Today"));
    assert_eq!(
        check("EXISTS(SELECT * FROM \"Music\" WHERE \"Artist\" = 'Acme Band' AND \"SongTitle\" = 'PartiQL Rocks')")
            .unwrap_err(),
        "EXISTS() must contain a single item read with additional condition"
    );
}

#[test]
fn order_by_rules() {
    let q = select(
        "SELECT OrderID, Total FROM \"Orders\" WHERE OrderID IN [1, 2, 3] ORDER BY OrderID DESC",
    );
    assert_eq!(q.order_desc, Some(true));
    assert!(q.check_order_by("OrderID", None).is_ok());
    assert_eq!(
        select("SELECT * FROM t ORDER BY pk")
            .check_order_by("pk", None)
            .unwrap_err()
            .0,
        "Must have WHERE clause in the statement when using ORDER BY clause."
    );
    assert_eq!(
        select("SELECT * FROM t WHERE pk = 1 ORDER BY x")
            .check_order_by("pk", None)
            .unwrap_err()
            .0,
        "Variable reference x in ORDER BY clause must be part of the primary key"
    );
    assert_eq!(
        select("SELECT * FROM t WHERE a = 1 ORDER BY pk")
            .check_order_by("pk", None)
            .unwrap_err()
            .0,
        "Must have at least one non-optional hash key condition in WHERE clause when using ORDER BY clause."
    );
    assert_eq!(
        select("SELECT * FROM t WHERE pk = 1 ORDER BY sk ASC").order_desc,
        Some(false)
    );
    assert_eq!(select("SELECT * FROM t WHERE pk = 1").order_desc, None);
}
