//! The AWS SDK for Rust as a second, independently written client against a real Basalt
//! server. One test binary for every service (each links the SDK crates once): nextest runs
//! each test in a process of its own all the same.

mod common;

mod agents;
mod bedrock;
mod dynamodb;
mod s3;
