//! DynamoDB's legacy (non-expression) request parameters, rewritten into their expression form
//! before an operation reads its request, so the rest of the service knows expressions only.
//!
//! | legacy member                         | becomes                  | operations                     |
//! |---------------------------------------|--------------------------|--------------------------------|
//! | `AttributesToGet`                     | `ProjectionExpression`   | GetItem, BatchGetItem, Query, Scan |
//! | `KeyConditions`                       | `KeyConditionExpression` | Query                          |
//! | `QueryFilter` / `ScanFilter`          | `FilterExpression`       | Query / Scan                   |
//! | `Expected`                            | `ConditionExpression`    | PutItem, UpdateItem, DeleteItem |
//! | `AttributeUpdates`                    | `UpdateExpression`       | UpdateItem                     |
//!
//! `ConditionalOperator` joins a map's conditions with AND (the default) or OR. Attribute
//! names always become `#legacyN` placeholders, values `:legacyN`, numbered past any the request
//! already uses, so a legacy name is never a reserved word and never a document path.
//!
//! The checks are DynamoDB's, made before the rewrite so their messages name the legacy
//! members: mixing the two forms, `ExpressionAttributeNames`/`Values` without an expression,
//! each condition's operator, argument count and value types. Semantics:
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/LegacyConditionalParameters.html>;
//! wordings where the guide is silent follow what dynalite and the dynamodb-conformance suite
//! recorded against DynamoDB.

mod conditions;
mod updates;

use basalt_core::AwsError;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};

use conditions::{Kind, Legacy};

/// Which members of an operation are expressions and which are their legacy forms, in the
/// order DynamoDB lists them in its "Can not use both" message.
struct Form {
    expressions: &'static [&'static str],
    legacy: &'static [&'static str],
}

const GET: Form = Form {
    expressions: &["ProjectionExpression"],
    legacy: &["AttributesToGet"],
};
const QUERY: Form = Form {
    expressions: &[
        "ProjectionExpression",
        "FilterExpression",
        "KeyConditionExpression",
    ],
    legacy: &[
        "AttributesToGet",
        "QueryFilter",
        "ConditionalOperator",
        "KeyConditions",
    ],
};
const SCAN: Form = Form {
    expressions: &["ProjectionExpression", "FilterExpression"],
    legacy: &["AttributesToGet", "ScanFilter", "ConditionalOperator"],
};
const PUT_DELETE: Form = Form {
    expressions: &["ConditionExpression"],
    legacy: &["Expected", "ConditionalOperator"],
};
const UPDATE: Form = Form {
    expressions: &["UpdateExpression", "ConditionExpression"],
    legacy: &["AttributeUpdates", "Expected", "ConditionalOperator"],
};

/// Rewrites the legacy parameters of `operation`'s request into their expression form, in
/// place, with DynamoDB's checks. Requests of other operations, and requests without legacy
/// members, are left as they are (after the checks every request of these operations gets).
pub fn rewrite(operation: &str, input: &mut Value) -> Result<(), AwsError> {
    match operation {
        "GetItem" => get(input, ""),
        "BatchGetItem" => batch_get(input),
        "Query" => query(input),
        "Scan" => scan(input),
        "PutItem" | "DeleteItem" => write(input, &PUT_DELETE, None),
        "UpdateItem" => write(input, &UPDATE, Some("UpdateExpression")),
        _ => Ok(()),
    }
}

fn present(input: &Value, member: &str) -> bool {
    input.get(member).is_some_and(|v| !v.is_null())
}

/// The checks of `validateExpressionParams` in DynamoDB's request validation: the two forms
/// never mix (except KeyConditions, which DynamoDB accepts beside the other expressions when
/// there is no KeyConditionExpression), and the substitution maps come only with expressions.
fn check_form(input: &Value, form: &Form) -> Result<(), AwsError> {
    let expressions: Vec<&str> = form
        .expressions
        .iter()
        .copied()
        .filter(|m| present(input, m))
        .collect();
    if !expressions.is_empty() {
        let legacy: Vec<&str> = form
            .legacy
            .iter()
            .copied()
            .filter(|m| present(input, m))
            .filter(|m| *m != "KeyConditions" || present(input, "KeyConditionExpression"))
            .collect();
        if !legacy.is_empty() {
            return Err(AwsError::validation(format!(
                "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
                legacy.join(", "),
                expressions.join(", ")
            )));
        }
    }
    if present(input, "ExpressionAttributeNames") && expressions.is_empty() {
        return Err(AwsError::validation(
            "ExpressionAttributeNames can only be specified when using expressions",
        ));
    }
    // A projection takes no values, so it does not count here.
    let with_values: Vec<&str> = form
        .expressions
        .iter()
        .copied()
        .filter(|m| *m != "ProjectionExpression")
        .collect();
    if !with_values.is_empty()
        && present(input, "ExpressionAttributeValues")
        && with_values.iter().all(|m| !present(input, m))
    {
        return Err(AwsError::validation(format!(
            "ExpressionAttributeValues can only be specified when using expressions: {} {} null",
            with_values.join(" and "),
            if with_values.len() > 1 { "are" } else { "is" }
        )));
    }
    Ok(())
}

