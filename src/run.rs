//! The three commands over one pipeline: validate (plan without data), explain (the
//! view graph) and run (read, build, write, summarise).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use url::Url;

use crate::config::{Diagnostics, Pipeline};
use crate::engine::{self, RunValues, ViewGraph};
use crate::error::{KpipeError, Result};
use crate::manifest;
use crate::sinks::parquet::{WrittenFile, write_table};
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

/// The URL of a folder of `root`'s store.
fn folder_url_of(root: &Url, folder: &object_store::path::Path) -> Result<Url> {
    let base = crate::storage::base_of(root);
    Url::parse(&format!("{base}/{folder}/"))
        .map_err(|e| KpipeError::Internal(format!("{folder}: {e}")))
}

/// How long ago a run started, from its id (`AS_OF.YYYYMMDDTHHMMSS.fffZ.PID`).
fn run_age(run_id: &str) -> Option<chrono::Duration> {
    let stamp = run_id.split('.').nth(1)?;
    let started = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S").ok()?;
    Some(chrono::Utc::now().naive_utc() - started)
}

/// Publishes what a committed manifest lists and is still staged, then removes the
/// partitions of its window that it did not write.
async fn roll_forward(
    store: &dyn object_store::ObjectStore,
    base: &object_store::path::Path,
    m: &serde_json::Value,
) -> Result<()> {
    let periods: Vec<String> = m["periods"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    let mut tables: std::collections::BTreeMap<String, Vec<WrittenFile>> = Default::default();
    for output in m["outputs"].as_array().into_iter().flatten() {
        let (Some(table), Some(path)) = (output["table"].as_str(), output["path"].as_str()) else {
            continue;
        };
        // Paths are URLs; the object path follows `scheme://host/`.
        let object = path.splitn(4, '/').nth(3).unwrap_or_default();
        let published = object_store::path::Path::parse(object)
            .map_err(|e| KpipeError::Internal(format!("manifest path {path}: {e}")))?;
        if let Some(staged) = output["staged"].as_str() {
            let staged = object_store::path::Path::parse(staged)
                .map_err(|e| KpipeError::Internal(format!("manifest path {staged}: {e}")))?;
            match store.rename(&staged, &published).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(KpipeError::from_store(
                        e,
                        &format!("publishing {published}"),
                    ));
                }
            }
        }
        tables
            .entry(table.to_string())
            .or_default()
            .push(WrittenFile {
                path: published,
                rows: 0,
            });
    }
    for (table, files) in tables {
        if files.iter().any(|f| f.path.as_ref().contains("/period=")) {
            remove_stale_periods(store, &base.clone().join(table.as_str()), &periods, &files)
                .await?;
        }
    }
    Ok(())
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

/// `root` joined with the folder `name`.
fn folder(root: &Url, name: &str) -> Result<Url> {
    root.join(&format!("{name}/"))
        .map_err(|e| KpipeError::Internal(format!("{root} + {name}: {e}")))
}

async fn remove_folder(stores: &mut Stores, url: &Url) -> Result<()> {
    let store = stores.store_for(url)?;
    let prefix = object_path(url)?;
    let what = format!("removing {}", crate::storage::display_url(url));
    let locations = store
        .list(Some(&prefix))
        .map_ok(|meta| meta.location)
        .boxed();
    store
        .delete_stream(locations)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| KpipeError::from_store(e, &what))?;
    // Renames out of the folder leave empty directories on local disk, which object
    // stores do not have; remove them, and `_staging` itself once no run uses it.
    if let Ok(path) = url.to_file_path() {
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(KpipeError::Transient(format!("{what}: {e}"))),
        }
        if let Some(parent) = path.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
    Ok(())
}

/// A table written to the staging folder, not yet visible to readers.
struct StagedOutput {
    stat: OutputStat,
    staged_table: object_store::path::Path,
    partition_by: Vec<String>,
}

