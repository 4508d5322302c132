//! Query and Scan, on tables and their indexes.
//!
//! A Query reads exactly its partition's key range (narrowed by the sort key condition), in
//! the requested direction, a page at a time; a Scan reads the table's (or index's) whole
//! range. Both stop at `Limit` items evaluated or 1 MB read, as DynamoDB does, and apply the
//! FilterExpression after that, so `Count` may be below `ScannedCount`.

use basalt_core::{AwsError, RequestContext};
use basalt_dynamodb_expr::{
    AttributeValue, Condition, Item, Projection, RangeCondition, item_size, item_to_json,
    parse_key_condition,
};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::DynamoDb;
use crate::capacity::{self, Consumed};
use crate::keys::{self, encode_into, encode_prefix, upper};
use crate::model::{INDEXES, ITEMS, IndexRec, ProjectionType, TableRec};
use crate::params::{expr_error, int_of, item, no_legacy, str_of, table_name};
use crate::read::{consistent, filter, projection};
use crate::write::{decode, load, params_of};

/// DynamoDB stops a page after 1 MB of items read.
const PAGE_BYTES: usize = 1024 * 1024;
/// Entries fetched from the store per round trip.
const CHUNK: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Select {
    All,
    AllProjected,
    Specific,
    Count,
}

fn select(
    input: &Value,
    index: Option<&IndexRec>,
    has_projection: bool,
    query: bool,
) -> Result<Select, AwsError> {
    let s = match str_of(input, "Select") {
        None if has_projection => Select::Specific,
        None if index.is_some() => Select::AllProjected,
        None => Select::All,
        Some("ALL_ATTRIBUTES") => Select::All,
        Some("ALL_PROJECTED_ATTRIBUTES") => Select::AllProjected,
        Some("SPECIFIC_ATTRIBUTES") => Select::Specific,
        Some("COUNT") => Select::Count,
        Some(other) => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{other}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
            )));
        }
    };
    if has_projection && s != Select::Specific {
        // Query words it as a validation error of its own; Scan without the prefix.
        let prefix = if query {
            "1 validation error detected: "
        } else {
            ""
        };
        return Err(AwsError::validation(if s == Select::Count {
            format!(
                "{prefix}Cannot specify the ProjectionExpression when choosing to get only the Count"
            )
        } else {
            format!(
                "{prefix}Cannot specify the ProjectionExpression when choosing to get {}",
                str_of(input, "Select").unwrap_or_default()
            )
        }));
    }
    if s == Select::AllProjected && index.is_none() {
        return Err(AwsError::validation(
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        ));
    }
    if s == Select::All
        && let Some(ix) = index
        && ix.global
        && ix.projection != ProjectionType::All
    {
        return Err(AwsError::validation(
            "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index ".to_owned()
                + &ix.name
                + " because its projection type is not ALL",
        ));
    }
    Ok(s)
}

fn limit(input: &Value) -> Result<Option<usize>, AwsError> {
    match int_of(input, "Limit") {
        None => Ok(None),
        Some(n) if n >= 1 => Ok(Some(n as usize)),
        Some(n) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
    }
}

/// What a page read: the items as returned, how many were evaluated, the key to resume from.
pub(crate) struct Page {
    pub items: Vec<Item>,
    pub count: usize,
    pub scanned: usize,
    pub bytes: usize,
    /// The key attributes of the last item evaluated, when the page stopped before the end.
    pub last: Option<Item>,
    /// Its store key.
    pub last_key: Option<String>,
}

/// The parameters a page of either operation is read with.
pub(crate) struct Reader<'a> {
    pub d: &'a DynamoDb,
    pub t: &'a TableRec,
    pub index: Option<&'a IndexRec>,
    pub select: Select,
    pub projection: Option<Projection>,
    pub filter: Option<Condition>,
    pub limit: Option<usize>,
    /// Keeps only the items of one segment of a parallel Scan: (segment, total).
    pub segment: Option<(u64, u64)>,
}

