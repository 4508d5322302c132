//! Whole requests through `rewrite`: what each operation's legacy members become, and the
//! request-level checks (mixing the forms, substitution maps without expressions).

use super::rewrite;
use serde_json::{Value, json};

fn ok(op: &str, mut input: Value) -> Value {
    rewrite(op, &mut input).expect("rewrite");
    input
}

fn refused(op: &str, mut input: Value) -> String {
    rewrite(op, &mut input)
        .expect_err("should be refused")
        .message
}

#[test]
fn get_item_attributes_to_get() {
    let out = ok(
        "GetItem",
        json!({"TableName": "t", "Key": {"pk": {"S": "a"}}, "AttributesToGet": ["name", "a.b", "size"]}),
    );
    assert_eq!(
        out,
        json!({
            "TableName": "t", "Key": {"pk": {"S": "a"}},
            "ProjectionExpression": "#legacy0, #legacy1, #legacy2",
            "ExpressionAttributeNames": {"#legacy0": "name", "#legacy1": "a.b", "#legacy2": "size"}
        })
    );
}

#[test]
fn attributes_to_get_checks() {
    assert_eq!(
        refused("GetItem", json!({"AttributesToGet": ["a", "b", "a"]})),
        "One or more parameter values were invalid: Duplicate value in attribute name: a"
    );
    assert_eq!(
        refused("GetItem", json!({"AttributesToGet": []})),
        "1 validation error detected: Value '[]' at 'attributesToGet' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
    assert_eq!(
        refused(
            "BatchGetItem",
            json!({"RequestItems": {"t1": {"Keys": [], "AttributesToGet": []}}})
        ),
        "1 validation error detected: Value '[]' at 'requestItems.t1.member.attributesToGet' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
    assert_eq!(
        refused("Scan", json!({"AttributesToGet": ["a"], "Select": "COUNT"})),
        "1 validation error detected: Cannot specify the AttributesToGet when choosing to get only the Count"
    );
    assert_eq!(
        refused(
            "Query",
            json!({"AttributesToGet": ["a"], "Select": "ALL_ATTRIBUTES"})
        ),
        "1 validation error detected: Cannot specify the AttributesToGet when choosing to get ALL_ATTRIBUTES"
    );
    ok(
        "Scan",
        json!({"AttributesToGet": ["a"], "Select": "SPECIFIC_ATTRIBUTES"}),
    );
}

#[test]
fn batch_get_rewrites_each_table() {
    let out = ok(
        "BatchGetItem",
        json!({"RequestItems": {
            "t1": {"Keys": [{"pk": {"S": "a"}}], "AttributesToGet": ["x"]},
            "t2": {"Keys": [{"pk": {"S": "b"}}], "ProjectionExpression": "y"}
        }}),
    );
    assert_eq!(
        out["RequestItems"]["t1"],
        json!({"Keys": [{"pk": {"S": "a"}}], "ProjectionExpression": "#legacy0", "ExpressionAttributeNames": {"#legacy0": "x"}})
    );
    assert_eq!(
        out["RequestItems"]["t2"],
        json!({"Keys": [{"pk": {"S": "b"}}], "ProjectionExpression": "y"})
    );
    assert_eq!(
        refused(
            "BatchGetItem",
            json!({"RequestItems": {"t1": {"Keys": [], "AttributesToGet": ["x"], "ProjectionExpression": "x"}}})
        ),
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}"
    );
}

#[test]
fn query_key_conditions_filter_and_projection() {
    let out = ok(
        "Query",
        json!({
            "TableName": "t",
            "KeyConditions": {
                "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
                "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "5"}]}
            },
            "QueryFilter": {
                "status": {"ComparisonOperator": "NE", "AttributeValueList": [{"S": "gone"}]},
                "tags": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "x"}]}
            },
            "ConditionalOperator": "OR",
            "AttributesToGet": ["sk", "status"]
        }),
    );
    assert_eq!(out["ProjectionExpression"], "#legacy0, #legacy1");
    assert_eq!(
        out["FilterExpression"],
        "(#legacy1 <> :legacy0) OR (contains(#legacy2, :legacy1))"
    );
    assert_eq!(
        out["KeyConditionExpression"],
        "#legacy3 = :legacy2 AND #legacy0 BETWEEN :legacy3 AND :legacy4"
    );
    assert_eq!(
        out["ExpressionAttributeNames"],
        json!({"#legacy0": "sk", "#legacy1": "status", "#legacy2": "tags", "#legacy3": "pk"})
    );
    assert_eq!(
        out["ExpressionAttributeValues"],
        json!({":legacy0": {"S": "gone"}, ":legacy1": {"S": "x"}, ":legacy2": {"S": "p"}, ":legacy3": {"N": "1"}, ":legacy4": {"N": "5"}})
    );
    for gone in [
        "KeyConditions",
        "QueryFilter",
        "ConditionalOperator",
        "AttributesToGet",
    ] {
        assert!(out.get(gone).is_none(), "{gone} left in the request");
    }
}

