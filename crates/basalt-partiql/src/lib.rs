//! PartiQL statements as DynamoDB runs them, as a plain library (no I/O).
