//! Writes: PutItem, UpdateItem and DeleteItem, and the machinery that transactions, batch
//! writes and PartiQL share.
//!
//! A write reads the item, decides (condition, new item) and commits one batch that checks
//! the table definition and the item are still what was read, then writes the item, its index
//! entries and its stream record. A concurrent change of either makes the batch fail with
//! `Conflict` and the write starts over from a fresh read, so conditions are never decided
//! on stale items and no index ever misses a write.

use basalt_core::{AwsError, RequestContext};
use basalt_dynamodb_expr::{
    Condition, ExprKind, Item, Params, Path, Projection, Update, item_from_json, item_size,
    item_to_json, parse_condition, parse_update,
};
use basalt_store::{StoreError, WriteOp};
use serde_json::{Map, Value};

use crate::capacity::{self, Consumed};
use crate::keys;
use crate::model::{INDEXES, ITEMS, TableRec};
use crate::params::{
    ReturnValues, expr_error, no_legacy, required_item, return_values, str_of, table_name,
};
use crate::{DynamoDb, streams};

/// How many times a write starts over after a concurrent change before giving up.
const RETRIES: usize = 64;

/// What a write does to its item.
#[derive(Debug, Clone)]
pub enum Action {
    Put(Item),
    /// UpdateItem; without an expression it still creates the item (with just its key).
    Update(Option<Update>),
    Delete,
    /// TransactWriteItems' ConditionCheck: nothing written.
    Check,
}

/// One item's write, before it is read.
#[derive(Debug, Clone)]
pub struct ItemWrite {
    pub key: Item,
    pub condition: Option<Condition>,
    pub action: Action,
}

/// Why a write was refused.
pub enum Refused {
    /// The condition did not hold; the item as it was (for ReturnValuesOnConditionCheckFailure).
    Condition(Option<Item>),
    Error(AwsError),
}

impl From<AwsError> for Refused {
    fn from(e: AwsError) -> Self {
        Refused::Error(e)
    }
}

/// A decided write: the item before and after, and the store operations that make it so.
pub struct Decided {
    pub old: Option<Item>,
    pub new: Option<Item>,
    pub updated: Vec<Path>,
    pub ops: Vec<WriteOp>,
    pub consumed: Consumed,
}

/// Reads an item: its stored bytes (for the batch's precondition) and its value.
pub fn load(d: &DynamoDb, store_key: &str) -> Result<(Option<Vec<u8>>, Option<Item>), AwsError> {
    let raw = d.state.get(ITEMS, store_key)?;
    let item = match &raw {
        Some(b) => Some(decode(b)?),
        None => None,
    };
    Ok((raw, item))
}

pub fn decode(raw: &[u8]) -> Result<Item, AwsError> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| crate::corrupt("item", e))?;
    item_from_json(&v).map_err(|e| crate::corrupt("item", e))
}

pub fn encode(item: &Item) -> Vec<u8> {
    serde_json::to_vec(&item_to_json(item)).unwrap_or_default()
}

/// Decides `w` against the item as read (`raw`, `old`) and lays out the batch that commits it.
pub fn decide(
    t: &TableRec,
    w: &ItemWrite,
    raw: Option<Vec<u8>>,
    old: Option<Item>,
    region: &str,
) -> Result<Decided, Refused> {
    let empty = Item::new();
    if let Some(c) = &w.condition
        && !c.eval(old.as_ref().unwrap_or(&empty))
    {
        return Err(Refused::Condition(old));
    }
    let mut updated = Vec::new();
    let new = match &w.action {
        Action::Put(item) => Some(item.clone()),
        Action::Delete => None,
        Action::Check => old.clone(),
        Action::Update(u) => {
            let mut item = old.clone().unwrap_or_else(|| w.key.clone());
            if let Some(u) = u {
                updated = u
                    .apply(&mut item)
                    .map_err(|e| Refused::Error(expr_error(e)))?;
            }
            // Removing from an item that does not exist creates nothing (SET and ADD do).
            let only_removes = u.as_ref().is_some_and(|u| {
                u.actions.iter().all(|a| {
                    matches!(
                        a,
                        basalt_dynamodb_expr::ast::UpdateAction::Remove(_)
                            | basalt_dynamodb_expr::ast::UpdateAction::Delete { .. }
                    )
                })
            });
            if old.is_none() && only_removes {
                return Ok(Decided {
                    old: None,
                    new: None,
                    updated: Vec::new(),
                    ops: vec![WriteOp::Check {
                        table: ITEMS.into(),
                        key: keys::item_key(t, &w.key),
                        expected: None,
                    }],
                    consumed: Consumed::write(1.0),
                });
            }
            if item_size(&item) > keys::MAX_ITEM_BYTES {
                return Err(Refused::Error(AwsError::validation(
                    "Item size to update has exceeded the maximum allowed size",
                )));
            }
            keys::validate_item(t, &item)?;
            Some(item)
        }
    };
    let store_key = keys::item_key(t, &w.key);
    let mut ops = vec![WriteOp::Check {
        table: ITEMS.into(),
        key: store_key.clone(),
        expected: raw,
    }];
    let old_size = old.as_ref().map_or(0, item_size);
    let new_size = new.as_ref().map_or(0, item_size);
    if matches!(w.action, Action::Check) {
        return Ok(Decided {
            old,
            new,
            updated,
            ops,
            consumed: Consumed::read(capacity::read_units(old_size, true)),
        });
    }
    let mut consumed = Consumed::write(capacity::write_units(old_size.max(new_size)));
    match &new {
        Some(item) => ops.push(WriteOp::Put {
            table: ITEMS.into(),
            key: store_key,
            value: encode(item),
        }),
        None if old.is_some() => ops.push(WriteOp::Delete {
            table: ITEMS.into(),
            key: store_key,
        }),
        None => {}
    }
    index_ops(t, old.as_ref(), new.as_ref(), &mut ops, &mut consumed);
    if let Some(op) = streams::record(t, &w.key, old.as_ref(), new.as_ref(), region, false) {
        ops.push(op);
    }
    Ok(Decided {
        old,
        new,
        updated,
        ops,
        consumed,
    })
}

