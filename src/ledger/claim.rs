//! One writer per ledger state. A run computes its entries as the difference from the
//! ledger it read; two runs that read the same ledger and both committed would pay the
//! difference twice. Just before committing, a run that appends claims the state it read
//! (the number of ledger objects, `n`) by creating `LEDGER_ROOT/_ledger_claims/n-k.json`
//! with a conditional write (create only if absent: `If-None-Match: *` on S3, an atomic
//! link on disk). Only one run can create a given claim.
//!
//! A claim that already exists belongs to another run. If that run committed (its
//! manifest says `succeeded`), this run's differences are stale: it stops with exit 75
//! and a retry recomputes them. If that run failed or was interrupted, or never wrote a
//! manifest and the claim is older than any commit can take, the claim is void and the
//! next `k` is tried. Otherwise the other run may still be committing: exit 75.
//!
//! The claims stay, small JSON records of which run appended from which ledger state.

use std::time::Duration;

use object_store::{ObjectStoreExt, PutMode, PutOptions};
use url::Url;

use crate::config::Ledger;
use crate::error::{KpipeError, Result};
use crate::storage::{Stores, object_path};

/// The folder of claims under the ledger's root.
pub const FOLDER: &str = "_ledger_claims";

/// What became of a run, from its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Failed or interrupted: it will never commit.
    Ended,
    /// No manifest (yet).
    Unknown,
}

/// A claim this run holds.
#[derive(Debug, Clone)]
pub struct Claim {
    pub url: Url,
}

/// Claims the ledger state of `objects_read` objects for `run_id`. `outcome_of` tells
/// what became of another run; a claim without an outcome older than `void_after` is
/// void.
pub async fn claim<F, Fut>(
    stores: &mut Stores,
    ledger: &Ledger,
    objects_read: &[String],
    run_id: &str,
    void_after: Duration,
    mut outcome_of: F,
) -> Result<Claim>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<Outcome>>,
{
    let folder = crate::sinks::publish::folder(&ledger.root, FOLDER)?;
    let store = stores.store_for(&folder)?;
    let base = object_path(&folder)?;
    let body = serde_json::json!({ "run_id": run_id, "ledger_objects_read": objects_read });
    let body = serde_json::to_vec_pretty(&body)
        .map_err(|e| KpipeError::Internal(format!("serialising a ledger claim: {e}")))?;
    let state = objects_read.len();
    let mut attempt = 0;
    loop {
        let name = format!("{state:08}-{attempt}.json");
        let path = base.clone().join(name.as_str());
        let options = PutOptions::from(PutMode::Create);
        match store.put_opts(&path, body.clone().into(), options).await {
            Ok(_) => {
                let url = folder
                    .join(&name)
                    .map_err(|e| KpipeError::Internal(format!("{name}: {e}")))?;
                tracing::info!(claim = %path, "ledger state claimed");
                return Ok(Claim { url });
            }
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => {
                return Err(KpipeError::from_store(
                    e,
                    &format!("claiming the ledger state {path}"),
                ));
            }
        }
        let what = format!("reading the ledger claim {path}");
        let existing = match store.get(&path).await {
            Ok(existing) => existing,
            // Released since: try the same name again.
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(KpipeError::from_store(e, &what)),
        };
        let modified = existing.meta.last_modified;
        let bytes = existing
            .bytes()
            .await
            .map_err(|e| KpipeError::from_store(e, &what))?;
        let other = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["run_id"].as_str().map(str::to_string))
            .unwrap_or_default();
        let age = (chrono::Utc::now() - modified)
            .to_std()
            .unwrap_or(Duration::ZERO);
        match outcome_of(other.clone()).await? {
            Outcome::Succeeded => {
                return Err(KpipeError::Transient(format!(
                    "run {other} committed ledger entries computed from the same ledger as \
                     this run ({state} objects); this run's differences are stale, run again"
                )));
            }
            Outcome::Ended => attempt += 1,
            Outcome::Unknown if age > void_after => {
                tracing::warn!(claim = %path, run = %other, "void ledger claim of a run that never committed");
                attempt += 1;
            }
            Outcome::Unknown => {
                return Err(KpipeError::Transient(format!(
                    "run {other} is committing ledger entries computed from the same ledger \
                     as this run ({state} objects); run again once it has finished"
                )));
            }
        }
    }
}

/// Gives a claim back when this run will not commit after all (its manifest could not
/// be written), so that the next attempt need not wait for the claim to go void.
pub async fn release(stores: &mut Stores, claim: &Claim) {
    let result = async {
        let store = stores.store_for(&claim.url)?;
        let path = object_path(&claim.url)?;
        store
            .delete(&path)
            .await
            .map_err(|e| KpipeError::from_store(e, "releasing a ledger claim"))
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, claim = %claim.url, "could not release the ledger claim");
    }
}
