//! Records and where they live in the state store.
//!
//! * A table is `{account}/{region}/{name}` in [`TABLES`]; its `uid` is fresh for every table
//!   created, so a table deleted and created again under the same name never sees the old
//!   one's items while those are still being swept.
//! * An item is `{uid}/{hash}{range}` in [`ITEMS`], the key attributes in the ordered,
//!   prefix-free encoding of [`crate::keys`]: a partition is one contiguous key range and a
//!   Query reads only that range, in either direction.
//! * An index entry is `{uid}/{index}/{index hash}{index range}{hash}{range}` in [`INDEXES`]
//!   (the table's key makes entries with equal index keys distinct), holding the projected
//!   item. Entries are written in the same atomic batch as their item.

use basalt_dynamodb_expr::{AttributeValue, Item};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const TABLES: &str = "dynamodb.tables";
pub const ITEMS: &str = "dynamodb.items";
pub const INDEXES: &str = "dynamodb.indexes";
/// Stream records: `{stream uid}/{sequence number}`.
pub const STREAM: &str = "dynamodb.stream";
/// TransactWriteItems' client request tokens: `{account}/{region}/{token}`, kept 10 minutes.
pub const TOKENS: &str = "dynamodb.tokens";
/// Background work: sweeping a deleted table's items and index entries, backfilling a new GSI.
pub const JOBS: &str = "dynamodb.jobs";

/// A key attribute's scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScalarType {
    S,
    N,
    B,
}

impl ScalarType {
    pub fn parse(s: &str) -> Option<ScalarType> {
        match s {
            "S" => Some(ScalarType::S),
            "N" => Some(ScalarType::N),
            "B" => Some(ScalarType::B),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ScalarType::S => "S",
            ScalarType::N => "N",
            ScalarType::B => "B",
        }
    }

    pub fn matches(self, v: &AttributeValue) -> bool {
        matches!(
            (self, v),
            (ScalarType::S, AttributeValue::S(_))
                | (ScalarType::N, AttributeValue::N(_))
                | (ScalarType::B, AttributeValue::B(_))
        )
    }
}

/// A key attribute: name and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttr {
    pub name: String,
    pub ty: ScalarType,
}

/// A table's or an index's key schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySchema {
    pub hash: KeyAttr,
    pub range: Option<KeyAttr>,
}

impl KeySchema {
    pub fn to_json(&self) -> Value {
        let mut v = vec![json!({"AttributeName": self.hash.name, "KeyType": "HASH"})];
        if let Some(r) = &self.range {
            v.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
        }
        Value::Array(v)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.hash.name.as_str()).chain(self.range.as_ref().map(|r| r.name.as_str()))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }
}

/// What an index holds besides the keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProjectionType {
    All,
    KeysOnly,
    Include(Vec<String>),
}

impl ProjectionType {
    pub fn to_json(&self) -> Value {
        match self {
            ProjectionType::All => json!({"ProjectionType": "ALL"}),
            ProjectionType::KeysOnly => json!({"ProjectionType": "KEYS_ONLY"}),
            ProjectionType::Include(names) => {
                json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": names})
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throughput {
    pub read: i64,
    pub write: i64,
}

/// A global or local secondary index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexRec {
    pub name: String,
    pub key: KeySchema,
    pub projection: ProjectionType,
    pub global: bool,
    /// `CREATING` while a new GSI is backfilled, then `ACTIVE`; `DELETING` while dropped.
    pub status: String,
    #[serde(default)]
    pub throughput: Option<Throughput>,
}

impl IndexRec {
    /// The item as this index holds it: everything (ALL), or the table's and the index's
    /// keys plus the included attributes.
    pub fn project(&self, table_key: &KeySchema, item: &Item) -> Item {
        match &self.projection {
            ProjectionType::All => item.clone(),
            p => item
                .iter()
                .filter(|(n, _)| {
                    table_key.contains(n)
                        || self.key.contains(n)
                        || matches!(p, ProjectionType::Include(names) if names.iter().any(|x| x == *n))
                })
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRec {
    pub enabled: bool,
    /// KEYS_ONLY, NEW_IMAGE, OLD_IMAGE or NEW_AND_OLD_IMAGES.
    pub view_type: String,
    /// The stream's label (an ISO 8601 timestamp, as AWS makes it) and store id.
    pub label: String,
    pub uid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtlRec {
    pub attribute: String,
    pub enabled: bool,
}

/// A table's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRec {
    pub name: String,
    pub account: String,
    pub region: String,
    pub uid: String,
    /// Epoch seconds (fractional).
    pub created: f64,
    /// Whether a DescribeTable has seen the table yet: the first answer (CreateTable's) says
    /// `CREATING`, every later one `ACTIVE`.
    #[serde(default)]
    pub described: bool,
    pub key: KeySchema,
    /// AttributeDefinitions as given (name → type).
    pub attributes: BTreeMap<String, ScalarType>,
    pub on_demand: bool,
    #[serde(default)]
    pub throughput: Option<Throughput>,
    #[serde(default)]
    pub indexes: Vec<IndexRec>,
    /// The current stream, and the streams of the table's past (still readable for 24 hours).
    #[serde(default)]
    pub stream: Option<StreamRec>,
    #[serde(default)]
    pub old_streams: Vec<StreamRec>,
    #[serde(default)]
    pub ttl: Option<TtlRec>,
    #[serde(default)]
    pub sse: Option<Value>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub deletion_protection: bool,
    #[serde(default)]
    pub pitr: bool,
    #[serde(default)]
    pub table_class: Option<String>,
    #[serde(default)]
    pub warm_throughput: Option<Value>,
    /// The record's bytes as loaded: writes check the table is unchanged in their batch, so
    /// that no write made against an old definition (a missing new index, a deleted table)
    /// ever commits.
    #[serde(skip)]
    pub stored: Vec<u8>,
}

impl TableRec {
    pub fn key(account: &str, region: &str, name: &str) -> String {
        format!("{account}/{region}/{name}")
    }

    pub fn arn(&self) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{}",
            self.region, self.account, self.name
        )
    }

    pub fn stream_arn(&self, s: &StreamRec) -> String {
        format!("{}/stream/{}", self.arn(), s.label)
    }

    /// The precondition every write batch carries (see [`TableRec::stored`]).
    pub fn unchanged(&self) -> basalt_store::WriteOp {
        basalt_store::WriteOp::Check {
            table: TABLES.into(),
            key: TableRec::key(&self.account, &self.region, &self.name),
            expected: Some(self.stored.clone()),
        }
    }

    pub fn index(&self, name: &str) -> Option<&IndexRec> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// Every index that is maintained on writes (all but those being dropped).
    pub fn live_indexes(&self) -> impl Iterator<Item = &IndexRec> {
        self.indexes.iter().filter(|i| i.status != "DELETING")
    }
}

pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

pub fn now_ms() -> i64 {
    (now_secs() * 1000.0) as i64
}
