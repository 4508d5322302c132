//! PartiQL: ExecuteStatement, BatchExecuteStatement and ExecuteTransaction.
//!
//! `basalt_partiql` parses a statement onto the expression engine; this module runs it with
//! the same machinery as the item operations: a SELECT reads key ranges (a Query when WHERE
//! pins the partition key, a Scan otherwise), INSERT/UPDATE/DELETE are conditional item
//! writes, and ExecuteTransaction commits its writes as one transaction.

use basalt_core::{AwsError, RequestContext, page_token};
use basalt_dynamodb_expr::{
    AttributeValue, Condition, Item, Projection, ast, item_from_json, item_to_json,
};
use basalt_partiql::{Returning, Statement};
use serde_json::{Map, Value, json};

use crate::DynamoDb;
use crate::capacity::{self, Consumed};
use crate::keys::{self, encode_into};
use crate::model::TableRec;
use crate::params::{str_of, value_error};
use crate::query::{Reader, Select, index_of_name, range_bounds};
use crate::transact::{self, Op};
use crate::write::{Action, ItemWrite, Refused, condition_failed, load, run};

const MAX_BATCH: usize = 25;
const MAX_TRANSACTION: usize = 100;

fn parse(statement: &Value) -> Result<Statement, AwsError> {
    let text = str_of(statement, "Statement").unwrap_or_default();
    if text.is_empty() {
        return Err(AwsError::validation(
            "1 validation error detected: Value null at 'statement' failed to satisfy constraint: Member must not be null",
        ));
    }
    let params: Vec<AttributeValue> = statement
        .get("Parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            item_from_json(&json!({ "p": p }))
                .map_err(value_error)
                .map(|mut i| i.remove("p").unwrap_or(AttributeValue::Null))
        })
        .collect::<Result<_, _>>()?;
    basalt_partiql::parse(text, &params).map_err(|e| AwsError::validation(e.0))
}

fn schema_names(t: &TableRec, index: Option<&str>) -> Result<(String, Option<String>), AwsError> {
    let schema = match index_of_name(t, index)? {
        Some(ix) => &ix.key,
        None => &t.key,
    };
    Ok((
        schema.hash.name.clone(),
        schema.range.as_ref().map(|r| r.name.clone()),
    ))
}

/// The key of an UPDATE or DELETE (or a transaction's SELECT), checked against the table.
fn key_of(t: &TableRec, key: Result<Item, basalt_partiql::PartiqlError>) -> Result<Item, AwsError> {
    let key = key.map_err(|e| AwsError::validation(e.0))?;
    keys::validate_key(t, &key)?;
    Ok(key)
}

fn returned(r: Option<Returning>, done: &crate::write::Decided) -> Option<Item> {
    let from_paths = || Projection::from_paths(done.updated.clone());
    match r? {
        Returning::AllOld => done.old.clone(),
        Returning::AllNew => done.new.clone(),
        Returning::ModifiedOld => done.old.as_ref().map(|o| from_paths().apply(o)),
        Returning::ModifiedNew => done.new.as_ref().map(|n| from_paths().apply(n)),
    }
}

/// An INSERT's write: the item, only if no item has its key.
fn insert_write(t: &TableRec, item: Item) -> Result<ItemWrite, AwsError> {
    keys::validate_item(t, &item)?;
    Ok(ItemWrite {
        key: keys::key_of(&t.key, &item),
        condition: Some(Condition::function(ast::Function::AttributeNotExists(
            ast::Path::attr(&t.key.hash.name),
        ))),
        action: Action::Put(item),
    })
}

fn duplicate() -> AwsError {
    AwsError::new(
        400,
        "DuplicateItemException",
        "Duplicate primary key exists in table",
    )
}

