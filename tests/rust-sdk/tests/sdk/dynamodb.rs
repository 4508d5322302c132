//! The AWS SDK for Rust against Basalt's DynamoDB: tables, item writes with conditions and
//! update expressions, queries on a table and an index, transactions, batches and PartiQL,
//! each response parsed by the SDK (which also checks `x-amz-crc32`).

use crate::common;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType, TransactWriteItem,
    Update,
};

fn client(endpoint: &str) -> Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .endpoint_url(endpoint)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .build();
    Client::from_conf(conf)
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.to_owned())
}

async fn create_table(c: &Client, name: &str) {
    let key = |name: &str, kt: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kt)
            .build()
            .unwrap()
    };
    let def = |name: &str, ty: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ty)
            .build()
            .unwrap()
    };
    let out = c
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(def("pk", ScalarAttributeType::S))
        .attribute_definitions(def("sk", ScalarAttributeType::N))
        .attribute_definitions(def("status", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by-status")
                .key_schema(key("status", KeyType::Hash))
                .key_schema(key("sk", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let desc = out.table_description().unwrap();
    assert_eq!(desc.table_name(), Some(name));
    assert!(
        desc.table_arn()
            .unwrap()
            .ends_with(&format!(":table/{name}"))
    );
    let d = c.describe_table().table_name(name).send().await.unwrap();
    assert_eq!(
        d.table().unwrap().table_status().unwrap().as_str(),
        "ACTIVE"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_queries_and_transactions_parse_in_the_rust_sdk() {
    let Some(server) = common::start(common::Data::TempDir, &[]) else {
        return;
    };
    let c = client(&server.endpoint);
    create_table(&c, "orders").await;

    for i in 1..=5 {
        c.put_item()
            .table_name("orders")
            .item("pk", s("user#1"))
            .item("sk", n(&i.to_string()))
            .item("status", s(if i % 2 == 0 { "open" } else { "closed" }))
            .item("total", n("10.50"))
            .send()
            .await
            .unwrap();
    }
    // A condition that fails, with the item returned.
    let err = c
        .put_item()
        .table_name("orders")
        .item("pk", s("user#1"))
        .item("sk", n("1"))
        .condition_expression("attribute_not_exists(pk)")
        .return_values_on_condition_check_failure(
            aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_conditional_check_failed_exception(), "{err:?}");
    assert_eq!(err.code(), Some("ConditionalCheckFailedException"));

    // Exact decimal arithmetic in an update expression.
    let up = c
        .update_item()
        .table_name("orders")
        .key("pk", s("user#1"))
        .key("sk", n("2"))
        // `total` is one of DynamoDB's reserved words.
        .update_expression("SET #t = #t + :d, tags = list_append(if_not_exists(tags, :e), :t)")
        .expression_attribute_names("#t", "total")
        .expression_attribute_values(":d", n("0.25"))
        .expression_attribute_values(":e", AttributeValue::L(vec![]))
        .expression_attribute_values(":t", AttributeValue::L(vec![s("rush")]))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .unwrap();
    let attrs = up.attributes().unwrap();
    assert_eq!(attrs.get("total"), Some(&n("10.75")));
    assert_eq!(attrs.get("tags"), Some(&AttributeValue::L(vec![s("rush")])));

    // Query the partition backwards, a page of two, then the rest.
    let q = c
        .query()
        .table_name("orders")
        .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
        .expression_attribute_values(":p", s("user#1"))
        .expression_attribute_values(":a", n("2"))
        .expression_attribute_values(":b", n("5"))
        .scan_index_forward(false)
        .limit(2)
        .send()
        .await
        .unwrap();
    let sks: Vec<_> = q.items().iter().map(|i| i["sk"].clone()).collect();
    assert_eq!(sks, vec![n("5"), n("4")]);
    let last = q.last_evaluated_key().unwrap().clone();
    let rest = c
        .query()
        .table_name("orders")
        .key_condition_expression("pk = :p AND sk BETWEEN :a AND :b")
        .expression_attribute_values(":p", s("user#1"))
        .expression_attribute_values(":a", n("2"))
        .expression_attribute_values(":b", n("5"))
        .scan_index_forward(false)
        .set_exclusive_start_key(Some(last))
        .send()
        .await
        .unwrap();
    let sks: Vec<_> = rest.items().iter().map(|i| i["sk"].clone()).collect();
    assert_eq!(sks, vec![n("3"), n("2")]);

    // The index sees the writes.
    let open = c
        .query()
        .table_name("orders")
        .index_name("by-status")
        .key_condition_expression("#s = :o")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":o", s("open"))
        .send()
        .await
        .unwrap();
    assert_eq!(open.count(), 2);

    // A transaction that fails leaves everything as it was, and says why, in order.
    let tx = c
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("orders")
                        .item("pk", s("user#2"))
                        .item("sk", n("1"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name("orders")
                        .key("pk", s("user#1"))
                        .key("sk", n("1"))
                        .update_expression("SET #s = :c")
                        .condition_expression("#s = :o")
                        .expression_attribute_names("#s", "status")
                        .expression_attribute_values(":c", s("cancelled"))
                        .expression_attribute_values(":o", s("open"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(tx.is_transaction_canceled_exception(), "{tx:?}");
    let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(e) = tx else {
        unreachable!()
    };
    let codes: Vec<_> = e
        .cancellation_reasons()
        .iter()
        .map(|r| r.code().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(codes, ["None", "ConditionalCheckFailed"]);
    let got = c
        .get_item()
        .table_name("orders")
        .key("pk", s("user#2"))
        .key("sk", n("1"))
        .send()
        .await
        .unwrap();
    assert!(got.item().is_none());

    // PartiQL.
    let out = c
        .execute_statement()
        .statement("SELECT sk, total FROM \"orders\" WHERE pk = ? AND sk >= ?")
        .parameters(s("user#1"))
        .parameters(n("4"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.items().len(), 2);
    assert_eq!(out.items()[0]["sk"], n("4"));
}
