//! The syntax tree. After `process` has run, location paths are `Path` nodes whose steps carry
//! their predicates (`stages`), grouping, and the tuple bindings (`focus` @, `index` #,
//! `ancestor` for %) the evaluator needs; `.` and `[` binaries no longer appear.

use crate::signature::Signature;
use std::sync::{Arc, Mutex, MutexGuard};

/// A parent (`%`) reference's binding slot, shared between the `%` node and the step that
/// binds it (labels are merged after the fact, hence the shared cell).
#[derive(Debug, Clone)]
pub(crate) struct SlotData {
    pub label: String,
    pub level: i32,
    pub index: usize,
}
pub(crate) type Slot = Arc<Mutex<SlotData>>;

/// The slot's data; a poisoned lock cannot happen (no code panics while holding it).
pub(crate) fn slot(s: &Slot) -> MutexGuard<'_, SlotData> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone)]
pub(crate) enum Stage {
    Filter(Node),
    Index(String),
}

#[derive(Debug, Clone)]
pub(crate) struct SortTerm {
    pub descending: bool,
    pub expression: Node,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Path(Vec<Node>),
    Binary(&'static str, Box<Node>, Box<Node>),
    /// `lhs[rhs]` before processing.
    Filter(Box<Node>, Box<Node>),
    /// `lhs{...}` before processing.
    GroupBy(Box<Node>, Vec<(Node, Node)>),
    /// `lhs^(...)` before processing; a `Sort` step afterwards.
    OrderBy(Box<Node>, Vec<SortTerm>),
    Sort(Vec<SortTerm>),
    /// `lhs@$v` / `lhs#$v` before processing.
    Focus(Box<Node>, String),
    IndexBind(Box<Node>, String),
    Negate(Box<Node>),
    ArrayCons(Vec<Node>),
    ObjectCons(Vec<(Node, Node)>),
    Name(String),
    Str(String),
    Number(f64),
    Bool(bool),
    Null,
    Wildcard,
    Descendant,
    Parent(Option<Slot>),
    Condition(Box<Node>, Box<Node>, Option<Box<Node>>),
    Block(Vec<Node>),
    Bind(String, Box<Node>),
    Regex(Arc<regex::Regex>),
    Call {
        procedure: Box<Node>,
        args: Vec<Node>,
        partial: bool,
    },
    Placeholder,
    Variable(String),
    Lambda {
        params: Vec<String>,
        signature: Option<Arc<Signature>>,
        body: Arc<Node>,
        thunk: bool,
    },
    Apply(Box<Node>, Box<Node>),
    Transform {
        pattern: Arc<Node>,
        update: Arc<Node>,
        delete: Option<Arc<Node>>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub position: usize,
    pub keep_array: bool,
    pub keep_singleton_array: bool,
    pub consarray: bool,
    pub tuple: bool,
    pub focus: Option<String>,
    pub index: Option<String>,
    pub ancestor: Option<Slot>,
    /// Predicates on a non-path expression (`$x[0]`).
    pub predicate: Vec<Stage>,
    /// Predicates and index bindings on a path step.
    pub stages: Vec<Stage>,
    pub group: Option<Arc<Group>>,
    pub seeking_parent: Vec<Slot>,
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub pairs: Vec<(Node, Node)>,
    pub position: usize,
}

impl Node {
    pub fn new(kind: Kind, position: usize) -> Node {
        Node {
            kind,
            position,
            keep_array: false,
            keep_singleton_array: false,
            consarray: false,
            tuple: false,
            focus: None,
            index: None,
            ancestor: None,
            predicate: Vec::new(),
            stages: Vec::new(),
            group: None,
            seeking_parent: Vec::new(),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Path(_) => "path",
            Kind::Name(_) => "name",
            Kind::Str(_) => "string",
            Kind::Number(_) => "number",
            Kind::Bool(_) | Kind::Null => "value",
            Kind::Wildcard => "wildcard",
            Kind::Descendant => "descendant",
            Kind::Parent(_) => "parent",
            Kind::Condition(..) => "condition",
            Kind::Block(_) => "block",
            Kind::Bind(..) => "bind",
            Kind::Regex(_) => "regex",
            Kind::Call { partial: true, .. } => "partial",
            Kind::Call { .. } => "function",
            Kind::Variable(_) => "variable",
            Kind::Lambda { .. } => "lambda",
            Kind::Apply(..) => "apply",
            Kind::Transform { .. } => "transform",
            Kind::Sort(_) => "sort",
            Kind::ArrayCons(_) | Kind::ObjectCons(_) | Kind::Negate(_) => "unary",
            _ => "binary",
        }
    }
}
