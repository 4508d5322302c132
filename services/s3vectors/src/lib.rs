//! Amazon S3 Vectors (botocore service `s3vectors`): vector buckets (`buckets.rs`), their
//! indexes (`indexes.rs`), and the vectors of an index: PutVectors, GetVectors, ListVectors,
//! DeleteVectors (`vectors.rs`) and QueryVectors (`query.rs`).
//!
//! Vectors are records of the state store (`model.rs`); each index is searched in memory on
//! [`basalt_vector::Index`], rebuilt from its records and kept current across nodes by a
//! generation number ([`basalt_store::views`]). Only filterable metadata keys (those not
//! declared non-filterable when the index was created) enter the index, so a filter on a
//! non-filterable key matches nothing, as in S3 Vectors.

mod buckets;
mod indexes;
mod model;
mod query;
mod vectors;

use basalt_core::{AwsError, Output, RequestContext, Service};
use basalt_store::StateStore;
use basalt_store::views::Views;
use serde_json::Value;
use std::sync::Arc;

pub struct S3Vectors {
    pub(crate) state: Arc<dyn StateStore>,
    pub(crate) views: Views<Option<basalt_vector::Index>>,
}

impl S3Vectors {
    pub fn new(state: Arc<dyn StateStore>) -> Arc<S3Vectors> {
        Arc::new(S3Vectors {
            state,
            views: Views::new(model::GENERATIONS),
        })
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.state.now_ms()
    }
}

#[async_trait::async_trait]
impl Service for S3Vectors {
    fn name(&self) -> &'static str {
        "s3vectors"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        let out = match operation {
            "CreateVectorBucket" => buckets::create(self, ctx, &input)?,
            "GetVectorBucket" => buckets::get(self, ctx, &input)?,
            "ListVectorBuckets" => buckets::list(self, ctx, &input)?,
            "DeleteVectorBucket" => buckets::delete(self, ctx, &input)?,
            "PutVectorBucketPolicy" => buckets::put_policy(self, ctx, &input)?,
            "GetVectorBucketPolicy" => buckets::get_policy(self, ctx, &input)?,
            "DeleteVectorBucketPolicy" => buckets::delete_policy(self, ctx, &input)?,
            "CreateIndex" => indexes::create(self, ctx, &input)?,
            "GetIndex" => indexes::get(self, ctx, &input)?,
            "ListIndexes" => indexes::list(self, ctx, &input)?,
            "DeleteIndex" => indexes::delete(self, ctx, &input)?,
            "PutVectors" => vectors::put(self, ctx, &input)?,
            "GetVectors" => vectors::get(self, ctx, &input)?,
            "ListVectors" => vectors::list(self, ctx, &input)?,
            "DeleteVectors" => vectors::delete(self, ctx, &input)?,
            "QueryVectors" => query::query(self, ctx, &input)?,
            "TagResource" => buckets::tag(self, ctx, &input)?,
            "UntagResource" => buckets::untag(self, ctx, &input)?,
            "ListTagsForResource" => buckets::list_tags(self, ctx, &input)?,
            other => return Err(AwsError::not_implemented("s3vectors", other)),
        };
        Ok(Output::new(out))
    }
}

#[cfg(test)]
mod tests;
