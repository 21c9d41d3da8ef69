//! The run manifest (outputs.md, `runs`): one JSON object per run, written last, at
//! `OUTPUT_ROOT/runs/<run_id>.json` in a single PUT. From the manifests alone a reader
//! can tell which inputs produced which outputs, and whether the run finished.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Pipeline;

/// The manifest's schema version; readers check it.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub format: u32,
    pub run_id: String,
    pub pipeline: PipelineVersion,
    pub plans: Vec<PlanVersion>,
    pub as_of: NaiveDate,
    /// The months the run recomputed.
    pub periods: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// `succeeded` or `failed`.
    pub outcome: &'static str,
    pub error: Option<RunError>,
    pub inputs: Vec<InputFile>,
    pub outputs: Vec<OutputFile>,
    /// The folders of the tables whose partitions of `periods` the run owns: once it is
    /// published, a partition of those months that it did not write is removed.
    pub owned_tables: Vec<String>,
    pub timings_ms: Vec<Timing>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineVersion {
    pub name: String,
    /// SHA-256 of the pipeline YAML and every SQL view, file names included.
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanVersion {
    pub name: String,
    pub effective_from: NaiveDate,
    /// SHA-256 of the checked plan.
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunError {
    pub exit_code: u8,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputFile {
    pub source: String,
    pub path: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
    pub rows_read: u64,
    pub rows_quarantined: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputFile {
    pub table: String,
    pub path: String,
    pub rows: u64,
    /// Where the object waits in the run's staging folder until it is published (a
    /// URL). A run that wrote its manifest and then died is completed from these by the
    /// next run or `kpipe recover`.
    pub staged: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// `source`, `view`, `output` or `run`.
    pub step: &'static str,
    pub name: String,
    pub ms: u64,
}

/// The pipeline's version: a hash of its YAML and of every SQL view.
pub fn pipeline_version(pipeline: &Pipeline) -> PipelineVersion {
    let mut hash = Sha256::new();
    hash_file(&mut hash, &pipeline.file);
    let mut views: Vec<_> = std::fs::read_dir(&pipeline.views_dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    views.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|x| x == "sql"));
    views.sort();
    for view in &views {
        hash_file(&mut hash, view);
    }
    PipelineVersion {
        name: pipeline.name.clone(),
        version: hex(hash.finalize().as_slice()),
    }
}

fn hash_file(hash: &mut Sha256, path: &Path) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    hash.update(name.as_bytes());
    hash.update([0]);
    hash.update(std::fs::read(path).unwrap_or_default());
    hash.update([0]);
}

/// Each plan's version: a hash of its checked definition.
pub fn plan_versions(pipeline: &Pipeline) -> Vec<PlanVersion> {
    pipeline
        .plans
        .iter()
        .map(|plan| PlanVersion {
            name: plan.name.clone(),
            effective_from: plan.effective_from,
            version: plan_version(plan),
        })
        .collect()
}

/// A plan's fingerprint: SHA-256 of everything it says. Ledger entries carry it, so an
/// adjustment can tell a changed plan from changed data.
pub fn plan_version(plan: &crate::config::Plan) -> String {
    hex(Sha256::digest(format!("{plan:?}").as_bytes()).as_slice())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