pub fn execute(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let mode = capacity::mode(input)?;
    let stmt = parse(input)?;
    let t = d.table(ctx, stmt.table())?;
    let mut out = Map::new();
    let consumed = match stmt {
        Statement::Select(s) => return select(d, &t, &s, input, mode),
        Statement::Exists(_) => {
            return Err(AwsError::validation(
                "EXISTS can only be used in ExecuteTransaction write requests.",
            ));
        }
        Statement::Insert(i) => {
            let w = insert_write(&t, i.item)?;
            match run(d, ctx, &t.name, &w) {
                Ok((_, done)) => done.consumed,
                Err(Refused::Condition(_)) => return Err(duplicate()),
                Err(Refused::Error(e)) => return Err(e),
            }
        }
        Statement::Update(u) => {
            let key = key_of(
                &t,
                u.key(
                    &t.key.hash.name,
                    t.key.range.as_ref().map(|r| r.name.as_str()),
                ),
            )?;
            for name in u.update.top_level_names() {
                if t.key.contains(&name) {
                    return Err(AwsError::validation(format!(
                        "One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part of the key"
                    )));
                }
            }
            let w = ItemWrite {
                key,
                condition: u.condition.clone(),
                action: Action::Update(Some(u.update.clone())),
            };
            let done = run(d, ctx, &t.name, &w).map_err(|r| refused(r, input))?.1;
            if let Some(item) = returned(u.returning, &done) {
                out.insert("Items".into(), json!([item_to_json(&item)]));
            }
            done.consumed
        }
        Statement::Delete(del) => {
            let key = key_of(
                &t,
                del.key(
                    &t.key.hash.name,
                    t.key.range.as_ref().map(|r| r.name.as_str()),
                ),
            )?;
            let w = ItemWrite {
                key,
                condition: del.condition.clone(),
                action: Action::Delete,
            };
            // A DELETE of a missing item deletes nothing and succeeds.
            let (raw, _) = load(d, &keys::item_key(&t, &w.key))?;
            if raw.is_none() {
                Consumed::write(1.0)
            } else {
                let done = run(d, ctx, &t.name, &w).map_err(|r| refused(r, input))?.1;
                if let Some(item) = returned(del.returning, &done) {
                    out.insert("Items".into(), json!([item_to_json(&item)]));
                }
                done.consumed
            }
        }
    };
    if !out.contains_key("Items") {
        out.insert("Items".into(), json!([]));
    }
    if let Some(c) = consumed.to_json(&t.name, mode) {
        out.insert("ConsumedCapacity".into(), c);
    }
    Ok(Value::Object(out))
}

fn refused(r: Refused, input: &Value) -> AwsError {
    match r {
        Refused::Condition(old) => condition_failed(old, input),
        Refused::Error(e) => e,
    }
}

/// A SELECT, a page at a time: the partitions WHERE pins (or the whole table), `Limit` items
/// evaluated or 1 MB per page, resuming from NextToken (partition number and store key).
fn select(
    d: &DynamoDb,
    t: &TableRec,
    s: &basalt_partiql::Select,
    input: &Value,
    mode: capacity::Mode,
) -> Result<Value, AwsError> {
    let index = index_of_name(t, s.index.as_deref())?;
    let (hash, range) = schema_names(t, s.index.as_deref())?;
    s.check_order_by(&hash, range.as_deref())
        .map_err(|e| AwsError::validation(e.0))?;
    let limit = match input.get("Limit").and_then(Value::as_i64) {
        Some(n) if n >= 1 => Some(n as usize),
        Some(n) => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
        None => None,
    };
    let prefix = match index {
        Some(ix) => keys::index_prefix(t, ix),
        None => keys::table_prefix(t),
    };
    let ranges: Vec<(String, String)> = match s.key_condition(&hash, range.as_deref()) {
        Some(parts) => parts
            .iter()
            .map(|k| {
                let mut p = prefix.clone();
                encode_into(&k.hash, &mut p);
                range_bounds(&p, k.range.as_ref())
            })
            .collect(),
        None => vec![(prefix.clone(), keys::upper(&prefix))],
    };
    let reverse = s.order_desc == Some(true);
    let (mut part, mut after) = (0usize, None::<String>);
    if let Some(tok) = str_of(input, "NextToken") {
        let pos = page_token::decode(tok)
            .and_then(|p| serde_json::from_str::<(usize, String)>(&p).ok())
            .filter(|(p, _)| *p < ranges.len())
            .ok_or_else(|| AwsError::validation("Invalid NextToken"))?;
        (part, after) = (pos.0, Some(pos.1));
    }
    let consistent = crate::read::consistent(input);
    let mut items = Vec::new();
    let mut bytes = 0;
    let mut evaluated = 0usize;
    let mut next = None;
    while part < ranges.len() {
        let (mut lo, mut hi) = ranges[part].clone();
        if let Some(a) = after.take() {
            if reverse {
                hi = hi.min(a);
            } else {
                lo = lo.max(format!("{a}\u{0}"));
            }
        }
        let r = Reader {
            d,
            t,
            index,
            select: if index.is_some() {
                Select::AllProjected
            } else {
                Select::All
            },
            projection: None,
            filter: s.condition.clone(),
            limit: limit.map(|l| l - evaluated),
            segment: None,
        };
        let page = r.read(lo, hi, reverse)?;
        evaluated += page.scanned;
        bytes += page.bytes;
        items.extend(page.items.iter().map(|i| item_to_json(&s.project(i))));
        if let Some(k) = page.last_key {
            next = Some((part, k));
            break;
        }
        part += 1;
        if limit.is_some_and(|l| evaluated >= l) && part < ranges.len() {
            next = Some((part, String::new()));
            break;
        }
    }
    let mut o = Map::new();
    o.insert("Items".into(), items.into());
    if let Some((p, k)) = next {
        let pos = serde_json::to_string(&(p, k)).unwrap_or_default();
        o.insert("NextToken".into(), page_token::encode(&pos).into());
    }
    let mut c = Consumed::read(0.0);
    let units = capacity::read_units(bytes, consistent);
    match index {
        Some(ix) => c.index(&ix.name, ix.global, units),
        None => c.table = units,
    }
    if let Some(c) = c.to_json(&t.name, mode) {
        o.insert("ConsumedCapacity".into(), c);
    }
    Ok(Value::Object(o))
}

