//! Output of jobs and model workers to CloudWatch Logs, in batches, when the service is
//! there (`/aws/sagemaker/TrainingJobs`, `/aws/sagemaker/Endpoints/{name}`).

use crate::Core;
use basalt_core::RequestContext;
use basalt_core::logs::Create;
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
        let create = if self.created {
            Create::Nothing
        } else {
            Create::GroupAndStream
        };
        self.created = true;
        let events = std::mem::take(&mut self.pending);
        let written = basalt_core::logs::append(
            registry,
            &self.ctx,
            &self.group,
            &self.stream,
            create,
            &events,
        )
        .await;
        if let Err(e) = written {
            tracing::debug!(group = %self.group, "SageMaker logs: {}", e.message);
        }
    }
}
