//! The `kpipe` command: parses the command line, sets up logging, runs one command and
//! turns its outcome into an exit code. Everything else lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use kpipe::config::{self, CliThenEnv};
use kpipe::engine::yesterday;
use kpipe::error::exit_code;
use kpipe::storage::Stores;
use kpipe::{KpipeError, RunOptions, Runner};

/// kpipe runs a YAML-declared KPI pipeline on Apache DataFusion: it reads the extracts,
/// builds the SQL views in dependency order and writes the outputs as Parquet.
///
/// Exit codes: 0 ok, 2 bad command line, 65 bad input data, 70 internal error,
/// 75 transient failure (retry), 78 bad pipeline config, 143 stopped by SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "kpipe", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Log lines as readable text or as JSON (one object per line, for Kubernetes).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "KPIPE_LOG_FORMAT"
    )]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read the sources, build the views and write the outputs.
    Run {
        /// The pipeline YAML file.
        pipeline: PathBuf,
        /// The date the extracts describe (YYYY-MM-DD). Default: yesterday in the
        /// pipeline's business time zone.
        #[arg(long, value_parser = parse_date)]
        as_of: Option<NaiveDate>,
        /// Recompute a locked month (YYYY-MM, before the lookback window) on purpose, and
        /// append its ledger adjustments.
        #[arg(long, value_name = "YYYY-MM")]
        restate: Option<String>,
        /// Compute everything and print the ledger's drift (who, which component, how
        /// much); publish and append nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        vars: Vars,
    },
    /// Check the YAML and plan every view against the declared schemas, reading no data.
    Validate {
        pipeline: PathBuf,
        #[command(flatten)]
        vars: Vars,
    },
    /// Print the view graph: what each view reads and what each output writes where.
    Explain {
        pipeline: PathBuf,
        #[command(flatten)]
        vars: Vars,
    },
    /// Complete the publishing of runs that died after committing, and remove the
    /// leftovers of runs that never committed. Every run does this first, too.
    Recover {
        pipeline: PathBuf,
        #[command(flatten)]
        vars: Vars,
    },
}

#[derive(Debug, clap::Args)]
struct Vars {
    /// A pipeline variable, NAME=VALUE, for `${NAME}` in the YAML; wins over the
    /// environment. Repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| format!("`{text}` is not YYYY-MM-DD: {e}"))
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE"))?;
    Ok((name.to_string(), value.to_string()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return report(
                cli.log_format,
                &KpipeError::Internal(format!("starting tokio: {e}")),
            );
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(()) => ExitCode::from(exit_code::OK),
        Err(error) => report(cli.log_format, &error),
    }
}

async fn execute(command: Command) -> Result<(), KpipeError> {
    match command {
        Command::Run {
            pipeline,
            as_of,
            restate,
            dry_run,
            vars,
        } => {
            let pipeline = load(&pipeline, &vars)?;
            let as_of = as_of.unwrap_or_else(|| yesterday(pipeline.settings.timezone));
            let mut runner = Runner::new(pipeline, Stores::default()).with_stop(stop_on_signal());
            let options = RunOptions { restate, dry_run };
            let summary = runner.run_with(as_of, &options).await?;
            print!("{}", summary.to_text());
        }
        Command::Validate { pipeline, vars } => {
            let pipeline = load(&pipeline, &vars)?;
            let as_of = yesterday(pipeline.settings.timezone);
            let (sources, outputs) = (pipeline.sources.len(), pipeline.outputs.len());
            let graph = Runner::new(pipeline, Stores::default())
                .validate(as_of)
                .await?;
            println!(
                "ok: {sources} sources, {} views, {outputs} outputs",
                graph.views.len()
            );
        }
        Command::Recover { pipeline, vars } => {
            let pipeline = load(&pipeline, &vars)?;
            let completed = Runner::new(pipeline, Stores::default()).recover().await?;
            println!("recovered: {completed} run(s) completed");
        }
        Command::Explain { pipeline, vars } => {
            let pipeline = load(&pipeline, &vars)?;
            print!("{}", Runner::new(pipeline, Stores::default()).explain()?);
        }
    }
    Ok(())
}

/// A flag that turns true on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
fn stop_on_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tell, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = terminate => tracing::warn!(signal = "SIGTERM", "stopping the run"),
            _ = tokio::signal::ctrl_c() => tracing::warn!(signal = "SIGINT", "stopping the run"),
        }
        let _ = tell.send(true);
    });
    stop
}

fn load(file: &std::path::Path, vars: &Vars) -> Result<config::Pipeline, KpipeError> {
    config::load(file, &CliThenEnv { vars: &vars.vars }).map_err(KpipeError::Config)
}

/// Reports the error once, the way the log format asks, and gives its exit code.
fn report(format: LogFormat, error: &KpipeError) -> ExitCode {
    match format {
        LogFormat::Text => eprintln!("error: {error}"),
        LogFormat::Json => tracing::error!(exit_code = error.exit_code(), "{error}"),
    }
    ExitCode::from(error.exit_code())
}

/// Logs go to stderr; `KPIPE_LOG` (an env-filter directive) sets the level, `info` by
/// default.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("KPIPE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}