/// `1 validation error detected: ...` for a member that fails its model constraint.
fn constraint(value: Option<&str>, at: &str, what: &str) -> AwsError {
    let value = value.map_or("null".to_owned(), |v| format!("'{v}'"));
    AwsError::validation(format!(
        "1 validation error detected: Value {value} at '{at}' failed to satisfy constraint: {what}"
    ))
}

/// `prefix` + `member` with its first letter lowered, as DynamoDB names a member in messages.
fn at(prefix: &str, member: &str) -> String {
    let mut c = member.chars();
    let first = c.next().map(|f| f.to_ascii_lowercase().to_string());
    format!("{prefix}{}{}", first.unwrap_or_default(), c.as_str())
}

/// The generated placeholders of one request: `#legacyN` and `:legacyN`, skipping any the
/// request defines itself (it may, when KeyConditions come with expressions).
struct Placeholders {
    taken_names: HashSet<String>,
    taken_values: HashSet<String>,
    next_name: usize,
    next_value: usize,
    /// Attribute name to its placeholder, so a name used twice is substituted once.
    names: BTreeMap<String, String>,
    new_names: Map<String, Value>,
    new_values: Map<String, Value>,
}

impl Placeholders {
    fn new(input: &Value) -> Placeholders {
        let keys = |m: &str| -> HashSet<String> {
            input
                .get(m)
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        Placeholders {
            taken_names: keys("ExpressionAttributeNames"),
            taken_values: keys("ExpressionAttributeValues"),
            next_name: 0,
            next_value: 0,
            names: BTreeMap::new(),
            new_names: Map::new(),
            new_values: Map::new(),
        }
    }

    fn name(&mut self, attr: &str) -> String {
        if let Some(p) = self.names.get(attr) {
            return p.clone();
        }
        let p = loop {
            let p = format!("#legacy{}", self.next_name);
            self.next_name += 1;
            if !self.taken_names.contains(&p) {
                break p;
            }
        };
        self.names.insert(attr.to_owned(), p.clone());
        self.new_names
            .insert(p.clone(), Value::String(attr.to_owned()));
        p
    }

    fn value(&mut self, v: &Value) -> String {
        let p = loop {
            let p = format!(":legacy{}", self.next_value);
            self.next_value += 1;
            if !self.taken_values.contains(&p) {
                break p;
            }
        };
        self.new_values.insert(p.clone(), v.clone());
        p
    }

    /// Adds the placeholders to the request's substitution maps.
    fn install(self, input: &mut Value) {
        for (member, new) in [
            ("ExpressionAttributeNames", self.new_names),
            ("ExpressionAttributeValues", self.new_values),
        ] {
            if new.is_empty() {
                continue;
            }
            let slot = &mut input[member];
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Some(map) = slot.as_object_mut() {
                map.extend(new);
            }
        }
    }
}

/// Removes a member and returns it, or `None` when it was absent or null.
fn take(input: &mut Value, member: &str) -> Option<Value> {
    input
        .as_object_mut()
        .and_then(|o| o.remove(member))
        .filter(|v| !v.is_null())
}

/// `ConditionalOperator`: AND unless the request says OR.
fn conditional_operator(input: &Value) -> Result<&'static str, AwsError> {
    match input.get("ConditionalOperator") {
        None | Some(Value::Null) => Ok("AND"),
        Some(v) => match v.as_str() {
            Some("AND") => Ok("AND"),
            Some("OR") => Ok("OR"),
            other => Err(constraint(
                Some(other.unwrap_or_default()),
                "conditionalOperator",
                "Member must satisfy enum value set: [OR, AND]",
            )),
        },
    }
}

