//! Output of jobs and model workers to CloudWatch Logs, in batches, when the service is
//! there (`/aws/sagemaker/TrainingJobs`, `/aws/sagemaker/Endpoints/{name}`).

use crate::Core;
use basalt_core::RequestContext;
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) struct LogSink {
    core: Arc<Core>,
    ctx: RequestContext,
    group: String,
    stream: String,
    pending: Vec<(i64, String)>,
    created: bool,
}

impl LogSink {
    pub fn new(
        core: Arc<Core>,
        account: &str,
        region: &str,
        group: &str,
        stream: String,
    ) -> LogSink {
        LogSink {
            core,
            ctx: RequestContext::internal(account, region, "http://localhost"),
            group: group.to_owned(),
            stream,
            pending: Vec::new(),
            created: false,
        }
    }

    pub fn push(&mut self, line: (i64, String)) {
        self.pending.push(line);
    }

    pub async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let Some(registry) = self.core.registry() else {
            self.pending.clear();
            return;
        };
        if !self.created {
            // Either may exist already; PutLogEvents says what really failed.
            let _ = registry
                .call(
                    &self.ctx,
                    "logs",
                    "CreateLogGroup",
                    json!({"logGroupName": self.group}),
                )
                .await;
            let _ = registry
                .call(
                    &self.ctx,
                    "logs",
                    "CreateLogStream",
                    json!({"logGroupName": self.group, "logStreamName": self.stream}),
                )
                .await;
            self.created = true;
        }
        for chunk in std::mem::take(&mut self.pending).chunks(1000) {
            let events: Vec<Value> = chunk
                .iter()
                .map(|(ms, m)| json!({"timestamp": ms, "message": m}))
                .collect();
            let put = json!({"logGroupName": self.group, "logStreamName": self.stream, "logEvents": events});
            if let Err(e) = registry.call(&self.ctx, "logs", "PutLogEvents", put).await {
                tracing::debug!(group = %self.group, "SageMaker logs: {}", e.message);
            }
        }
    }
}
