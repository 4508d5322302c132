//! What an agent can do, as tools for the model: the functions of function-schema action
//! groups, the operations of OpenAPI action groups, its knowledge bases and, when the
//! agent may ask, the user. Each tool's input schema is a JSON schema, so that the chat
//! engine decodes the model's call under a grammar (required arguments present, types
//! right).

use super::model::{AgentKbRec, GroupRec};
use serde_json::{Map, Value, json};

/// Bedrock's limit of parameters of one function.
const MAX_FUNCTION_PARAMETERS: usize = 5;

/// An input of an action, as Bedrock passes it to the Lambda function: by name, with its
/// type, as a string.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: String,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Function {
        group: String,
        function: String,
        params: Vec<Param>,
        lambda: Option<String>,
    },
    Api {
        group: String,
        path: String,
        method: String,
        params: Vec<Param>,
        /// Content type and properties of the JSON request body.
        body: Option<(String, Vec<Param>)>,
        lambda: Option<String>,
    },
    KnowledgeBase {
        id: String,
        retrieval: Value,
    },
    AskUser,
    /// A collaborator of a supervisor agent (its position in the agent's collaborators).
    Collaborator {
        index: usize,
    },
    /// The agent's final answer: every orchestration step is decoded as a call (a grammar
    /// over all tools), and answering is one of the calls.
    Answer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub schema: Value,
    pub action: Action,
}

impl Tool {
    pub fn spec(&self) -> Value {
        json!({"toolSpec": {
            "name": self.name,
            "description": self.description,
            "inputSchema": {"json": self.schema},
        }})
    }

    /// The group this tool belongs to, for actions of action groups.
    pub fn group(&self) -> Option<&str> {
        match &self.action {
            Action::Function { group, .. } | Action::Api { group, .. } => Some(group),
            _ => None,
        }
    }
}

fn json_type(ty: &str) -> &'static str {
    match ty {
        "integer" => "integer",
        "number" => "number",
        "boolean" => "boolean",
        "array" => "array",
        _ => "string",
    }
}

fn object_schema(params: &[Param], descriptions: &Map<String, Value>) -> Value {
    let mut props = Map::new();
    for p in params {
        let mut s = json!({"type": json_type(&p.ty)});
        if p.ty == "array" {
            s["items"] = json!({"type": "string"});
        }
        if let Some(d) = descriptions.get(&p.name) {
            s["description"] = d.clone();
        }
        props.insert(p.name.clone(), s);
    }
    let required: Vec<&str> = params
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name.as_str())
        .collect();
    json!({"type": "object", "properties": props, "required": required})
}

/// Checks a `functionSchema`; the functions it declares.
pub fn check_functions(schema: &Value) -> Result<(), String> {
    let Some(functions) = schema["functions"].as_array() else {
        return Err("functionSchema must list functions.".into());
    };
    if functions.is_empty() {
        return Err("functionSchema must list at least one function.".into());
    }
    let mut seen = std::collections::HashSet::new();
    for f in functions {
        let name = f["name"].as_str().unwrap_or_default();
        if !seen.insert(name) {
            return Err(format!(
                "The function name {name} appears more than once in the action group."
            ));
        }
        if let Some(p) = f["parameters"].as_object()
            && p.len() > MAX_FUNCTION_PARAMETERS
        {
            return Err(format!(
                "The function {name} has {} parameters; a function can have at most {MAX_FUNCTION_PARAMETERS}.",
                p.len()
            ));
        }
    }
    Ok(())
}

/// Parses an OpenAPI document (JSON or YAML) and checks that it declares operations.
pub fn parse_openapi(text: &str) -> Result<Value, String> {
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => serde_norway::from_str(text)
            .map_err(|e| format!("The OpenAPI schema is neither valid JSON nor valid YAML: {e}"))?,
    };
    let version = doc["openapi"].as_str().unwrap_or_default();
    if !version.starts_with("3.") {
        return Err(format!(
            "The API schema must be an OpenAPI 3 document (its `openapi` field is {}).",
            if version.is_empty() {
                "missing".to_owned()
            } else {
                format!("`{version}`")
            }
        ));
    }
    if api_operations(&doc).is_empty() {
        return Err("The OpenAPI schema declares no operations under `paths`.".into());
    }
    Ok(doc)
}

