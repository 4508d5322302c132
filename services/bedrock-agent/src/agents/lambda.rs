//! The contract between an agent and the Lambda function of an action group, as Bedrock
//! documents it: the input event (messageVersion 1.0) for function-schema and API-schema
//! groups, and the response the function must return.

use super::schema::{Action, parameter_list};
use basalt_core::AwsError;
use serde_json::{Map, Value, json};

/// Who is calling, as the event's `agent` member says.
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    pub agent_name: &'a str,
    pub agent_id: &'a str,
    pub alias: &'a str,
    pub version: &'a str,
    pub session_id: &'a str,
    pub input_text: &'a str,
    pub session_attributes: &'a Map<String, Value>,
    pub prompt_session_attributes: &'a Map<String, Value>,
}

/// The request body of an API action as the event and return-control payloads give it.
pub fn request_body(action: &Action, args: &Value) -> Option<Value> {
    match action {
        Action::Api {
            body: Some((ctype, props)),
            params,
            ..
        } => {
            let own: Vec<_> = props
                .iter()
                .filter(|p| !params.iter().any(|q| q.name == p.name))
                .cloned()
                .collect();
            Some(json!({"content": {ctype: {"properties": parameter_list(&own, args)}}}))
        }
        _ => None,
    }
}

/// What names an action call, as the Lambda event and the return of control both give it:
/// the group, the function or the API path and method, the parameters and the request body.
pub fn invocation(action: &Action, args: &Value) -> Value {
    let mut e = Map::new();
    match action {
        Action::Function {
            group,
            function,
            params,
            ..
        } => {
            e.insert("actionGroup".into(), group.clone().into());
            e.insert("function".into(), function.clone().into());
            e.insert("parameters".into(), parameter_list(params, args).into());
        }
        Action::Api {
            group,
            path,
            method,
            params,
            ..
        } => {
            e.insert("actionGroup".into(), group.clone().into());
            e.insert("apiPath".into(), path.clone().into());
            e.insert("httpMethod".into(), method.clone().into());
            e.insert("parameters".into(), parameter_list(params, args).into());
            if let Some(b) = request_body(action, args) {
                e.insert("requestBody".into(), b);
            }
        }
        _ => {}
    }
    Value::Object(e)
}

/// The input event for the action the model called with `args`.
pub fn event(caller: &Caller, action: &Action, args: &Value) -> Value {
    let mut e = json!({
        "messageVersion": "1.0",
        "agent": {
            "name": caller.agent_name, "id": caller.agent_id,
            "alias": caller.alias, "version": caller.version,
        },
        "inputText": caller.input_text,
        "sessionId": caller.session_id,
        "sessionAttributes": caller.session_attributes,
        "promptSessionAttributes": caller.prompt_session_attributes,
    });
    if let (Value::Object(e), Value::Object(call)) = (&mut e, invocation(action, args)) {
        e.extend(call);
    }
    e
}

/// What a Lambda function answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The body the model reads.
    pub text: String,
    /// `REPROMPT`: the body goes back to the model. (`FAILURE` is an error.)
    pub reprompt: bool,
    pub session_attributes: Option<Map<String, Value>>,
    pub prompt_session_attributes: Option<Map<String, Value>>,
}

fn dependency(message: String) -> AwsError {
    let mut e = AwsError::new(424, "DependencyFailedException", message);
    e.fields.insert("resourceName".into(), "Lambda".into());
    e
}

