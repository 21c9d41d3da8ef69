//! Sources: where rows enter. Each extract is a folder of CSV or Parquet files on object
//! storage. Its files are read once as text with their provenance (`scan.rs`), every
//! row is checked against the contract the YAML declares (`contract.rs`), and the
//! checked rows are staged as Parquet; the source's table is then its good rows with
//! their declared types, and the bad rows go to the quarantine.
//!
//! TODO(ballista): the raw scan is a streaming table of kpipe's own; running it on a
//! cluster needs an extension codec for it. Everything after staging is plain Parquet.

mod contract;
mod scan;

use std::sync::Arc;

use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::catalog::empty::EmptyTable;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{Expr, lit};
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext, col};
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStore};
use url::Url;

use crate::config::{Pipeline, Source};
use crate::error::{KpipeError, Result};
use crate::storage::{Stores, display_url, object_path};

pub use contract::reason;

/// What was found and read for one source.
#[derive(Debug, Clone)]
pub struct SourceListing {
    pub name: String,
    /// The source's files, sorted by path.
    pub files: Vec<ObjectMeta>,
    /// The folder held no object at all.
    pub absent: bool,
    /// Rows read from the files, good and bad.
    pub rows_read: u64,
    /// Rows that broke the contract and went to the quarantine.
    pub rows_bad: u64,
    /// Rows read and rows bad of each file, by the file's URL.
    pub file_rows: Vec<(String, u64, u64)>,
    /// Time taken to list, read, check and stage the source.
    pub elapsed: std::time::Duration,
}

/// The name under which the quarantine of a run is registered.
pub const QUARANTINE: &str = "quarantine";

/// Registers every source of `pipeline` as an empty table with its declared schema, so
/// that views can be planned without reading anything.
pub fn register_declared(ctx: &SessionContext, pipeline: &Pipeline) -> Result<()> {
    for source in &pipeline.sources {
        let table = EmptyTable::new(source.schema(pipeline.timezone_name()));
        register(ctx, &source.name, Arc::new(table))?;
    }
    register_quarantine(ctx, Vec::new())
}

/// Reads every source once: lists its folder, checks every row against the contract,
/// and stages the checked rows as Parquet under `staging`, or under `private_staging`
/// (the ledger's root, for finance only) when the source has personal data. Each source is then
/// registered as its good rows, with its declared types, and the bad rows of all
/// sources as the table `quarantine`.
pub async fn register_all(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    stores: &mut Stores,
    staging: &Url,
    private_staging: &Url,
    run_id: &str,
) -> Result<Vec<SourceListing>> {
    let mut listings = Vec::with_capacity(pipeline.sources.len());
    let mut quarantined: Vec<DataFrame> = Vec::new();
    for source in &pipeline.sources {
        let started = std::time::Instant::now();
        let store = stores.store_for(&source.url)?;
        let mut listing = list(source, store.as_ref()).await?;
        if listing.absent && source.required {
            return Err(KpipeError::Data(format!(
                "required extract `{}` is missing: no object under {}",
                source.name,
                display_url(&source.url)
            )));
        }
        check_freshness(source, &listing)?;
        if listing.files.is_empty() {
            let schema = source.schema(pipeline.timezone_name());
            register(ctx, &source.name, Arc::new(EmptyTable::new(schema)))?;
        } else {
            let personal = source.columns.iter().any(|c| c.pii);
            let staging = if personal { private_staging } else { staging };
            let staged = stage(ctx, pipeline, source, &listing.files, store, staging).await?;
            listing.file_rows = counts(&staged, &source.name).await?;
            listing.rows_read = listing.file_rows.iter().map(|(_, read, _)| read).sum();
            listing.rows_bad = listing.file_rows.iter().map(|(_, _, bad)| bad).sum();
            let declared: Vec<Expr> = source.columns.iter().map(|c| quoted(&c.name)).collect();
            let good = staged
                .clone()
                .filter(col(contract::REASON).is_null())
                .and_then(|f| f.select(declared));
            let good = good.map_err(|e| engine_error(e, source))?;
            ctx.register_table(source.name.as_str(), good.into_view())
                .map_err(|e| engine_error(e, source))?;
            quarantined.push(
                quarantine_rows(staged, source, run_id).map_err(|e| engine_error(e, source))?,
            );
        }
        listing.elapsed = started.elapsed();
        tracing::info!(
            source = %source.name,
            files = listing.files.len(),
            rows = listing.rows_read,
            bad_rows = listing.rows_bad,
            ms = listing.elapsed.as_millis() as u64,
            "source read"
        );
        crate::run::crash_point("source read");
        listings.push(listing);
    }
    register_quarantine(ctx, quarantined)?;
    Ok(listings)
}

