//! Sinks: where rows leave. Each output is a view written as zstd Parquet under the
//! output root.

pub mod parquet;
pub mod publish;
