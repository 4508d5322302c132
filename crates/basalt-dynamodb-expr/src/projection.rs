//! Projection of items through document paths.

use crate::ast::{Path, Projection};
use crate::value::Item;

impl Projection {
    /// The item restricted to the projected paths, nested structure kept.
    pub fn apply(&self, item: &Item) -> Item {
        let _ = item;
        todo!("step 2")
    }

    pub fn from_paths(paths: Vec<Path>) -> Projection {
        Projection { paths }
    }

    /// The distinct top-level attribute names, in first-mention order.
    pub fn top_level_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.paths {
            if !out.iter().any(|n| n == p.top()) {
                out.push(p.top().to_string());
            }
        }
        out
    }
}
