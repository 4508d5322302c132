//! DynamoDB's ValidationException messages for statements it refuses, word for word.
//! Each row: statement, parameters (DynamoDB JSON), message. The wording is DynamoDB's own
//! (the messages of its PartiQL front end and of the expression engine it translates to);
//! where a message points at the statement it carries `at line:column:length`.

use basalt_dynamodb_expr::AttributeValue;
use basalt_partiql::parse;
use serde_json::json;

const MALFORMED: &str = "Statement wasn't well formed, can't be processed: ";

fn message(statement: &str, params: serde_json::Value) -> String {
    let params: Vec<AttributeValue> = params
        .as_array()
        .unwrap()
        .iter()
        .map(|p| AttributeValue::from_json(p).unwrap())
        .collect();
    match parse(statement, &params) {
        Ok(s) => panic!("accepted: {statement} -> {s:?}"),
        Err(e) => e.0,
    }
}

/// `1:<column>:<length>` of the first `token` in `statement` at or after `from`.
fn at(statement: &str, token: &str, len: usize, from: usize) -> String {
    let col = statement[from..].find(token).unwrap() + from + 1;
    format!("1:{col}:{len}")
}

#[test]
fn syntax() {
    let rows: Vec<(&str, String)> = vec![
        ("SELECT * FROM \"t\" WHERE pk = 1 foo", format!("{MALFORMED}Unexpected token after expression")),
        ("SELECT * FROM \"t\" WHERE pk = 1 e5", format!("{MALFORMED}Unexpected token after expression")),
        ("UPDATE \"t\" SET a = 9 WHERE pk = 2 foo", format!("{MALFORMED}Unexpected token after expression")),
        ("SELECT * FROM \"t\" WHERE", format!("{MALFORMED}Unexpected term")),
        ("SLECT * FROM \"t\" WHERE pk = 'x'", format!("{MALFORMED}Expected data manipulation")),
        ("SELECT * FROM \"t\" WHERE pk = 1 # note", MALFORMED.to_string()),
        ("SELECT * FROM \"t\" WHERE pk = 1 /* note", MALFORMED.to_string()),
        ("SELECT * FROM \"t\" WHERE pk = 1e2147483648", MALFORMED.to_string()),
        ("SELECT * FROM \"t\" WHERE pk = 1.5e-2147483647", MALFORMED.to_string()),
        ("SELECT * FROM \"t\" WHERE attribute_exists(m.inner)", format!("{MALFORMED}Invalid path dot component")),
        ("SELECT * FROM \"t\" t WHERE pk = 'x'", "Aliasing is not supported".to_string()),
        ("SELECT * FROM \"t\" WHERE (pk = 'x'", format!("{MALFORMED}Expected RIGHT_PAREN")),
        ("SELECT *, a FROM \"t\"", "Other attributes should not be present in the projection when '*' is used.".to_string()),
        ("SELECT VALUE a FROM \"t\"", "Select projection doesn't support value or pivot keywords".to_string()),
        ("SELECT a[*] FROM \"t\"", "Wildcard path component like a[*].b are not supported".to_string()),
        ("SELECT a.* FROM \"t\"", "Unpivot path component like a.*.b are not supported".to_string()),
        ("SELECT * FROM \"t\".\"i\".\"x\"", "A path may contain at most 2 components in the FROM clause".to_string()),
        (
            "INSERT INTO \"t\" VALUES {'pk': 1}",
            "Unsupported operation: Inserting multiple items in a single statement is not supported, use \"INSERT INTO tableName VALUE item\" instead".to_string(),
        ),
    ];
    for (statement, want) in rows {
        assert_eq!(message(statement, json!([])), want, "{statement}");
    }
}

#[test]
fn parameters_must_match_the_question_marks() {
    let want = "Number of parameters in request and statement don't match.";
    assert_eq!(message("SELECT * FROM t WHERE pk = ?", json!([])), want);
    assert_eq!(
        message("SELECT * FROM t WHERE pk = 'a'", json!([{"S": "a"}])),
        want
    );
    // ql-reference.multiplestatements.batching: '?' in quotes is a string, not a parameter.
    assert_eq!(
        message(
            "INSERT INTO \"Music\" value {'Artist':'?','SongTitle':'?'}",
            json!([{"S": "Acme Band"}, {"S": "Best Song"}])
        ),
        want
    );
    // A syntax error is reported ahead of the count.
    assert_eq!(
        message("SELECT * FROM t WHERE pk = ? foo", json!([])),
        format!("{MALFORMED}Unexpected token after expression")
    );
}

#[test]
fn numbers() {
    let overflow =
        "Number overflow. Attempting to store a number with magnitude larger than supported range";
    assert_eq!(
        message("SELECT * FROM \"t\" WHERE pk = 1e126", json!([])),
        format!("{overflow} under root")
    );
    assert_eq!(
        message("UPDATE \"t\" SET a = 1e-131 WHERE pk = 5", json!([])),
        "Number underflow. Attempting to store a number with magnitude smaller than supported range under root"
    );
    assert_eq!(
        message(
            "INSERT INTO \"t\" VALUE {'pk': 1, 'l': [1, 1e126]}",
            json!([])
        ),
        format!("{overflow} under root[1]")
    );
}