fn quoted(name: &str) -> Expr {
    col(format!("\"{name}\""))
}

fn engine_error(e: datafusion::common::DataFusionError, source: &Source) -> KpipeError {
    KpipeError::from_engine(e, &format!("reading source {}", source.name))
}

/// Runs the contract plan of `source` over its files once and writes the checked rows
/// as Parquet under `staging/<source>/`; returns them, read back.
async fn stage(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    source: &Source,
    files: &[ObjectMeta],
    store: Arc<dyn ObjectStore>,
    staging: &Url,
) -> Result<DataFrame> {
    let partitions: Vec<Arc<dyn PartitionStream>> = files
        .iter()
        .map(|meta| {
            let name = object_display(source, meta);
            Arc::new(scan::FileScan::new(
                Arc::clone(&store),
                meta.clone(),
                name,
                source,
            )) as Arc<dyn PartitionStream>
        })
        .collect();
    let raw = StreamingTable::try_new(scan::raw_schema(source), partitions)
        .map_err(|e| engine_error(e, source))?;
    let raw = ctx
        .read_table(Arc::new(raw))
        .map_err(|e| engine_error(e, source))?;
    let checked = contract::check(
        raw,
        source,
        pipeline.timezone_name(),
        &pipeline.settings.currency,
    )
    .map_err(|e| engine_error(e, source))?;

    let folder = staging
        .join(&format!("{}/", source.name))
        .map_err(|e| KpipeError::Internal(format!("staging folder for {}: {e}", source.name)))?;
    checked
        .write_parquet(folder.as_str(), DataFrameWriteOptions::new(), None)
        .await
        .map_err(|e| engine_error(e, source))?;
    let options = ParquetReadOptions::default();
    ctx.read_parquet(folder.as_str(), options)
        .await
        .map_err(|e| engine_error(e, source))
}

/// Rows read and rows bad of each file, from the staged rows.
async fn counts(staged: &DataFrame, name: &str) -> Result<Vec<(String, u64, u64)>> {
    let engine = |e| KpipeError::from_engine(e, &format!("counting rows of {name}"));
    let batches = staged
        .clone()
        .aggregate(
            vec![col(scan::FILE)],
            vec![
                count(lit(1)).alias("rows"),
                count(col(contract::REASON)).alias("bad"),
            ],
        )
        .map_err(engine)?
        .collect()
        .await
        .map_err(engine)?;
    let mut out = Vec::new();
    for batch in &batches {
        let files = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8)
            .map_err(|e| KpipeError::Internal(format!("counting rows of {name}: {e}")))?;
        let files = files
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>();
        let rows = batch.column(1).as_any().downcast_ref::<Int64Array>();
        let bad = batch.column(2).as_any().downcast_ref::<Int64Array>();
        let (Some(files), Some(rows), Some(bad)) = (files, rows, bad) else {
            return Err(KpipeError::Internal(format!(
                "counting rows of {name}: unexpected types"
            )));
        };
        for i in 0..batch.num_rows() {
            out.push((
                files.value(i).to_string(),
                rows.value(i) as u64,
                bad.value(i) as u64,
            ));
        }
    }
    out.sort();
    Ok(out)
}

/// The quarantine's columns, for the bad rows of one source.
fn quarantine_rows(
    staged: DataFrame,
    source: &Source,
    run_id: &str,
) -> datafusion::common::Result<DataFrame> {
    staged
        .filter(col(contract::REASON).is_not_null())?
        .select(vec![
            lit(run_id.to_string()).alias("run_id"),
            lit(source.name.clone()).alias("table"),
            col(scan::FILE).alias("file"),
            col(scan::LINE).alias("line"),
            col(contract::COLUMN).alias("column"),
            col(contract::REASON).alias("reason"),
            col(contract::RECORD).alias("record"),
        ])
}