/// Writes view `view` as table `name` under `tables` in the staging folder of `root`'s
/// store.
async fn stage_output(
    ctx: &SessionContext,
    stores: &mut Stores,
    root: &Url,
    tables: &object_store::path::Path,
    name: &str,
    view: &str,
    partition_by: &[String],
) -> Result<StagedOutput> {
    let started = Instant::now();
    let frame = ctx
        .table(view)
        .await
        .map_err(|e| KpipeError::from_engine(e, &format!("output {name}")))?;
    let store = stores.store_for(root)?;
    let staged_table = tables.clone().join(name);
    let files = write_table(frame, store, &staged_table, partition_by).await?;
    let stat = OutputStat {
        name: name.to_string(),
        view: view.to_string(),
        files,
        elapsed: started.elapsed(),
    };
    tracing::info!(output = %stat.name, files = stat.files.len(), rows = stat.rows(), ms = ms(stat.elapsed), "output staged");
    Ok(StagedOutput {
        stat,
        staged_table,
        partition_by: partition_by.to_vec(),
    })
}

/// Where a staged object of `staged_table` is published under `table`.
fn published_path(
    staged_table: &object_store::path::Path,
    table: &object_store::path::Path,
    file: &object_store::path::Path,
) -> Result<object_store::path::Path> {
    let prefix = format!("{staged_table}/");
    let relative = file
        .as_ref()
        .strip_prefix(prefix.as_str())
        .ok_or_else(|| KpipeError::Internal(format!("{file} is not under {staged_table}")))?;
    object_store::path::Path::parse(format!("{table}/{relative}"))
        .map_err(|e| KpipeError::Internal(format!("publishing {file}: {e}")))
}

/// Moves a staged table's objects to their published names under `root`, each in one
/// rename (a server-side copy on object stores), then removes the partitions of the
/// window it no longer has.
async fn publish(
    stores: &mut Stores,
    root: &Url,
    staged: StagedOutput,
    periods: &[String],
) -> Result<OutputStat> {
    let store = stores.store_for(root)?;
    let table = object_path(root)?.join(staged.stat.name.as_str());
    let mut stat = staged.stat;
    let prefix = format!("{}/", staged.staged_table);
    for file in &mut stat.files {
        let relative = file
            .path
            .as_ref()
            .strip_prefix(prefix.as_str())
            .ok_or_else(|| {
                KpipeError::Internal(format!(
                    "{} is not under {}",
                    file.path, staged.staged_table
                ))
            })?;
        let published = object_store::path::Path::parse(format!("{table}/{relative}"))
            .map_err(|e| KpipeError::Internal(format!("publishing {}: {e}", file.path)))?;
        store
            .rename(&file.path, &published)
            .await
            .map_err(|e| KpipeError::from_store(e, &format!("publishing {published}")))?;
        file.path = published;
    }
    if staged.partition_by.first().is_some_and(|c| c == "period") {
        remove_stale_periods(store.as_ref(), &table, periods, &stat.files).await?;
    }
    tracing::info!(output = %stat.name, files = stat.files.len(), rows = stat.rows(), "output published");
    Ok(stat)
}