/// The error member of one BatchExecuteStatement response.
fn batch_error(e: &AwsError) -> Value {
    let code = match e.code.as_str() {
        "ConditionalCheckFailedException" => "ConditionalCheckFailed",
        "DuplicateItemException" => "DuplicateItem",
        "ResourceNotFoundException" => "ResourceNotFound",
        "ProvisionedThroughputExceededException" => "ProvisionedThroughputExceeded",
        "TransactionConflictException" => "TransactionConflict",
        "RequestLimitExceeded" => "RequestLimitExceeded",
        "ThrottlingException" => "ThrottlingError",
        "InternalServerError" | "ServiceException" => "InternalServerError",
        _ => "ValidationError",
    };
    let mut v = json!({"Code": code, "Message": e.message});
    if let Some(item) = e.fields.get("Item") {
        v["Item"] = item.clone();
    }
    v
}

pub fn batch(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let mode = capacity::mode(input)?;
    let stmts = input
        .get("Statements")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if stmts.is_empty() || stmts.len() > MAX_BATCH {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value at 'statements' failed to satisfy constraint: Member must have length {}",
            if stmts.is_empty() {
                "greater than or equal to 1"
            } else {
                "less than or equal to 25"
            }
        )));
    }
    let parsed: Vec<Result<Statement, AwsError>> = stmts.iter().map(parse).collect();
    let reads = parsed
        .iter()
        .filter(|p| matches!(p, Ok(s) if s.is_read()))
        .count();
    if reads != 0 && reads != parsed.iter().filter(|p| p.is_ok()).count() {
        return Err(AwsError::validation(
            "Statements in a batch must be all reads or all writes",
        ));
    }
    let mut responses = Vec::new();
    let mut consumed: std::collections::BTreeMap<String, Consumed> = Default::default();
    for (stmt, raw) in parsed.into_iter().zip(&stmts) {
        let result = stmt.and_then(|s| batch_one(d, ctx, s, raw));
        match result {
            Ok((table, item, c)) => {
                let mut r = json!({ "TableName": table });
                if let Some(item) = item {
                    r["Item"] = item_to_json(&item);
                }
                consumed
                    .entry(table)
                    .or_insert_with(|| Consumed::read(0.0))
                    .add(&c);
                responses.push(r);
            }
            Err(e) => responses.push(json!({ "Error": batch_error(&e) })),
        }
    }
    let mut o = Map::new();
    o.insert("Responses".into(), responses.into());
    capacity::insert_all(&mut o, &consumed, mode);
    Ok(Value::Object(o))
}

/// One statement of a batch: a GetItem-like SELECT or a single-item write.
fn batch_one(
    d: &DynamoDb,
    ctx: &RequestContext,
    stmt: Statement,
    raw: &Value,
) -> Result<(String, Option<Item>, Consumed), AwsError> {
    let t = d.table(ctx, stmt.table())?;
    let (hash, range) = (
        t.key.hash.name.clone(),
        t.key.range.as_ref().map(|r| r.name.clone()),
    );
    match stmt {
        Statement::Select(s) => {
            let key = s.get_key(&hash, range.as_deref()).ok_or_else(|| {
                AwsError::validation(
                    "Select statements within BatchExecuteStatement must specify the primary key in the where clause.",
                )
            })?;
            keys::validate_key(&t, &key)?;
            let (_, item) = load(d, &keys::item_key(&t, &key))?;
            let size = item.as_ref().map_or(0, basalt_dynamodb_expr::item_size);
            let item = item
                .filter(|i| s.condition.as_ref().is_none_or(|c| c.eval(i)))
                .map(|i| s.project(&i));
            Ok((
                t.name.clone(),
                item,
                Consumed::read(capacity::read_units(size, crate::read::consistent(raw))),
            ))
        }
        other => {
            let input = json!({ "ReturnValuesOnConditionCheckFailure": str_of(raw, "ReturnValuesOnConditionCheckFailure") });
            let (w, dup) = write_of(&t, other)?;
            match run(d, ctx, &t.name, &w) {
                Ok((_, done)) => Ok((t.name.clone(), None, done.consumed)),
                Err(Refused::Condition(_)) if dup => Err(duplicate()),
                Err(r) => Err(refused(r, &input)),
            }
        }
    }
}