fn register_quarantine(ctx: &SessionContext, parts: Vec<DataFrame>) -> Result<()> {
    let engine = |e| KpipeError::from_engine(e, "building the quarantine");
    let mut parts = parts.into_iter();
    let table: Arc<dyn TableProvider> = match parts.next() {
        None => Arc::new(EmptyTable::new(quarantine_schema())),
        Some(first) => {
            let mut union = first;
            for part in parts {
                union = union.union(part).map_err(engine)?;
            }
            union.into_view()
        }
    };
    ctx.register_table(QUARANTINE, table)
        .map(|_| ())
        .map_err(engine)
}

/// outputs.md, `quarantine`.
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("table", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("line", DataType::Int64, false),
        Field::new("column", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("record", DataType::Utf8, true),
    ]))
}

fn register(ctx: &SessionContext, name: &str, table: Arc<dyn TableProvider>) -> Result<()> {
    ctx.register_table(name, table)
        .map(|_| ())
        .map_err(|e| KpipeError::from_engine(e, &format!("registering source {name}")))
}

/// The source's files: objects under its folder with the format's extension.
async fn list(source: &Source, store: &dyn ObjectStore) -> Result<SourceListing> {
    check_local_files(source)?;
    let prefix = object_path(&source.url)?;
    let objects: Vec<ObjectMeta> =
        store
            .list(Some(&prefix))
            .try_collect()
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(Vec::new()),
                e => Err(KpipeError::from_store(
                    e,
                    &format!("listing {}", source.url),
                )),
            })?;
    let absent = objects.is_empty() && !local_folder_exists(source);
    let extension = source.format.extension();
    let mut files: Vec<ObjectMeta> = objects
        .into_iter()
        .filter(|o| {
            o.location
                .as_ref()
                .to_ascii_lowercase()
                .ends_with(extension)
        })
        .collect();
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(SourceListing {
        name: source.name.clone(),
        files,
        absent,
        rows_read: 0,
        rows_bad: 0,
        file_rows: Vec::new(),
        elapsed: std::time::Duration::ZERO,
    })
}

/// object_store's local file system leaves out what it cannot read (a broken symbolic
/// link) when it lists a folder; on local disk, look for such entries so that no file
/// of an extract is skipped without a word.
fn check_local_files(source: &Source) -> Result<()> {
    let Ok(root) = source.url.to_file_path() else {
        return Ok(());
    };
    let mut folders = vec![root];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => folders.push(path),
                Ok(_) => {}
                Err(e) => {
                    let name = path.to_string_lossy().to_lowercase();
                    if name.ends_with(source.format.extension()) {
                        return Err(KpipeError::Data(format!(
                            "{}: cannot be read ({e}), so extract `{}` would be incomplete",
                            path.display(),
                            source.name
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Object stores have no folders; on local disk an existing empty folder is an empty
/// extract, not a missing one.
fn local_folder_exists(source: &Source) -> bool {
    source.url.scheme() == "file" && source.url.to_file_path().is_ok_and(|p| p.is_dir())
}

/// Warns about, or fails on, an extract whose newest file is older than its freshness
/// allows. An extract with no file at all is not judged here (see `required`).
fn check_freshness(source: &Source, listing: &SourceListing) -> Result<()> {
    let (Some(freshness), Some(newest)) = (
        source.freshness,
        listing.files.iter().map(|f| f.last_modified).max(),
    ) else {
        return Ok(());
    };
    let age = (chrono::Utc::now() - newest).to_std().unwrap_or_default();
    if age <= freshness.max_age {
        return Ok(());
    }
    let hours = age.as_secs_f64() / 3600.0;
    let allowed = freshness.max_age.as_secs_f64() / 3600.0;
    if freshness.fail {
        return Err(KpipeError::Transient(format!(
            "extract `{}` is stale: its newest file is {hours:.1} hours old, more than {allowed} allowed",
            source.name
        )));
    }
    tracing::warn!(source = %source.name, age_hours = hours, max_age_hours = allowed, "extract is stale");
    Ok(())
}

fn object_display(source: &Source, meta: &ObjectMeta) -> String {
    format!(
        "{}://{}/{}",
        source.url.scheme(),
        source.url.host_str().unwrap_or_default(),
        meta.location
    )
}
