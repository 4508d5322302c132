//! CloudWatch Logs as Basalt's own services write to it through the in-process client
//! (SageMaker's job output, Step Functions' execution history).

use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::error::AwsError;
use crate::service::ServiceRegistry;

/// Events per PutLogEvents call (AWS takes at most 10,000).
const BATCH: usize = 1000;

/// Appends `events` (epoch milliseconds, message) to `group`/`stream`, creating the stream
/// first when `create` (and the group too when `create_group`), in PutLogEvents-sized
/// batches. Either may exist already: PutLogEvents says what really failed, and its first
/// failure is returned.
pub async fn append(
    registry: &ServiceRegistry,
    ctx: &RequestContext,
    group: &str,
    stream: &str,
    create: Create,
    events: &[(i64, String)],
) -> Result<(), AwsError> {
    if create == Create::GroupAndStream {
        let _ = registry
            .call(
                ctx,
                "logs",
                "CreateLogGroup",
                json!({"logGroupName": group}),
            )
            .await;
    }
    if create != Create::Nothing {
        let _ = registry
            .call(
                ctx,
                "logs",
                "CreateLogStream",
                json!({"logGroupName": group, "logStreamName": stream}),
            )
            .await;
    }
    for chunk in events.chunks(BATCH) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|(ms, m)| json!({"timestamp": ms, "message": m}))
            .collect();
        let put = json!({"logGroupName": group, "logStreamName": stream, "logEvents": events});
        registry.call(ctx, "logs", "PutLogEvents", put).await?;
    }
    Ok(())
}

/// What [`append`] creates before it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Nothing,
    Stream,
    GroupAndStream,
}