/// A run owns the partitions of the periods it recomputes: an object under
/// `table/period=P/` for a `P` of the window that this run did not write is stale (the
/// month no longer has rows) and is removed. Partitions of locked months stay.
async fn remove_stale_periods(
    store: &dyn object_store::ObjectStore,
    table: &object_store::path::Path,
    periods: &[String],
    written: &[WrittenFile],
) -> Result<()> {
    let what = format!("listing {table}");
    let existing: Vec<_> = store
        .list(Some(table))
        .try_collect()
        .await
        .map_err(|e| KpipeError::from_store(e, &what))?;
    for meta in existing {
        let relative = meta
            .location
            .as_ref()
            .strip_prefix(table.as_ref())
            .unwrap_or_default();
        let period = relative
            .trim_start_matches('/')
            .strip_prefix("period=")
            .and_then(|r| r.split('/').next());
        let owned = period.is_some_and(|p| periods.iter().any(|w| w == p));
        if owned && !written.iter().any(|f| f.path == meta.location) {
            store.delete(&meta.location).await.map_err(|e| {
                KpipeError::from_store(e, &format!("removing stale {}", meta.location))
            })?;
            tracing::info!(object = %meta.location, "stale partition removed");
        }
    }
    Ok(())
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

fn ms(duration: Duration) -> u64 {
    duration.as_millis() as u64
}

fn log_summary(summary: &RunSummary) {
    let rows_read: u64 = summary.sources.iter().map(|s| s.rows_read).sum();
    let rows_bad: u64 = summary.sources.iter().map(|s| s.rows_bad).sum();
    let rows_written: usize = summary.outputs.iter().map(OutputStat::rows).sum();
    tracing::info!(
        as_of = %summary.as_of,
        run_id = %summary.run_id,
        sources = summary.sources.len(),
        rows_read,
        rows_bad,
        views = summary.views.len(),
        outputs = summary.outputs.len(),
        rows_written,
        ms = ms(summary.elapsed),
        "run finished"
    );
}

impl RunSummary {
    /// The closing summary as a table for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "kpipe run {} for as_of {} finished in {} ms",
            self.run_id,
            self.as_of,
            ms(self.elapsed)
        );
        let row = |out: &mut String,
                   step: &str,
                   name: &str,
                   files: String,
                   rows: String,
                   bad: String,
                   ms: u64| {
            let _ = writeln!(
                out,
                "{step:<8} {name:<28} {files:>6} {rows:>10} {bad:>8} {ms:>8}"
            );
        };
        row(
            &mut out,
            "step",
            "name",
            "files".into(),
            "rows".into(),
            "bad".into(),
            0,
        );
        for s in &self.sources {
            let elapsed = ms(s.elapsed);
            row(
                &mut out,
                "source",
                &s.name,
                s.files.len().to_string(),
                s.rows_read.to_string(),
                s.rows_bad.to_string(),
                elapsed,
            );
        }
        for v in &self.views {
            row(
                &mut out,
                "view",
                &v.name,
                String::new(),
                v.rows.to_string(),
                String::new(),
                ms(v.elapsed),
            );
        }
        for o in &self.outputs {
            row(
                &mut out,
                "output",
                &o.name,
                o.files.len().to_string(),
                o.rows().to_string(),
                String::new(),
                ms(o.elapsed),
            );
        }
        out
    }
}

fn explain_text(pipeline: &Pipeline, graph: &ViewGraph) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pipeline {} ({})",
        pipeline.name,
        pipeline.file.display()
    );
    let _ = writeln!(out, "\nsources:");
    for source in &pipeline.sources {
        let required = if source.required { ", required" } else { "" };
        let format = format!("{:?}", source.format).to_lowercase();
        let _ = writeln!(
            out,
            "  {:<24} {format} at {}{required}",
            source.name,
            crate::storage::display_url(&source.url)
        );
    }
    let _ = writeln!(out, "\nviews, in build order:");
    for view in &graph.views {
        let reads = if view.reads.is_empty() {
            "nothing".to_string()
        } else {
            view.reads.join(", ")
        };
        let _ = writeln!(out, "  {:<24} reads {reads}", view.name);
        if !view.params.is_empty() {
            let params: Vec<String> = view.params.iter().map(|p| format!("${p}")).collect();
            let _ = writeln!(out, "  {:<24} params {}", "", params.join(", "));
        }
    }
    let _ = writeln!(out, "\noutputs:");
    for output in &pipeline.outputs {
        let mut location = format!(
            "{}{}/",
            crate::storage::display_url(&pipeline.output_root),
            output.name
        );
        for column in &output.partition_by {
            let _ = write!(location, "{column}=…/");
        }
        let upstream: Vec<String> = graph.upstream(&output.view).into_iter().collect();
        let _ = writeln!(
            out,
            "  {:<24} view {} -> {}data.parquet",
            output.name, output.view, location
        );
        let _ = writeln!(out, "  {:<24} from {}", "", upstream.join(", "));
    }
    out
}

/// Problems of a failed validation, for callers that want them as data.
pub fn diagnostics(error: &KpipeError) -> Option<&Diagnostics> {
    match error {
        KpipeError::Config(d) => Some(d),
        _ => None,
    }
}