impl Reader<'_> {
    /// The key attributes of a returned position: the table's keys and the index's.
    fn position(&self, item: &Item) -> Item {
        let mut k = keys::key_of(&self.t.key, item);
        if let Some(ix) = self.index {
            k.extend(keys::key_of(&ix.key, item));
        }
        k
    }

    /// Reads `lo..hi` in the given direction until the limit or 1 MB.
    pub fn read(&self, mut lo: String, mut hi: String, reverse: bool) -> Result<Page, AwsError> {
        let store = if self.index.is_some() { INDEXES } else { ITEMS };
        let mut page = Page {
            items: Vec::new(),
            count: 0,
            scanned: 0,
            bytes: 0,
            last: None,
            last_key: None,
        };
        loop {
            let want = match self.limit {
                Some(l) => (l - page.scanned).min(CHUNK),
                None => CHUNK,
            };
            let rows = self.d.state.range(store, &lo, &hi, reverse, want)?;
            let exhausted = want == 0 || rows.len() < want;
            for (k, raw) in &rows {
                if reverse {
                    hi = k.clone();
                } else {
                    lo = format!("{k}\u{0}");
                }
                let mut item = decode(raw)?;
                if let Some((seg, total)) = self.segment
                    && segment_of(self.t, &item, total) != seg
                {
                    continue;
                }
                // A local index that does not project everything reads the rest from the table.
                if self.select == Select::All
                    && let Some(ix) = self.index
                    && ix.projection != ProjectionType::All
                {
                    let key = keys::key_of(&self.t.key, &item);
                    if let (_, Some(full)) = load(self.d, &keys::item_key(self.t, &key))? {
                        item = full;
                    }
                }
                page.scanned += 1;
                page.bytes += item_size(&item);
                let last = self.position(&item);
                if self.filter.as_ref().is_none_or(|f| f.eval(&item)) {
                    page.count += 1;
                    if self.select != Select::Count {
                        page.items.push(match &self.projection {
                            Some(p) => p.apply(&item),
                            None => item,
                        });
                    }
                }
                let full = self.limit.is_some_and(|l| page.scanned >= l);
                if full || page.bytes >= PAGE_BYTES {
                    // More may follow: DynamoDB returns the key even when nothing does.
                    page.last = Some(last);
                    page.last_key = Some(k.clone());
                    return Ok(page);
                }
            }
            if exhausted {
                return Ok(page);
            }
        }
    }

    fn output(&self, page: Page, consistent: bool, input: &Value) -> Result<Value, AwsError> {
        let mut o = Map::new();
        if self.select != Select::Count {
            o.insert(
                "Items".into(),
                page.items
                    .iter()
                    .map(item_to_json)
                    .collect::<Vec<_>>()
                    .into(),
            );
        }
        o.insert("Count".into(), page.count.into());
        o.insert("ScannedCount".into(), page.scanned.into());
        if let Some(last) = &page.last {
            o.insert("LastEvaluatedKey".into(), item_to_json(last));
        }
        let units = capacity::read_units(page.bytes, consistent);
        let mut consumed = Consumed::read(0.0);
        match self.index {
            Some(ix) => consumed.index(&ix.name, ix.global, units),
            None => consumed.table = units,
        }
        if let Some(c) = consumed.to_json(&self.t.name, capacity::mode(input)?) {
            o.insert("ConsumedCapacity".into(), c);
        }
        Ok(Value::Object(o))
    }
}

/// Which of `total` segments an item's partition falls in (stable across calls and nodes).
fn segment_of(t: &TableRec, item: &Item, total: u64) -> u64 {
    use sha2::Digest;
    let mut k = String::new();
    if let Some(v) = item.get(&t.key.hash.name) {
        encode_into(v, &mut k);
    }
    let h = sha2::Sha256::digest(k.as_bytes());
    u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]) % total
}

pub(crate) fn index_of_name<'a>(
    t: &'a TableRec,
    name: Option<&str>,
) -> Result<Option<&'a IndexRec>, AwsError> {
    index_of(
        t,
        &match name {
            Some(n) => serde_json::json!({ "IndexName": n }),
            None => Value::Null,
        },
    )
}

fn index_of<'a>(t: &'a TableRec, input: &Value) -> Result<Option<&'a IndexRec>, AwsError> {
    let Some(name) = str_of(input, "IndexName") else {
        return Ok(None);
    };
    match t.index(name) {
        Some(ix) if ix.status == "ACTIVE" => Ok(Some(ix)),
        Some(ix) => Err(AwsError::validation(format!(
            "Cannot read from backfilling global secondary index: {}",
            ix.name
        ))),
        None => Err(AwsError::validation(format!(
            "The table does not have the specified index: {name}"
        ))),
    }
}

/// The store key an ExclusiveStartKey resumes after.
fn start_key(r: &Reader<'_>, esk: &Item) -> Result<String, AwsError> {
    let invalid = || {
        AwsError::validation(
            "The provided starting key is invalid: The provided key element does not match the schema",
        )
    };
    keys::validate_key(r.t, &keys::key_of(&r.t.key, esk)).map_err(|_| invalid())?;
    match r.index {
        None => {
            if esk.len() != r.t.key.names().count() {
                return Err(invalid());
            }
            Ok(keys::item_key(r.t, esk))
        }
        Some(ix) => keys::index_key(r.t, ix, esk).ok_or_else(invalid),
    }
}

