//! PartiQL statements as DynamoDB runs them (ExecuteStatement, BatchExecuteStatement,
//! ExecuteTransaction), as a plain library: no I/O.
//!
//! - [`parse`]: a statement and its `?` parameters to a [`Statement`].
//! - [`Select`], [`Insert`], [`UpdateStmt`], [`Delete`], [`Exists`]: what to run, with the key
//!   questions the service asks ([`Select::key_condition`] for Query versus Scan,
//!   [`UpdateStmt::key`] / [`Delete::key`] for the one item a write names).
//! - [`PartiqlError`]: DynamoDB's ValidationException message, word for word.
//!
//! WHERE clauses become `basalt_dynamodb_expr` conditions and SET/REMOVE its update actions,
//! so they evaluate through `Condition::eval` and apply through `Update::apply`, exactly as
//! ConditionExpression and UpdateExpression do.
//!
//! ```
//! use basalt_dynamodb_expr::{AttributeValue, Number};
//! use basalt_partiql::{Statement, parse};
//!
//! let stmt = parse(
//!     "SELECT OrderID, Total FROM \"Orders\" WHERE OrderID IN [1, 2, 3] ORDER BY OrderID DESC",
//!     &[],
//! )?;
//! let Statement::Select(select) = stmt else { unreachable!() };
//! let keys = select.key_condition("OrderID", None).expect("a Query, not a Scan");
//! assert_eq!(keys.len(), 3);
//! assert_eq!(select.order_desc, Some(true));
//!
//! let one = AttributeValue::N(Number::from_i64(1));
//! let stmt = parse(
//!     "UPDATE \"Music\" SET AwardsWon = ? WHERE Artist = 'Acme Band' AND SongTitle = 'PartiQL Rocks'",
//!     &[one.clone()],
//! )?;
//! let Statement::Update(update) = stmt else { unreachable!() };
//! let mut item = update.key("Artist", Some("SongTitle"))?; // the stored item, here just its key
//! assert!(update.condition.as_ref().unwrap().eval(&item));
//! update.update.apply(&mut item).expect("applies");
//! assert_eq!(item["AwardsWon"], one);
//! # Ok::<(), basalt_partiql::PartiqlError>(())
//! ```
//!
//! Behaviour and messages follow the DynamoDB Developer Guide's PartiQL pages (ql-reference.*,
//! ql-functions.*, ql-operators) and the wording DynamoDB sends; `tests/` holds the Guide's
//! examples as a table evaluated against sample items.

mod condition;
mod error;
mod keys;
mod keywords;
mod lexer;
mod literal;
mod parser;
mod project;
mod statement;
mod syntax;
mod update;

use basalt_dynamodb_expr::AttributeValue;

pub use error::PartiqlError;
pub use statement::{Delete, Exists, Insert, OrderKey, Returning, Select, Statement, UpdateStmt};

/// Parses one statement and binds its `?` parameters, in order of appearance.
///
/// Errors come in DynamoDB's order: what the parser cannot read, then a parameter count
/// that differs from the statement's ("Number of parameters in request and statement don't
/// match."), then what the statement means (functions, types, keys of a write).
pub fn parse(statement: &str, parameters: &[AttributeValue]) -> Result<Statement, PartiqlError> {
    let parsed = parser::parse(statement)?;
    if parsed.params != parameters.len() {
        return Err(PartiqlError::msg(error::PARAMETER_COUNT));
    }
    statement::bind(parsed.stmt, parameters)
}