#[test]
fn functions() {
    let item = "pq-fn-msg";
    let wh = |c: &str| format!("SELECT * FROM \"T\" WHERE pk = '{item}' AND {c}");
    let up = |s: &str| format!("UPDATE \"T\" SET {s} WHERE pk = '{item}'");
    assert_eq!(
        message(&wh("attribute_exists('ss')"), json!([])),
        "Operator or function requires a document path; operator or function: attribute_exists"
    );
    assert_eq!(
        message(&wh("attribute_exists(?)"), json!([{"S": "ss"}])),
        "Operator or function requires a document path; operator or function: attribute_exists"
    );
    assert_eq!(
        message(&wh("attribute_exists()"), json!([])),
        "Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 0"
    );
    assert_eq!(
        message(&wh("attribute_exists(ss, ns)"), json!([])),
        "Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2"
    );
    let s = format!("SELECT attribute_exists(ss) FROM \"T\" WHERE pk = '{item}'");
    assert_eq!(
        message(&s, json!([])),
        format!(
            "Unexpected path component at {}",
            at(&s, "attribute_exists", 16, 0)
        )
    );
    let s = wh("EXISTS(ss)");
    assert_eq!(
        message(&s, json!([])),
        format!(
            "Unrecognized function: exists at {}",
            at(&s, "EXISTS", 6, 0)
        )
    );
    let s = wh("set_add(ss, <<'x'>>) = ss");
    assert_eq!(
        message(&s, json!([])),
        format!(
            "Unrecognized function: set_add at {}",
            at(&s, "set_add", 7, 0)
        )
    );
    assert_eq!(
        message(&wh("attribute_type(l, 1)"), json!([])),
        "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N"
    );
    assert_eq!(
        message(&wh("attribute_type(l, true)"), json!([])),
        "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: BOOL"
    );
    assert_eq!(
        message(&wh("attribute_type(l, 'X')"), json!([])),
        "Invalid attribute type name found; type: X, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
    );

    let s = up("t = set_add(ss, <<'x'>>)");
    assert_eq!(
        message(&s, json!([])),
        format!(
            "The first argument to SET_ADD must equal the assignment value at {}",
            at(&s, "set_add", 7, 0)
        )
    );
    let s = up("ss = set_add(<<'a'>>, <<'b'>>)");
    assert_eq!(
        message(&s, json!([])),
        format!(
            "The first argument to SET_ADD must equal the assignment value at {}",
            at(&s, "set_add", 7, 0)
        )
    );
    let s = up("ss = set_add(ss, 'x')");
    assert_eq!(
        message(&s, json!([])),
        format!(
            "The second argument to SET_ADD must be a value with type SET at {}",
            at(&s, "ss", 2, s.find("set_add(").unwrap())
        )
    );
    let s = up("ss = set_add(ss, ['x'])");
    assert_eq!(
        message(&s, json!([])),
        format!(
            "The second argument to SET_ADD must be a value with type SET at {}",
            at(&s, "ss", 2, s.find("set_add(").unwrap())
        )
    );
    let s = up("ss = set_add(ss)");
    assert_eq!(
        message(&s, json!([])),
        format!(
            "SET_ADD must have exactly two arguments at {}",
            at(&s, "set_add", 7, 0)
        )
    );
    let s = up("ss = set_add(ss, <<'x'>>, <<'y'>>)");
    assert_eq!(
        message(&s, json!([])),
        format!(
            "SET_ADD must have exactly two arguments at {}",
            at(&s, "set_add", 7, 0)
        )
    );
    assert_eq!(
        message(&up("ss = set_add(ss, <<'x', 'x'>>)"), json!([])),
        "One or more parameter values were invalid: Input collection [x, x] contains duplicates."
    );
    assert_eq!(
        message(&up("ss = set_add(ss, <<>>)"), json!([])),
        "Empty bags are not supported"
    );
    let s = up("t = set_delete(ss, <<'a'>>)");
    assert_eq!(
        message(&s, json!([])),
        format!(
            "The first argument to SET_DELETE must equal the assignment value at {}",
            at(&s, "set_delete", 10, 0)
        )
    );
    // The quoted first argument is reported with its quotes.
    let s = "UPDATE \"T\" SET \"BandMembers\" = set_delete(\"BandMembers\", ['x']) WHERE pk='sets'";
    assert_eq!(
        message(s, json!([])),
        format!(
            "The second argument to SET_DELETE must be a value with type SET at {}",
            at(s, "\"BandMembers\"", 13, s.find("set_delete").unwrap())
        )
    );
    // Positions count lines.
    let s = "UPDATE \"T\"\nSET BandMembers = set_add(BandMembers, 'x')\nWHERE pk='sets'";
    assert_eq!(
        message(s, json!([])),
        "The second argument to SET_ADD must be a value with type SET at 2:27:11"
    );
}

