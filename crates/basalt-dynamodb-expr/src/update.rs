//! Applying update expressions.

use crate::ast::{Path, Update};
use crate::error::ExprError;
use crate::value::Item;

impl Update {
    /// Applies the actions to `item` with DynamoDB's semantics; returns the paths it updated
    /// (project the old and new items through `Projection::from_paths` for UPDATED_OLD /
    /// UPDATED_NEW).
    pub fn apply(&self, item: &mut Item) -> Result<Vec<Path>, ExprError> {
        let _ = item;
        todo!("step 2")
    }

    /// The top-level attributes this update writes or removes.
    pub fn top_level_names(&self) -> Vec<String> {
        todo!("step 2")
    }
}
