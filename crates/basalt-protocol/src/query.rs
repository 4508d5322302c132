//! awsQuery: form-encoded input (`Action=…&Version=…&A.member.1=…`), XML output wrapped in
//! `<OpResponse><OpResult>` with `ResponseMetadata`.

use crate::shapes::{resolve, scalar_from_text};
use crate::xml::{escape, write_content};
use crate::{Request, Response};
use basalt_core::AwsError;
use basalt_spec::{Operation, ServiceModel, Shape, ShapeRef, ShapeType, TimestampFormat};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A node of the dotted-key tree built from form parameters.
#[derive(Default, Debug)]
struct Node {
    value: Option<String>,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn insert(&mut self, key: &str, value: String) {
        let mut node = self;
        for part in key.split('.') {
            node = node.children.entry(part.to_owned()).or_default();
        }
        node.value = Some(value);
    }

    /// Children whose names are list/map indices, in numeric order.
    fn indexed(&self) -> Vec<&Node> {
        let mut items: Vec<(u64, &Node)> = self
            .children
            .iter()
            .filter_map(|(k, v)| k.parse::<u64>().ok().map(|i| (i, v)))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, n)| n).collect()
    }
}

fn form_params(req: &Request<'_>) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(req.query.as_bytes())
        .into_owned()
        .collect();
    params.extend(form_urlencoded::parse(req.body).into_owned());
    params
}

pub(crate) fn find_operation<'m>(
    model: &'m ServiceModel,
    req: &Request<'_>,
) -> Result<&'m Operation, AwsError> {
    let params = form_params(req);
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone());
    let Some(action) = action else {
        return Err(AwsError::new(400, "MissingAction", "Missing Action"));
    };
    let version = params
        .iter()
        .find(|(k, _)| k == "Version")
        .map(|(_, v)| v.as_str());
    if let (Some(v), Some(api)) = (version, model.metadata.api_version.as_deref())
        && v != api
    {
        return Err(AwsError::new(
            400,
            "InvalidAction",
            format!("Could not find operation {action} for version {v}"),
        ));
    }
    model
        .operation(&action)
        .ok_or_else(|| crate::unknown_operation_error(basalt_spec::Protocol::Query, &action))
}

pub(crate) fn parse_request(
    model: &ServiceModel,
    op: &Operation,
    req: &Request<'_>,
) -> Result<Value, AwsError> {
    let mut root = Node::default();
    for (k, v) in form_params(req) {
        if k != "Action" && k != "Version" {
            root.insert(&k, v);
        }
    }
    match &op.input {
        Some(r) => {
            let shape = resolve(model, r)?;
            structure(model, shape, &root)
        }
        None => Ok(Value::Object(Map::new())),
    }
}

/// A member's name on the wire. A `locationName` on the target shape applies wherever the
/// shape is referenced without one of its own, as in botocore (SQS's `TagMap` is `Tag.N`).
fn serialized_name<'a>(name: &'a str, r: &'a ShapeRef, shape: &'a Shape) -> &'a str {
    r.query_name
        .as_deref()
        .or(r.location_name.as_deref())
        .or(shape.location_name.as_deref())
        .unwrap_or(name)
}

fn structure(model: &ServiceModel, shape: &Shape, node: &Node) -> Result<Value, AwsError> {
    let mut out = Map::new();
    for (name, mref) in &shape.members {
        let mshape = resolve(model, mref)?;
        let key = serialized_name(name, mref, mshape);
        // A flattened list whose member has its own name is keyed by that name instead.
        let key = match (mshape.kind, mshape.member.as_deref()) {
            (ShapeType::List, Some(m))
                if (mshape.flattened || mref.flattened) && m.location_name.is_some() =>
            {
                m.location_name.as_deref().unwrap_or(key)
            }
            _ => key,
        };
        if let Some(child) = node.children.get(key) {
            out.insert(name.clone(), value(model, mref, mshape, child, name)?);
        }
    }
    Ok(out.into())
}