#[test]
fn operators_and_types() {
    let wh = |c: &str| format!("SELECT pk FROM \"T\" WHERE pk = ? AND {c}");
    for op in ["<", "<=", ">", ">="] {
        assert_eq!(
            message(
                &wh(&format!("val {op} ?")),
                json!([{"S": "k"}, {"BOOL": true}])
            ),
            format!(
                "Incorrect operand type for operator or function; operator or function: {op}, operand type: BOOL"
            )
        );
    }
    for (ty, v) in [
        ("NULL", json!({"NULL": true})),
        ("L", json!({"L": []})),
        ("M", json!({"M": {}})),
        ("SS", json!({"SS": ["a"]})),
    ] {
        assert_eq!(
            message(&wh("val < ?"), json!([{"S": "k"}, v])),
            format!(
                "Incorrect operand type for operator or function; operator or function: <, operand type: {ty}"
            )
        );
    }
    assert!(
        message(
            &wh("val BETWEEN ? AND ?"),
            json!([{"S": "k"}, {"BOOL": true}, {"BOOL": false}])
        )
        .contains("operator or function: BETWEEN")
    );
    assert_eq!(
        message(&wh("val = MISSING"), json!([{"S": "k"}])),
        "MISSING must be compared using IS operator"
    );
    assert_eq!(
        message(&wh("val IS SEXP"), json!([{"S": "k"}])),
        "Unsupported data type for IS operator: SEXP. Supported data types are [MISSING, NULL, BOOLEAN, BLOB, STRING, NUMERIC, STRUCT, TUPLE, LIST]"
    );
    assert_eq!(
        message(&wh("'x' IN ['x']"), json!([{"S": "k"}])),
        "IN operator must have a left hand argument of type Variable Reference and right hand argument of type Seq with at least one member"
    );
    assert_eq!(
        message(&wh("a + 1 = 2"), json!([{"S": "k"}])),
        "Unsupported operator in Condition Expression. Operator: +"
    );
    assert_eq!(
        message("SELECT * FROM t WHERE a", json!([])),
        "WHERE clause must contain an expression that resolves to a boolean"
    );
    assert_eq!(
        message(
            "SELECT l[-1] FROM \"t\" WHERE pk='index' AND sk='1'",
            json!([])
        ),
        "List index is not within the allowable range; index: [-1] at 1:11:1"
    );
}

#[test]
fn statement_shapes() {
    let incomplete = "Where clause does not contain a mandatory equality on all key attributes";
    assert_eq!(message("DELETE FROM \"t\"", json!([])), incomplete);
    assert_eq!(message("UPDATE \"t\" SET a = 1", json!([])), incomplete);
    assert_eq!(
        message(
            "DELETE FROM \"t\" WHERE pk = 'x' RETURNING MODIFIED OLD *",
            json!([])
        ),
        "Invalid returning clause: RETURNING MODIFIED OLD *. Only RETURNING ALL OLD * is allowed in DELETE statements."
    );
    assert_eq!(
        message(
            "DELETE FROM \"t\" WHERE pk = 'x' RETURNING ALL NEW *",
            json!([])
        ),
        "Invalid returning clause: RETURNING ALL NEW *. Only RETURNING ALL OLD * is allowed in DELETE statements."
    );
    assert_eq!(
        message(
            "INSERT INTO \"t\" VALUE {'pk': 1} RETURNING ALL OLD *",
            json!([])
        ),
        "RETURNING is not supported in INSERT"
    );
    assert_eq!(
        message("INSERT INTO \"t\" VALUE [1]", json!([])),
        "Unsupported format in item expression. Please use struct format {...} to express item values for insert statement."
    );
    assert_eq!(
        message("INSERT INTO \"t\" VALUE ?", json!([{"S": "x"}])),
        "Unsupported format in item expression. Please use struct format {...} to express item values for insert statement."
    );
    assert_eq!(
        message("DELETE FROM \"t\".\"i\" WHERE pk = 1", json!([])),
        "This operation is not supported on an index"
    );
    assert_eq!(
        message("UPDATE \"t\" SET a = 1 SET a.b = 2 WHERE pk = 1", json!([])),
        "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"
    );
    assert_eq!(
        message(
            "UPDATE \"t\" SET a[1] = 1 REMOVE a.b WHERE pk = 1",
            json!([])
        ),
        "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, [1]], path two: [a, b]"
    );
    assert_eq!(
        message(
            "UPDATE \"t\" SET a = 1 WHERE pk = 1 RETURNING ALL NEW *, ALL OLD *",
            json!([])
        ),
        "Invalid syntax with multiple returning elements in RETURNING clause"
    );
}
