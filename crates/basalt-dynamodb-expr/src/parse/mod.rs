//! The four expression grammars.

use crate::ast::{Condition, KeyCondition, Projection, Update};
use crate::error::{ExprError, ExprKind};
use crate::params::Params;

/// Parses a condition (`kind` = `Condition`) or filter (`kind` = `Filter`) expression.
pub fn parse_condition(
    expr: &str,
    kind: ExprKind,
    params: &mut Params,
) -> Result<Condition, ExprError> {
    let _ = (expr, kind, params);
    todo!("step 2")
}

/// Parses an update expression.
pub fn parse_update(expr: &str, params: &mut Params) -> Result<Update, ExprError> {
    let _ = (expr, params);
    todo!("step 2")
}

/// Parses a projection expression.
pub fn parse_projection(expr: &str, params: &mut Params) -> Result<Projection, ExprError> {
    let _ = (expr, params);
    todo!("step 2")
}

/// Parses a key condition expression; check it against the key schema with
/// [`KeyCondition::resolve`].
pub fn parse_key_condition(expr: &str, params: &mut Params) -> Result<KeyCondition, ExprError> {
    let _ = (expr, params);
    todo!("step 2")
}
