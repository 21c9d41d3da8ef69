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
use crate::ledger::{self, Drift, Posting, statements};
use crate::manifest;
use crate::report::{explain_text, log_summary};
use crate::sinks::parquet::{WrittenFile, write_table};
use crate::sinks::publish::{
    StagedFile, StagedOutput, folder, folder_url_of, publish_files, remove_folder, roll_forward,
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
    /// What the run did to the bonus ledger, when the pipeline has one.
    pub ledger: Option<LedgerStat>,
    pub elapsed: Duration,
}

/// The ledger as the run found it and what the run appended (or, in a dry run, would
/// append).
#[derive(Debug, Clone)]
pub struct LedgerStat {
    pub entries_before: usize,
    pub drift: Vec<Drift>,
    pub statements: usize,
    pub dry_run: bool,
}

/// How a run differs from the nightly one.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// A locked month (`YYYY-MM`) to recompute on purpose, with the window.
    pub restate: Option<String>,
    /// Compute everything, print the ledger's drift, publish and append nothing.
    pub dry_run: bool,
}

/// A run's staging folders: `public` under the output root, `private` under the
/// ledger's root (names and pay), the same folder when the pipeline keeps no ledger.
struct Staging {
    public: Url,
    private: Url,
}

impl Staging {
    fn new(pipeline: &Pipeline, run_id: &str) -> Result<Self> {
        let name = format!("_staging/{run_id}");
        let public = folder(&pipeline.output_root, &name)?;
        let private = match &pipeline.ledger {
            Some(ledger) => folder(&ledger.root, &name)?,
            None => public.clone(),
        };
        Ok(Self { public, private })
    }

    fn folders(&self) -> Vec<Url> {
        let mut folders = vec![self.public.clone()];
        if self.private != self.public {
            folders.push(self.private.clone());
        }
        folders
    }
}

/// What a run staged for the ledger.
struct LedgerStaged {
    files: Vec<StagedFile>,
    /// The statements' folder, whose window partitions the run owns.
    owned: Vec<Url>,
    stat: LedgerStat,
    /// The ledger state this run claimed, when it appends.
    claim: Option<ledger::claim::Claim>,
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
    /// belong to a run still going). A run stages under the output root and, for the
    /// ledger, under the ledger's root; both are looked at. Returns how many runs were
    /// completed.
    pub async fn recover(&mut self) -> Result<usize> {
        let root = self.pipeline.output_root.clone();
        let mut roots = vec![root.clone()];
        if let Some(ledger) = &self.pipeline.ledger
            && ledger.root != root
        {
            roots.push(ledger.root.clone());
        }
        let mut runs: std::collections::BTreeMap<String, Vec<Url>> = Default::default();
        for staging_root in &roots {
            let store = self.stores.store_for(staging_root)?;
            let staging = object_path(staging_root)?.join("_staging");
            let listing = store
                .list_with_delimiter(Some(&staging))
                .await
                .map_err(|e| KpipeError::from_store(e, &format!("listing {staging}")))?;
            for folder in listing.common_prefixes {
                if let Some(run_id) = folder.filename().map(str::to_string) {
                    runs.entry(run_id)
                        .or_default()
                        .push(folder_url_of(staging_root, &folder)?);
                }
            }
        }
        let store = self.stores.store_for(&root)?;
        let runs_folder = object_path(&root)?.join("runs");
        let mut completed = 0;
        for (run_id, folders) in runs {
            let manifest = read_manifest(store.as_ref(), &runs_folder, &run_id).await?;
            let remove = match manifest {
                Some(m) if m["outcome"] == "succeeded" => {
                    roll_forward(&mut self.stores, &m).await?;
                    tracing::warn!(%run_id, "completed the publishing of a run that died after committing");
                    completed += 1;
                    true
                }
                Some(_) => true,
                None if run_age(&run_id).is_some_and(|age| age > chrono::Duration::days(1)) => {
                    tracing::warn!(%run_id, "removed the staging folder of a run that never committed");
                    true
                }
                None => false,
            };
            if remove {
                for folder_url in &folders {
                    remove_folder(&mut self.stores, folder_url).await?;
                }
            }
        }
        Ok(completed)
    }

    /// Runs the pipeline for `as_of`: reads and checks the sources, writes the
    /// quarantine, stops if a source has too many bad rows, then plans the views and
    /// writes every output. The staged extracts are removed at the end, whatever
    /// happened.
    pub async fn run(&mut self, as_of: NaiveDate) -> Result<RunSummary> {
        self.run_with(as_of, &RunOptions::default()).await
    }

