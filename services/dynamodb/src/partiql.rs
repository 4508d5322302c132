//! PartiQL: ExecuteStatement, BatchExecuteStatement and ExecuteTransaction.

use basalt_core::{AwsError, RequestContext};
use serde_json::Value;

use crate::DynamoDb;

pub fn execute(_d: &DynamoDb, _ctx: &RequestContext, _input: &Value) -> Result<Value, AwsError> {
    Err(AwsError::not_implemented("dynamodb", "ExecuteStatement"))
}

pub fn batch(_d: &DynamoDb, _ctx: &RequestContext, _input: &Value) -> Result<Value, AwsError> {
    Err(AwsError::not_implemented("dynamodb", "BatchExecuteStatement"))
}

pub fn transaction(_d: &DynamoDb, _ctx: &RequestContext, _input: &Value) -> Result<Value, AwsError> {
    Err(AwsError::not_implemented("dynamodb", "ExecuteTransaction"))
}
