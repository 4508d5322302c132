//! GetItem, and the request members every read shares (projections, Select).

use basalt_core::{AwsError, RequestContext};
use basalt_dynamodb_expr::{
    Condition, ExprKind, Item, Params, Projection, item_size, item_to_json, parse_condition,
    parse_projection,
};
use serde_json::{Map, Value};

use crate::DynamoDb;
use crate::capacity::{self, Consumed};
use crate::keys;
use crate::params::{expr_error, no_legacy, required_item, str_of, table_name};
use crate::write::{load, params_of};

pub fn projection(input: &Value, params: &mut Params) -> Result<Option<Projection>, AwsError> {
    match str_of(input, "ProjectionExpression") {
        Some(p) => parse_projection(p, params).map(Some).map_err(expr_error),
        None => Ok(None),
    }
}

pub fn filter(input: &Value, params: &mut Params) -> Result<Option<Condition>, AwsError> {
    match str_of(input, "FilterExpression") {
        Some(f) => parse_condition(f, ExprKind::Filter, params)
            .map(Some)
            .map_err(expr_error),
        None => Ok(None),
    }
}

pub fn consistent(input: &Value) -> bool {
    input
        .get("ConsistentRead")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

pub fn get_item(d: &DynamoDb, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    no_legacy(input, &[("AttributesToGet", "ProjectionExpression")])?;
    let table = table_name(input, "TableName")?;
    let key = required_item(input, "Key")?;
    let mode = capacity::mode(input)?;
    let mut params = params_of(input)?;
    let proj = projection(input, &mut params)?;
    params.finish().map_err(expr_error)?;
    let t = d.table(ctx, table)?;
    keys::validate_key(&t, &key)?;
    let (_, item) = load(d, &keys::item_key(&t, &key))?;
    let mut o = Map::new();
    let consumed = Consumed::read(capacity::read_units(
        item.as_ref().map_or(0, item_size),
        consistent(input),
    ));
    if let Some(item) = item {
        let item: Item = match &proj {
            Some(p) => p.apply(&item),
            None => item,
        };
        o.insert("Item".into(), item_to_json(&item));
    }
    if let Some(c) = consumed.to_json(&t.name, mode) {
        o.insert("ConsumedCapacity".into(), c);
    }
    Ok(Value::Object(o))
}