pub fn query(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    no_legacy(
        input,
        &[
            ("KeyConditions", "KeyConditionExpression"),
            ("QueryFilter", "FilterExpression"),
            ("AttributesToGet", "ProjectionExpression"),
        ],
    )?;
    let table = table_name(input, "TableName")?;
    let Some(kce) = str_of(input, "KeyConditionExpression") else {
        return Err(AwsError::validation(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
        ));
    };
    let mut params = params_of(input)?;
    let key_cond = parse_key_condition(kce, &mut params).map_err(expr_error)?;
    let filter = filter(input, &mut params)?;
    let proj = projection(input, &mut params)?;
    params.finish().map_err(expr_error)?;
    let t = d.table(ctx, table)?;
    let index = index_of(&t, input)?;
    let consistent = consistent(input);
    if consistent && index.is_some_and(|ix| ix.global) {
        return Err(AwsError::validation(
            "Consistent reads are not supported on global secondary indexes",
        ));
    }
    let schema = index.map_or(&t.key, |ix| &ix.key);
    let resolved = key_cond
        .resolve(
            &schema.hash.name,
            schema.range.as_ref().map(|r| r.name.as_str()),
        )
        .map_err(expr_error)?;
    if !schema.hash.ty.matches(&resolved.hash) {
        return Err(AwsError::validation(
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ));
    }
    if let (Some(r), Some(rc)) = (&schema.range, &resolved.range) {
        let ok = match rc {
            RangeCondition::Between(a, b) => r.ty.matches(a) && r.ty.matches(b),
            RangeCondition::BeginsWith(v) => {
                if matches!(r.ty, crate::model::ScalarType::N) {
                    return Err(AwsError::validation(
                        "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
                    ));
                }
                r.ty.matches(v)
            }
            RangeCondition::Eq(v)
            | RangeCondition::Lt(v)
            | RangeCondition::Le(v)
            | RangeCondition::Gt(v)
            | RangeCondition::Ge(v) => r.ty.matches(v),
        };
        if !ok {
            return Err(AwsError::validation(
                "One or more parameter values were invalid: Condition parameter type does not match schema type",
            ));
        }
        if let RangeCondition::Between(a, b) = rc
            && basalt_dynamodb_expr::compare_scalars(a, b) == Some(std::cmp::Ordering::Greater)
        {
            return Err(AwsError::validation(
                "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {".to_owned()
                    + &attr_str(a)
                    + "}, upper bound operand: AttributeValue: {"
                    + &attr_str(b)
                    + "}",
            ));
        }
    }
    let sel = select(input, index, proj.is_some(), true)?;
    let r = Reader {
        d,
        t: &t,
        index,
        select: sel,
        projection: proj,
        filter,
        limit: limit(input)?,
        segment: None,
    };
    let prefix = match index {
        Some(ix) => keys::index_prefix(&t, ix),
        None => keys::table_prefix(&t),
    };
    let mut partition = prefix;
    encode_into(&resolved.hash, &mut partition);
    let (mut lo, mut hi) = range_bounds(&partition, resolved.range.as_ref());
    let forward = input
        .get("ScanIndexForward")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if let Some(esk) = item(input, "ExclusiveStartKey")? {
        let k = start_key(&r, &esk)?;
        if forward {
            lo = lo.max(format!("{k}\u{0}"));
        } else {
            hi = hi.min(k);
        }
    }
    let page = r.read(lo, hi, !forward)?;
    r.output(page, consistent, input)
}

fn attr_str(v: &AttributeValue) -> String {
    let j = item_to_json(&Item::from([("v".to_owned(), v.clone())]));
    j["v"]
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(k, v)| format!("{k}: {}", v.as_str().map_or(v.to_string(), str::to_owned)))
        .unwrap_or_default()
}

