//! What a target's ARN calls. Templated targets (a resource ARN: a Lambda function, an SQS
//! queue, an SNS topic, an event bus, a state machine, a Kinesis stream) call that service's
//! usual operation with the target's Input; universal targets
//! (`arn:aws:scheduler:::aws-sdk:<service>:<apiAction>`) call the named operation with Input
//! as the request, through the same registry an SDK request reaches.

use crate::str_of;
use serde_json::{Value, json};

/// Prefixes of read-only actions, which a universal target refuses (the Scheduler guide's
/// "Unsupported actions" list, compared without case).
const READ_ONLY_PREFIXES: &[&str] = &[
    "get",
    "describe",
    "list",
    "poll",
    "receive",
    "search",
    "scan",
    "query",
    "select",
    "read",
    "lookup",
    "discover",
    "validate",
    "batchGet",
    "batchDescribe",
    "batchRead",
    "transactGet",
    "adminGet",
    "adminList",
    "testMigration",
    "retrieve",
    "testConnection",
    "translateDocument",
    "isAuthorized",
    "invokeModel",
];

/// Where a target's ARN leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Lambda {
        arn: String,
    },
    Sqs {
        account: String,
        queue: String,
    },
    Sns {
        arn: String,
    },
    Bus {
        arn: String,
    },
    StateMachine {
        arn: String,
    },
    Kinesis {
        stream: String,
    },
    /// `service` is botocore's name, `operation` the model's.
    Universal {
        service: String,
        operation: String,
    },
}

/// The SDK service identifiers of universal targets whose botocore name differs.
fn botocore_name(sdk_id: &str) -> String {
    match sdk_id.to_ascii_lowercase().as_str() {
        "eventbridge" => "events".into(),
        "sfn" => "stepfunctions".into(),
        "cloudwatchlogs" => "logs".into(),
        other => other.to_owned(),
    }
}

/// Reads a target ARN; the error is the ValidationException's message.
pub(crate) fn route(arn: &str) -> Result<Route, String> {
    let bad = || format!("Invalid Target Arn {arn}.");
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, _partition, service, region, account, resource] = parts[..] else {
        return Err(bad());
    };
    if scheme != "arn" {
        return Err(bad());
    }
    if service == "scheduler" {
        let Some(rest) = resource.strip_prefix("aws-sdk:") else {
            return Err(format!(
                "{service} is not a supported service for a target."
            ));
        };
        return universal(arn, rest);
    }
    if region.is_empty() || account.is_empty() || resource.is_empty() {
        return Err(bad());
    }
    let owned = |s: &str| s.to_owned();
    Ok(match service {
        "lambda" => Route::Lambda { arn: owned(arn) },
        "sqs" => Route::Sqs {
            account: owned(account),
            queue: owned(resource),
        },
        "sns" => Route::Sns { arn: owned(arn) },
        "events" if resource.starts_with("event-bus/") => Route::Bus { arn: owned(arn) },
        "states" if resource.starts_with("stateMachine:") => {
            Route::StateMachine { arn: owned(arn) }
        }
        "kinesis" if resource.starts_with("stream/") => Route::Kinesis {
            stream: owned(&resource["stream/".len()..]),
        },
        "events" | "states" | "kinesis" => return Err(bad()),
        other => return Err(format!("{other} is not a supported service for a target.")),
    })
}

fn universal(arn: &str, rest: &str) -> Result<Route, String> {
    let Some((sdk_id, action)) = rest.split_once(':') else {
        return Err(format!("Invalid Target Arn {arn}."));
    };
    if sdk_id.is_empty() || action.is_empty() || action.contains(':') {
        return Err(format!("Invalid Target Arn {arn}."));
    }
    let lower = action.to_ascii_lowercase();
    if READ_ONLY_PREFIXES
        .iter()
        .any(|p| lower.starts_with(&p.to_ascii_lowercase()))
    {
        return Err(format!(
            "{action} is a read-only action and is not supported by universal targets."
        ));
    }
    let service = botocore_name(sdk_id);
    let Ok(model) = basalt_spec::model(&service) else {
        return Err(format!("{sdk_id} is not a supported service for a target."));
    };
    let Some(operation) = model
        .operations
        .keys()
        .find(|op| op.eq_ignore_ascii_case(action))
    else {
        return Err(format!(
            "{action} is not a supported action of service {sdk_id}."
        ));
    };
    Ok(Route::Universal {
        service,
        operation: operation.clone(),
    })
}