/// The index entries to delete and write when an item goes from `old` to `new`.
pub fn index_ops(
    t: &TableRec,
    old: Option<&Item>,
    new: Option<&Item>,
    ops: &mut Vec<WriteOp>,
    consumed: &mut Consumed,
) {
    for ix in t.live_indexes() {
        let old_key = old.and_then(|i| keys::index_key(t, ix, i));
        let new_key = new.and_then(|i| keys::index_key(t, ix, i));
        let old_proj = old.map(|i| ix.project(&t.key, i));
        let new_proj = new.map(|i| ix.project(&t.key, i));
        if old_key == new_key && old_proj == new_proj {
            continue;
        }
        if let Some(k) = &old_key
            && old_key != new_key
        {
            ops.push(WriteOp::Delete {
                table: INDEXES.into(),
                key: k.clone(),
            });
            consumed.index(&ix.name, ix.global, 1.0);
        }
        if let (Some(k), Some(p)) = (new_key, new_proj) {
            consumed.index(&ix.name, ix.global, capacity::write_units(item_size(&p)));
            ops.push(WriteOp::Put {
                table: INDEXES.into(),
                key: k,
                value: encode(&p),
            });
        }
    }
}

/// Runs one item write to completion: read, decide, commit, starting over on a concurrent
/// change.
pub fn run(
    d: &DynamoDb,
    ctx: &RequestContext,
    table: &str,
    w: &ItemWrite,
) -> Result<(TableRec, Decided), Refused> {
    for _ in 0..RETRIES {
        let t = d.table(ctx, table)?;
        keys::validate_key(&t, &w.key)?;
        if let Action::Put(item) = &w.action {
            keys::validate_item(&t, item)?;
        }
        let (raw, old) = load(d, &keys::item_key(&t, &w.key))?;
        let mut decided = decide(&t, w, raw, old, &ctx.region)?;
        decided.ops.insert(0, t.unchanged());
        match d.state.batch(&decided.ops) {
            Ok(()) => return Ok((t, decided)),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(Refused::Error(e.into())),
        }
    }
    Err(Refused::Error(AwsError::new(
        400,
        "TransactionConflictException",
        "Transaction is ongoing for the item",
    )))
}

/// ConditionalCheckFailedException, with the item when the request asked for it.
pub fn condition_failed(old: Option<Item>, input: &Value) -> AwsError {
    let mut e = AwsError::new(
        400,
        "ConditionalCheckFailedException",
        "The conditional request failed",
    );
    if str_of(input, "ReturnValuesOnConditionCheckFailure") == Some("ALL_OLD")
        && let Some(old) = old
    {
        e = e.with_field("Item", item_to_json(&old));
    }
    e
}

fn refused(r: Refused, input: &Value) -> AwsError {
    match r {
        Refused::Condition(old) => condition_failed(old, input),
        Refused::Error(e) => e,
    }
}

