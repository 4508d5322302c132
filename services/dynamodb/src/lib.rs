//! Amazon DynamoDB (botocore service `dynamodb`) and DynamoDB Streams (`dynamodbstreams`).
//!
//! Tables, items, index entries and stream records are records of the state store
//! ([`model`] says where), so every backend runs DynamoDB and several nodes share one. A write
//! is a read of the item, the evaluation of its expressions, and one atomic batch that checks
//! the item is still what was read and writes the item, its index entries and its stream
//! record together: a conditional write never races another, an index never disagrees with
//! its table, and a transaction is one such batch over all its items. Background work
//! (sweeping a deleted table, backfilling a new index, TTL expiry) runs on the store's leases.

mod batch;
mod capacity;
mod jobs;
mod keys;
mod legacy;
mod model;
mod params;
mod partiql;
mod query;
mod read;
mod streams;
mod tables;
mod transact;
mod ttl;
mod write;

use basalt_core::{AwsError, Output, RequestContext, Service};
use basalt_store::StateStore;
use model::{TABLES, TableRec};
use serde_json::Value;
use std::sync::Arc;

pub use streams::DynamoDbStreams;

pub struct DynamoDb {
    state: Arc<dyn StateStore>,
}

pub(crate) fn not_found(name: &str) -> AwsError {
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("Requested resource not found: Table: {name} not found"),
    )
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> AwsError {
    AwsError::internal(format!("corrupt {what} record: {e}"))
}

impl DynamoDb {
    pub fn new(state: Arc<dyn StateStore>) -> Arc<DynamoDb> {
        Arc::new(DynamoDb { state })
    }

    /// Starts the background workers (table sweeps, index backfills, TTL expiry) on the
    /// store's leases.
    pub fn start_workers(self: &Arc<Self>) {
        jobs::start_worker(self.clone());
        ttl::start_worker(self.clone());
        streams::retention::start_worker(self.clone());
    }

    pub(crate) fn load(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<TableRec>, AwsError> {
        let Some(raw) = self
            .state
            .get(TABLES, &TableRec::key(account, region, name))?
        else {
            return Ok(None);
        };
        let mut t: TableRec = serde_json::from_slice(&raw).map_err(|e| corrupt("table", e))?;
        t.stored = raw;
        Ok(Some(t))
    }

    /// The table a request names (by name or ARN), or ResourceNotFoundException.
    pub(crate) fn table(&self, ctx: &RequestContext, name: &str) -> Result<TableRec, AwsError> {
        let (region, account, name) = match name.strip_prefix("arn:") {
            Some(rest) => {
                let parts: Vec<&str> = rest.splitn(5, ':').collect();
                match parts.as_slice() {
                    [_, "dynamodb", region, account, res] => match res.strip_prefix("table/") {
                        Some(n) => (*region, *account, n.split('/').next().unwrap_or(n)),
                        None => return Err(not_found(name)),
                    },
                    _ => return Err(not_found(name)),
                }
            }
            None => (ctx.region.as_str(), ctx.account_id.as_str(), name),
        };
        self.load(account, region, name)?
            .ok_or_else(|| not_found(name))
    }

    /// The table named by the request member `TableName`.
    pub(crate) fn table_of(
        &self,
        ctx: &RequestContext,
        input: &Value,
    ) -> Result<TableRec, AwsError> {
        let name = params::table_name(input, "TableName")?;
        self.table(ctx, name)
    }
}

#[async_trait::async_trait]
impl Service for DynamoDb {
    fn name(&self) -> &'static str {
        "dynamodb"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        mut input: Value,
    ) -> Result<Output, AwsError> {
        legacy::rewrite(operation, &mut input)?;
        let out = match operation {
            "CreateTable" => tables::create(self, ctx, &input),
            "DescribeTable" => tables::describe(self, ctx, &input),
            "ListTables" => tables::list(self, ctx, &input),
            "UpdateTable" => tables::update(self, ctx, &input),
            "DeleteTable" => tables::delete(self, ctx, &input),
            "TagResource" => tables::tag(self, ctx, &input),
            "UntagResource" => tables::untag(self, ctx, &input),
            "ListTagsOfResource" => tables::list_tags(self, ctx, &input),
            "UpdateTimeToLive" => tables::update_ttl(self, ctx, &input),
            "DescribeTimeToLive" => tables::describe_ttl(self, ctx, &input),
            "DescribeLimits" => Ok(tables::describe_limits()),
            "DescribeEndpoints" => Ok(tables::describe_endpoints(ctx)),
            "DescribeContinuousBackups" => tables::describe_backups(self, ctx, &input),
            "UpdateContinuousBackups" => tables::update_backups(self, ctx, &input),
            "PutItem" => write::put_item(self, ctx, &input),
            "UpdateItem" => write::update_item(self, ctx, &input),
            "DeleteItem" => write::delete_item(self, ctx, &input),
            "GetItem" => read::get_item(self, ctx, &input),
            "Query" => query::query(self, ctx, &input),
            "Scan" => query::scan(self, ctx, &input),
            "BatchGetItem" => batch::get(self, ctx, &input),
            "BatchWriteItem" => batch::write(self, ctx, &input),
            "TransactWriteItems" => transact::write(self, ctx, &input),
            "TransactGetItems" => transact::get(self, ctx, &input),
            "ExecuteStatement" => partiql::execute(self, ctx, &input),
            "BatchExecuteStatement" => partiql::batch(self, ctx, &input),
            "ExecuteTransaction" => partiql::transaction(self, ctx, &input),
            _ => return Err(AwsError::not_implemented("dynamodb", operation)),
        };
        out.map(Output::new).map_err(|mut e| {
            // The data plane names no table when one is missing (the control plane does).
            if e.code == "ResourceNotFoundException"
                && !operation.contains("Table")
                && !operation.contains("Tags")
                && !operation.contains("Resource")
                && !operation.contains("Backups")
                && !operation.contains("TimeToLive")
            {
                e.message = "Requested resource not found".into();
            }
            e
        })
    }
}
