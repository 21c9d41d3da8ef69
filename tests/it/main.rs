//! kpipe's integration tests: one binary, a module per capability.

mod common;
mod pipeline_cli;
mod readers;
mod run_fixtures;
mod validate;
