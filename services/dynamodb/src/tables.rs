//! The control plane: CreateTable, DescribeTable, ListTables, UpdateTable, DeleteTable, tags,
//! time to live, continuous backups, limits and endpoints.

use basalt_core::{AwsError, RequestContext};
use basalt_store::WriteOp;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use crate::model::{
    IndexRec, KeyAttr, KeySchema, ProjectionType, ScalarType, StreamRec, TABLES, TableRec,
    Throughput, TtlRec, now_secs,
};
use crate::params::{check_name, str_of, table_name};
use crate::{DynamoDb, jobs};

const MAX_GSIS: usize = 20;
const MAX_LSIS: usize = 5;

fn invalid(msg: impl std::fmt::Display) -> AwsError {
    AwsError::validation(format!("One or more parameter values were invalid: {msg}"))
}

fn in_use(msg: impl Into<String>) -> AwsError {
    AwsError::new(400, "ResourceInUseException", msg)
}

/// `AttributeDefinitions`: name → type.
fn attribute_definitions(input: &Value) -> Result<BTreeMap<String, ScalarType>, AwsError> {
    let mut out = BTreeMap::new();
    for d in input
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_of(d, "AttributeName").unwrap_or_default();
        let ty = str_of(d, "AttributeType").unwrap_or_default();
        let ty = ScalarType::parse(ty).ok_or_else(|| {
            AwsError::validation(format!(
                "1 validation error detected: Value '{ty}' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
            ))
        })?;
        if out.insert(name.to_owned(), ty).is_some() {
            return Err(invalid(format!(
                "Duplicate AttributeName found in AttributeDefinitions: {name}"
            )));
        }
    }
    Ok(out)
}

/// A `KeySchema` member, its attributes typed by the definitions.
fn key_schema(
    v: Option<&Value>,
    defs: &BTreeMap<String, ScalarType>,
    index: Option<&str>,
) -> Result<KeySchema, AwsError> {
    let elems = v.and_then(Value::as_array).cloned().unwrap_or_default();
    let (mut hash, mut range) = (None, None);
    if elems.is_empty() || elems.len() > 2 {
        return Err(AwsError::validation(
            "1 validation error detected: Value null at 'keySchema' failed to satisfy constraint: Member must have length less than or equal to 2",
        ));
    }
    for e in &elems {
        let name = str_of(e, "AttributeName").unwrap_or_default().to_owned();
        let Some(&ty) = defs.get(&name) else {
            return Err(match index {
                Some(_) => invalid(format!(
                    "Some index key attributes are not defined in AttributeDefinitions. Keys: [{name}], AttributeDefinitions: [{}]",
                    defs.keys().cloned().collect::<Vec<_>>().join(", ")
                )),
                None => invalid(format!(
                    "Some index key attributes are not defined in AttributeDefinitions. Keys: [{name}], AttributeDefinitions: [{}]",
                    defs.keys().cloned().collect::<Vec<_>>().join(", ")
                )),
            });
        };
        match str_of(e, "KeyType") {
            Some("HASH") if hash.is_none() => hash = Some(KeyAttr { name, ty }),
            Some("RANGE") if range.is_none() => range = Some(KeyAttr { name, ty }),
            Some("HASH") | Some("RANGE") => {
                return Err(invalid("Too many hash keys or range keys in KeySchema"));
            }
            _ => return Err(invalid("Invalid KeyType in KeySchema")),
        }
    }
    let Some(hash) = hash else {
        return Err(invalid(
            "No Hash Key specified in schema.  All Dynamo DB tables must have exactly one hash key",
        ));
    };
    if elems.len() == 2 && range.is_none() {
        return Err(invalid("Too many hash keys or range keys in KeySchema"));
    }
    if range.as_ref().is_some_and(|r| r.name == hash.name) {
        return Err(invalid(
            "Both the Hash Key and the Range Key element in the KeySchema have the same name",
        ));
    }
    Ok(KeySchema { hash, range })
}

