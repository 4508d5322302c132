//! DynamoDB's data types and expression language, as a plain library (no I/O).
//!
//! - [`AttributeValue`], [`Item`] and [`Number`]: the ten DynamoDB types with their JSON wire
//!   form and validation messages ([`AttributeValue::from_json`]), their stored size
//!   ([`item_size`]) and key ordering ([`compare_scalars`], [`Number::order_key`]). Numbers
//!   are exact 38-digit decimals.
//! - [`Params`]: one request's ExpressionAttributeNames/Values, shared by all its expressions;
//!   [`Params::finish`] reports the ones no expression used.
//! - [`parse_condition`] (condition and filter), [`parse_update`], [`parse_projection`] and
//!   [`parse_key_condition`] give the [`ast`] types, which evaluate themselves:
//!   [`Condition::eval`], [`Update::apply`], [`Projection::apply`], [`KeyCondition::resolve`]
//!   then [`RangeCondition::matches`]. Other front ends (PartiQL) build the same trees.
//!
//! Every error message is the `ValidationException` message DynamoDB sends, including its
//! ranking when an expression has several faults (syntax first, then per grammar: redundant
//! parentheses, unknown and misused functions, reserved words, undefined names and values,
//! operand checks). The `tests/conformance` table holds the cases, each citing the Developer
//! Guide page it comes from.
//!
//! ```
//! use basalt_dynamodb_expr::{ExprKind, Params, item_from_json, parse_condition};
//! use serde_json::json;
//!
//! let item = item_from_json(&json!({"pk": {"S": "a"}, "n": {"N": "5"}})).unwrap();
//! let mut params = Params::new(None, Some(&json!({":min": {"N": "3"}}))).unwrap();
//! let cond = parse_condition("n > :min AND attribute_exists(pk)", ExprKind::Condition, &mut params).unwrap();
//! params.finish().unwrap();
//! assert!(cond.eval(&item));
//! ```

pub mod ast;
mod error;
mod eval;
mod key;
mod number;
mod params;
mod parse;
mod projection;
mod reserved;
mod update;
mod value;

pub use ast::{Condition, KeyCondition, Path, PathElement, Projection, Update};
pub use error::{ExprError, ExprKind};
pub use key::{RangeCondition, ResolvedKey};
pub use number::Number;
pub use params::Params;
pub use parse::{parse_condition, parse_key_condition, parse_projection, parse_update};
pub use reserved::is_reserved;
pub use value::{
    AttributeValue, Item, ValueError, compare_scalars, item_from_json, item_size, item_to_json,
};