/// Follows a local `$ref` (`#/components/...`), a few levels deep.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..8 {
        let Some(r) = v["$ref"].as_str() else {
            return v;
        };
        let Some(path) = r.strip_prefix("#/") else {
            return v;
        };
        let mut target = doc;
        for part in path.split('/') {
            target = &target[part.replace("~1", "/").replace("~0", "~")];
        }
        v = target;
    }
    v
}

struct Operation {
    path: String,
    method: String,
    name: String,
    description: String,
    params: Vec<Param>,
    descriptions: Map<String, Value>,
    body: Option<(String, Vec<Param>)>,
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn api_operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    let Some(paths) = doc["paths"].as_object() else {
        return out;
    };
    for (path, item) in paths {
        let item = resolve(doc, item);
        for method in METHODS {
            let Some(op) = item.get(method) else {
                continue;
            };
            let op = resolve(doc, op);
            let name = op["operationId"].as_str().map_or_else(
                || {
                    let cleaned: String = path
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                        .collect();
                    format!("{method}{}", cleaned.trim_end_matches('_'))
                },
                str::to_owned,
            );
            let description = op["description"]
                .as_str()
                .or(op["summary"].as_str())
                .unwrap_or_default()
                .to_owned();
            let mut params = Vec::new();
            let mut descriptions = Map::new();
            let shared = item["parameters"].as_array().into_iter().flatten();
            for p in shared.chain(op["parameters"].as_array().into_iter().flatten()) {
                let p = resolve(doc, p);
                let Some(n) = p["name"].as_str() else {
                    continue;
                };
                let schema = resolve(doc, &p["schema"]);
                params.retain(|q: &Param| q.name != n);
                params.push(Param {
                    name: n.to_owned(),
                    ty: schema["type"].as_str().unwrap_or("string").to_owned(),
                    required: p["required"].as_bool().unwrap_or(false) || p["in"] == "path",
                });
                if let Some(d) = p["description"].as_str() {
                    descriptions.insert(n.to_owned(), d.into());
                }
            }
            let mut body = None;
            let request = resolve(doc, &op["requestBody"]);
            if let Some(content) = request["content"].as_object()
                && let Some((ctype, media)) = content.iter().next()
            {
                let schema = resolve(doc, &media["schema"]);
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let mut props = Vec::new();
                for (n, s) in schema["properties"].as_object().into_iter().flatten() {
                    let s = resolve(doc, s);
                    props.push(Param {
                        name: n.clone(),
                        ty: s["type"].as_str().unwrap_or("string").to_owned(),
                        required: required.contains(&n.as_str()),
                    });
                    if let Some(d) = s["description"].as_str() {
                        descriptions.entry(n.clone()).or_insert_with(|| d.into());
                    }
                }
                body = Some((ctype.clone(), props));
            }
            out.push(Operation {
                path: path.clone(),
                method: method.to_uppercase(),
                name,
                description,
                params,
                descriptions,
                body,
            });
        }
    }
    out
}

/// A name the model can call: letters, digits, `_` and `-`, at most 64.
pub(super) fn tool_name(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.truncate(64);
    s
}

