//! What a JSONPath expression can see: the state's input (`$`), the context object (`$$`)
//! and the variables assigned so far (`$name`).

use crate::path::{Path, Root};
use serde_json::{Map, Value};

pub(crate) struct Scope<'a> {
    pub input: &'a Value,
    pub ctx: &'a Value,
    pub vars: &'a Map<String, Value>,
}

impl Scope<'_> {
    /// The value a path names, `None` when nothing matches a definite path.
    pub fn read(&self, path: &Path) -> Option<Value> {
        match &path.root {
            Root::Input => path.read(self.input),
            Root::Context => path.read(self.ctx),
            Root::Var(name) => path.read(self.vars.get(name)?),
        }
    }
}
