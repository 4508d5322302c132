//! TransactWriteItems and TransactGetItems.
//!
//! A write transaction reads every item it touches, decides each operation, and commits all
//! of them in one store batch that also checks every item and table is still as read, so it
//! is all-or-nothing across crashes and never decided on stale items. A read transaction
//! reads its items and then confirms, in one batch of checks, that none changed meanwhile.

use basalt_core::{AwsError, RequestContext};
use basalt_dynamodb_expr::{ExprKind, Item, item_to_json, parse_condition, parse_update};
use basalt_store::{StoreError, WriteOp};
use serde_json::{Map, Value, json};
use sha2::Digest;
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::DynamoDb;
use crate::capacity::{self, Consumed};
use crate::keys;
use crate::model::{ITEMS, TOKENS, TableRec, now_ms};
use crate::params::{expr_error, no_legacy, required_item, str_of, table_name};
use crate::read::projection;
use crate::write::{Action, ItemWrite, Refused, decide, load, params_of};

const MAX_ITEMS: usize = 100;
const TOKEN_TTL_MS: i64 = 10 * 60 * 1000;
const RETRIES: usize = 64;

fn count_error(n: usize) -> AwsError {
    AwsError::validation(format!(
        "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length {}",
        if n == 0 {
            "greater than or equal to 1"
        } else {
            "less than or equal to 100"
        }
    ))
}

pub struct Op {
    pub table: String,
    pub write: ItemWrite,
    /// ReturnValuesOnConditionCheckFailure = ALL_OLD.
    pub want_old: bool,
    /// The cancellation code when the condition fails (PartiQL's INSERT says DuplicateItem).
    pub failed_code: &'static str,
}

fn parse_op(d: &DynamoDb, ctx: &RequestContext, v: &Value) -> Result<Op, AwsError> {
    let kinds: Vec<(&str, &Value)> = ["ConditionCheck", "Put", "Delete", "Update"]
        .iter()
        .filter_map(|k| v.get(*k).filter(|x| !x.is_null()).map(|x| (*k, x)))
        .collect();
    let [(kind, body)] = kinds.as_slice() else {
        return Err(AwsError::validation(
            "TransactItems can only contain one of Check, Put, Update or Delete",
        ));
    };
    let table = table_name(body, "TableName")?.to_owned();
    let t = d.table(ctx, &table)?;
    let mut params = params_of(body)?;
    let update = match (*kind, str_of(body, "UpdateExpression")) {
        ("Update", Some(u)) => Some(parse_update(u, &mut params).map_err(expr_error)?),
        ("Update", None) => {
            return Err(AwsError::validation(
                "1 validation error detected: Value null at 'transactItems.1.member.update.updateExpression' failed to satisfy constraint: Member must not be null",
            ));
        }
        _ => None,
    };
    let condition = match str_of(body, "ConditionExpression") {
        Some(c) => Some(parse_condition(c, ExprKind::Condition, &mut params).map_err(expr_error)?),
        None if *kind == "ConditionCheck" => {
            return Err(AwsError::validation(
                "1 validation error detected: Value null at 'transactItems.1.member.conditionCheck.conditionExpression' failed to satisfy constraint: Member must not be null",
            ));
        }
        None => None,
    };
    // A sub-operation without expressions may carry names and values nobody uses
    // (DynamoDB only checks usage where there is an expression).
    if update.is_some() || condition.is_some() {
        params.finish().map_err(expr_error)?;
    }
    let write = match *kind {
        "Put" => {
            let item = required_item(body, "Item")?;
            keys::validate_item(&t, &item)?;
            ItemWrite {
                key: keys::key_of(&t.key, &item),
                condition,
                action: Action::Put(item),
            }
        }
        other => {
            let key = required_item(body, "Key")?;
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
            ItemWrite {
                key,
                condition,
                action: match other {
                    "Delete" => Action::Delete,
                    "Update" => Action::Update(update),
                    _ => Action::Check,
                },
            }
        }
    };
    Ok(Op {
        table,
        write,
        want_old: str_of(body, "ReturnValuesOnConditionCheckFailure") == Some("ALL_OLD"),
        failed_code: "ConditionalCheckFailed",
    })
}

/// The idempotency record of a client request token.
fn token_key(ctx: &RequestContext, token: &str) -> String {
    format!("{}/{}/{token}", ctx.account_id, ctx.region)
}

pub fn request_hash(input: &Value) -> String {
    let mut v = input.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("ClientRequestToken");
        o.remove("ReturnConsumedCapacity");
    }
    hex::encode(sha2::Sha256::digest(v.to_string().as_bytes()))
}

pub fn write(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let mode = capacity::mode(input)?;
    let items = input
        .get("TransactItems")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(count_error(items.len()));
    }
    let ops: Vec<Op> = items
        .iter()
        .map(|v| parse_op(d, ctx, v))
        .collect::<Result<_, _>>()?;
    let token = str_of(input, "ClientRequestToken");
    run_write(d, ctx, &ops, token.map(|t| (t, request_hash(input))), mode)
}