    /// [`Runner::run`], restating a locked month or as a dry run.
    pub async fn run_with(&mut self, as_of: NaiveDate, options: &RunOptions) -> Result<RunSummary> {
        let started_at = chrono::Utc::now();
        let started = Instant::now();
        let mut values = RunValues::try_new(&self.pipeline, as_of)?;
        if let Some(month) = &options.restate {
            values = values.restating(month)?;
        }
        let run_id = new_run_id(as_of);
        tracing::info!(pipeline = %self.pipeline.name, %as_of, %run_id, window_start = %values.window_start, "run started");

        let ctx = engine::session(&self.pipeline, &mut self.stores)?;
        let graph = engine::view_graph(&self.pipeline, &ctx).map_err(KpipeError::Config)?;
        self.recover().await?;
        let staging = Staging::new(&self.pipeline, &run_id)?;
        let stagings = staging.folders();
        let mut summary = RunSummary {
            as_of,
            run_id: run_id.clone(),
            sources: Vec::new(),
            views: Vec::new(),
            outputs: Vec::new(),
            ledger: None,
            elapsed: Duration::ZERO,
        };
        let posting = Posting {
            run_id: run_id.clone(),
            as_of,
            recorded_at: started_at,
            restated: options.restate.clone(),
        };
        let stop = self.stop.clone();
        let result = tokio::select! {
            result = self.run_staged(&ctx, &graph, &values, &staging, &posting, options.dry_run, &mut summary) => result,
            () = stopped(stop) => Err(KpipeError::Interrupted("asked to stop".into())),
        };
        let (staged, ledger_staged) = match result {
            Ok(staged) => staged,
            Err(error) => {
                self.remove_stagings(&stagings).await;
                summary.elapsed = started.elapsed();
                if !options.dry_run {
                    // What a stopped run published (its quarantine) is in place already.
                    let base = crate::storage::base_of(&self.pipeline.output_root);
                    let mut in_place = Vec::new();
                    for output in &summary.outputs {
                        for file in &output.files {
                            in_place.push(StagedFile {
                                table: output.name.clone(),
                                staged: None,
                                published: Url::parse(&format!("{base}/{}", file.path))
                                    .map_err(|e| KpipeError::Internal(e.to_string()))?,
                                rows: file.rows as u64,
                            });
                        }
                    }
                    let manifest =
                        self.manifest(&summary, &values, started_at, Some(&error), &in_place, &[]);
                    self.write_manifest(&manifest).await?;
                }
                return Err(error);
            }
        };
        let claim = ledger_staged.as_ref().and_then(|l| l.claim.clone());
        let (ledger_files, ledger_owned) = ledger_staged
            .as_ref()
            .map(|l| (l.files.clone(), l.owned.clone()))
            .unwrap_or_default();
        summary.ledger = ledger_staged.map(|l| l.stat);
        if options.dry_run {
            // Nothing is committed: no manifest, no outputs, no ledger entries.
            self.remove_stagings(&stagings).await;
            summary.elapsed = started.elapsed();
            return Ok(summary);
        }

        // Commit: the manifest names every object the run publishes and where it is
        // staged. Before it exists the run did not happen; once it does, the run is
        // completed, by this process or by the next run's recovery.
        let root = self.pipeline.output_root.clone();
        let mut files = Vec::new();
        let mut owned = Vec::new();
        for table in &staged {
            let (stat, table_files, table_owned) = table.published(&root)?;
            summary.outputs.push(stat);
            files.extend(table_files);
            owned.extend(table_owned);
        }
        files.extend(ledger_files);
        owned.extend(ledger_owned);
        summary.elapsed = started.elapsed();
        let manifest = self.manifest(&summary, &values, started_at, None, &files, &owned);
        if let Err(error) = self.write_manifest(&manifest).await {
            // A PUT can land even though its answer was lost: only a manifest known to
            // be absent means the run did not commit.
            let store = self.stores.store_for(&root)?;
            let runs = object_path(&root)?.join("runs");
            match read_manifest(store.as_ref(), &runs, &run_id).await {
                Ok(Some(written)) if written["outcome"] == "succeeded" => {
                    tracing::warn!(error = %error, "the manifest was written despite an error; publishing");
                }
                Ok(_) => {
                    // Not committed: give the ledger state back for the retry.
                    if let Some(claim) = &claim {
                        ledger::claim::release(&mut self.stores, claim).await;
                    }
                    self.remove_stagings(&stagings).await;
                    return Err(error);
                }
                // Unknown: leave the claim and the staging to recovery.
                Err(_) => return Err(error),
            }
        }
        crash_point("run manifest written");
        tracing::info!(objects = files.len(), "publishing");
        publish_files(&mut self.stores, &files, &owned, &values.periods()).await?;
        for output in &summary.outputs {
            tracing::info!(output = %output.name, files = output.files.len(), rows = output.rows(), "output published");
        }
        self.remove_stagings(&stagings).await;
        summary.elapsed = started.elapsed();
        log_summary(&summary);
        Ok(summary)
    }