#[test]
fn key_conditions_beside_expressions_take_fresh_placeholders() {
    // DynamoDB accepts KeyConditions with the other expressions when there is no
    // KeyConditionExpression; the request's own placeholders are kept and not reused.
    let out = ok(
        "Query",
        json!({
            "KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}},
            "FilterExpression": "#legacy0 = :legacy0",
            "ExpressionAttributeNames": {"#legacy0": "x"},
            "ExpressionAttributeValues": {":legacy0": {"N": "1"}}
        }),
    );
    assert_eq!(out["KeyConditionExpression"], "#legacy1 = :legacy1");
    assert_eq!(
        out["ExpressionAttributeNames"],
        json!({"#legacy0": "x", "#legacy1": "pk"})
    );
    assert_eq!(
        out["ExpressionAttributeValues"],
        json!({":legacy0": {"N": "1"}, ":legacy1": {"S": "p"}})
    );
}

#[test]
fn mixing_forms_is_refused_with_dynamodb_listing() {
    let both = "Can not use both expression and non-expression parameters in the same request: ";
    assert_eq!(
        refused(
            "GetItem",
            json!({"AttributesToGet": ["a"], "ProjectionExpression": "a"})
        ),
        format!(
            "{both}Non-expression parameters: {{AttributesToGet}} Expression parameters: {{ProjectionExpression}}"
        )
    );
    assert_eq!(
        refused(
            "Query",
            json!({
                "AttributesToGet": ["a"], "QueryFilter": {}, "ConditionalOperator": "OR",
                "KeyConditions": {}, "ProjectionExpression": "a", "FilterExpression": "a = :a",
                "KeyConditionExpression": "pk = :p"
            })
        ),
        format!(
            "{both}Non-expression parameters: {{AttributesToGet, QueryFilter, ConditionalOperator, KeyConditions}} Expression parameters: {{ProjectionExpression, FilterExpression, KeyConditionExpression}}"
        )
    );
    assert_eq!(
        refused(
            "Query",
            json!({"KeyConditions": {}, "QueryFilter": {}, "FilterExpression": "a = :a"})
        ),
        format!(
            "{both}Non-expression parameters: {{QueryFilter}} Expression parameters: {{FilterExpression}}"
        )
    );
    assert_eq!(
        refused(
            "Scan",
            json!({"ScanFilter": {}, "FilterExpression": "a = :a"})
        ),
        format!(
            "{both}Non-expression parameters: {{ScanFilter}} Expression parameters: {{FilterExpression}}"
        )
    );
    assert_eq!(
        refused(
            "PutItem",
            json!({"Expected": {}, "ConditionExpression": "a = :a"})
        ),
        format!(
            "{both}Non-expression parameters: {{Expected}} Expression parameters: {{ConditionExpression}}"
        )
    );
    assert_eq!(
        refused(
            "UpdateItem",
            json!({"AttributeUpdates": {}, "Expected": {}, "UpdateExpression": "SET a = :a", "ConditionExpression": "a = :a"})
        ),
        format!(
            "{both}Non-expression parameters: {{AttributeUpdates, Expected}} Expression parameters: {{UpdateExpression, ConditionExpression}}"
        )
    );
    assert_eq!(
        refused(
            "UpdateItem",
            json!({"AttributeUpdates": {}, "UpdateExpression": "SET a = :a"})
        ),
        format!(
            "{both}Non-expression parameters: {{AttributeUpdates}} Expression parameters: {{UpdateExpression}}"
        )
    );
}