/// The tools of an agent's enabled action groups and knowledge bases. A function keeps its
/// own name when no other tool has it (small models call plain names best), else the name
/// is qualified by its group.
pub fn tools(groups: &[GroupRec], kbs: &[(AgentKbRec, Value)]) -> Result<Vec<Tool>, String> {
    let mut out: Vec<Tool> = Vec::new();
    for g in groups.iter().filter(|g| g.enabled()) {
        let lambda = g.lambda().map(str::to_owned);
        let description_of = |d: &str| {
            if d.is_empty() {
                g.description.clone().unwrap_or_default()
            } else {
                d.to_owned()
            }
        };
        match g.signature.as_deref() {
            Some("AMAZON.UserInput") => {
                out.push(Tool {
                    name: "ask_user".into(),
                    description: "Ask the user a question, when the request needs information that only the user can give. The question ends your turn.".into(),
                    schema: json!({"type": "object", "properties": {"question": {"type": "string", "description": "The question to ask the user"}}, "required": ["question"]}),
                    action: Action::AskUser,
                });
                continue;
            }
            Some(other) => {
                return Err(format!(
                    "The action group signature {other} is not supported by Basalt."
                ));
            }
            None => {}
        }
        if let Some(functions) = g.function_schema["functions"].as_array() {
            for f in functions {
                let name = f["name"].as_str().unwrap_or_default();
                let mut params = Vec::new();
                let mut descriptions = Map::new();
                for (n, p) in f["parameters"].as_object().into_iter().flatten() {
                    params.push(Param {
                        name: n.clone(),
                        ty: p["type"].as_str().unwrap_or("string").to_owned(),
                        required: p["required"].as_bool().unwrap_or(false),
                    });
                    if let Some(d) = p["description"].as_str() {
                        descriptions.insert(n.clone(), d.into());
                    }
                }
                out.push(Tool {
                    name: name.to_owned(),
                    description: description_of(f["description"].as_str().unwrap_or_default()),
                    schema: object_schema(&params, &descriptions),
                    action: Action::Function {
                        group: g.name.clone(),
                        function: name.to_owned(),
                        params,
                        lambda: lambda.clone(),
                    },
                });
            }
        } else if let Some(text) = &g.api_document {
            let doc = parse_openapi(text)?;
            for op in api_operations(&doc) {
                let mut all = op.params.clone();
                if let Some((_, props)) = &op.body {
                    all.extend(
                        props
                            .iter()
                            .filter(|p| !op.params.iter().any(|q| q.name == p.name))
                            .cloned(),
                    );
                }
                out.push(Tool {
                    name: op.name.clone(),
                    description: description_of(&op.description),
                    schema: object_schema(&all, &op.descriptions),
                    action: Action::Api {
                        group: g.name.clone(),
                        path: op.path,
                        method: op.method,
                        params: op.params,
                        body: op.body,
                        lambda: lambda.clone(),
                    },
                });
            }
        }
    }
    let enabled: Vec<_> = kbs.iter().filter(|(k, _)| k.state == "ENABLED").collect();
    for (i, (kb, retrieval)) in enabled.iter().enumerate() {
        // Named by position, not by id, so that an agent's prompt (and what a greedy model
        // does with it) does not change with the ids its knowledge bases happened to get.
        let name = if enabled.len() == 1 {
            "search_knowledge_base".to_owned()
        } else {
            format!("search_knowledge_base_{}", i + 1)
        };
        out.push(Tool {
            name,
            description: format!(
                "Search this knowledge base for passages that answer a question: {}",
                kb.description
            ),
            schema: json!({"type": "object", "properties": {"searchQuery": {"type": "string", "description": "What to search for"}}, "required": ["searchQuery"]}),
            action: Action::KnowledgeBase {
                id: kb.kb.clone(),
                retrieval: (*retrieval).clone(),
            },
        });
    }
    // Qualify the names that collide, then make them valid tool names.
    let names: Vec<String> = out.iter().map(|t| t.name.clone()).collect();
    for t in &mut out {
        if names.iter().filter(|n| **n == t.name).count() > 1
            && let Some(g) = t.group()
        {
            t.name = format!("{g}__{}", t.name);
        }
        t.name = tool_name(&t.name);
    }
    Ok(out)
}

