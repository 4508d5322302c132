//! BatchGetItem and BatchWriteItem.
//!
//! Both validate the whole request before touching anything, as DynamoDB does. A batch write
//! commits its puts and deletes in one store batch when none of its items changed meanwhile
//! (one commit instead of 25), and item by item otherwise; either way each write stands alone
//! (BatchWriteItem has no conditions) and nothing is left unprocessed.

use basalt_core::{AwsError, RequestContext};
use basalt_dynamodb_expr::{Item, item_size, item_to_json};
use basalt_store::StoreError;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};

use crate::DynamoDb;
use crate::capacity::{self, Consumed};
use crate::keys;
use crate::model::TableRec;
use crate::params::{expr_error, value_error};
use crate::read::projection;
use crate::write::{Action, ItemWrite, Refused, decide, load, params_of, run};

const MAX_GET_KEYS: usize = 100;
const MAX_WRITES: usize = 25;
/// BatchGetItem answers at most 16 MB; the rest goes back as UnprocessedKeys.
const MAX_GET_BYTES: usize = 16 * 1024 * 1024;

fn request_items(input: &Value) -> Result<&Map<String, Value>, AwsError> {
    match input.get("RequestItems").and_then(Value::as_object) {
        Some(m) if !m.is_empty() => Ok(m),
        _ => Err(AwsError::validation(
            "1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
        )),
    }
}

fn duplicates() -> AwsError {
    AwsError::validation("Provided list of item keys contains duplicates")
}