fn projection(v: Option<&Value>) -> Result<ProjectionType, AwsError> {
    let v = v.cloned().unwrap_or(Value::Null);
    let non_key: Vec<String> = v
        .get("NonKeyAttributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    match str_of(&v, "ProjectionType") {
        Some("ALL") | Some("KEYS_ONLY") if !non_key.is_empty() => Err(invalid(
            "ProjectionType is ALL or KEYS_ONLY, but NonKeyAttributes is specified",
        )),
        Some("ALL") => Ok(ProjectionType::All),
        Some("KEYS_ONLY") => Ok(ProjectionType::KeysOnly),
        Some("INCLUDE") if non_key.is_empty() => Err(invalid(
            "ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
        )),
        Some("INCLUDE") => Ok(ProjectionType::Include(non_key)),
        None => Err(invalid("Unknown ProjectionType: null")),
        Some(other) => Err(invalid(format!("Unknown ProjectionType: {other}"))),
    }
}

fn throughput(v: Option<&Value>) -> Option<Throughput> {
    let v = v?;
    Some(Throughput {
        read: v.get("ReadCapacityUnits")?.as_i64()?,
        write: v.get("WriteCapacityUnits")?.as_i64()?,
    })
}

fn index(
    v: &Value,
    defs: &BTreeMap<String, ScalarType>,
    global: bool,
    on_demand: bool,
) -> Result<IndexRec, AwsError> {
    let name = str_of(v, "IndexName").unwrap_or_default().to_owned();
    check_name(&name, "IndexName")?;
    let key = key_schema(v.get("KeySchema"), defs, Some(&name))?;
    let throughput = throughput(v.get("ProvisionedThroughput"));
    if global && !on_demand && throughput.is_none() {
        return Err(invalid(format!(
            "ProvisionedThroughput must be specified for index: {name}"
        )));
    }
    if global && on_demand && throughput.is_some() {
        return Err(invalid(format!(
            "One or more parameter values were invalid: ProvisionedThroughput should not be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
        )));
    }
    Ok(IndexRec {
        name,
        key,
        projection: projection(v.get("Projection"))?,
        global,
        status: "ACTIVE".into(),
        throughput: if global { throughput } else { None },
    })
}

fn stream_spec(v: Option<&Value>, now: f64) -> Result<Option<StreamRec>, AwsError> {
    let Some(v) = v else { return Ok(None) };
    let enabled = v
        .get("StreamEnabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !enabled {
        if v.get("StreamViewType").is_some() {
            return Err(invalid(
                "StreamViewType can't be specified when StreamEnabled is false",
            ));
        }
        return Ok(None);
    }
    let view = str_of(v, "StreamViewType")
        .ok_or_else(|| invalid("StreamViewType is required when StreamEnabled is true"))?;
    Ok(Some(StreamRec {
        enabled: true,
        view_type: view.to_owned(),
        label: stream_label(now),
        uid: uuid::Uuid::new_v4().simple().to_string(),
    }))
}

/// A stream label: the creation time as AWS writes it (`2026-12-06T08:42:44.123`).
fn stream_label(now: f64) -> String {
    let ms = (now * 1000.0) as i64;
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn tags_of(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| Some((str_of(t, "Key")?.to_owned(), str_of(t, "Value")?.to_owned())))
        .collect()
}