/// The item write of an INSERT, UPDATE, DELETE or EXISTS; `true` for an INSERT (whose failed
/// condition is a duplicate key).
fn write_of(t: &TableRec, stmt: Statement) -> Result<(ItemWrite, bool), AwsError> {
    let (hash, range) = (
        t.key.hash.name.clone(),
        t.key.range.as_ref().map(|r| r.name.clone()),
    );
    Ok(match stmt {
        Statement::Insert(i) => (insert_write(t, i.item)?, true),
        Statement::Update(u) => (
            ItemWrite {
                key: key_of(t, u.key(&hash, range.as_deref()))?,
                condition: u.condition.clone(),
                action: Action::Update(Some(u.update.clone())),
            },
            false,
        ),
        Statement::Delete(del) => (
            ItemWrite {
                key: key_of(t, del.key(&hash, range.as_deref()))?,
                condition: del.condition.clone(),
                action: Action::Delete,
            },
            false,
        ),
        Statement::Exists(e) => {
            let (key, cond) = e
                .check(&hash, range.as_deref())
                .map_err(|e| AwsError::validation(e.0))?;
            keys::validate_key(t, &key)?;
            (
                ItemWrite {
                    key,
                    condition: Some(cond),
                    action: Action::Check,
                },
                false,
            )
        }
        Statement::Select(_) => {
            return Err(AwsError::validation(
                "Statements in a batch must be all reads or all writes",
            ));
        }
    })
}

pub fn transaction(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let mode = capacity::mode(input)?;
    let stmts = input
        .get("TransactStatements")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if stmts.is_empty() || stmts.len() > MAX_TRANSACTION {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value at 'transactStatements' failed to satisfy constraint: Member must have length {}",
            if stmts.is_empty() {
                "greater than or equal to 1"
            } else {
                "less than or equal to 100"
            }
        )));
    }
    let parsed: Vec<Statement> = stmts.iter().map(parse).collect::<Result<_, _>>()?;
    let reads = parsed.iter().filter(|s| s.is_read()).count();
    if reads == parsed.len() {
        // A read transaction: TransactGetItems of the pinned keys.
        let mut gets = Vec::new();
        let mut projections = Vec::new();
        for s in parsed {
            let Statement::Select(s) = s else {
                unreachable!()
            };
            let t = d.table(ctx, &s.table)?;
            let key = s
                .get_key(&t.key.hash.name, t.key.range.as_ref().map(|r| r.name.as_str()))
                .ok_or_else(|| {
                    AwsError::validation(
                        "Select statements within ExecuteTransaction must specify the primary key in the where clause.",
                    )
                })?;
            gets.push(json!({"Get": {"TableName": t.name, "Key": item_to_json(&key)}}));
            projections.push(s);
        }
        let out = transact::get(
            d,
            ctx,
            &json!({"TransactItems": gets, "ReturnConsumedCapacity": input.get("ReturnConsumedCapacity")}),
        )?;
        let responses: Vec<Value> = out["Responses"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(&projections)
            .map(|(r, s)| match r.get("Item").map(item_from_json) {
                Some(Ok(item)) if s.condition.as_ref().is_none_or(|c| c.eval(&item)) => {
                    json!({"Item": item_to_json(&s.project(&item))})
                }
                _ => json!({}),
            })
            .collect();
        let mut o = Map::new();
        o.insert("Responses".into(), responses.into());
        if let Some(c) = out.get("ConsumedCapacity") {
            o.insert("ConsumedCapacity".into(), c.clone());
        }
        return Ok(Value::Object(o));
    }
    if reads != 0 {
        return Err(AwsError::validation(
            "Transactions must be either all reads or all writes",
        ));
    }
    let mut ops = Vec::new();
    for (s, raw) in parsed.into_iter().zip(&stmts) {
        let t = d.table(ctx, s.table())?;
        let (write, dup) = write_of(&t, s)?;
        ops.push(Op {
            table: t.name.clone(),
            write,
            want_old: str_of(raw, "ReturnValuesOnConditionCheckFailure") == Some("ALL_OLD"),
            failed_code: if dup {
                "DuplicateItem"
            } else {
                "ConditionalCheckFailed"
            },
        });
    }
    let token = str_of(input, "ClientRequestToken");
    let out = transact::run_write(
        d,
        ctx,
        &ops,
        token.map(|t| (t, transact::request_hash(input))),
        mode,
    )?;
    let mut o = out.as_object().cloned().unwrap_or_default();
    o.insert("Responses".into(), json!([]));
    Ok(Value::Object(o))
}
