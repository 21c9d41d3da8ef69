//! Engine: the DataFusion session a pipeline runs in, and the SQL views planned on it.
//! Views are planned in dependency order and registered as views of the session; nothing
//! runs until an output asks for rows.

mod builtin;
mod graph;
mod params;
mod views;

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::catalog::view::ViewTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::config::{Diagnostics, EngineKind, Pipeline};
use crate::error::{KpipeError, Result};
use crate::storage::Stores;

pub use builtin::{RESERVED, kpi_view, register as register_builtin};
pub use graph::ViewGraph;
pub use params::{RunValues, yesterday};
pub use views::{View, load_views};

/// Builds the session a pipeline runs in. Another engine (a Ballista cluster) slots in
/// here: everything after this point only sees a `SessionContext`.
pub fn session(pipeline: &Pipeline, stores: &mut Stores) -> Result<SessionContext> {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .set_bool("datafusion.sql_parser.collect_spans", true)
        .set_str("datafusion.execution.time_zone", pipeline.timezone_name());
    for (key, value) in &pipeline.settings.datafusion {
        config = config.set_str(key, value);
    }

    // Every store the pipeline names is known up front: the roots and each source.
    stores.configure(pipeline.settings.storage);
    let mut urls = vec![pipeline.input_root.clone(), pipeline.output_root.clone()];
    urls.extend(pipeline.sources.iter().map(|s| s.url.clone()));
    urls.extend(pipeline.ledger.iter().map(|l| l.root.clone()));
    for url in &urls {
        stores.store_for(url)?;
    }
    let runtime = RuntimeEnvBuilder::new()
        .build_arc()
        .map_err(|e| KpipeError::from_engine(e, "creating the runtime"))?;
    for (base, store) in stores.iter() {
        runtime.register_object_store(&base, Arc::clone(store));
    }
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    match pipeline.settings.engine {
        EngineKind::Local => Ok(SessionContext::new_with_state(state)),
    }
}

