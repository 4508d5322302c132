//! The parsed forms of DynamoDB's expressions. The parser builds them; other front ends (the
//! PartiQL crate) may build them directly with the constructors below and reuse the evaluators
//! (`Condition::eval`, `Update::apply`, `Projection::apply`).
//!
//! Names are already resolved: `#n` placeholders are substituted and `:v` values are inlined,
//! so a tree carries no reference to the request's `Params`.

use crate::value::AttributeValue;
use std::fmt;

/// A document path: `a.b[2].c` is `[Attr(a), Attr(b), Index(2), Attr(c)]`. The first element
/// is always an attribute name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path {
    pub elements: Vec<PathElement>,
}

/// One step of a [`Path`]: a map key (or top-level attribute) or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathElement {
    Attr(String),
    Index(usize),
}

impl Path {
    /// A top-level attribute.
    pub fn attr(name: impl Into<String>) -> Path {
        Path {
            elements: vec![PathElement::Attr(name.into())],
        }
    }

    /// This path followed by a map key.
    pub fn child(mut self, name: impl Into<String>) -> Path {
        self.elements.push(PathElement::Attr(name.into()));
        self
    }

    /// This path followed by a list index.
    pub fn index(mut self, i: usize) -> Path {
        self.elements.push(PathElement::Index(i));
        self
    }

    /// The top-level attribute name.
    pub fn top(&self) -> &str {
        match self.elements.first() {
            Some(PathElement::Attr(a)) => a,
            _ => "",
        }
    }

    /// Whether one of the two paths is a prefix of the other (DynamoDB's "overlap").
    pub fn overlaps(&self, other: &Path) -> bool {
        let n = self.elements.len().min(other.elements.len());
        self.elements[..n] == other.elements[..n]
    }

    /// DynamoDB's rendering in overlap/conflict messages: `[a, b, [2], c]`.
    pub fn bracketed(&self) -> String {
        let parts: Vec<String> = self
            .elements
            .iter()
            .map(|e| match e {
                PathElement::Attr(a) => a.clone(),
                PathElement::Index(i) => format!("[{i}]"),
            })
            .collect();
        format!("[{}]", parts.join(", "))
    }
}

/// `a.b[2].c`, the expression syntax (names unquoted).
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.elements.iter().enumerate() {
            match e {
                PathElement::Attr(a) if i == 0 => f.write_str(a)?,
                PathElement::Attr(a) => write!(f, ".{a}")?,
                PathElement::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A value in a condition: an attribute of the item, a literal (from `:v`), or `size(path)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(Path),
    Value(AttributeValue),
    Size(Path),
}

impl Operand {
    pub fn path(p: Path) -> Operand {
        Operand::Path(p)
    }

    pub fn value(v: AttributeValue) -> Operand {
        Operand::Value(v)
    }

    pub fn size(p: Path) -> Operand {
        Operand::Size(p)
    }
}

/// The six comparators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparator {
    /// The operator as written in expressions (`=`, `<>`, ...).
    pub fn symbol(self) -> &'static str {
        match self {
            Comparator::Eq => "=",
            Comparator::Ne => "<>",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
        }
    }
}

/// The condition functions.
#[derive(Debug, Clone, PartialEq)]
pub enum Function {
    /// `attribute_exists(path)`
    AttributeExists(Path),
    /// `attribute_not_exists(path)`
    AttributeNotExists(Path),
    /// `attribute_type(path, type)`: the second operand evaluates to an `S` naming a type.
    AttributeType(Operand, Operand),
    /// `begins_with(path, substr)`: strings and binary.
    BeginsWith(Operand, Operand),
    /// `contains(path, operand)`: substring, set member or list element.
    Contains(Operand, Operand),
}

/// A condition or filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare {
        left: Operand,
        op: Comparator,
        right: Operand,
    },
    /// `value BETWEEN low AND high` (inclusive).
    Between {
        value: Operand,
        low: Operand,
        high: Operand,
    },
    /// `value IN (a, b, ...)`.
    In {
        value: Operand,
        list: Vec<Operand>,
    },
    Function(Function),
    Not(Box<Condition>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
}

impl Condition {
    pub fn compare(left: Operand, op: Comparator, right: Operand) -> Condition {
        Condition::Compare { left, op, right }
    }

    pub fn between(value: Operand, low: Operand, high: Operand) -> Condition {
        Condition::Between { value, low, high }
    }

    pub fn is_in(value: Operand, list: Vec<Operand>) -> Condition {
        Condition::In { value, list }
    }

    pub fn function(f: Function) -> Condition {
        Condition::Function(f)
    }

    #[allow(clippy::should_implement_trait)]
    pub fn not(c: Condition) -> Condition {
        Condition::Not(Box::new(c))
    }

    pub fn and(a: Condition, b: Condition) -> Condition {
        Condition::And(Box::new(a), Box::new(b))
    }

    pub fn or(a: Condition, b: Condition) -> Condition {
        Condition::Or(Box::new(a), Box::new(b))
    }
}

/// An operand of a SET action: a path, a literal, or one of the two update functions.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOperand {
    Path(Path),
    Value(AttributeValue),
    /// `if_not_exists(path, operand)`: the attribute's value if it exists, else the operand.
    IfNotExists(Path, Box<UpdateOperand>),
    /// `list_append(a, b)`: the two lists concatenated.
    ListAppend(Box<UpdateOperand>, Box<UpdateOperand>),
}

/// The right-hand side of `SET path = ...`.
#[derive(Debug, Clone, PartialEq)]
pub enum SetValue {
    Operand(UpdateOperand),
    Plus(UpdateOperand, UpdateOperand),
    Minus(UpdateOperand, UpdateOperand),
}

/// One action of an update expression.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateAction {
    /// `SET path = value`
    Set { path: Path, value: SetValue },
    /// `REMOVE path`
    Remove(Path),
    /// `ADD path :v`: adds to a number or unions into a set, creating the attribute if missing.
    Add { path: Path, value: AttributeValue },
    /// `DELETE path :v`: removes elements from a set.
    Delete { path: Path, value: AttributeValue },
}

/// An update expression: its actions in the order they were written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    pub actions: Vec<UpdateAction>,
}

/// A projection expression: the paths to keep.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Projection {
    pub paths: Vec<Path>,
}

/// A comparison allowed in a key condition, as written (before it is checked against the key
/// schema by `KeyCondition::resolve`).
#[derive(Debug, Clone, PartialEq)]
pub enum KeyOp {
    Compare(Comparator, AttributeValue),
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

/// One `name <op> value` term of a key condition.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyTerm {
    pub name: String,
    pub op: KeyOp,
}

/// A parsed key condition expression: its terms, joined by `AND`.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyCondition {
    pub terms: Vec<KeyTerm>,
}