fn value(
    model: &ServiceModel,
    r: &ShapeRef,
    shape: &Shape,
    node: &Node,
    name: &str,
) -> Result<Value, AwsError> {
    match shape.kind {
        ShapeType::Structure => structure(model, shape, node),
        ShapeType::List | ShapeType::Map
            if node.children.is_empty() && node.value.as_deref() == Some("") =>
        {
            // `Arg=` is how query clients send an empty list or map.
            Ok(if shape.kind == ShapeType::List {
                Value::Array(vec![])
            } else {
                Value::Object(Map::new())
            })
        }
        ShapeType::List => {
            let member = shape
                .member
                .as_deref()
                .ok_or_else(|| AwsError::internal("list without member"))?;
            let mshape = resolve(model, member)?;
            let items = if shape.flattened || r.flattened {
                node.indexed()
            } else {
                let inner = member.location_name.as_deref().unwrap_or("member");
                node.children
                    .get(inner)
                    .map(Node::indexed)
                    .unwrap_or_default()
            };
            items
                .into_iter()
                .map(|n| value(model, member, mshape, n, name))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        ShapeType::Map => {
            let (Some(kr), Some(vr)) = (shape.key.as_deref(), shape.value.as_deref()) else {
                return Err(AwsError::internal("map without key/value"));
            };
            let vshape = resolve(model, vr)?;
            let entries = if shape.flattened || r.flattened {
                node.indexed()
            } else {
                node.children
                    .get("entry")
                    .map(Node::indexed)
                    .unwrap_or_default()
            };
            let mut out = Map::new();
            for entry in entries {
                let key = entry
                    .children
                    .get(kr.location_name.as_deref().unwrap_or("key"))
                    .and_then(|n| n.value.clone());
                let val = entry
                    .children
                    .get(vr.location_name.as_deref().unwrap_or("value"));
                if let (Some(k), Some(v)) = (key, val) {
                    out.insert(k, value(model, vr, vshape, v, name)?);
                }
            }
            Ok(out.into())
        }
        _ => {
            let text = node.value.as_deref().unwrap_or("");
            scalar_from_text(shape, r, text, TimestampFormat::Iso8601, name)
                .map_err(|e| AwsError::new(400, "InvalidParameterValue", e.message))
        }
    }
}

pub(crate) fn serialize_output(
    model: &ServiceModel,
    op: &Operation,
    output: &Value,
    request_id: &str,
) -> Result<Response, AwsError> {
    let mut out = String::with_capacity(512);
    out.push('<');
    out.push_str(&op.name);
    out.push_str("Response");
    if let Some(ns) = &model.metadata.xml_namespace {
        out.push_str(" xmlns=\"");
        escape(ns, &mut out);
        out.push('"');
    }
    out.push('>');
    if let Some(r) = &op.output {
        let shape = resolve(model, r)?;
        let wrapper = r
            .result_wrapper
            .clone()
            .unwrap_or_else(|| format!("{}Result", op.name));
        out.push('<');
        out.push_str(&wrapper);
        out.push('>');
        write_content(model, shape, r, output, &mut out)?;
        out.push_str("</");
        out.push_str(&wrapper);
        out.push('>');
    }
    out.push_str("<ResponseMetadata><RequestId>");
    escape(request_id, &mut out);
    out.push_str("</RequestId></ResponseMetadata></");
    out.push_str(&op.name);
    out.push_str("Response>");
    Ok(Response {
        status: 200,
        headers: vec![("Content-Type".into(), "text/xml".into())],
        body: out.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(model: &ServiceModel, form: &str) -> Value {
        let headers = http::HeaderMap::new();
        let req = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: form.as_bytes(),
        };
        let op = find_operation(model, &req).unwrap();
        parse_request(model, op, &req).unwrap()
    }

    #[test]
    fn shape_location_name_applies_to_unnamed_members() {
        // botocore 1.31 sends TagQueue's `Tags` as `Tag.N.Key`: TagMap names itself `Tag`.
        let m = basalt_spec::model("sqs-query").unwrap();
        let got = parse(
            &m,
            "Action=TagQueue&Version=2012-11-05&QueueUrl=u&Tag.1.Key=a&Tag.1.Value=b&Tag.2.Key=c&Tag.2.Value=d",
        );
        assert_eq!(
            got,
            serde_json::json!({"QueueUrl": "u", "Tags": {"a": "b", "c": "d"}})
        );
        let got = parse(
            &m,
            "Action=SendMessage&Version=2012-11-05&QueueUrl=u&MessageBody=x&MessageAttribute.1.Name=n&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=v",
        );
        assert_eq!(
            got["MessageAttributes"],
            serde_json::json!({"n": {"DataType": "String", "StringValue": "v"}})
        );
    }
}