pub fn create(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = table_name(input, "TableName")?;
    if name.starts_with("arn:") {
        return Err(invalid("Table name cannot be an ARN"));
    }
    let defs = attribute_definitions(input)?;
    let key = key_schema(input.get("KeySchema"), &defs, None)?;
    let on_demand = match str_of(input, "BillingMode").unwrap_or("PROVISIONED") {
        "PAY_PER_REQUEST" => true,
        "PROVISIONED" => false,
        other => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{other}' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"
            )));
        }
    };
    let tp = throughput(input.get("ProvisionedThroughput"));
    if on_demand && tp.is_some() {
        return Err(invalid(
            "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
        ));
    }
    if !on_demand && tp.is_none() {
        return Err(invalid(
            "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
        ));
    }
    let mut indexes = Vec::new();
    let gsis = input
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_array);
    let lsis = input.get("LocalSecondaryIndexes").and_then(Value::as_array);
    if gsis.is_some_and(|g| g.len() > MAX_GSIS) {
        return Err(AwsError::new(
            400,
            "LimitExceededException",
            "Subscriber limit exceeded: The number of global secondary indexes exceeds the limit of 20",
        ));
    }
    if lsis.is_some_and(|l| l.len() > MAX_LSIS) {
        return Err(invalid(
            "Too many LocalSecondaryIndexes. The maximum number of local secondary indexes per table is 5",
        ));
    }
    for g in gsis.into_iter().flatten() {
        indexes.push(index(g, &defs, true, on_demand)?);
    }
    for l in lsis.into_iter().flatten() {
        let ix = index(l, &defs, false, on_demand)?;
        if key.range.is_none() {
            return Err(invalid(
                "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
            ));
        }
        if ix.key.hash != key.hash {
            return Err(invalid(format!(
                "Index KeySchema does not have the same leading hash key as table KeySchema for index: {}. index hash key: {}, table hash key: {}",
                ix.name, ix.key.hash.name, key.hash.name
            )));
        }
        if ix.key.range.is_none() {
            return Err(invalid(format!(
                "Index KeySchema does not have a range key for index: {}",
                ix.name
            )));
        }
        indexes.push(ix);
    }
    let mut seen = std::collections::HashSet::new();
    for ix in &indexes {
        if !seen.insert(ix.name.as_str()) {
            return Err(invalid(format!("Duplicate index name: {}", ix.name)));
        }
    }
    // Every definition is used by some key schema, and only those.
    let used: std::collections::BTreeSet<&str> = key
        .names()
        .chain(indexes.iter().flat_map(|i| i.key.names()))
        .collect();
    if used.len() != defs.len() {
        return Err(invalid(
            "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ));
    }
    let now = now_secs();
    let stream = stream_spec(input.get("StreamSpecification"), now)?;
    let rec = TableRec {
        name: name.to_owned(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        uid: uuid::Uuid::new_v4().to_string(),
        created: now,
        described: false,
        key,
        attributes: defs,
        on_demand,
        throughput: tp,
        indexes,
        stream,
        old_streams: Vec::new(),
        ttl: None,
        sse: input
            .get("SSESpecification")
            .filter(|s| s.get("Enabled").and_then(Value::as_bool) == Some(true))
            .map(|s| {
                json!({
                    "Status": "ENABLED",
                    "SSEType": str_of(s, "SSEType").unwrap_or("KMS"),
                    "KMSMasterKeyArn": str_of(s, "KMSMasterKeyId").map(str::to_owned).unwrap_or_else(|| format!(
                        "arn:aws:kms:{}:{}:key/{}", ctx.region, ctx.account_id, uuid::Uuid::new_v4()
                    )),
                })
            }),
        tags: tags_of(input.get("Tags")),
        deletion_protection: input
            .get("DeletionProtectionEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        pitr: false,
        table_class: str_of(input, "TableClass").map(str::to_owned),
        warm_throughput: None,
        stored: Vec::new(),
    };
    let key = TableRec::key(&rec.account, &rec.region, &rec.name);
    let raw = serde_json::to_vec(&rec).map_err(|e| AwsError::internal(e.to_string()))?;
    match d.state.batch(&[
        WriteOp::Check {
            table: TABLES.into(),
            key: key.clone(),
            expected: None,
        },
        WriteOp::Put {
            table: TABLES.into(),
            key,
            value: raw,
        },
    ]) {
        Ok(()) => {}
        Err(basalt_store::StoreError::Conflict) => {
            return Err(in_use(format!("Table already exists: {name}")));
        }
        Err(e) => return Err(e.into()),
    }
    let mut desc = description(d, &rec, "CREATING", false)?;
    if let Some(o) = desc.as_object_mut() {
        o.insert("ItemCount".into(), 0.into());
        o.insert("TableSizeBytes".into(), 0.into());
    }
    Ok(json!({ "TableDescription": desc }))
}

/// Reads a table record and applies `edit` under a precondition on the record as read,
/// retrying when another request changed it meanwhile.
pub fn edit(
    d: &DynamoDb,
    ctx: &RequestContext,
    name: &str,
    mut edit: impl FnMut(&mut TableRec) -> Result<Vec<WriteOp>, AwsError>,
) -> Result<TableRec, AwsError> {
    for _ in 0..32 {
        let mut rec = d.table(ctx, name)?;
        let key = TableRec::key(&rec.account, &rec.region, &rec.name);
        let before = serde_json::to_vec(&rec).map_err(|e| AwsError::internal(e.to_string()))?;
        let check = rec.unchanged();
        let mut ops = edit(&mut rec)?;
        let after = serde_json::to_vec(&rec).map_err(|e| AwsError::internal(e.to_string()))?;
        if after == before && ops.is_empty() {
            return Ok(rec);
        }
        ops.insert(0, check);
        ops.insert(
            1,
            WriteOp::Put {
                table: TABLES.into(),
                key,
                value: after.clone(),
            },
        );
        match d.state.batch(&ops) {
            Ok(()) => {
                rec.stored = after;
                return Ok(rec);
            }
            Err(basalt_store::StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AwsError::new(
        500,
        "InternalServerError",
        "The table changed concurrently too often; try again",
    ))
}

/// The `TableDescription` of a table.
pub fn description(
    d: &DynamoDb,
    t: &TableRec,
    status: &str,
    with_counts: bool,
) -> Result<Value, AwsError> {
    let defs: Vec<Value> = t
        .attributes
        .iter()
        .map(|(n, ty)| json!({"AttributeName": n, "AttributeType": ty.as_str()}))
        .collect();
    let tp = |tp: &Option<Throughput>| {
        let tp = tp.clone().unwrap_or(Throughput { read: 0, write: 0 });
        json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": tp.read, "WriteCapacityUnits": tp.write})
    };
    let mut o = Map::new();
    o.insert("AttributeDefinitions".into(), defs.into());
    o.insert("TableName".into(), t.name.clone().into());
    o.insert("KeySchema".into(), t.key.to_json());
    o.insert("TableStatus".into(), status.into());
    o.insert("CreationDateTime".into(), json!(t.created));
    o.insert("ProvisionedThroughput".into(), tp(&t.throughput));
    if with_counts {
        let (count, bytes) = crate::query::count(d, t, None)?;
        o.insert("TableSizeBytes".into(), bytes.into());
        o.insert("ItemCount".into(), count.into());
    } else {
        o.insert("TableSizeBytes".into(), 0.into());
        o.insert("ItemCount".into(), 0.into());
    }
    o.insert("TableArn".into(), t.arn().into());
    o.insert("TableId".into(), t.uid.clone().into());
    if t.on_demand {
        o.insert(
            "BillingModeSummary".into(),
            json!({"BillingMode": "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime": t.created}),
        );
    } else {
        o.insert(
            "BillingModeSummary".into(),
            json!({"BillingMode": "PROVISIONED"}),
        );
    }
    let (mut gsis, mut lsis) = (Vec::new(), Vec::new());
    for ix in t.indexes.iter() {
        let mut i = Map::new();
        i.insert("IndexName".into(), ix.name.clone().into());
        i.insert("KeySchema".into(), ix.key.to_json());
        i.insert("Projection".into(), ix.projection.to_json());
        let (count, bytes) = if with_counts && ix.status == "ACTIVE" {
            crate::query::count(d, t, Some(ix))?
        } else {
            (0, 0)
        };
        i.insert("IndexSizeBytes".into(), bytes.into());
        i.insert("ItemCount".into(), count.into());
        i.insert(
            "IndexArn".into(),
            format!("{}/index/{}", t.arn(), ix.name).into(),
        );
        if ix.global {
            i.insert("IndexStatus".into(), ix.status.clone().into());
            if ix.status == "CREATING" {
                i.insert("Backfilling".into(), true.into());
            }
            i.insert("ProvisionedThroughput".into(), tp(&ix.throughput));
            gsis.push(Value::Object(i));
        } else {
            lsis.push(Value::Object(i));
        }
    }
    if !gsis.is_empty() {
        o.insert("GlobalSecondaryIndexes".into(), gsis.into());
    }
    if !lsis.is_empty() {
        o.insert("LocalSecondaryIndexes".into(), lsis.into());
    }
    if let Some(s) = &t.stream {
        o.insert(
            "StreamSpecification".into(),
            json!({"StreamEnabled": true, "StreamViewType": s.view_type}),
        );
        o.insert("LatestStreamLabel".into(), s.label.clone().into());
        o.insert("LatestStreamArn".into(), t.stream_arn(s).into());
    } else if let Some(s) = t.old_streams.last() {
        o.insert("LatestStreamLabel".into(), s.label.clone().into());
        o.insert("LatestStreamArn".into(), t.stream_arn(s).into());
    }
    if let Some(sse) = &t.sse {
        o.insert("SSEDescription".into(), sse.clone());
    }
    if let Some(class) = &t.table_class {
        o.insert("TableClassSummary".into(), json!({"TableClass": class}));
    }
    o.insert(
        "DeletionProtectionEnabled".into(),
        t.deletion_protection.into(),
    );
    Ok(Value::Object(o))
}

pub fn describe(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = table_name(input, "TableName")?;
    let mut t = d.table(ctx, name)?;
    let status = if t.described {
        if t.indexes.iter().any(|i| i.status != "ACTIVE") {
            "UPDATING"
        } else {
            "ACTIVE"
        }
    } else {
        // The first look after CreateTable: from now on the table is ACTIVE.
        t = edit(d, ctx, name, |t| {
            t.described = true;
            Ok(Vec::new())
        })?;
        "ACTIVE"
    };
    Ok(json!({ "Table": description(d, &t, status, true)? }))
}

pub fn list(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let limit = match input.get("Limit").and_then(Value::as_i64) {
        None => 100,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(n) => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value {}",
                if n < 1 {
                    "greater than or equal to 1"
                } else {
                    "less than or equal to 100"
                }
            )));
        }
    };
    let prefix = format!("{}/{}/", ctx.account_id, ctx.region);
    let after = str_of(input, "ExclusiveStartTableName").map(|n| format!("{prefix}{n}"));
    let rows = d.state.scan(TABLES, &prefix, after.as_deref(), limit + 1)?;
    let mut names: Vec<String> = rows
        .iter()
        .map(|(k, _)| k[prefix.len()..].to_owned())
        .collect();
    let mut out = Map::new();
    if names.len() > limit {
        names.truncate(limit);
        out.insert(
            "LastEvaluatedTableName".into(),
            names.last().cloned().unwrap_or_default().into(),
        );
    }
    out.insert("TableNames".into(), names.into());
    Ok(Value::Object(out))
}

pub fn delete(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = table_name(input, "TableName")?;
    let t = d.table(ctx, name)?;
    if t.deletion_protection {
        return Err(AwsError::validation(
            "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.",
        ));
    }
    let key = TableRec::key(&t.account, &t.region, &t.name);
    let mut ops = vec![
        t.unchanged(),
        WriteOp::Delete {
            table: TABLES.into(),
            key,
        },
    ];
    ops.extend(jobs::sweep_table(&t));
    match d.state.batch(&ops) {
        Ok(()) => {}
        Err(basalt_store::StoreError::Conflict) => {
            return Err(in_use(format!(
                "Attempt to change a resource which is still in use: Table is being modified: {name}"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    jobs::wake();
    Ok(json!({ "TableDescription": description(d, &t, "DELETING", false)? }))
}

pub fn update(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = table_name(input, "TableName")?;
    let updates: Vec<Value> = input
        .get("GlobalSecondaryIndexUpdates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let structural = updates
        .iter()
        .filter(|u| u.get("Create").is_some() || u.get("Delete").is_some())
        .count();
    if structural > 1 {
        return Err(AwsError::new(
            400,
            "LimitExceededException",
            "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table",
        ));
    }
    let now = now_secs();
    let t = edit(d, ctx, name, |t| {
        let mut ops = Vec::new();
        if let Some(defs) = input.get("AttributeDefinitions") {
            for (n, ty) in attribute_definitions(&json!({ "AttributeDefinitions": defs }))? {
                match t.attributes.get(&n) {
                    Some(old) if *old != ty => {
                        return Err(invalid(format!(
                            "Cannot change the type of attribute {n} from {} to {}",
                            old.as_str(),
                            ty.as_str()
                        )));
                    }
                    _ => {
                        t.attributes.insert(n, ty);
                    }
                }
            }
        }
        match str_of(input, "BillingMode") {
            Some("PAY_PER_REQUEST") => {
                t.on_demand = true;
                t.throughput = None;
            }
            Some("PROVISIONED") => t.on_demand = false,
            _ => {}
        }
        if let Some(tp) = throughput(input.get("ProvisionedThroughput")) {
            if t.on_demand {
                return Err(invalid(
                    "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
            t.throughput = Some(tp);
        }
        if !t.on_demand && t.throughput.is_none() {
            return Err(invalid(
                "ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
            ));
        }
        for u in &updates {
            if let Some(c) = u.get("Create") {
                if t.indexes.iter().any(|i| i.status != "ACTIVE") {
                    return Err(AwsError::new(
                        400,
                        "LimitExceededException",
                        "Subscriber limit exceeded: Only 1 online index can be created or deleted simultaneously per table",
                    ));
                }
                let mut ix = index(c, &t.attributes, true, t.on_demand)?;
                if t.index(&ix.name).is_some() {
                    return Err(invalid(format!(
                        "Attempting to create an index which already exists: {}",
                        ix.name
                    )));
                }
                if t.indexes.iter().filter(|i| i.global).count() >= MAX_GSIS {
                    return Err(AwsError::new(
                        400,
                        "LimitExceededException",
                        "Subscriber limit exceeded: The number of global secondary indexes exceeds the limit of 20",
                    ));
                }
                ix.status = "CREATING".into();
                ops.extend(jobs::backfill(t, &ix));
                t.indexes.push(ix);
            } else if let Some(del) = u.get("Delete") {
                let iname = str_of(del, "IndexName").unwrap_or_default();
                let Some(pos) = t.indexes.iter().position(|i| i.global && i.name == iname) else {
                    return Err(AwsError::new(
                        400,
                        "ResourceNotFoundException",
                        format!("Requested resource not found: Index: {iname} not found"),
                    ));
                };
                let ix = t.indexes.remove(pos);
                ops.extend(jobs::sweep_index(t, &ix));
            } else if let Some(up) = u.get("Update") {
                let iname = str_of(up, "IndexName").unwrap_or_default();
                let on_demand = t.on_demand;
                let Some(ix) = t.indexes.iter_mut().find(|i| i.global && i.name == iname) else {
                    return Err(AwsError::new(
                        400,
                        "ResourceNotFoundException",
                        format!("Requested resource not found: Index: {iname} not found"),
                    ));
                };
                if let Some(tp) = throughput(up.get("ProvisionedThroughput")) {
                    if on_demand {
                        return Err(invalid(
                            "ProvisionedThroughput cannot be specified for an index when BillingMode is PAY_PER_REQUEST",
                        ));
                    }
                    ix.throughput = Some(tp);
                }
            }
        }
        if let Some(spec) = input.get("StreamSpecification") {
            let enable = spec
                .get("StreamEnabled")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            match (&t.stream, enable) {
                (Some(_), true) => {
                    return Err(AwsError::validation(format!(
                        "Table already has an enabled stream: TableName: {}",
                        t.name
                    )));
                }
                (None, false) => {
                    return Err(AwsError::validation(format!(
                        "Table already has no stream enabled: TableName: {}",
                        t.name
                    )));
                }
                (None, true) => t.stream = stream_spec(Some(spec), now)?,
                (Some(_), false) => {
                    if let Some(mut s) = t.stream.take() {
                        s.enabled = false;
                        t.old_streams.push(s);
                    }
                }
            }
        }
        if let Some(sse) = input.get("SSESpecification") {
            t.sse = (sse.get("Enabled").and_then(Value::as_bool) == Some(true)).then(
                || json!({"Status": "ENABLED", "SSEType": str_of(sse, "SSEType").unwrap_or("KMS")}),
            );
        }
        if let Some(p) = input
            .get("DeletionProtectionEnabled")
            .and_then(Value::as_bool)
        {
            t.deletion_protection = p;
        }
        if let Some(c) = str_of(input, "TableClass") {
            t.table_class = Some(c.to_owned());
        }
        Ok(ops)
    })?;
    jobs::wake();
    let status = if t.indexes.iter().any(|i| i.status != "ACTIVE") {
        "UPDATING"
    } else {
        "ACTIVE"
    };
    Ok(json!({ "TableDescription": description(d, &t, status, false)? }))
}

/// The table an ARN names (tags take ARNs only).
fn by_arn(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<TableRec, AwsError> {
    let arn = str_of(input, "ResourceArn").unwrap_or_default();
    if !arn.starts_with("arn:") {
        return Err(AwsError::validation(format!(
            "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
        )));
    }
    d.table(ctx, arn).map_err(|_| {
        AwsError::new(
            400,
            "ResourceNotFoundException",
            format!("Requested resource not found: ResourcArn: {arn} not found"),
        )
    })
}

pub fn tag(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let t = by_arn(d, ctx, input)?;
    let tags = tags_of(input.get("Tags"));
    edit(d, ctx, &t.arn(), |t| {
        t.tags.extend(tags.clone());
        if t.tags.len() > 50 {
            return Err(AwsError::new(
                400,
                "LimitExceededException",
                "Subscriber limit exceeded: The number of tags on the resource exceeds the limit of 50",
            ));
        }
        Ok(Vec::new())
    })?;
    Ok(json!({}))
}

pub fn untag(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let t = by_arn(d, ctx, input)?;
    let keys: Vec<String> = input
        .get("TagKeys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    edit(d, ctx, &t.arn(), |t| {
        for k in &keys {
            t.tags.remove(k);
        }
        Ok(Vec::new())
    })?;
    Ok(json!({}))
}

pub fn list_tags(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let t = by_arn(d, ctx, input)?;
    let tags: Vec<Value> = t
        .tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({ "Tags": tags }))
}

pub fn update_ttl(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = table_name(input, "TableName")?;
    let spec = input
        .get("TimeToLiveSpecification")
        .cloned()
        .unwrap_or(Value::Null);
    let enabled = spec
        .get("Enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let attribute = str_of(&spec, "AttributeName")
        .unwrap_or_default()
        .to_owned();
    if attribute.is_empty() {
        return Err(AwsError::validation(
            "1 validation error detected: Value null at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must not be null",
        ));
    }
    edit(d, ctx, name, |t| {
        match (&t.ttl, enabled) {
            (Some(cur), true) if cur.enabled => {
                return Err(AwsError::validation("TimeToLive is already enabled"));
            }
            (None, false) => {
                return Err(AwsError::validation("TimeToLive is already disabled"));
            }
            (Some(cur), false) if !cur.enabled => {
                return Err(AwsError::validation("TimeToLive is already disabled"));
            }
            (Some(cur), false) if cur.attribute != attribute => {
                return Err(AwsError::validation(
                    "TimeToLive is active on a different AttributeName: current AttributeName is "
                        .to_owned()
                        + &cur.attribute,
                ));
            }
            _ => {}
        }
        t.ttl = Some(TtlRec {
            attribute: attribute.clone(),
            enabled,
        });
        Ok(Vec::new())
    })?;
    Ok(json!({"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute}}))
}

pub fn describe_ttl(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let t = d.table_of(ctx, input)?;
    let desc = match &t.ttl {
        Some(ttl) if ttl.enabled => {
            json!({"TimeToLiveStatus": "ENABLED", "AttributeName": ttl.attribute})
        }
        _ => json!({"TimeToLiveStatus": "DISABLED"}),
    };
    Ok(json!({ "TimeToLiveDescription": desc }))
}

fn backups_description(t: &TableRec) -> Value {
    let now = now_secs();
    let pitr = if t.pitr {
        json!({
            "PointInTimeRecoveryStatus": "ENABLED",
            "EarliestRestorableDateTime": t.created.max(now - 35.0 * 86_400.0),
            "LatestRestorableDateTime": now - 300.0,
            "RecoveryPeriodInDays": 35,
        })
    } else {
        json!({"PointInTimeRecoveryStatus": "DISABLED"})
    };
    json!({"ContinuousBackupsStatus": "ENABLED", "PointInTimeRecoveryDescription": pitr})
}

pub fn describe_backups(
    d: &DynamoDb,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let t = d.table_of(ctx, input)?;
    Ok(json!({ "ContinuousBackupsDescription": backups_description(&t) }))
}

pub fn update_backups(
    d: &DynamoDb,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = table_name(input, "TableName")?;
    let enabled = input
        .pointer("/PointInTimeRecoverySpecification/PointInTimeRecoveryEnabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let t = edit(d, ctx, name, |t| {
        t.pitr = enabled;
        Ok(Vec::new())
    })?;
    Ok(json!({ "ContinuousBackupsDescription": backups_description(&t) }))
}

pub fn describe_limits() -> Value {
    json!({
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    })
}

pub fn describe_endpoints(ctx: &RequestContext) -> Value {
    let host = ctx
        .endpoint
        .split("://")
        .nth(1)
        .unwrap_or(&ctx.endpoint)
        .trim_end_matches('/');
    json!({"Endpoints": [{"Address": host, "CachePeriodInMinutes": 1440}]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_labels_are_iso_times() {
        assert_eq!(stream_label(0.0), "1970-01-01T00:00:00.000");
        assert_eq!(stream_label(1_796_546_564.123), "2026-12-06T08:42:44.123");
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
