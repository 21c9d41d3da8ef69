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
/// partitions of its window that it did not write, exactly as the run itself would have
/// ([`publish_files`]). Every path in a manifest is a URL, so the outputs and the ledger
/// may live in different stores.
pub(crate) async fn roll_forward(stores: &mut Stores, m: &serde_json::Value) -> Result<()> {
    let texts = |key: &str| -> Vec<String> {
        m[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect()
    };
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
    let owned = texts("owned_tables")
        .iter()
        .map(|t| parse(t))
        .collect::<Result<Vec<_>>>()?;
    publish_files(stores, &files, &owned, &texts("periods")).await
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
/// on object stores; an object already moved is skipped, so this can be repeated), then,
/// in each table folder of `owned` (tables partitioned by `period`), removes the objects
/// of the window's months that were not written. The one way a run publishes, and the
/// way recovery completes a run that died after committing.
pub(crate) async fn publish_files(
    stores: &mut Stores,
    files: &[StagedFile],
    owned: &[Url],
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
    for folder in owned {
        let store = stores.store_for(folder)?;
        let table = object_path(folder)?;
        let written: Vec<WrittenFile> = files
            .iter()
            .filter(|f| f.published.as_str().starts_with(folder.as_str()))
            .map(|f| {
                Ok(WrittenFile {
                    path: object_path(&f.published)?,
                    rows: f.rows as usize,
                })
            })
            .collect::<Result<_>>()?;
        remove_stale_periods(store.as_ref(), &table, periods, &written).await?;
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

impl StagedOutput {
    /// Where this table is published under `root`: its stat with the published paths,
    /// each object staged and published, and the table's folder when the run owns its
    /// `period` partitions.
    pub(crate) fn published(
        &self,
        root: &Url,
    ) -> Result<(OutputStat, Vec<StagedFile>, Option<Url>)> {
        let base = crate::storage::base_of(root);
        let url = |path: &object_store::path::Path| {
            Url::parse(&format!("{base}/{path}"))
                .map_err(|e| KpipeError::Internal(format!("{path}: {e}")))
        };
        let table = object_path(root)?.join(self.stat.name.as_str());
        let mut stat = self.stat.clone();
        let mut files = Vec::new();
        for file in &mut stat.files {
            let published = published_path(&self.staged_table, &table, &file.path)?;
            files.push(StagedFile {
                table: stat.name.clone(),
                staged: Some(url(&file.path)?),
                published: url(&published)?,
                rows: file.rows as u64,
            });
            file.path = published;
        }
        let owned = match self.partition_by.first().map(String::as_str) {
            Some("period") => Some(folder(root, &stat.name)?),
            _ => None,
        };
        Ok((stat, files, owned))
    }
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