/// The body of a response body map (`{"TEXT": {"body": …}}` or `{"application/json":
/// {"body": …}}`): its first content type's body, as text.
fn body_text(body: &Value) -> Option<String> {
    let (_, content) = body.as_object()?.iter().next()?;
    match &content["body"] {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Reads the function's response; a malformed one or a `FAILURE` is a
/// DependencyFailedException, as on Bedrock.
pub fn parse_response(function: &str, raw: &[u8]) -> Result<Answer, AwsError> {
    let malformed = |why: &str| {
        dependency(format!(
            "The response of Lambda function {function} is not a valid agent response: {why}. It must be a JSON object with messageVersion 1.0 and a response member, as Bedrock documents for action group functions."
        ))
    };
    let v: Value = serde_json::from_slice(raw).map_err(|_| malformed("it is not JSON"))?;
    let response = &v["response"];
    if !response.is_object() {
        return Err(malformed("the `response` member is missing"));
    }
    let (text, state) = if response["functionResponse"].is_object() {
        let f = &response["functionResponse"];
        (
            body_text(&f["responseBody"]),
            f["responseState"].as_str().map(str::to_owned),
        )
    } else {
        (
            body_text(&response["responseBody"]),
            response["responseState"].as_str().map(str::to_owned),
        )
    };
    let Some(text) = text else {
        return Err(malformed("it has no responseBody with a body"));
    };
    if state.as_deref() == Some("FAILURE") {
        return Err(dependency(format!(
            "Lambda function {function} reported a failure: {text}"
        )));
    }
    let map = |name: &str| v[name].as_object().cloned();
    Ok(Answer {
        text,
        reprompt: state.as_deref() == Some("REPROMPT"),
        session_attributes: map("sessionAttributes"),
        prompt_session_attributes: map("promptSessionAttributes"),
    })
}

/// An unhandled error of the function (Lambda's `FunctionError`).
pub fn function_error(function: &str, payload: &[u8]) -> AwsError {
    let v: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    let what = match (v["errorType"].as_str(), v["errorMessage"].as_str()) {
        (Some(t), Some(m)) => format!("{t}: {m}"),
        (None, Some(m)) => m.to_owned(),
        _ => String::from_utf8_lossy(payload).into_owned(),
    };
    dependency(format!(
        "Received failed response from Lambda function {function}: {what}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::schema::Param;

    #[test]
    fn events_follow_bedrock_contract() {
        let attrs = Map::new();
        let caller = Caller {
            agent_name: "a",
            agent_id: "AGENT12345",
            alias: "TSTALIASID",
            version: "DRAFT",
            session_id: "s-1",
            input_text: "hi",
            session_attributes: &attrs,
            prompt_session_attributes: &attrs,
        };
        let p = |n: &str| Param {
            name: n.into(),
            ty: "string".into(),
            required: true,
        };
        let f = Action::Function {
            group: "g".into(),
            function: "search".into(),
            params: vec![p("city")],
            lambda: None,
        };
        let e = event(&caller, &f, &json!({"city": "Seattle"}));
        assert_eq!(e["function"], "search");
        assert_eq!(
            e["parameters"],
            json!([{"name": "city", "type": "string", "value": "Seattle"}])
        );
        assert_eq!(e["agent"]["alias"], "TSTALIASID");
        let api = Action::Api {
            group: "g".into(),
            path: "/claims/{id}".into(),
            method: "POST".into(),
            params: vec![p("id")],
            body: Some(("application/json".into(), vec![p("amount")])),
            lambda: None,
        };
        let e = event(&caller, &api, &json!({"id": "7", "amount": "3"}));
        assert_eq!(e["httpMethod"], "POST");
        assert_eq!(e["parameters"][0]["value"], "7");
        assert_eq!(
            e["requestBody"]["content"]["application/json"]["properties"][0]["name"],
            "amount"
        );
    }

    #[test]
    fn responses_parse_or_fail_like_bedrock() {
        let ok = br#"{"messageVersion":"1.0","response":{"actionGroup":"g","function":"f","functionResponse":{"responseBody":{"TEXT":{"body":"done"}}}},"sessionAttributes":{"k":"v"}}"#;
        let a = parse_response("f", ok).unwrap();
        assert_eq!(a.text, "done");
        assert_eq!(a.session_attributes.unwrap()["k"], "v");
        let api = br#"{"messageVersion":"1.0","response":{"actionGroup":"g","apiPath":"/x","httpMethod":"GET","httpStatusCode":200,"responseBody":{"application/json":{"body":{"n":1}}}}}"#;
        assert_eq!(parse_response("f", api).unwrap().text, r#"{"n":1}"#);
        let reprompt = br#"{"response":{"functionResponse":{"responseState":"REPROMPT","responseBody":{"TEXT":{"body":"bad id"}}}}}"#;
        assert!(parse_response("f", reprompt).unwrap().reprompt);
        let failure = br#"{"response":{"functionResponse":{"responseState":"FAILURE","responseBody":{"TEXT":{"body":"down"}}}}}"#;
        assert_eq!(
            parse_response("f", failure).unwrap_err().code,
            "DependencyFailedException"
        );
        assert_eq!(
            parse_response("f", b"hello").unwrap_err().code,
            "DependencyFailedException"
        );
        assert_eq!(
            parse_response("f", b"{\"statusCode\": 200}")
                .unwrap_err()
                .code,
            "DependencyFailedException"
        );
        let e = function_error("f", br#"{"errorType":"KeyError","errorMessage":"'x'"}"#);
        assert!(e.message.contains("KeyError: 'x'"), "{}", e.message);
    }
}
