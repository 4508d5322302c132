//! The `dynamodbstreams` API: ListStreams, DescribeStream, GetShardIterator, GetRecords.

use basalt_core::{AwsError, Output, RequestContext, Service};
use serde_json::Value;
use std::sync::Arc;

use crate::DynamoDb;

pub struct DynamoDbStreams {
    #[allow(dead_code)]
    db: Arc<DynamoDb>,
}

impl DynamoDbStreams {
    pub fn new(db: Arc<DynamoDb>) -> Arc<DynamoDbStreams> {
        Arc::new(DynamoDbStreams { db })
    }
}

#[async_trait::async_trait]
impl Service for DynamoDbStreams {
    fn name(&self) -> &'static str {
        "dynamodbstreams"
    }

    async fn call(
        &self,
        _ctx: &RequestContext,
        operation: &str,
        _input: Value,
    ) -> Result<Output, AwsError> {
        Err(AwsError::not_implemented("dynamodbstreams", operation))
    }
}
