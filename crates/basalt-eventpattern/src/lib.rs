//! Amazon EventBridge event patterns and Amazon SNS subscription filter policies.
//!
//! - [`Pattern`]: one EventBridge event pattern (PutRule, TestEventPattern, archives, pipes).
//! - [`FilterPolicy`]: one SNS subscription filter policy, in either [`FilterPolicyScope`].
//! - [`Matcher`]: many patterns behind one lookup, for routing an event to every rule of a bus.
//! - [`PatternError`]: what AWS says about an invalid pattern or policy, word for word.
//!
//! ```
//! use basalt_eventpattern::{Matcher, Pattern};
//! use serde_json::json;
//!
//! let p = Pattern::parse(r#"{"source": ["aws.ec2"], "detail": {"state": [{"anything-but": "pending"}]}}"#)?;
//! let event = json!({"source": "aws.ec2", "detail": {"state": "running"}});
//! assert!(p.matches(&event));
//!
//! let mut rules = Matcher::new();
//! rules.insert("ec2-not-pending", &p);
//! assert_eq!(rules.matches(&event), vec!["ec2-not-pending"]);
//! # Ok::<(), basalt_eventpattern::PatternError>(())
//! ```
//!
//! Behaviour follows the EventBridge user guide and the rule compiler EventBridge runs
//! (aws/event-ruler); `tests/conformance/` holds every example of the AWS pages as a table.
//! Nothing here does I/O.

mod ast;
mod cidr;
mod error;
mod eval;
mod matcher;
mod parse;
mod scalar;
mod sns;
mod wildcard;

use serde_json::Value;

pub use error::{ErrorKind, PatternError};
pub use matcher::Matcher;
pub use sns::{FilterPolicy, FilterPolicyScope};

/// One compiled EventBridge event pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    root: ast::ObjNode,
}

impl Pattern {
    /// Parses and validates a pattern; errors carry EventBridge's `InvalidEventPatternException`
    /// message. When a key repeats, the last one counts, as EventBridge documents.
    pub fn parse(json: &str) -> Result<Pattern, PatternError> {
        let v: Value =
            serde_json::from_str(json).map_err(|e| PatternError::pattern(e.to_string()))?;
        Self::from_value(&v)
    }

    /// Same as [`Pattern::parse`] for a pattern that is already JSON.
    pub fn from_value(v: &Value) -> Result<Pattern, PatternError> {
        Ok(Pattern {
            root: parse::parse_root(v, parse::Dialect::EventBridge)?,
        })
    }

    /// Whether the event matches.
    pub fn matches(&self, event: &Value) -> bool {
        eval::matches(
            &self.root,
            eval::Ctx {
                root: event,
                key_presence: false,
            },
        )
    }

    /// Whether the event, given as JSON text, matches; text that is not JSON is an error
    /// (`ValidationException`, as TestEventPattern answers).
    pub fn matches_str(&self, event_json: &str) -> Result<bool, PatternError> {
        let v: Value = serde_json::from_str(event_json).map_err(|_| PatternError::event())?;
        Ok(self.matches(&v))
    }

    pub(crate) fn root(&self) -> &ast::ObjNode {
        &self.root
    }
}