/// The facts an invocation's Input may name in angle brackets (the guide's "context
/// attributes").
pub(crate) struct Context<'a> {
    pub schedule_arn: &'a str,
    pub scheduled_time: &'a str,
    pub execution_id: &'a str,
    pub attempt: u32,
}

/// The target's Input with its context attributes filled in (`{}` when there is none, which
/// is what a Lambda function receives from a schedule without Input).
pub(crate) fn render(target: &Value, c: &Context<'_>) -> String {
    let input = str_of(target, "Input").unwrap_or("{}");
    input
        .replace("<aws.scheduler.schedule-arn>", c.schedule_arn)
        .replace("<aws.scheduler.scheduled-time>", c.scheduled_time)
        .replace("<aws.scheduler.execution-id>", c.execution_id)
        .replace("<aws.scheduler.attempt-number>", &c.attempt.to_string())
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The (service, operation, request) an invocation makes; the error is why it cannot be made.
pub(crate) fn request(
    route: &Route,
    target: &Value,
    body: &str,
    c: &Context<'_>,
) -> Result<(String, String, Value), String> {
    let call = |svc: &str, op: &str, input: Value| Ok((svc.to_owned(), op.to_owned(), input));
    match route {
        Route::Lambda { arn } => call(
            "lambda",
            "Invoke",
            json!({"FunctionName": arn, "InvocationType": "Event", "Payload": b64(body.as_bytes())}),
        ),
        Route::Sqs { account, queue } => {
            let mut input = json!({
                "QueueUrl": format!("internal/{account}/{queue}"),
                "MessageBody": body,
            });
            if let Some(group) = target
                .get("SqsParameters")
                .and_then(|p| str_of(p, "MessageGroupId"))
            {
                input["MessageGroupId"] = group.into();
                // One invocation is one message, whatever its retries.
                input["MessageDeduplicationId"] = c.execution_id.into();
            }
            call("sqs", "SendMessage", input)
        }
        Route::Sns { arn } => call("sns", "Publish", json!({"TopicArn": arn, "Message": body})),
        Route::Bus { arn } => {
            let params = target.get("EventBridgeParameters");
            let entry = json!({
                "EventBusName": arn,
                "Source": params.and_then(|p| str_of(p, "Source")).unwrap_or(""),
                "DetailType": params.and_then(|p| str_of(p, "DetailType")).unwrap_or(""),
                "Detail": body,
                "Resources": [c.schedule_arn],
            });
            call("events", "PutEvents", json!({"Entries": [entry]}))
        }
        Route::StateMachine { arn } => call(
            "stepfunctions",
            "StartExecution",
            json!({"stateMachineArn": arn, "input": body}),
        ),
        Route::Kinesis { stream } => {
            let key = target
                .get("KinesisParameters")
                .and_then(|p| str_of(p, "PartitionKey"))
                .unwrap_or(c.execution_id);
            call(
                "kinesis",
                "PutRecord",
                json!({"StreamName": stream, "Data": b64(body.as_bytes()), "PartitionKey": key}),
            )
        }
        Route::Universal { service, operation } => {
            let input: Value =
                serde_json::from_str(body).map_err(|e| format!("Input is not valid JSON: {e}"))?;
            if !input.is_object() {
                return Err("Input of a universal target must be a JSON object.".into());
            }
            call(service, operation, input)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            schedule_arn: "arn:aws:scheduler:us-east-1:123456789012:schedule/default/s",
            scheduled_time: "2030-01-01T00:00:00Z",
            execution_id: "e-1",
            attempt: 2,
        }
    }

    #[test]
    fn templated_arns() {
        assert_eq!(
            route("arn:aws:sqs:us-east-1:123456789012:q1"),
            Ok(Route::Sqs {
                account: "123456789012".into(),
                queue: "q1".into()
            })
        );
        assert_eq!(
            route("arn:aws:kinesis:us-east-1:123456789012:stream/s"),
            Ok(Route::Kinesis { stream: "s".into() })
        );
        assert!(matches!(
            route("arn:aws:events:us-east-1:123456789012:event-bus/default"),
            Ok(Route::Bus { .. })
        ));
        assert_eq!(
            route("arn:aws:ecs:us-east-1:123456789012:cluster/c"),
            Err("ecs is not a supported service for a target.".into())
        );
        assert_eq!(
            route("not-an-arn"),
            Err("Invalid Target Arn not-an-arn.".into())
        );
    }

    #[test]
    fn universal_arns_resolve_model_operation_names() {
        assert_eq!(
            route("arn:aws:scheduler:::aws-sdk:sqs:sendMessage"),
            Ok(Route::Universal {
                service: "sqs".into(),
                operation: "SendMessage".into()
            })
        );
        assert_eq!(
            route("arn:aws:scheduler:::aws-sdk:eventbridge:putEvents"),
            Ok(Route::Universal {
                service: "events".into(),
                operation: "PutEvents".into()
            })
        );
        // Read-only actions are refused, whatever their case.
        assert!(route("arn:aws:scheduler:::aws-sdk:sqs:getQueueURL").is_err());
        assert!(route("arn:aws:scheduler:::aws-sdk:dynamodb:Query").is_err());
        assert!(route("arn:aws:scheduler:::aws-sdk:sqs:noSuchThing").is_err());
        assert!(route("arn:aws:scheduler:::aws-sdk:nosuchservice:doIt").is_err());
    }

    #[test]
    fn context_attributes_are_filled_in() {
        let t = json!({"Input": "{\"arn\":\"<aws.scheduler.schedule-arn>\",\"at\":\"<aws.scheduler.scheduled-time>\",\"id\":\"<aws.scheduler.execution-id>\",\"n\":<aws.scheduler.attempt-number>}"});
        let v: Value = serde_json::from_str(&render(&t, &ctx())).unwrap();
        assert_eq!(v["at"], "2030-01-01T00:00:00Z");
        assert_eq!(v["id"], "e-1");
        assert_eq!(v["n"], 2);
        assert!(v["arn"].as_str().unwrap().ends_with("schedule/default/s"));
        assert_eq!(render(&json!({}), &ctx()), "{}");
    }

    #[test]
    fn requests() {
        let c = ctx();
        let t = json!({"SqsParameters": {"MessageGroupId": "g"}});
        let r = route("arn:aws:sqs:us-east-1:123456789012:q.fifo").unwrap();
        let (svc, op, input) = request(&r, &t, "hello", &c).unwrap();
        assert_eq!((svc.as_str(), op.as_str()), ("sqs", "SendMessage"));
        assert_eq!(input["QueueUrl"], "internal/123456789012/q.fifo");
        assert_eq!(input["MessageBody"], "hello");
        assert_eq!(input["MessageGroupId"], "g");
        assert_eq!(input["MessageDeduplicationId"], "e-1");

        let t = json!({"EventBridgeParameters": {"DetailType": "dt", "Source": "my.src"}});
        let r = route("arn:aws:events:us-east-1:123456789012:event-bus/b").unwrap();
        let (_, op, input) = request(&r, &t, "{\"a\":1}", &c).unwrap();
        assert_eq!(op, "PutEvents");
        assert_eq!(input["Entries"][0]["Source"], "my.src");
        assert_eq!(input["Entries"][0]["DetailType"], "dt");
        assert_eq!(input["Entries"][0]["Resources"][0], c.schedule_arn);

        let r = route("arn:aws:scheduler:::aws-sdk:sqs:createQueue").unwrap();
        let (svc, op, input) = request(&r, &json!({}), "{\"QueueName\":\"x\"}", &c).unwrap();
        assert_eq!((svc.as_str(), op.as_str()), ("sqs", "CreateQueue"));
        assert_eq!(input["QueueName"], "x");
        assert!(request(&r, &json!({}), "[1]", &c).is_err());
        assert!(request(&r, &json!({}), "nope", &c).is_err());
    }
}
