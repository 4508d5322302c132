//! Evaluation of conditions against an item.

use crate::ast::Condition;
use crate::value::Item;

impl Condition {
    /// Whether the item satisfies the condition. Comparisons of different types, and of
    /// missing attributes, are false, as in DynamoDB.
    pub fn eval(&self, item: &Item) -> bool {
        let _ = item;
        todo!("step 2")
    }
}
