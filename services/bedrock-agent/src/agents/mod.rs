//! Amazon Bedrock Agents on the local chat model.
//!
//! * Control plane (`bedrock-agent`): agents (`agent.rs`), their action groups
//!   (`action_groups.rs`), knowledge base associations (`associations.rs`), the
//!   collaborators of supervisor agents (`collaborators.rs`), versions and aliases
//!   (`aliases.rs`).
//! * Runtime (`bedrock-agent-runtime`): InvokeAgent and InvokeInlineAgent (`invoke.rs`),
//!   one turn of the orchestration loop (`orchestrate.rs`) and what it checks in a small
//!   model's output (`checks.rs`), the steps around it (`steps.rs`), collaborators and
//!   routing (`collaborate.rs`), custom parser Lambda functions (`parser.rs`), the Lambda
//!   contract (`lambda.rs`), sessions and memory (`sessions.rs`).
//!
//! The model calls the agent's actions as tools through bedrock-runtime's Converse, so
//! each call is decoded under a grammar from its schema, and guardrails, metrics and model
//! routes apply as to any Converse call.

pub mod action_groups;
pub mod agent;
pub mod aliases;
pub mod associations;
pub mod checks;
pub mod collaborate;
pub mod collaborators;
pub mod invoke;
pub mod lambda;
pub mod model;
pub mod orchestrate;
pub mod parser;
pub mod prompts;
pub mod schema;
pub mod sessions;
pub mod steps;
