//! Sinks: publishing. A run writes its tables into its staging folder, commits by
//! writing its manifest, then moves the staged objects to their published names; a run
//! that died after committing is completed from its manifest (`roll_forward`). See the
//! README, "Publishing: what a reader sees".

use std::time::Instant;

use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use url::Url;

use crate::error::{KpipeError, Result};
use crate::run::{OutputStat, ms};
use crate::sinks::parquet::{WrittenFile, write_table};
use crate::storage::{Stores, object_path};

/// The URL of a folder of `root`'s store.
pub(crate) fn folder_url_of(root: &Url, folder: &object_store::path::Path) -> Result<Url> {
    let base = crate::storage::base_of(root);
    Url::parse(&format!("{base}/{folder}/"))
        .map_err(|e| KpipeError::Internal(format!("{folder}: {e}")))
}

/// How long ago a run started, from its id (`AS_OF.YYYYMMDDTHHMMSS.fffZ.PID`).
pub(crate) fn run_age(run_id: &str) -> Option<chrono::Duration> {
    let stamp = run_id.split('.').nth(1)?;
    let started = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S").ok()?;
    Some(chrono::Utc::now().naive_utc() - started)
}

/// Publishes what a committed manifest lists and is still staged, then removes the
/// partitions of its window that it did not write. Every path in a manifest is a URL,
/// so the outputs and the ledger may live in different stores.
pub(crate) async fn roll_forward(stores: &mut Stores, m: &serde_json::Value) -> Result<()> {
    let periods: Vec<String> = m["periods"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    let parse = |text: &str| {
        Url::parse(text).map_err(|e| KpipeError::Internal(format!("manifest path {text}: {e}")))
    };
    let mut files = Vec::new();
    for output in m["outputs"].as_array().into_iter().flatten() {
        let (Some(table), Some(path)) = (output["table"].as_str(), output["path"].as_str()) else {
            continue;
        };
        let published = parse(path)?;
        let staged = match output["staged"].as_str() {
            Some(staged) => Some(parse(staged)?),
            None => None,
        };
        files.push(StagedFile {
            table: table.to_string(),
            staged,
            published,
            rows: output["rows"].as_u64().unwrap_or(0),
        });
    }
    publish_files(stores, &files, &periods).await
}

/// An object written to a staging folder and where it is published; `staged` is `None`
/// for what needs no move (the quarantine of a stopped run is written in place).
#[derive(Debug, Clone)]
pub(crate) struct StagedFile {
    pub(crate) table: String,
    pub(crate) staged: Option<Url>,
    pub(crate) published: Url,
    pub(crate) rows: u64,
}

/// Moves each staged object to its published name (a rename on disk, a server-side copy
/// on object stores; an object already moved is skipped, so this can be repeated), then
/// removes the objects of the window's `period=` partitions of each table that were
/// not written.
pub(crate) async fn publish_files(
    stores: &mut Stores,
    files: &[StagedFile],
    periods: &[String],
) -> Result<()> {
    for file in files {
        let Some(staged) = &file.staged else { continue };
        let store = stores.store_for(&file.published)?;
        let from = object_path(staged)?;
        let to = object_path(&file.published)?;
        match store.rename(&from, &to).await {
            Ok(()) => {}
            // Moved already, by an earlier attempt; unless the object is nowhere, which
            // must stop everything: a committed run's entries would be lost.
            Err(object_store::Error::NotFound { .. }) => match store.head(&to).await {
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(KpipeError::Internal(format!(
                        "a committed run's object is neither staged at {from} nor published \
                         at {to}: restore it before the next run"
                    )));
                }
                Err(e) => return Err(KpipeError::from_store(e, &format!("checking {to}"))),
            },
            Err(e) => return Err(KpipeError::from_store(e, &format!("publishing {to}"))),
        }
    }
    // Tables whose objects sit in `period=` partitions own those partitions.
    let mut tables: std::collections::BTreeMap<String, (Url, Vec<WrittenFile>)> =
        Default::default();
    for file in files {
        let text = file.published.as_str();
        let Some(at) = text.find("/period=") else {
            continue;
        };
        let folder =
            Url::parse(&text[..=at]).map_err(|e| KpipeError::Internal(format!("{text}: {e}")))?;
        let entry = tables
            .entry(folder.to_string())
            .or_insert_with(|| (folder, Vec::new()));
        entry.1.push(WrittenFile {
            path: object_path(&file.published)?,
            rows: file.rows as usize,
        });
    }
    for (_, (folder, written)) in tables {
        let store = stores.store_for(&folder)?;
        remove_stale_periods(store.as_ref(), &object_path(&folder)?, periods, &written).await?;
    }
    Ok(())
}

/// `root` joined with the folder `name`.
pub(crate) fn folder(root: &Url, name: &str) -> Result<Url> {
    root.join(&format!("{name}/"))
        .map_err(|e| KpipeError::Internal(format!("{root} + {name}: {e}")))
}

pub(crate) async fn remove_folder(stores: &mut Stores, url: &Url) -> Result<()> {
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
pub(crate) struct StagedOutput {
    pub(crate) stat: OutputStat,
    pub(crate) staged_table: object_store::path::Path,
    partition_by: Vec<String>,
}

/// Writes view `view` as table `name` under `tables` in the staging folder of `root`'s
/// store.
pub(crate) async fn stage_output(
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
    crate::run::crash_point("output staged");
    Ok(StagedOutput {
        stat,
        staged_table,
        partition_by: partition_by.to_vec(),
    })
}

/// Where a staged object of `staged_table` is published under `table`.
pub(crate) fn published_path(
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
pub(crate) async fn publish(
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
pub(crate) async fn remove_stale_periods(
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
