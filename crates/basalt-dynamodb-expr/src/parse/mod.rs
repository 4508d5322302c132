//! The four expression grammars.
//!
//! Each parser works in two passes, as DynamoDB reports errors in two tiers: a syntax pass
//! that builds a raw tree (any syntax error wins), then a check pass that resolves `#names`
//! and `:values`, checks functions, operands and paths, and keeps the first error of each
//! kind; the kinds are ranked per grammar, in the order DynamoDB reports them.

mod condition;
mod cursor;
mod key;
mod lexer;
mod projection;
mod raw;
mod update;

pub use condition::parse_condition;
pub use key::parse_key_condition;
pub use projection::parse_projection;
pub use update::parse_update;

pub(crate) use cursor::Cursor;
pub(crate) use raw::{Cat, Errors, RawPath};
