//! Config, step 2: the pipeline YAML as written. These types only deserialize; every
//! rule beyond the shape of the document is checked in `check.rs`. Unknown keys are
//! errors everywhere, so a typo fails loudly instead of falling back to a default.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::Value;

/// The top level. Sections are kept as raw values here and deserialized one entry at a
/// time, so that a problem in one source does not hide the problems of the others.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub settings: Value,
    pub input_root: String,
    pub output_root: String,
    #[serde(default)]
    pub params: serde_yaml_ng::Mapping,
    pub sources: serde_yaml_ng::Mapping,
    #[serde(default)]
    pub views: Value,
    #[serde(default)]
    pub outputs: serde_yaml_ng::Mapping,
    /// The KPI catalogue: id → direction and kind.
    #[serde(default)]
    pub kpis: serde_yaml_ng::Mapping,
    /// Effective-dated plans by name.
    #[serde(default)]
    pub plans: serde_yaml_ng::Mapping,
    /// The bonus ledger: where it lives and which views feed it.
    #[serde(default)]
    pub ledger: Option<RawLedger>,
}

/// The `ledger` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLedger {
    /// Where the ledger and the statements are written. Default: the output root.
    #[serde(default)]
    pub root: Option<String>,
    /// The view with what each employee earns per month and component.
    #[serde(default)]
    pub payouts: Option<String>,
    /// The views the statements explain the money with.
    #[serde(default)]
    pub scorecard: Option<String>,
    #[serde(default)]
    pub scorecard_summary: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub lookback_months: Option<u32>,
    #[serde(default)]
    pub engine: Option<RawEngine>,
    /// Retries and timeouts of object storage requests.
    #[serde(default)]
    pub storage: Option<RawStorage>,
    /// How many bad rows a source may have before the run stops; per-source values win.
    #[serde(default)]
    pub bad_rows: Option<RawBadRows>,
    /// DataFusion configuration keys and values, passed through.
    #[serde(default)]
    pub datafusion: BTreeMap<String, Value>,
}

/// object_store's retry and timeout settings; unset values keep its defaults.
#[derive(Debug, Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    #[serde(default)]
    pub max_retries: Option<usize>,
    #[serde(default)]
    pub retry_timeout_secs: Option<u64>,
    #[serde(default)]
    pub request_timeout_secs: Option<u64>,
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RawEngine {
    Local,
    Ballista,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub format: RawFormat,
    /// Folder of the extract: a URL, or a path relative to `input_root`. Default: the
    /// source's name.
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub description: Option<String>,
    pub columns: Vec<RawColumn>,
    /// Columns whose values together identify a row; every copy of a duplicate is bad.
    #[serde(default)]
    pub unique_key: Vec<String>,
    #[serde(default)]
    pub bad_rows: Option<RawBadRows>,
    #[serde(default)]
    pub freshness: Option<RawFreshness>,
}

/// How old the newest file of an extract may be, and what to do when it is older.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct RawFreshness {
    pub max_age_hours: f64,
    #[serde(default)]
    pub on_stale: RawOnStale,
}

#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RawOnStale {
    #[default]
    Warn,
    Fail,
}

/// The run stops when a table has more than `max_count` bad rows and more than
/// `max_ratio` of its rows are bad.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct RawBadRows {
    pub max_count: u64,
    pub max_ratio: f64,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RawFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: RawType,
    #[serde(default = "yes")]
    pub nullable: bool,
    #[serde(default)]
    pub description: Option<String>,
    /// The closed list of values of an enum column.
    #[serde(default, rename = "enum")]
    pub values: Option<Vec<String>>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// The column holds a currency code that must be the pipeline's.
    #[serde(default)]
    pub currency: bool,
    /// Personal data: masked in quarantine records.
    #[serde(default)]
    pub pii: bool,
}

fn yes() -> bool {
    true
}

/// Column types of the extract contract.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RawType {
    String,
    Int,
    Double,
    Decimal,
    Bool,
    Date,
    Timestamp,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawViews {
    /// Folder of the `.sql` files, relative to the pipeline file. Default: `sql`.
    #[serde(default)]
    pub dir: Option<String>,
    /// Views computed once per run and read back from Parquet by what reads them.
    #[serde(default)]
    pub materialize: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// The view to write. Default: the output's name.
    #[serde(default)]
    pub view: Option<String>,
    #[serde(default)]
    pub partition_by: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}
