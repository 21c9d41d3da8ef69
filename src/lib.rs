//! kpipe: the nightly marketing KPI job. A YAML pipeline declares the extracts
//! (sources), the SQL views that turn them into KPIs (engine) and the Parquet outputs
//! (sinks); kpipe runs it on Apache DataFusion.

pub mod config;
pub mod error;

pub use error::{KpipeError, Result};
