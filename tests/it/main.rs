//! kpipe's integration tests: one binary, a module per capability.

mod bad_input;
mod common;
mod contract;
mod deploy;
mod fuzz;
mod ledger;
mod payouts;
mod pipeline_cli;
mod publishing;
mod readers;
mod run_fixtures;
mod s3;
mod statements;
mod validate;
