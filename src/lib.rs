//! kpipe: the nightly marketing KPI job. A YAML pipeline declares the extracts
//! (sources), the SQL views that turn them into KPIs (engine) and the Parquet outputs
//! (sinks); kpipe runs it on Apache DataFusion.
//!
//! The data flows through the modules in this order: [`config`] → [`sources`] →
//! [`engine`] → [`sinks`], driven by [`run`].

pub mod config;
pub mod engine;
pub mod error;
pub mod ledger;
pub mod manifest;
pub mod report;
pub mod run;
pub mod sinks;
pub mod sources;
pub mod storage;

pub use error::{KpipeError, Result};
pub use run::{RunOptions, RunSummary, Runner};