    /// Removes the run's staging folders; a failure is only logged, since recovery
    /// removes what is left.
    async fn remove_stagings(&mut self, stagings: &[Url]) {
        for staging in stagings {
            if let Err(e) = remove_folder(&mut self.stores, staging).await {
                tracing::warn!(error = %e, "could not remove a staging folder");
            }
        }
    }

    fn manifest(
        &self,
        summary: &RunSummary,
        values: &RunValues,
        started_at: chrono::DateTime<chrono::Utc>,
        error: Option<&KpipeError>,
        files: &[StagedFile],
        owned: &[Url],
    ) -> manifest::Manifest {
        let pipeline = &self.pipeline;
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
        let outputs = files
            .iter()
            .map(|f| manifest::OutputFile {
                table: f.table.clone(),
                path: f.published.to_string(),
                rows: f.rows,
                staged: f.staged.as_ref().map(Url::to_string),
            })
            .collect();
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
            owned_tables: owned.iter().map(Url::to_string).collect(),
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

    #[allow(clippy::too_many_arguments)]
    async fn run_staged(
        &mut self,
        ctx: &SessionContext,
        graph: &ViewGraph,
        values: &RunValues,
        staging: &Staging,
        posting: &Posting,
        dry_run: bool,
        summary: &mut RunSummary,
    ) -> Result<(Vec<StagedOutput>, Option<LedgerStaged>)> {
        let pipeline = &self.pipeline;
        let run_id = summary.run_id.clone();
        // Extracts with personal data are staged where only finance reads, when the
        // pipeline keeps a ledger under its own root.
        summary.sources = sources::register_all(
            ctx,
            pipeline,
            &mut self.stores,
            &staging.public,
            &staging.private,
            &run_id,
        )
        .await?;
        let periods = values.periods();
        let tables = object_path(&staging.public)?.join("tables");
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
            // can see why; a dry run publishes nothing.
            if !dry_run {
                let (stat, files, _) = quarantine.published(root)?;
                publish_files(&mut self.stores, &files, &[], &periods).await?;
                summary.outputs.push(stat);
            }
            return Err(e);
        }
        engine::register_builtin(ctx, pipeline, values)?;
        let materialized = folder(&staging.public, "views")?;
        let private_materialized = folder(&staging.private, "views")?;
        engine::plan_views(
            ctx,
            pipeline,
            graph,
            values,
            Some((&materialized, &private_materialized)),
        )
        .await?;

        // TODO(benchmark issue): counting a view's rows runs it once more than the
        // outputs need; at 10M+ leads this should become a setting or come from the
        // written outputs' own metrics.
        for view in &graph.views {
            let stat = count(ctx, &view.name, "building view").await?;
            tracing::info!(view = %stat.name, rows = stat.rows, ms = ms(stat.elapsed), "view built");
            crash_point("view built");
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
        let ledger = match self.pipeline.ledger.clone() {
            Some(ledger) => Some(
                self.stage_ledger(ctx, &ledger, &staging.private, posting, dry_run)
                    .await?,
            ),
            None => None,
        };
        Ok((staged, ledger))
    }

    /// Reads the ledger back, stages the entries that reconcile it with the payouts
    /// just computed, reads them back to cross-check, and stages the statements. Nothing
    /// here is visible before the run commits.
    async fn stage_ledger(
        &mut self,
        ctx: &SessionContext,
        ledger: &crate::config::Ledger,
        staging: &Url,
        posting: &Posting,
        dry_run: bool,
    ) -> Result<LedgerStaged> {
        let run_id = &posting.run_id;
        let recorded = ledger::register_recorded(ctx, &mut self.stores, ledger).await?;
        let view_file = self
            .pipeline
            .views_dir
            .join(format!("{}.sql", ledger.payouts));
        ledger::check_payout_keys(ctx, ledger, &view_file).await?;
        // Entries are stamped when they are computed, from the ledger just read, so that
        // their order is the order of the ledger states they were computed from.
        let posting = &Posting {
            recorded_at: chrono::Utc::now(),
            ..posting.clone()
        };
        ledger::register_drift(ctx, ledger, posting, staging).await?;
        let drift = ledger::drift(ctx).await?;
        let mut files = Vec::new();
        let mut appended = None;
        if !drift.is_empty() {
            let store = self.stores.store_for(staging)?;
            let table = object_path(staging)?.join(ledger::TABLE);
            let written = write_table(ledger::entries(ctx).await?, store, &table, &[]).await?;
            let base = crate::storage::base_of(&ledger.root);
            for file in written {
                let staged = Url::parse(&format!("{base}/{}", file.path))
                    .map_err(|e| KpipeError::Internal(format!("{}: {e}", file.path)))?;
                appended = Some(staged.clone());
                files.push(StagedFile {
                    table: ledger::TABLE.to_string(),
                    staged: Some(staged),
                    published: ledger::object_url(ledger, run_id)?,
                    rows: file.rows as u64,
                });
            }
        }
        ledger::register_appended(ctx, appended.as_ref()).await?;
        ledger::cross_check(ctx, ledger).await?;
        tracing::info!(
            entries_before = recorded.entries,
            appended = drift.len(),
            "ledger staged"
        );
        crash_point("ledger staged");
        let mut statements = 0;
        let mut owned = Vec::new();
        if !dry_run {
            let built = statements::build(ctx, ledger, posting.as_of, run_id).await?;
            statements = built.len();
            files.extend(statements::stage(&mut self.stores, ledger, staging, &built).await?);
            owned.push(folder(&ledger.root, statements::FOLDER)?);
        }
        // Last step before the commit: claim the ledger state the differences were
        // computed from, so that no other run commits differences from the same state.
        let mut claim = None;
        if !dry_run && !drift.is_empty() {
            let root = self.pipeline.output_root.clone();
            let manifests = self.stores.store_for(&root)?;
            let runs = object_path(&root)?.join("runs");
            let outcome_of = move |run: String| {
                let manifests = std::sync::Arc::clone(&manifests);
                let runs = runs.clone();
                async move {
                    Ok(
                        match read_manifest(manifests.as_ref(), &runs, &run).await? {
                            Some(m) if m["outcome"] == "succeeded" => {
                                ledger::claim::Outcome::Succeeded
                            }
                            Some(_) => ledger::claim::Outcome::Ended,
                            None => ledger::claim::Outcome::Unknown,
                        },
                    )
                }
            };
            // A run commits within its storage retry timeout of claiming; a claim
            // older than any such wait, without a manifest, will never be committed.
            let retry = self
                .pipeline
                .settings
                .storage
                .retry_timeout_secs
                .unwrap_or(180);
            let void_after = Duration::from_secs(3600.max(2 * retry));
            claim = Some(
                ledger::claim::claim(
                    &mut self.stores,
                    ledger,
                    &recorded.objects,
                    run_id,
                    void_after,
                    outcome_of,
                )
                .await?,
            );
            crash_point("ledger state claimed");
        }
        Ok(LedgerStaged {
            files,
            owned,
            stat: LedgerStat {
                entries_before: recorded.entries,
                drift,
                statements,
                dry_run,
            },
            claim,
        })
    }
}

/// The manifest of `run_id` under `runs`, if it wrote one.
async fn read_manifest(
    store: &dyn object_store::ObjectStore,
    runs: &object_store::path::Path,
    run_id: &str,
) -> Result<Option<serde_json::Value>> {
    let path = runs.clone().join(format!("{run_id}.json"));
    match store.get(&path).await {
        Ok(body) => {
            let bytes = body
                .bytes()
                .await
                .map_err(|e| KpipeError::from_store(e, "reading a manifest"))?;
            Ok(serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(KpipeError::from_store(e, &format!("reading {path}"))),
    }
}

/// Testing aid: with `KPIPE_CRASH_AT=<step>` the process dies on the spot when it
/// reaches that step, with no clean-up, as a SIGKILL or an OOM kill would leave it; the
/// crash tests use it instead of racing a kill. Steps: `source read`, `view built`,
/// `output staged`, `ledger staged`, `ledger state claimed`, `run manifest written` (the
/// first time each happens).
pub(crate) fn crash_point(step: &str) {
    if std::env::var("KPIPE_CRASH_AT").is_ok_and(|at| at == step) {
        tracing::warn!(step, "KPIPE_CRASH_AT: dying here");
        std::process::abort();
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