#[test]
fn substitution_maps_need_an_expression() {
    assert_eq!(
        refused(
            "GetItem",
            json!({"AttributesToGet": ["a"], "ExpressionAttributeNames": {"#a": "a"}})
        ),
        "ExpressionAttributeNames can only be specified when using expressions"
    );
    assert_eq!(
        refused(
            "PutItem",
            json!({"Item": {}, "ExpressionAttributeValues": {":v": {"S": "x"}}})
        ),
        "ExpressionAttributeValues can only be specified when using expressions: ConditionExpression is null"
    );
    assert_eq!(
        refused(
            "Query",
            json!({"KeyConditions": {}, "ExpressionAttributeValues": {":v": {"S": "x"}}})
        ),
        "ExpressionAttributeValues can only be specified when using expressions: FilterExpression and KeyConditionExpression are null"
    );
    assert_eq!(
        refused(
            "UpdateItem",
            json!({"AttributeUpdates": {}, "ExpressionAttributeValues": {":v": {"S": "x"}}})
        ),
        "ExpressionAttributeValues can only be specified when using expressions: UpdateExpression and ConditionExpression are null"
    );
    // A projection alone takes no values, so values beside it are refused too.
    assert_eq!(
        refused(
            "Scan",
            json!({"ProjectionExpression": "a", "ExpressionAttributeValues": {":v": {"S": "x"}}})
        ),
        "ExpressionAttributeValues can only be specified when using expressions: FilterExpression is null"
    );
}

#[test]
fn scan_filter_and_conditional_operator() {
    let out = ok(
        "Scan",
        json!({"ScanFilter": {
            "a": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "x"}]},
            "n": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "2"}]}
        }}),
    );
    assert_eq!(
        out["FilterExpression"],
        "(begins_with(#legacy0, :legacy0)) AND (#legacy1 > :legacy1)"
    );
    assert_eq!(
        refused(
            "Scan",
            json!({"ScanFilter": {}, "ConditionalOperator": "XOR"})
        ),
        "1 validation error detected: Value 'XOR' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]"
    );
    // An empty filter asks for nothing.
    let out = ok(
        "Scan",
        json!({"TableName": "t", "ScanFilter": {}, "ConditionalOperator": "OR"}),
    );
    assert_eq!(out, json!({"TableName": "t"}));
}

#[test]
fn writes_expected_and_attribute_updates() {
    let out = ok(
        "UpdateItem",
        json!({
            "Key": {"pk": {"S": "k"}},
            "AttributeUpdates": {"n": {"Action": "ADD", "Value": {"N": "1"}}},
            "Expected": {
                "n": {"ComparisonOperator": "LT", "AttributeValueList": [{"N": "10"}]},
                "locked": {"Exists": false}
            },
            "ConditionalOperator": "AND"
        }),
    );
    assert_eq!(out["UpdateExpression"], "ADD #legacy0 :legacy0");
    assert_eq!(
        out["ConditionExpression"],
        "(#legacy0 < :legacy1) AND (attribute_not_exists(#legacy1))"
    );
    assert_eq!(
        out["ExpressionAttributeNames"],
        json!({"#legacy0": "n", "#legacy1": "locked"})
    );
    let out = ok(
        "DeleteItem",
        json!({"Key": {"pk": {"S": "k"}}, "Expected": {"InPublication": {"Value": {"BOOL": false}}}}),
    );
    assert_eq!(out["ConditionExpression"], "#legacy0 = :legacy0");
    assert_eq!(
        out["ExpressionAttributeValues"],
        json!({":legacy0": {"BOOL": false}})
    );
    // PutItem takes no AttributeUpdates: the member is left for the operation to ignore.
    let out = ok(
        "PutItem",
        json!({"Item": {}, "Expected": {"pk": {"Exists": false}}}),
    );
    assert_eq!(out["ConditionExpression"], "attribute_not_exists(#legacy0)");
}

#[test]
fn expression_requests_pass_through() {
    let input = json!({
        "TableName": "t", "Key": {"pk": {"S": "k"}}, "UpdateExpression": "SET a = :a",
        "ExpressionAttributeValues": {":a": {"N": "1"}}
    });
    assert_eq!(ok("UpdateItem", input.clone()), input);
    let other = json!({"TableName": "t", "AttributesToGet": ["a"]});
    assert_eq!(ok("DescribeTable", other.clone()), other);
}