/// AttributesToGet: at least one name, no name twice; becomes a projection of placeholders.
fn attributes_to_get(
    input: &mut Value,
    prefix: &str,
    ph: &mut Placeholders,
) -> Result<(), AwsError> {
    let Some(list) = take(input, "AttributesToGet") else {
        return Ok(());
    };
    let names: Vec<&str> = list
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if names.is_empty() {
        return Err(constraint(
            Some("[]"),
            &at(prefix, "AttributesToGet"),
            "Member must have length greater than or equal to 1",
        ));
    }
    let mut seen = HashSet::new();
    for n in &names {
        if !seen.insert(*n) {
            return Err(AwsError::validation(format!(
                "One or more parameter values were invalid: Duplicate value in attribute name: {n}"
            )));
        }
    }
    let projection: Vec<String> = names.iter().map(|n| ph.name(n)).collect();
    input["ProjectionExpression"] = Value::String(projection.join(", "));
    Ok(())
}

/// A Query or Scan that names its attributes may only ask for SPECIFIC_ATTRIBUTES.
fn check_select(input: &Value) -> Result<(), AwsError> {
    if !present(input, "AttributesToGet") {
        return Ok(());
    }
    let what = match input.get("Select").and_then(Value::as_str) {
        Some("COUNT") => "only the Count",
        Some(s @ ("ALL_ATTRIBUTES" | "ALL_PROJECTED_ATTRIBUTES")) => s,
        _ => return Ok(()),
    };
    Err(AwsError::validation(format!(
        "1 validation error detected: Cannot specify the AttributesToGet when choosing to get {what}"
    )))
}

fn get(input: &mut Value, prefix: &str) -> Result<(), AwsError> {
    check_form(input, &GET)?;
    let mut ph = Placeholders::new(input);
    attributes_to_get(input, prefix, &mut ph)?;
    ph.install(input);
    Ok(())
}

fn batch_get(input: &mut Value) -> Result<(), AwsError> {
    let Some(tables) = input.get_mut("RequestItems").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for (name, req) in tables.iter_mut() {
        get(req, &format!("requestItems.{name}.member."))?;
    }
    Ok(())
}

fn query(input: &mut Value) -> Result<(), AwsError> {
    let op = conditional_operator(input)?;
    let filter = Legacy::read(input, "QueryFilter", Kind::Filter)?;
    let keys = Legacy::read(input, "KeyConditions", Kind::Filter)?;
    check_form(input, &QUERY)?;
    check_select(input)?;
    let filter = filter.map(|f| f.validate()).transpose()?;
    let keys = keys.map(|k| k.validate()).transpose()?;
    let mut ph = Placeholders::new(input);
    attributes_to_get(input, "", &mut ph)?;
    if let Some(e) = filter.and_then(|f| f.expression(op, &mut ph)) {
        input["FilterExpression"] = Value::String(e);
    }
    if let Some(k) = keys {
        input["KeyConditionExpression"] = Value::String(k.key_expression(&mut ph)?);
    }
    for m in ["QueryFilter", "KeyConditions", "ConditionalOperator"] {
        take(input, m);
    }
    ph.install(input);
    Ok(())
}

fn scan(input: &mut Value) -> Result<(), AwsError> {
    let op = conditional_operator(input)?;
    let filter = Legacy::read(input, "ScanFilter", Kind::Filter)?;
    check_form(input, &SCAN)?;
    check_select(input)?;
    let filter = filter.map(|f| f.validate()).transpose()?;
    let mut ph = Placeholders::new(input);
    attributes_to_get(input, "", &mut ph)?;
    if let Some(e) = filter.and_then(|f| f.expression(op, &mut ph)) {
        input["FilterExpression"] = Value::String(e);
    }
    for m in ["ScanFilter", "ConditionalOperator"] {
        take(input, m);
    }
    ph.install(input);
    Ok(())
}

/// PutItem, DeleteItem and UpdateItem (`update` names the member AttributeUpdates becomes).
fn write(input: &mut Value, form: &Form, update: Option<&str>) -> Result<(), AwsError> {
    let op = conditional_operator(input)?;
    let expected = Legacy::read(input, "Expected", Kind::Expected)?;
    let updates = match update {
        Some(_) => updates::Updates::read(input)?,
        None => None,
    };
    check_form(input, form)?;
    let updates = updates.map(|u| u.validate()).transpose()?;
    let expected = expected.map(|e| e.validate()).transpose()?;
    let mut ph = Placeholders::new(input);
    if let (Some(member), Some(u)) = (update, updates)
        && let Some(e) = u.expression(&mut ph)
    {
        input[member] = Value::String(e);
    }
    if let Some(e) = expected.and_then(|e| e.expression(op, &mut ph)) {
        input["ConditionExpression"] = Value::String(e);
    }
    for m in ["Expected", "AttributeUpdates", "ConditionalOperator"] {
        take(input, m);
    }
    ph.install(input);
    Ok(())
}

#[cfg(test)]
mod tests;
