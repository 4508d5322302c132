//! Conversation-shape rules of Bedrock's Converse API (and of the Nova body, which shares its
//! message shapes), with Bedrock's own messages.
//!
//! Where the wording was found in public reports of real Bedrock answers, the source is named
//! next to it; wording marked *modelled* was not found and follows Bedrock's style.

use crate::Role;
use basalt_core::AwsError;

/// An empty conversation, or one whose first message is the assistant's. Seen for both cases
/// (pydantic/pydantic-ai#4495: a request with a system prompt and no messages;
/// langchain4j/langchain4j#1864 and others: a first assistant message).
pub const MUST_START_WITH_USER: &str = "A conversation must start with a user message. Try again with a conversation that starts with a user message.";

/// Two consecutive messages of the same role (microsoft/semantic-kernel#10277,
/// langchain-ai/langchain-aws#130, aws-samples/bedrock-access-gateway#25).
pub const MUST_ALTERNATE: &str = "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.";

/// The conversation starts with the user and alternates between user and assistant.
pub fn check_roles(roles: &[Role]) -> Result<(), AwsError> {
    if roles.first() != Some(&Role::User) {
        return Err(AwsError::validation(MUST_START_WITH_USER));
    }
    if roles.windows(2).any(|w| w[0] == w[1]) {
        return Err(AwsError::validation(MUST_ALTERNATE));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_must_start_with_user_and_alternate() {
        use Role::{Assistant as A, User as U};
        assert!(check_roles(&[U]).is_ok());
        assert!(check_roles(&[U, A, U, A]).is_ok());
        for (roles, msg) in [
            (vec![], MUST_START_WITH_USER),
            (vec![A, U], MUST_START_WITH_USER),
            (vec![U, U], MUST_ALTERNATE),
            (vec![U, A, A], MUST_ALTERNATE),
        ] {
            let err = check_roles(&roles).unwrap_err();
            assert_eq!(err.code, "ValidationException");
            assert_eq!(err.message, msg, "{roles:?}");
        }
    }
}