/// The tool the agent answers the user with, named apart from the agent's own tools.
pub fn answer_tool(tools: &[Tool]) -> Tool {
    let mut name = "answer_user".to_owned();
    while tools.iter().any(|t| t.name == name) {
        name.push('_');
    }
    Tool {
        name,
        description: "Give your final answer to the user. Call it only after every part of the request and of your instructions is done, or if it cannot be done.".into(),
        schema: json!({"type": "object", "properties": {"answer": {"type": "string", "description": "The answer for the user"}}, "required": ["answer"]}),
        action: Action::Answer,
    }
}

/// A parameter's value as Bedrock passes it: a string (JSON text for arrays and objects).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `[{name, type, value}]` of the arguments the model gave for `params`.
pub fn parameter_list(params: &[Param], args: &Value) -> Vec<Value> {
    params
        .iter()
        .filter_map(|p| {
            let v = args.get(&p.name)?;
            (!v.is_null()).then(|| json!({"name": p.name, "type": p.ty, "value": value_text(v)}))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, fs: Value, api: Option<&str>) -> GroupRec {
        GroupRec {
            id: "G".into(),
            name: name.into(),
            description: Some("desc".into()),
            signature: None,
            signature_params: Value::Null,
            executor: json!({"lambda": "arn:aws:lambda:us-east-1:000000000000:function:f"}),
            api_schema: Value::Null,
            api_document: api.map(str::to_owned),
            function_schema: fs,
            state: "ENABLED".into(),
            created_ms: 0,
            updated_ms: 0,
            client_token: None,
        }
    }

    #[test]
    fn functions_become_tools_with_required_parameters() {
        let fs = json!({"functions": [{"name": "book", "description": "Book it", "parameters": {
            "flight_id": {"type": "string", "required": true, "description": "id"},
            "seats": {"type": "integer", "required": false}}}]});
        let t = tools(&[group("g1", fs.clone(), None), group("g2", fs, None)], &[]).unwrap();
        assert_eq!(t.len(), 2);
        // Same function name in two groups: qualified.
        assert_eq!(t[0].name, "g1__book");
        assert_eq!(t[0].schema["required"], json!(["flight_id"]));
        assert_eq!(t[0].schema["properties"]["seats"]["type"], "integer");
        let params = match &t[0].action {
            Action::Function { params, .. } => params.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            parameter_list(&params, &json!({"flight_id": "FL-1", "seats": 2})),
            vec![
                json!({"name": "flight_id", "type": "string", "value": "FL-1"}),
                json!({"name": "seats", "type": "integer", "value": "2"})
            ]
        );
    }

    #[test]
    fn openapi_yaml_operations_become_tools() {
        let yaml = r#"
openapi: 3.0.0
info: {title: Claims, version: 1.0.0}
paths:
  /claims/{claimId}:
    get:
      operationId: getClaim
      description: Get a claim
      parameters:
        - name: claimId
          in: path
          schema: {type: string}
  /claims:
    post:
      description: File a claim
      requestBody:
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Claim'
components:
  schemas:
    Claim:
      type: object
      required: [amount]
      properties:
        amount: {type: number, description: Amount}
        note: {type: string}
"#;
        let t = tools(&[group("claims", Value::Null, Some(yaml))], &[]).unwrap();
        let get = t.iter().find(|t| t.name == "getClaim").unwrap();
        assert_eq!(get.schema["required"], json!(["claimId"]));
        let post = t.iter().find(|t| t.name == "post_claims").unwrap();
        assert_eq!(post.schema["required"], json!(["amount"]));
        match &post.action {
            Action::Api { method, body, .. } => {
                assert_eq!(method, "POST");
                assert_eq!(body.as_ref().unwrap().0, "application/json");
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_openapi("swagger: '2.0'\npaths: {}").is_err());
        assert!(parse_openapi("openapi: 3.0.0\npaths: {}").is_err());
        assert!(parse_openapi("{not yaml: [").is_err());
    }
}