/// The ConditionExpression of a request, if any.
pub fn condition(input: &Value, params: &mut Params) -> Result<Option<Condition>, AwsError> {
    match str_of(input, "ConditionExpression") {
        Some(c) => parse_condition(c, ExprKind::Condition, params)
            .map(Some)
            .map_err(expr_error),
        None => Ok(None),
    }
}

pub fn params_of(input: &Value) -> Result<Params, AwsError> {
    Params::new(
        input.get("ExpressionAttributeNames"),
        input.get("ExpressionAttributeValues"),
    )
    .map_err(expr_error)
}

fn output(
    t: &TableRec,
    input: &Value,
    attributes: Option<Item>,
    consumed: &Consumed,
) -> Result<Value, AwsError> {
    let mut o = Map::new();
    if let Some(a) = attributes.filter(|a| !a.is_empty()) {
        o.insert("Attributes".into(), item_to_json(&a));
    }
    if let Some(c) = consumed.to_json(&t.name, capacity::mode(input)?) {
        o.insert("ConsumedCapacity".into(), c);
    }
    Ok(Value::Object(o))
}

pub fn put_item(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    no_legacy(input, &[("Expected", "ConditionExpression")])?;
    let table = table_name(input, "TableName")?;
    let item = required_item(input, "Item")?;
    let rv = return_values(input, &["NONE", "ALL_OLD"])?;
    capacity::mode(input)?;
    let mut params = params_of(input)?;
    let cond = condition(input, &mut params)?;
    params.finish().map_err(expr_error)?;
    let t = d.table(ctx, table)?;
    keys::validate_item(&t, &item)?;
    let w = ItemWrite {
        key: keys::key_of(&t.key, &item),
        condition: cond,
        action: Action::Put(item),
    };
    let (t, done) = run(d, ctx, table, &w).map_err(|r| refused(r, input))?;
    let attrs = (rv == ReturnValues::AllOld).then_some(done.old).flatten();
    output(&t, input, attrs, &done.consumed)
}

pub fn delete_item(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    no_legacy(input, &[("Expected", "ConditionExpression")])?;
    let table = table_name(input, "TableName")?;
    let key = required_item(input, "Key")?;
    let rv = return_values(input, &["NONE", "ALL_OLD"])?;
    capacity::mode(input)?;
    let mut params = params_of(input)?;
    let cond = condition(input, &mut params)?;
    params.finish().map_err(expr_error)?;
    let w = ItemWrite {
        key,
        condition: cond,
        action: Action::Delete,
    };
    let (t, done) = run(d, ctx, table, &w).map_err(|r| refused(r, input))?;
    let attrs = (rv == ReturnValues::AllOld).then_some(done.old).flatten();
    output(&t, input, attrs, &done.consumed)
}