/// Commits the operations of a write transaction, all or none (`token`: the client request
/// token and the hash of the request it came with).
pub fn run_write(
    d: &DynamoDb,
    ctx: &RequestContext,
    ops: &[Op],
    token: Option<(&str, String)>,
    mode: capacity::Mode,
) -> Result<Value, AwsError> {
    let mut seen = HashSet::new();
    for op in ops {
        if !seen.insert((op.table.clone(), keys_json(&op.write.key))) {
            return Err(AwsError::validation(
                "Transaction request cannot include multiple operations on one item",
            ));
        }
    }
    for _ in 0..RETRIES {
        let mut batch: Vec<WriteOp> = Vec::new();
        if let Some((token, hash)) = &token {
            let key = token_key(ctx, token);
            let raw = d.state.get(TOKENS, &key)?;
            if let Some(r) = &raw {
                let rec: Value = serde_json::from_slice(r).unwrap_or_default();
                if rec["at"].as_i64().unwrap_or(0) + TOKEN_TTL_MS > now_ms() {
                    if rec["hash"].as_str() == Some(hash.as_str()) {
                        return Ok(json!({}));
                    }
                    return Err(AwsError::new(
                        400,
                        "IdempotentParameterMismatchException",
                        "Specified idempotent token was already used with different request parameters",
                    ));
                }
            }
            batch.push(WriteOp::Check {
                table: TOKENS.into(),
                key: key.clone(),
                expected: raw,
            });
            batch.push(WriteOp::Put {
                table: TOKENS.into(),
                key,
                value: json!({"hash": hash, "at": now_ms()})
                    .to_string()
                    .into_bytes(),
            });
        }
        let mut tables: HashMap<String, TableRec> = HashMap::new();
        for op in ops {
            if !tables.contains_key(&op.table) {
                let t = d.table(ctx, &op.table)?;
                batch.push(t.unchanged());
                tables.insert(op.table.clone(), t);
            }
        }
        let mut reasons = Vec::new();
        let mut failed = false;
        let mut consumed: BTreeMap<String, Consumed> = BTreeMap::new();
        for op in ops {
            let t = &tables[&op.table];
            let (raw, old) = load(d, &keys::item_key(t, &op.write.key))?;
            match decide(t, &op.write, raw, old, &ctx.region) {
                Ok(done) => {
                    reasons.push(json!({"Code": "None"}));
                    let mut c = done.consumed;
                    c.scale(2.0);
                    c.read = false;
                    consumed
                        .entry(t.name.clone())
                        .or_insert_with(|| Consumed::write(0.0))
                        .add(&c);
                    batch.extend(done.ops);
                }
                Err(Refused::Condition(old)) => {
                    failed = true;
                    let mut r = json!({
                        "Code": op.failed_code,
                        "Message": if op.failed_code == "DuplicateItem" {
                            "Duplicate primary key exists in table"
                        } else {
                            "The conditional request failed"
                        },
                    });
                    if op.want_old
                        && let Some(old) = old
                    {
                        r["Item"] = item_to_json(&old);
                    }
                    reasons.push(r);
                }
                Err(Refused::Error(e)) if e.status < 500 => {
                    failed = true;
                    reasons.push(json!({"Code": "ValidationError", "Message": e.message}));
                }
                Err(Refused::Error(e)) => return Err(e),
            }
        }
        if failed {
            let codes: Vec<&str> = reasons
                .iter()
                .map(|r| r["Code"].as_str().unwrap_or("None"))
                .collect();
            return Err(AwsError::new(
                400,
                "TransactionCanceledException",
                format!(
                    "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                    codes.join(", ")
                ),
            )
            .with_field("CancellationReasons", Value::Array(reasons)));
        }
        match d.state.batch(&batch) {
            Ok(()) => {
                let mut o = Map::new();
                capacity::insert_all(&mut o, &consumed, mode);
                return Ok(Value::Object(o));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AwsError::new(
        400,
        "TransactionCanceledException",
        "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
    )
    .with_field(
        "CancellationReasons",
        json!([{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]),
    ))
}

fn keys_json(key: &Item) -> String {
    item_to_json(key).to_string()
}

pub fn get(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let mode = capacity::mode(input)?;
    let items = input
        .get("TransactItems")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(count_error(items.len()));
    }
    let mut gets = Vec::new();
    let mut seen = HashSet::new();
    for v in &items {
        let Some(g) = v.get("Get") else {
            return Err(AwsError::validation(
                "1 validation error detected: Value null at 'transactItems.1.member.get' failed to satisfy constraint: Member must not be null",
            ));
        };
        no_legacy(g, &[("AttributesToGet", "ProjectionExpression")])?;
        let t = d.table(ctx, table_name(g, "TableName")?)?;
        let key = required_item(g, "Key")?;
        keys::validate_key(&t, &key)?;
        let mut params = params_of(g)?;
        let proj = projection(g, &mut params)?;
        params.finish().map_err(expr_error)?;
        let sk = keys::item_key(&t, &key);
        if !seen.insert(sk.clone()) {
            return Err(AwsError::validation(
                "Transaction request cannot include multiple operations on one item",
            ));
        }
        gets.push((t, sk, proj));
    }
    for _ in 0..RETRIES {
        let mut checks = Vec::new();
        let mut out = Vec::new();
        let mut consumed: BTreeMap<String, Consumed> = BTreeMap::new();
        for (t, sk, proj) in &gets {
            let (raw, item) = load(d, sk)?;
            checks.push(WriteOp::Check {
                table: ITEMS.into(),
                key: sk.clone(),
                expected: raw,
            });
            let size = item.as_ref().map_or(0, basalt_dynamodb_expr::item_size);
            consumed
                .entry(t.name.clone())
                .or_insert_with(|| Consumed::read(0.0))
                .table += 2.0 * capacity::read_units(size, true);
            out.push(match item {
                Some(i) => {
                    let i = match proj {
                        Some(p) => p.apply(&i),
                        None => i,
                    };
                    json!({"Item": item_to_json(&i)})
                }
                None => json!({}),
            });
        }
        match d.state.batch(&checks) {
            Ok(()) => {
                let mut o = Map::new();
                o.insert("Responses".into(), out.into());
                capacity::insert_all(&mut o, &consumed, mode);
                return Ok(Value::Object(o));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AwsError::new(
        400,
        "TransactionCanceledException",
        "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
    ))
}
