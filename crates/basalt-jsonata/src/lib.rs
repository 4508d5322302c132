//! JSONata 2.x, the query and transformation language for JSON (<https://docs.jsonata.org>),
//! as a pure library: no I/O, and the clock and random source `$now()`, `$millis()` and
//! `$random()` read are injectable so a host (Step Functions) can replay an evaluation exactly.
//!
//! [`Expression::parse`] compiles once; [`Expression::evaluate`] runs against a JSON input with
//! `$variable` bindings. [`Functions`] adds host functions (`$partition`, `$uuid`...).
//!
//! ```
//! use serde_json::{json, Map};
//! let out = basalt_jsonata::evaluate("$sum(items.price)", &json!({"items": [{"price": 2}, {"price": 3}]}), &Map::new()).unwrap();
//! assert_eq!(out, Some(json!(5)));
//! ```
//!
//! The evaluator follows the structure of the reference implementation (jsonata-js): the parser
//! flattens location paths into steps, tuple streams carry `@`/`#`/`%` bindings, and sequences
//! carry the singleton flags that decide when a one-item result is unwrapped.

mod ast;
mod error;
mod eval;
mod functions;
mod lexer;
mod parser;
mod process;
mod signature;
mod value;

pub use error::JsonataError;

use serde_json::{Map, Value};
use std::sync::Arc;

/// A host function: receives its evaluated arguments (an undefined argument arrives as `null`)
/// and returns a value.
pub type HostFn = Arc<dyn Fn(&[Value]) -> Result<Value, JsonataError> + Send + Sync>;

/// Host-provided extras for an evaluation: registered `$functions`, the clock behind `$now()` and
/// `$millis()` (milliseconds since the epoch, read once per evaluation as JSONata specifies), and
/// the source of `$random()` / `$shuffle()` numbers in `[0, 1)`.
#[derive(Clone, Default)]
pub struct Functions {
    pub(crate) functions: Vec<(String, HostFn)>,
    pub(crate) clock: Option<Arc<dyn Fn() -> i64 + Send + Sync>>,
    pub(crate) random: Option<Arc<dyn Fn() -> f64 + Send + Sync>>,
    pub(crate) timeout: Option<std::time::Duration>,
    pub(crate) max_depth: Option<usize>,
}

impl Functions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `$name` (without the `$`); it shadows a built-in of the same name.
    pub fn register(
        &mut self,
        name: &str,
        function: impl Fn(&[Value]) -> Result<Value, JsonataError> + Send + Sync + 'static,
    ) -> &mut Self {
        self.functions
            .push((name.trim_start_matches('$').to_string(), Arc::new(function)));
        self
    }

    /// The clock `$now()` and `$millis()` read (once per evaluation).
    pub fn clock(&mut self, now_millis: impl Fn() -> i64 + Send + Sync + 'static) -> &mut Self {
        self.clock = Some(Arc::new(now_millis));
        self
    }

    /// The random source for `$random()` and `$shuffle()`; must return numbers in `[0, 1)`.
    pub fn random(&mut self, next: impl Fn() -> f64 + Send + Sync + 'static) -> &mut Self {
        self.random = Some(Arc::new(next));
        self
    }
}

impl Functions {
    /// Fails an evaluation that runs longer than `limit` with `D1012`.
    pub fn timeout(&mut self, limit: std::time::Duration) -> &mut Self {
        self.timeout = Some(limit);
        self
    }

    /// Fails an evaluation nested deeper than `depth` with `D1011` (default and ceiling: 1200,
    /// which fits a 2 MiB thread stack, a tokio worker's, in release builds).
    pub fn max_depth(&mut self, depth: usize) -> &mut Self {
        self.max_depth = Some(depth);
        self
    }
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.functions.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Functions")
            .field("functions", &names)
            .finish()
    }
}

/// A parsed JSONata expression: parse once, evaluate many times (it is immutable and `Send + Sync`).
#[derive(Clone)]
pub struct Expression {
    source: Arc<str>,
    ast: Arc<ast::Node>,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expression")
            .field("source", &self.source)
            .finish()
    }
}

impl Expression {
    pub fn parse(src: &str) -> Result<Expression, JsonataError> {
        Ok(Expression {
            source: Arc::from(src),
            ast: Arc::new(compile(src)?),
        })
    }

    /// Evaluates against `input` with `bindings` as `$variables`; `Ok(None)` is JSONata's
    /// `undefined` (no result).
    pub fn evaluate(
        &self,
        input: &Value,
        bindings: &Map<String, Value>,
    ) -> Result<Option<Value>, JsonataError> {
        self.evaluate_with(input, bindings, &Functions::default())
    }

    pub fn evaluate_with(
        &self,
        input: &Value,
        bindings: &Map<String, Value>,
        functions: &Functions,
    ) -> Result<Option<Value>, JsonataError> {
        run(&self.ast, Some(input), bindings, functions)
    }

    /// Evaluates with no input at all (JSONata's `undefined` input, as opposed to `null`).
    pub fn evaluate_without_input(
        &self,
        bindings: &Map<String, Value>,
        functions: &Functions,
    ) -> Result<Option<Value>, JsonataError> {
        run(&self.ast, None, bindings, functions)
    }

    /// The source text this expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Parses and evaluates in one call; `Ok(None)` is `undefined`.
pub fn evaluate(
    expression: &str,
    input: &Value,
    bindings: &Map<String, Value>,
) -> Result<Option<Value>, JsonataError> {
    Expression::parse(expression)?.evaluate(input, bindings)
}

/// Parses and post-processes an expression into the evaluator's tree.
pub(crate) fn compile(src: &str) -> Result<ast::Node, JsonataError> {
    process::process(parser::parse(src)?)
}

fn run(
    ast: &ast::Node,
    input: Option<&Value>,
    bindings: &Map<String, Value>,
    functions: &Functions,
) -> Result<Option<Value>, JsonataError> {
    let ctx = eval::Ctx::new(functions);
    let env = eval::Frame::root();
    for (name, f) in &functions.functions {
        env.bind(
            name,
            value::Value::Function(std::rc::Rc::new(eval::Function::Host(f.clone()))),
        );
    }
    let root = eval::Frame::child(&env);
    for (name, v) in bindings {
        root.bind(name, value::Value::from_json(v));
    }
    // A top-level array input is wrapped so `$` still denotes the whole array.
    let input = match input {
        None => value::Value::Undefined,
        Some(Value::Array(items)) => value::Value::Array(
            std::rc::Rc::new(vec![value::Value::from_json(&Value::Array(items.clone()))]),
            value::Flags {
                sequence: true,
                outer_wrapper: true,
                ..value::Flags::default()
            },
        ),
        Some(v) => value::Value::from_json(v),
    };
    root.bind("$", input.clone());
    let result = eval::evaluate(&ctx, ast, &input, &root)?;
    Ok(result.to_json())
}