/// Loads the pipeline's views, adds the derived `kpi_values`, and orders them.
/// Problems are config problems.
pub fn view_graph(pipeline: &Pipeline, ctx: &SessionContext) -> Result<ViewGraph, Diagnostics> {
    let state = ctx.state();
    let (mut views, mut problems) = load_views(&pipeline.views_dir, &state);
    for view in &views {
        if RESERVED.contains(&view.name.as_str()) {
            problems.push(view.diagnostic(
                None,
                format!(
                    "`{}` is a table kpipe makes itself; rename the view",
                    view.name
                ),
            ));
        }
    }
    for source in &pipeline.sources {
        if RESERVED.contains(&source.name.as_str()) {
            let message = format!(
                "`{}` is a table kpipe makes itself; rename the source",
                source.name
            );
            problems.push(pipeline.diagnostic(&format!("sources.{}", source.name), message));
        }
    }
    for kpi in &pipeline.kpis {
        let view = kpi_view(&kpi.id);
        if !views.iter().any(|v| v.name == view) {
            let message = format!(
                "no view computes it: add {}/{view}.sql",
                pipeline.views_dir.display()
            );
            problems.push(pipeline.diagnostic(&format!("kpis.{}", kpi.id), message));
        }
    }
    if let Some(sql) = builtin::kpi_values_sql(pipeline) {
        match views::parse_sql("kpi_values".into(), &pipeline.file, sql, &state) {
            Ok(view) => views.push(view),
            Err(problem) => problems.push(problem),
        }
    }
    let mut tables: BTreeSet<String> = pipeline.sources.iter().map(|s| s.name.clone()).collect();
    tables.extend(
        RESERVED
            .iter()
            // kpi_values is a view; the ledger's tables come after every view.
            .filter(|t| **t != "kpi_values" && !t.starts_with("ledger_"))
            .map(|t| t.to_string()),
    );
    match ViewGraph::try_new(views, &tables) {
        Ok(graph) if problems.is_empty() => Ok(graph),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
}

/// Plans every view in order against the tables registered in `ctx` and registers it.
/// A view that fails to plan is reported, and so is every view that reads it; the
/// others are still planned so that all problems show at once. Then checks that each
/// output names a view that has its partition columns.
///
/// With `materialize_into` (a run, not validate: a public and a private folder), each
/// view named in `views.materialize` is computed as soon as it is planned, written as
/// Parquet under that folder, and registered as that Parquet, so the views after it read
/// it instead of computing it again. The ledger's payouts view, and any view made from
/// it, go to the private folder (under the ledger's root): they carry pay per person.
pub async fn plan_views(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    graph: &ViewGraph,
    values: &RunValues,
    materialize_into: Option<(&url::Url, &url::Url)>,
) -> Result<()> {
    let state = ctx.state();
    let lookup = |name: &str| values.lookup(pipeline, name);
    let mut problems = Diagnostics::default();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    for view in &graph.views {
        if let Some(broken) = view.reads.iter().find(|t| failed.contains(*t)) {
            tracing::debug!(view = %view.name, reads = %broken, "not planned: reads a view that failed");
            failed.insert(view.name.clone());
            continue;
        }
        let statement = match views::bind_params(view, &state, &lookup) {
            Ok(statement) => statement,
            Err(more) => {
                problems.extend(more);
                failed.insert(view.name.clone());
                continue;
            }
        };
        let plan = match state.statement_to_plan(statement).await {
            Ok(plan) => plan,
            Err(e) => {
                problems
                    .push(view.diagnostic(views::error_position(&e), views::sql_error_message(&e)));
                failed.insert(view.name.clone());
                continue;
            }
        };
        tracing::debug!(view = %view.name, plan = %plan.display_indent(), "view planned");
        if let Some((public, private)) =
            materialize_into.filter(|_| pipeline.materialize.contains(&view.name))
            && problems.is_empty()
        {
            let personal = pipeline.ledger.as_ref().is_some_and(|l| {
                view.name == l.payouts || graph.upstream(&view.name).contains(&l.payouts)
            });
            let folder = if personal { private } else { public };
            materialize(ctx, &view.name, plan, folder).await?;
            continue;
        }
        let table = ViewTable::new(plan, Some(view.sql.clone()));
        if let Err(e) = ctx.register_table(view.name.as_str(), Arc::new(table)) {
            problems.push(view.diagnostic(None, e.to_string()));
            failed.insert(view.name.clone());
        }
    }
    for (i, name) in pipeline.materialize.iter().enumerate() {
        if graph.view(name).is_none() {
            problems.push(pipeline.diagnostic(
                &format!("views.materialize[{i}]"),
                format!("no view `{name}`"),
            ));
        }
    }
    check_outputs(ctx, pipeline, graph, &failed, &mut problems).await;
    check_ledger(ctx, pipeline, graph, &failed, &mut problems).await;
    problems.into_result(()).map_err(KpipeError::Config)
}

/// Computes `plan` once into `folder/<name>/` as Parquet and registers that as `name`.
pub(crate) async fn materialize(
    ctx: &SessionContext,
    name: &str,
    plan: datafusion::logical_expr::LogicalPlan,
    folder: &url::Url,
) -> Result<()> {
    let started = std::time::Instant::now();
    let engine = |e| KpipeError::from_engine(e, &format!("materializing view {name}"));
    let target = folder
        .join(&format!("{name}/"))
        .map_err(|e| KpipeError::Internal(format!("materializing {name}: {e}")))?;
    let frame = datafusion::dataframe::DataFrame::new(ctx.state(), plan);
    // Read back with the view's own schema: a view with no rows writes no file.
    let schema = frame.schema().as_arrow().clone();
    frame
        .write_parquet(
            target.as_str(),
            datafusion::dataframe::DataFrameWriteOptions::new(),
            None,
        )
        .await
        .map_err(engine)?;
    let options = datafusion::prelude::ParquetReadOptions::default().schema(&schema);
    let table = ctx
        .read_parquet(target.as_str(), options)
        .await
        .map_err(engine)?;
    ctx.register_table(name, table.into_view())
        .map_err(engine)?;
    tracing::info!(view = %name, ms = started.elapsed().as_millis() as u64, "view materialized");
    Ok(())
}

/// The columns the ledger reads from its payouts view, and their types.
pub const PAYOUT_COLUMNS: [(&str, &str); 17] = [
    ("period", "Utf8"),
    ("employee_id", "Utf8"),
    ("employee_name", "Utf8"),
    ("team", "Utf8"),
    ("role", "Utf8"),
    ("level", "Utf8"),
    ("plan", "Utf8"),
    ("component", "Utf8"),
    ("rule", "Utf8"),
    ("basis", "Float64"),
    ("multiplier", "Float64"),
    ("proration", "Float64"),
    ("active_days", "Int64"),
    ("month_days", "Int64"),
    ("monthly_bonus_target", "Decimal128(18, 2)"),
    ("amount", "Decimal128(18, 2)"),
    ("currency", "Utf8"),
];

/// The ledger's views exist and the payouts view has the columns the ledger needs; no
/// output writes the payouts, or anything made from them, where BI reads (names and pay
/// per person belong under the ledger's root only).
async fn check_ledger(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    graph: &ViewGraph,
    failed: &BTreeSet<String>,
    problems: &mut Diagnostics,
) {
    let Some(ledger) = &pipeline.ledger else {
        return;
    };
    let views = [
        ("payouts", &ledger.payouts),
        ("scorecard", &ledger.scorecard),
        ("scorecard_summary", &ledger.scorecard_summary),
    ];
    for (key, view) in views {
        if graph.view(view).is_none() {
            problems.push(pipeline.diagnostic(
                &format!("ledger.{key}"),
                format!(
                    "no view `{view}`: add {}/{view}.sql",
                    pipeline.views_dir.display()
                ),
            ));
        }
    }
    for output in &pipeline.outputs {
        if output.view == ledger.payouts || graph.upstream(&output.view).contains(&ledger.payouts) {
            problems.push(pipeline.diagnostic(
                &format!("outputs.{}", output.name),
                format!(
                    "it is made from `{}`, which holds names and pay per person: only the \
                     ledger, under its own root, may carry those",
                    ledger.payouts
                ),
            ));
        }
    }
    if failed.contains(&ledger.payouts) || graph.view(&ledger.payouts).is_none() {
        return;
    }
    let Ok(table) = ctx.table_provider(ledger.payouts.as_str()).await else {
        return;
    };
    let schema = table.schema();
    let view = graph.view(&ledger.payouts).expect("checked above");
    for (column, expected) in PAYOUT_COLUMNS {
        let found = schema
            .field_with_name(column)
            .map(|f| f.data_type().to_string());
        let problem = match found {
            Err(_) => format!("the ledger needs a column `{column}` ({expected})"),
            Ok(t) if t != expected && !(expected == "Utf8" && t == "Utf8View") => {
                format!("the ledger needs `{column}` as {expected}, the view gives {t}")
            }
            Ok(_) => continue,
        };
        problems.push(view.diagnostic(None, problem));
    }
}

async fn check_outputs(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    graph: &ViewGraph,
    failed: &BTreeSet<String>,
    problems: &mut Diagnostics,
) {
    for output in &pipeline.outputs {
        let key = format!("outputs.{}", output.name);
        if graph.view(&output.view).is_none() {
            let message = format!(
                "no view `{}`: add {}/{}.sql",
                output.view,
                pipeline.views_dir.display(),
                output.view
            );
            problems.push(pipeline.diagnostic(&format!("{key}.view"), message));
            continue;
        }
        if failed.contains(&output.view) {
            continue;
        }
        let Ok(table) = ctx.table_provider(output.view.as_str()).await else {
            continue;
        };
        let schema = table.schema();
        for (i, column) in output.partition_by.iter().enumerate() {
            if schema.field_with_name(column).is_err() {
                problems.push(pipeline.diagnostic(
                    &format!("{key}.partition_by[{i}]"),
                    format!("view `{}` has no column `{column}`", output.view),
                ));
            }
        }
        if !output.partition_by.is_empty() && output.partition_by.len() == schema.fields().len() {
            problems.push(pipeline.diagnostic(
                &format!("{key}.partition_by"),
                "an output needs at least one column besides its partition columns",
            ));
        }
    }
}
