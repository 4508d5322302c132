//! Validation diagnostics in the shape ValidateStateMachineDefinition returns, and the
//! `InvalidDefinition` message CreateStateMachine builds from them.

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// `ERROR` or `WARNING`.
    pub severity: String,
    /// e.g. `SCHEMA_VALIDATION_FAILED`, `MISSING_TRANSITION_TARGET`, `INVALID_JSON_DESCRIPTION`.
    pub code: String,
    pub message: String,
    /// A JSON pointer into the definition, e.g. `/States/Foo/Next`.
    pub location: Option<String>,
}

impl Diagnostic {
    pub(crate) fn error(
        code: &str,
        message: impl Into<String>,
        location: impl Into<String>,
    ) -> Self {
        let location = location.into();
        Diagnostic {
            severity: "ERROR".into(),
            code: code.into(),
            message: message.into(),
            location: if location.is_empty() {
                None
            } else {
                Some(location)
            },
        }
    }
}

/// AWS's text, one quoted list: `Invalid State Machine Definition: 'CODE: message at
/// /location, CODE: message'` (as CreateStateMachine answers, e.g. in
/// <https://github.com/localstack/localstack/issues/11978>). Warnings never make a
/// definition invalid, so they are left out.
pub fn invalid_definition_message(diags: &[Diagnostic]) -> String {
    let parts: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == "ERROR")
        .map(|d| match &d.location {
            Some(l) => format!("{}: {} at {}", d.code, d.message, l),
            None => format!("{}: {}", d.code, d.message),
        })
        .collect();
    format!("Invalid State Machine Definition: '{}'", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_joins_errors_only() {
        let d = vec![
            Diagnostic::error(
                "MISSING_TRANSITION_TARGET",
                "Missing 'Next' target: Bar",
                "/States/Foo/Next",
            ),
            Diagnostic {
                severity: "WARNING".into(),
                ..Diagnostic::error("UNREACHABLE_STATE", "x", "")
            },
            Diagnostic::error(
                "SCHEMA_VALIDATION_FAILED",
                "The field 'X' is not supported",
                "",
            ),
        ];
        assert_eq!(
            invalid_definition_message(&d),
            "Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: Bar at /States/Foo/Next, SCHEMA_VALIDATION_FAILED: The field 'X' is not supported'"
        );
    }
}