/// `[lo, hi)` of a partition's entries whose sort key meets `rc` (entries are `partition`
/// followed by the sort key's prefix-free encoding, then anything).
pub(crate) fn range_bounds(partition: &str, rc: Option<&RangeCondition>) -> (String, String) {
    let with = |v: &AttributeValue| {
        let mut k = partition.to_owned();
        encode_into(v, &mut k);
        k
    };
    let all = (partition.to_owned(), upper(partition));
    match rc {
        None => all,
        Some(RangeCondition::Eq(v)) => {
            let k = with(v);
            let hi = upper(&k);
            (k, hi)
        }
        Some(RangeCondition::Lt(v)) => (all.0, with(v)),
        Some(RangeCondition::Le(v)) => (all.0, upper(&with(v))),
        Some(RangeCondition::Gt(v)) => (upper(&with(v)), all.1),
        Some(RangeCondition::Ge(v)) => (with(v), all.1),
        Some(RangeCondition::Between(a, b)) => (with(a), upper(&with(b))),
        Some(RangeCondition::BeginsWith(v)) => {
            let k = format!("{partition}{}", encode_prefix(v));
            let hi = upper(&k);
            (k, hi)
        }
    }
}

pub fn scan(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    no_legacy(
        input,
        &[
            ("ScanFilter", "FilterExpression"),
            ("AttributesToGet", "ProjectionExpression"),
        ],
    )?;
    let table = table_name(input, "TableName")?;
    let mut params = params_of(input)?;
    let filter = filter(input, &mut params)?;
    let proj = projection(input, &mut params)?;
    params.finish().map_err(expr_error)?;
    let segment = match (int_of(input, "Segment"), int_of(input, "TotalSegments")) {
        (None, None) => None,
        (Some(s), Some(n)) if (1..=1_000_000).contains(&n) && (0..n).contains(&s) => {
            Some((s as u64, n as u64))
        }
        (Some(_), Some(n)) if !(1..=1_000_000).contains(&n) => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{n}' at 'totalSegments' failed to satisfy constraint: Member must have value {}",
                if n < 1 {
                    "greater than or equal to 1"
                } else {
                    "less than or equal to 1000000"
                }
            )));
        }
        (Some(s), Some(n)) => {
            return Err(AwsError::validation(format!(
                "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {n}"
            )));
        }
        (Some(_), None) => {
            return Err(AwsError::validation(
                "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
            ));
        }
        (None, Some(_)) => {
            return Err(AwsError::validation(
                "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
            ));
        }
    };
    let t = d.table(ctx, table)?;
    let index = index_of(&t, input)?;
    let consistent = consistent(input);
    if consistent && index.is_some_and(|ix| ix.global) {
        return Err(AwsError::validation(
            "Consistent reads are not supported on global secondary indexes",
        ));
    }
    let sel = select(input, index, proj.is_some(), false)?;
    let r = Reader {
        d,
        t: &t,
        index,
        select: sel,
        projection: proj,
        filter,
        limit: limit(input)?,
        segment,
    };
    let prefix = match index {
        Some(ix) => keys::index_prefix(&t, ix),
        None => keys::table_prefix(&t),
    };
    let mut lo = prefix.clone();
    let hi = upper(&prefix);
    if let Some(esk) = item(input, "ExclusiveStartKey")? {
        lo = format!("{}\u{0}", start_key(&r, &esk)?);
    }
    let page = r.read(lo, hi, false)?;
    r.output(page, consistent, input)
}

/// Items and bytes of a table or index, counted (AWS refreshes these about every six hours;
/// a count over many items is kept for a minute).
pub fn count(d: &DynamoDb, t: &TableRec, ix: Option<&IndexRec>) -> Result<(u64, u64), AwsError> {
    /// When each count was taken, by key prefix: (at, items, bytes).
    type Counts = HashMap<String, (Instant, u64, u64)>;
    static CACHE: Mutex<Option<Counts>> = Mutex::new(None);
    let (store, prefix) = match ix {
        Some(ix) => (INDEXES, keys::index_prefix(t, ix)),
        None => (ITEMS, keys::table_prefix(t)),
    };
    if let Some((at, n, b)) = CACHE.lock().get_or_insert_with(HashMap::new).get(&prefix)
        && at.elapsed() < Duration::from_secs(60)
    {
        return Ok((*n, *b));
    }
    let (mut n, mut bytes) = (0u64, 0u64);
    let hi = upper(&prefix);
    let mut lo = prefix.clone();
    loop {
        let rows = d.state.range(store, &lo, &hi, false, 1000)?;
        for (k, v) in &rows {
            n += 1;
            bytes += decode(v).map_or(0, |i| item_size(&i) as u64);
            lo = format!("{k}\u{0}");
        }
        if rows.len() < 1000 {
            break;
        }
    }
    if n > 10_000 {
        CACHE
            .lock()
            .get_or_insert_with(HashMap::new)
            .insert(prefix, (Instant::now(), n, bytes));
    }
    Ok((n, bytes))
}
