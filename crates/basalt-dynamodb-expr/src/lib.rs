//! DynamoDB's data types and expression language, as a plain library (no I/O).
