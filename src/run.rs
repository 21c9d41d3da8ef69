//! The three commands over one pipeline: validate (plan without data), explain (the
//! view graph) and run (read, build, write, summarise).

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;

use object_store::ObjectStoreExt;
use url::Url;

use crate::config::Pipeline;
use crate::engine::{self, RunValues, ViewGraph};
use crate::error::{KpipeError, Result};
use crate::manifest;
use crate::report::{explain_text, log_summary};
use crate::sinks::parquet::WrittenFile;
use crate::sinks::publish::{
    StagedOutput, folder, folder_url_of, publish, published_path, remove_folder, roll_forward,
    run_age, stage_output,
};
use crate::sources::{self, QUARANTINE, SourceListing};
use crate::storage::{Stores, object_path};

/// What a run read, built and wrote, with the time each step took.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub as_of: NaiveDate,
    pub run_id: String,
    pub sources: Vec<SourceListing>,
    pub views: Vec<StepStat>,
    pub outputs: Vec<OutputStat>,
    pub elapsed: Duration,
}

/// Rows of one view, and the time taken to produce them.
#[derive(Debug, Clone)]
pub struct StepStat {
    pub name: String,
    pub rows: usize,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
pub struct OutputStat {
    pub name: String,
    pub view: String,
    pub files: Vec<WrittenFile>,
    pub elapsed: Duration,
}

impl OutputStat {
    pub fn rows(&self) -> usize {
        self.files.iter().map(|f| f.rows).sum()
    }
}

/// A pipeline and the object stores it reads and writes.
pub struct Runner {
    pipeline: Pipeline,
    stores: Stores,
    /// Turns true when the run must stop (SIGTERM): see [`Runner::with_stop`].
    stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Runner {
    pub fn new(pipeline: Pipeline, stores: Stores) -> Self {
        Self {
            pipeline,
            stores,
            stop: None,
        }
    }

    /// Stops the run when `stop` turns true: the step under way is abandoned (an
    /// object being uploaded is never completed, so readers keep the previous one),
    /// the staged extracts are removed and the manifest records the interruption.
    pub fn with_stop(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Plans every view against the declared source schemas, reading no data. Returns
    /// every problem found.
    pub async fn validate(&mut self, as_of: NaiveDate) -> Result<ViewGraph> {
        let values = RunValues::try_new(&self.pipeline, as_of)?;
        let ctx = engine::session(&self.pipeline, &mut self.stores)?;
        let graph = engine::view_graph(&self.pipeline, &ctx).map_err(KpipeError::Config)?;
        sources::register_declared(&ctx, &self.pipeline)?;
        engine::register_builtin(&ctx, &self.pipeline, &values)?;
        engine::plan_views(&ctx, &self.pipeline, &graph, &values, None).await?;
        Ok(graph)
    }

    /// The view graph as text: what each view reads, and what each output writes where.
    pub fn explain(&mut self) -> Result<String> {
        let ctx = engine::session(&self.pipeline, &mut self.stores)?;
        let graph = engine::view_graph(&self.pipeline, &ctx).map_err(KpipeError::Config)?;
        Ok(explain_text(&self.pipeline, &graph))
    }

    /// Completes or discards runs that died: a staging folder whose run wrote a
    /// `succeeded` manifest is published from it (the run had committed); one without a
    /// manifest, older than a day, is removed (the run did not happen; a younger one may
    /// belong to a run still going). Returns how many runs were completed.
    pub async fn recover(&mut self) -> Result<usize> {
        let root = self.pipeline.output_root.clone();
        let store = self.stores.store_for(&root)?;
        let base = object_path(&root)?;
        let staging = base.clone().join("_staging");
        let listing = store
            .list_with_delimiter(Some(&staging))
            .await
            .map_err(|e| KpipeError::from_store(e, &format!("listing {staging}")))?;
        let mut completed = 0;
        for folder in listing.common_prefixes {
            let Some(run_id) = folder.filename().map(str::to_string) else {
                continue;
            };
            let manifest_path = base.clone().join("runs").join(format!("{run_id}.json"));
            let manifest = match store.get(&manifest_path).await {
                Ok(body) => {
                    let bytes = body
                        .bytes()
                        .await
                        .map_err(|e| KpipeError::from_store(e, "reading a manifest"))?;
                    serde_json::from_slice::<serde_json::Value>(&bytes).ok()
                }
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => {
                    return Err(KpipeError::from_store(
                        e,
                        &format!("reading {manifest_path}"),
                    ));
                }
            };
            let folder_url = folder_url_of(&root, &folder)?;
            match manifest {
                Some(m) if m["outcome"] == "succeeded" => {
                    roll_forward(store.as_ref(), &base, &m).await?;
                    remove_folder(&mut self.stores, &folder_url).await?;
                    tracing::warn!(%run_id, "completed the publishing of a run that died after committing");
                    completed += 1;
                }
                Some(_) => remove_folder(&mut self.stores, &folder_url).await?,
                None if run_age(&run_id).is_some_and(|age| age > chrono::Duration::days(1)) => {
                    tracing::warn!(%run_id, "removed the staging folder of a run that never committed");
                    remove_folder(&mut self.stores, &folder_url).await?;
                }
                None => {}
            }
        }
        Ok(completed)
    }

    /// Runs the pipeline for `as_of`: reads and checks the sources, writes the
    /// quarantine, stops if a source has too many bad rows, then plans the views and
    /// writes every output. The staged extracts are removed at the end, whatever
    /// happened.
    pub async fn run(&mut self, as_of: NaiveDate) -> Result<RunSummary> {
        let started_at = chrono::Utc::now();
        let started = Instant::now();
        let values = RunValues::try_new(&self.pipeline, as_of)?;
        let run_id = new_run_id(as_of);
        tracing::info!(pipeline = %self.pipeline.name, %as_of, %run_id, window_start = %values.window_start, "run started");

        let ctx = engine::session(&self.pipeline, &mut self.stores)?;
        let graph = engine::view_graph(&self.pipeline, &ctx).map_err(KpipeError::Config)?;
        self.recover().await?;
        let staging = folder(&self.pipeline.output_root, &format!("_staging/{run_id}"))?;
        let mut summary = RunSummary {
            as_of,
            run_id: run_id.clone(),
            sources: Vec::new(),
            views: Vec::new(),
            outputs: Vec::new(),
            elapsed: Duration::ZERO,
        };
        let stop = self.stop.clone();
        let result = tokio::select! {
            result = self.run_staged(&ctx, &graph, &values, &staging, &mut summary) => result,
            () = stopped(stop) => Err(KpipeError::Interrupted("asked to stop".into())),
        };
        let staged = match result {
            Ok(staged) => staged,
            Err(error) => {
                if let Err(e) = remove_folder(&mut self.stores, &staging).await {
                    tracing::warn!(error = %e, "could not remove the staged extracts");
                }
                summary.elapsed = started.elapsed();
                let manifest = self.manifest(&summary, &values, started_at, Some(&error), &[]);
                self.write_manifest(&manifest).await?;
                return Err(error);
            }
        };

        // Commit: the manifest names every object the run publishes and where it is
        // staged. Before it exists the run did not happen; once it does, the run is
        // completed, by this process or by the next run's recovery.
        let root = self.pipeline.output_root.clone();
        summary
            .outputs
            .extend(staged.iter().map(|s| s.stat.clone()));
        summary.elapsed = started.elapsed();
        let manifest = self.manifest(&summary, &values, started_at, None, &staged);
        self.write_manifest(&manifest).await?;
        summary
            .outputs
            .truncate(summary.outputs.len() - staged.len());
        tracing::info!(tables = staged.len(), "publishing");
        let periods = values.periods();
        for stat in staged {
            summary
                .outputs
                .push(publish(&mut self.stores, &root, stat, &periods).await?);
        }
        if let Err(e) = remove_folder(&mut self.stores, &staging).await {
            tracing::warn!(error = %e, "could not remove the staged extracts");
        }
        summary.elapsed = started.elapsed();
        log_summary(&summary);
        Ok(summary)
    }

    fn manifest(
        &self,
        summary: &RunSummary,
        values: &RunValues,
        started_at: chrono::DateTime<chrono::Utc>,
        error: Option<&KpipeError>,
        staged: &[StagedOutput],
    ) -> manifest::Manifest {
        let pipeline = &self.pipeline;
        let base = crate::storage::base_of(&pipeline.output_root);
        let mut inputs = Vec::new();
        for listing in &summary.sources {
            for meta in &listing.files {
                let path = format!(
                    "{}/{}",
                    crate::storage::base_of(&pipeline.input_root),
                    meta.location
                );
                let counted = listing
                    .file_rows
                    .iter()
                    .find(|(file, _, _)| file.ends_with(meta.location.as_ref()));
                inputs.push(manifest::InputFile {
                    source: listing.name.clone(),
                    path,
                    size: meta.size,
                    etag: meta.e_tag.clone(),
                    last_modified: meta.last_modified,
                    rows_read: counted.map_or(0, |c| c.1),
                    rows_quarantined: counted.map_or(0, |c| c.2),
                });
            }
        }
        let mut outputs = Vec::new();
        for output in &summary.outputs {
            let staged = staged.iter().find(|s| s.stat.name == output.name);
            let table =
                object_path(&pipeline.output_root).map(|root| root.join(output.name.as_str()));
            for file in &output.files {
                // A staged file is published at the same path under the table.
                let published = match (staged, &table) {
                    (Some(s), Ok(table)) => published_path(&s.staged_table, table, &file.path).ok(),
                    _ => Some(file.path.clone()),
                };
                outputs.push(manifest::OutputFile {
                    table: output.name.clone(),
                    path: format!("{base}/{}", published.as_ref().unwrap_or(&file.path)),
                    rows: file.rows as u64,
                    staged: staged.map(|_| file.path.to_string()),
                });
            }
        }
        let mut timings: Vec<manifest::Timing> = Vec::new();
        let timing = |step, name: &str, d: Duration| manifest::Timing {
            step,
            name: name.to_string(),
            ms: ms(d),
        };
        timings.extend(
            summary
                .sources
                .iter()
                .map(|s| timing("source", &s.name, s.elapsed)),
        );
        timings.extend(
            summary
                .views
                .iter()
                .map(|v| timing("view", &v.name, v.elapsed)),
        );
        timings.extend(
            summary
                .outputs
                .iter()
                .map(|o| timing("output", &o.name, o.elapsed)),
        );
        timings.push(timing("run", &pipeline.name, summary.elapsed));
        manifest::Manifest {
            format: manifest::FORMAT,
            run_id: summary.run_id.clone(),
            pipeline: manifest::pipeline_version(pipeline),
            plans: manifest::plan_versions(pipeline),
            as_of: summary.as_of,
            periods: values.periods(),
            started_at,
            finished_at: chrono::Utc::now(),
            outcome: match error {
                None => "succeeded",
                Some(KpipeError::Interrupted(_)) => "interrupted",
                Some(_) => "failed",
            },
            error: error.map(|e| manifest::RunError {
                exit_code: e.exit_code(),
                message: e.to_string(),
            }),
            inputs,
            outputs,
            timings_ms: timings,
        }
    }

    /// Writes `runs/<run_id>.json` under the output root in one PUT.
    async fn write_manifest(&mut self, manifest: &manifest::Manifest) -> Result<()> {
        let root = &self.pipeline.output_root;
        let store = self.stores.store_for(root)?;
        let path = object_path(root)?
            .join("runs")
            .join(format!("{}.json", manifest.run_id));
        let body = serde_json::to_vec_pretty(manifest)
            .map_err(|e| KpipeError::Internal(format!("serialising the manifest: {e}")))?;
        store
            .put(&path, body.into())
            .await
            .map_err(|e| KpipeError::from_store(e, &format!("writing the run manifest {path}")))?;
        tracing::info!(manifest = %path, outcome = manifest.outcome, "run manifest written");
        Ok(())
    }

    async fn run_staged(
        &mut self,
        ctx: &SessionContext,
        graph: &ViewGraph,
        values: &RunValues,
        staging: &Url,
        summary: &mut RunSummary,
    ) -> Result<Vec<StagedOutput>> {
        let pipeline = &self.pipeline;
        let run_id = summary.run_id.clone();
        summary.sources =
            sources::register_all(ctx, pipeline, &mut self.stores, staging, &run_id).await?;
        let periods = values.periods();
        let tables = object_path(staging)?.join("tables");
        let root = &pipeline.output_root;
        let quarantine = stage_output(
            ctx,
            &mut self.stores,
            root,
            &tables,
            QUARANTINE,
            QUARANTINE,
            &[],
        )
        .await?;
        if let Err(e) = check_bad_rows(pipeline, &summary.sources) {
            // A run stopped by bad rows publishes its quarantine only, so that someone
            // can see why.
            summary
                .outputs
                .push(publish(&mut self.stores, root, quarantine, &periods).await?);
            return Err(e);
        }
        engine::register_builtin(ctx, pipeline, values)?;
        let materialized = folder(staging, "views")?;
        engine::plan_views(ctx, pipeline, graph, values, Some(&materialized)).await?;

        // TODO(benchmark issue): counting a view's rows runs it once more than the
        // outputs need; at 10M+ leads this should become a setting or come from the
        // written outputs' own metrics.
        for view in &graph.views {
            let stat = count(ctx, &view.name, "building view").await?;
            tracing::info!(view = %stat.name, rows = stat.rows, ms = ms(stat.elapsed), "view built");
            summary.views.push(stat);
        }
        let mut staged = vec![quarantine];
        for output in &pipeline.outputs {
            let stat = stage_output(
                ctx,
                &mut self.stores,
                root,
                &tables,
                &output.name,
                &output.view,
                &output.partition_by,
            )
            .await?;
            staged.push(stat);
        }

        Ok(staged)
    }
}

/// Resolves when `stop` turns true; never without one.
async fn stopped(stop: Option<tokio::sync::watch::Receiver<bool>>) {
    match stop {
        Some(mut stop) => {
            if stop.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// A run id that sorts by time: `2026-06-30.20261203T164123.456Z.1234` (as_of, when,
/// process).
fn new_run_id(as_of: NaiveDate) -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    format!("{as_of}.{now}.{}", std::process::id())
}

/// Stops the run when a source has more bad rows than its threshold allows, naming
/// every such source.
fn check_bad_rows(pipeline: &Pipeline, sources: &[SourceListing]) -> Result<()> {
    let mut over = Vec::new();
    for listing in sources {
        let Some(source) = pipeline.source(&listing.name) else {
            continue;
        };
        if source
            .bad_rows
            .exceeded(listing.rows_bad, listing.rows_read)
        {
            over.push(format!(
                "`{}` has {} bad rows of {} read, over its limit (more than {} rows and more than {}%)",
                listing.name,
                listing.rows_bad,
                listing.rows_read,
                source.bad_rows.max_count,
                source.bad_rows.max_ratio * 100.0
            ));
        }
    }
    if over.is_empty() {
        return Ok(());
    }
    Err(KpipeError::Data(format!(
        "too many bad rows, see the quarantine output: {}",
        over.join("; ")
    )))
}

async fn count(ctx: &SessionContext, table: &str, what: &str) -> Result<StepStat> {
    let started = Instant::now();
    let engine = |e| KpipeError::from_engine(e, &format!("{what} {table}"));
    let rows = ctx
        .table(table)
        .await
        .map_err(engine)?
        .count()
        .await
        .map_err(engine)?;
    Ok(StepStat {
        name: table.to_string(),
        rows,
        elapsed: started.elapsed(),
    })
}

pub(crate) fn ms(duration: Duration) -> u64 {
    duration.as_millis() as u64
}
