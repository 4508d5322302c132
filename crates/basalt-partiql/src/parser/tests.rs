use super::*;
use crate::syntax::BinOp;

fn err(src: &str) -> String {
    parse(src).unwrap_err().0
}

#[test]
fn select_with_index_projection_where_and_order() {
    let p =
        parse("SELECT a, b.c[1] FROM \"T\".\"idx\" WHERE a = ? AND b IN [1, ?] ORDER BY a DESC")
            .unwrap();
    assert_eq!(p.params, 2);
    let SynStatement::Select {
        projection,
        source,
        where_,
        order_by,
    } = p.stmt
    else {
        panic!("not a select")
    };
    assert_eq!(projection.unwrap().len(), 2);
    assert_eq!(source.table, "T");
    assert_eq!(source.index.as_deref(), Some("idx"));
    assert!(where_.is_some());
    assert_eq!(order_by.len(), 1);
    assert!(order_by[0].1);
}

#[test]
fn not_binds_looser_than_a_comparison() {
    let p = parse("SELECT * FROM t WHERE NOT a = 1").unwrap();
    let SynStatement::Select {
        where_: Some(Expr::Not(inner, _)),
        ..
    } = p.stmt
    else {
        panic!("expected NOT at the top")
    };
    assert!(matches!(*inner, Expr::Binary(BinOp::Eq, ..)));
}

#[test]
fn and_binds_tighter_than_or() {
    let p = parse("SELECT * FROM t WHERE a = 1 OR b = 2 AND c = 3").unwrap();
    let SynStatement::Select {
        where_: Some(Expr::Binary(BinOp::Or, _, right, _)),
        ..
    } = p.stmt
    else {
        panic!("expected OR at the top")
    };
    assert!(matches!(*right, Expr::Binary(BinOp::And, ..)));
}

#[test]
fn leftovers_and_unknown_statements() {
    let leftover =
        "Statement wasn't well formed, can't be processed: Unexpected token after expression";
    assert_eq!(err("SELECT * FROM t WHERE pk = 1 foo"), leftover);
    assert_eq!(err("SELECT * FROM t WHERE pk = 1)"), leftover);
    assert_eq!(err("DELETE FROM t WHERE pk = 1 ORDER BY pk"), leftover);
    assert_eq!(err("SELECT * FROM t ORDER BY pk WHERE pk = 1"), leftover);
    assert_eq!(err("INSERT INTO \"t\" x VALUE {'pk': 1}"), leftover);
    assert_eq!(
        err("SLECT * FROM t"),
        "Statement wasn't well formed, can't be processed: Expected data manipulation"
    );
    assert_eq!(
        err("SELECT * FROM t WHERE"),
        "Statement wasn't well formed, can't be processed: Unexpected term"
    );
}

#[test]
fn aliases_are_refused() {
    for src in [
        "SELECT * FROM \"t\" x WHERE pk = 'x'",
        "SELECT * FROM \"t\" AS x WHERE pk = 'x'",
        "UPDATE \"t\" x SET a = 3 WHERE pk = 'x'",
        "DELETE FROM \"t\" x WHERE pk = 'x'",
    ] {
        assert_eq!(err(src), "Aliasing is not supported", "{src}");
    }
}

#[test]
fn a_reserved_word_after_a_dot_is_an_invalid_path_component() {
    assert_eq!(
        err("SELECT * FROM t WHERE attribute_exists(m.inner)"),
        "Statement wasn't well formed, can't be processed: Invalid path dot component"
    );
    assert!(parse("SELECT * FROM t WHERE attribute_exists(m.\"inner\")").is_ok());
}

#[test]
fn negative_list_index_points_at_the_digits() {
    assert_eq!(
        err("SELECT l[-1] FROM \"t\" WHERE pk='i'"),
        "List index is not within the allowable range; index: [-1] at 1:11:1"
    );
    assert!(parse("SELECT l[-0] FROM \"t\" WHERE pk='i'").is_ok());
}

#[test]
fn from_first_update_and_comma_separated_assignments() {
    let p = parse("FROM \"t\" WHERE pk = ? SET c = ?, d = 1 REMOVE e RETURNING ALL NEW *").unwrap();
    assert_eq!(p.params, 2);
    let SynStatement::Update {
        assignments,
        returning,
        ..
    } = p.stmt
    else {
        panic!("not an update")
    };
    assert_eq!(assignments.len(), 3);
    assert_eq!(
        returning,
        Some(ReturningSyn {
            all: true,
            new: true
        })
    );
}

#[test]
fn returning_shapes() {
    assert_eq!(
        err("UPDATE t SET a = 1 WHERE pk = 1 RETURNING ALL NEW a"),
        "Expected '*' after ( MODIFIED | ALL ) ( NEW | OLD ) in RETURNING clause"
    );
    assert_eq!(
        err("INSERT INTO t VALUE {'a': 1} RETURNING ALL OLD *"),
        "RETURNING is not supported in INSERT"
    );
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let src = format!(
        "SELECT * FROM t WHERE {}a = 1{}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    assert!(parse(&src).is_err());
    let nots = format!("SELECT * FROM t WHERE {} a = 1", "NOT ".repeat(5000));
    assert!(parse(&nots).is_err());
}

#[test]
fn a_trailing_semicolon_and_comment_are_fine() {
    assert!(parse("SELECT a FROM \"t\" WHERE a = 'x--y'; -- done").is_ok());
}