pub fn update_item(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    no_legacy(
        input,
        &[
            ("Expected", "ConditionExpression"),
            ("AttributeUpdates", "UpdateExpression"),
        ],
    )?;
    let table = table_name(input, "TableName")?;
    let key = required_item(input, "Key")?;
    let rv = return_values(
        input,
        &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"],
    )
    .map_err(|_| {
        AwsError::validation(format!(
            "1 validation error detected: Value '{}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]",
            str_of(input, "ReturnValues").unwrap_or_default()
        ))
    })?;
    capacity::mode(input)?;
    let mut params = params_of(input)?;
    let update = match str_of(input, "UpdateExpression") {
        Some(u) => Some(parse_update(u, &mut params).map_err(expr_error)?),
        None => None,
    };
    let cond = condition(input, &mut params)?;
    params.finish().map_err(expr_error)?;
    let t = d.table(ctx, table)?;
    keys::validate_key(&t, &key)?;
    if let Some(u) = &update {
        for name in u.top_level_names() {
            if t.key.contains(&name) {
                return Err(AwsError::validation(format!(
                    "One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part of the key"
                )));
            }
        }
    }
    let w = ItemWrite {
        key,
        condition: cond,
        action: Action::Update(update),
    };
    let (t, done) = run(d, ctx, table, &w).map_err(|r| refused(r, input))?;
    let attrs = match rv {
        ReturnValues::None => None,
        ReturnValues::AllOld => done.old,
        ReturnValues::AllNew => done.new,
        ReturnValues::UpdatedOld => done
            .old
            .map(|o| Projection::from_paths(done.updated.clone()).apply(&o)),
        ReturnValues::UpdatedNew => done
            .new
            .map(|n| Projection::from_paths(done.updated.clone()).apply(&n)),
    };
    output(&t, input, attrs, &done.consumed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_core::Service;
    use basalt_store::MemoryState;
    use serde_json::json;
    use std::sync::Arc;

    fn ctx() -> RequestContext {
        RequestContext::internal("000000000000", "us-east-1", "http://localhost")
    }

    async fn call(d: &DynamoDb, op: &str, input: Value) -> Result<Value, AwsError> {
        d.call(&ctx(), op, input).await.map(|o| o.body)
    }

    fn table(d: &Arc<DynamoDb>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(call(
            d,
            "CreateTable",
            json!({
                "TableName": "counters",
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "bucket", "AttributeType": "N"}
                ],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [{
                    "IndexName": "by-bucket",
                    "KeySchema": [{"AttributeName": "bucket", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"}
                }]
            }),
        ))
        .unwrap();
    }

    /// Conditional increments from many threads: every acknowledged one counts exactly once,
    /// the condition is never decided on a stale item, and the index follows the last write.
    #[test]
    fn concurrent_conditional_updates_never_lose_or_double_count() {
        let d = DynamoDb::new(Arc::new(MemoryState::default()));
        table(&d);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let d = d.clone();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    let mut ok = 0;
                    for _ in 0..50 {
                        let r = rt.block_on(call(
                            &d,
                            "UpdateItem",
                            json!({
                                "TableName": "counters",
                                "Key": {"pk": {"S": "c"}},
                                // `bucket` is a reserved word.
                                "UpdateExpression": "ADD n :one SET #b = :b",
                                "ConditionExpression": "attribute_not_exists(n) OR n < :max",
                                "ExpressionAttributeNames": {"#b": "bucket"},
                                "ExpressionAttributeValues": {
                                    ":one": {"N": "1"}, ":max": {"N": "300"}, ":b": {"N": "7"}
                                }
                            }),
                        ));
                        match r {
                            Ok(_) => ok += 1,
                            Err(e) => assert_eq!(
                                e.code, "ConditionalCheckFailedException",
                                "{}",
                                e.message
                            ),
                        }
                    }
                    ok
                })
            })
            .collect();
        let acknowledged: i32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(acknowledged, 300, "the condition stops at exactly 300");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let item = rt
            .block_on(call(
                &d,
                "GetItem",
                json!({"TableName": "counters", "Key": {"pk": {"S": "c"}}}),
            ))
            .unwrap();
        assert_eq!(item["Item"]["n"], json!({"N": "300"}));
        let q = rt
            .block_on(call(
                &d,
                "Query",
                json!({
                    "TableName": "counters", "IndexName": "by-bucket",
                    "KeyConditionExpression": "#b = :b",
                    "ExpressionAttributeNames": {"#b": "bucket"},
                    "ExpressionAttributeValues": {":b": {"N": "7"}}
                }),
            ))
            .unwrap();
        assert_eq!(q["Count"], 1);
        assert_eq!(
            q["Items"][0],
            json!({"pk": {"S": "c"}, "bucket": {"N": "7"}})
        );
    }

    /// A transaction whose condition fails writes nothing, and one that passes writes all.
    #[test]
    fn transactions_are_all_or_nothing() {
        let d = DynamoDb::new(Arc::new(MemoryState::default()));
        table(&d);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let put = |pk: &str| json!({"Put": {"TableName": "counters", "Item": {"pk": {"S": pk}, "bucket": {"N": "1"}}}});
        let check_missing = json!({"ConditionCheck": {
            "TableName": "counters", "Key": {"pk": {"S": "a"}},
            "ConditionExpression": "attribute_exists(pk)"
        }});
        let e = rt
            .block_on(call(
                &d,
                "TransactWriteItems",
                json!({"TransactItems": [put("x"), check_missing]}),
            ))
            .unwrap_err();
        assert_eq!(e.code, "TransactionCanceledException");
        assert_eq!(
            e.fields["CancellationReasons"],
            json!([{"Code": "None"}, {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}])
        );
        let got = rt
            .block_on(call(
                &d,
                "GetItem",
                json!({"TableName": "counters", "Key": {"pk": {"S": "x"}}}),
            ))
            .unwrap();
        assert!(got.get("Item").is_none(), "{got}");
        rt.block_on(call(
            &d,
            "TransactWriteItems",
            json!({"TransactItems": [put("x"), put("y")]}),
        ))
        .unwrap();
        let q = rt
            .block_on(call(
                &d,
                "Query",
                json!({
                    "TableName": "counters", "IndexName": "by-bucket",
                    "KeyConditionExpression": "#b = :b",
                    "ExpressionAttributeNames": {"#b": "bucket"},
                    "ExpressionAttributeValues": {":b": {"N": "1"}}
                }),
            ))
            .unwrap();
        assert_eq!(q["Count"], 2);
    }
}