pub fn get(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let mode = capacity::mode(input)?;
    let requests = request_items(input)?;
    let total: usize = requests
        .values()
        .map(|r| r.get("Keys").and_then(Value::as_array).map_or(0, Vec::len))
        .sum();
    if total > MAX_GET_KEYS {
        return Err(AwsError::validation(
            "Too many items requested for the BatchGetItem call",
        ));
    }
    // Validate everything first.
    let mut plans = Vec::new();
    for (name, req) in requests {
        if req.get("AttributesToGet").is_some() {
            crate::params::no_legacy(req, &[("AttributesToGet", "ProjectionExpression")])?;
        }
        let t = d.table(ctx, name)?;
        let mut params = params_of(req)?;
        let proj = projection(req, &mut params)?;
        params.finish().map_err(expr_error)?;
        let mut seen = HashSet::new();
        let mut ks = Vec::new();
        for k in req
            .get("Keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = basalt_dynamodb_expr::item_from_json(k).map_err(value_error)?;
            keys::validate_key(&t, &key)?;
            let sk = keys::item_key(&t, &key);
            if !seen.insert(sk.clone()) {
                return Err(duplicates());
            }
            ks.push((k.clone(), sk));
        }
        if ks.is_empty() {
            return Err(AwsError::validation(
                "1 validation error detected: Value '[]' at 'requestItems.1.member.keys' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        plans.push((
            name.clone(),
            t,
            proj,
            crate::read::consistent(req),
            ks,
            req.clone(),
        ));
    }
    let mut responses = Map::new();
    let mut unprocessed = Map::new();
    let mut consumed_all = Vec::new();
    let mut bytes = 0usize;
    for (name, t, proj, consistent, ks, req) in plans {
        let mut items = Vec::new();
        let mut left = Vec::new();
        let mut consumed = Consumed::read(0.0);
        for (raw_key, sk) in ks {
            if bytes >= MAX_GET_BYTES {
                left.push(raw_key);
                continue;
            }
            let (_, item) = load(d, &sk)?;
            let size = item.as_ref().map_or(0, item_size);
            consumed.table += capacity::read_units(size, consistent);
            bytes += size;
            if let Some(item) = item {
                let item: Item = match &proj {
                    Some(p) => p.apply(&item),
                    None => item,
                };
                items.push(item_to_json(&item));
            }
        }
        responses.insert(name.clone(), items.into());
        if !left.is_empty() {
            let mut r = req.as_object().cloned().unwrap_or_default();
            r.insert("Keys".into(), left.into());
            unprocessed.insert(name.clone(), Value::Object(r));
        }
        if let Some(c) = consumed.to_json(&t.name, mode) {
            consumed_all.push(c);
        }
    }
    let mut o = Map::new();
    o.insert("Responses".into(), responses.into());
    o.insert("UnprocessedKeys".into(), unprocessed.into());
    if mode != capacity::Mode::None {
        o.insert("ConsumedCapacity".into(), consumed_all.into());
    }
    Ok(Value::Object(o))
}

pub fn write(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let mode = capacity::mode(input)?;
    let requests = request_items(input)?;
    let total: usize = requests
        .values()
        .map(|r| r.as_array().map_or(0, Vec::len))
        .sum();
    if total > MAX_WRITES
        || requests
            .values()
            .any(|r| r.as_array().is_none_or(Vec::is_empty))
    {
        return Err(AwsError::validation(
            "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
        ));
    }
    let mut writes: Vec<(TableRec, ItemWrite)> = Vec::new();
    let mut seen = HashSet::new();
    for (name, reqs) in requests {
        let t = d.table(ctx, name)?;
        for r in reqs.as_array().into_iter().flatten() {
            let w = match (r.get("PutRequest"), r.get("DeleteRequest")) {
                (Some(p), None) => {
                    let item = crate::params::required_item(p, "Item")?;
                    keys::validate_item(&t, &item)?;
                    ItemWrite {
                        key: keys::key_of(&t.key, &item),
                        condition: None,
                        action: Action::Put(item),
                    }
                }
                (None, Some(del)) => {
                    let key = crate::params::required_item(del, "Key")?;
                    keys::validate_key(&t, &key)?;
                    ItemWrite {
                        key,
                        condition: None,
                        action: Action::Delete,
                    }
                }
                _ => {
                    return Err(AwsError::validation(
                        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                    ));
                }
            };
            if !seen.insert(keys::item_key(&t, &w.key)) {
                return Err(duplicates());
            }
            writes.push((t.clone(), w));
        }
    }
    let consumed = match commit_together(d, &writes, &ctx.region)? {
        Some(c) => c,
        None => {
            let mut c: BTreeMap<String, Consumed> = BTreeMap::new();
            for (t, w) in &writes {
                let (_, done) = run(d, ctx, &t.name, w).map_err(|r| match r {
                    Refused::Error(e) => e,
                    Refused::Condition(_) => AwsError::internal("unconditional write refused"),
                })?;
                c.entry(t.name.clone())
                    .or_insert_with(|| Consumed::write(0.0))
                    .add(&done.consumed);
            }
            c
        }
    };
    let mut o = Map::new();
    o.insert("UnprocessedItems".into(), Map::new().into());
    capacity::insert_all(&mut o, &consumed, mode);
    Ok(Value::Object(o))
}

/// All the writes in one store batch, if nothing changed between reading and committing;
/// `None` when something did (the caller then writes item by item).
fn commit_together(
    d: &DynamoDb,
    writes: &[(TableRec, ItemWrite)],
    region: &str,
) -> Result<Option<BTreeMap<String, Consumed>>, AwsError> {
    let mut ops = Vec::new();
    let mut tables = HashSet::new();
    let mut consumed: BTreeMap<String, Consumed> = BTreeMap::new();
    for (t, w) in writes {
        if tables.insert(t.name.clone()) {
            ops.push(t.unchanged());
        }
        let (raw, old) = load(d, &keys::item_key(t, &w.key))?;
        let done = match decide(t, w, raw, old, region) {
            Ok(done) => done,
            Err(Refused::Error(e)) => return Err(e),
            Err(Refused::Condition(_)) => return Ok(None),
        };
        consumed
            .entry(t.name.clone())
            .or_insert_with(|| Consumed::write(0.0))
            .add(&done.consumed);
        ops.extend(done.ops);
    }
    match d.state.batch(&ops) {
        Ok(()) => Ok(Some(consumed)),
        Err(StoreError::Conflict) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
