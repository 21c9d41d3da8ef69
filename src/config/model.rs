//! The checked pipeline: what every later stage trusts. Built only by `check::load`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono_tz::Tz;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use url::Url;

use super::diagnostics::Diagnostic;
use super::locate::PositionIndex;
use super::plans::{Kpi, Plan};

/// A validated pipeline.
#[derive(Debug)]
pub struct Pipeline {
    /// The YAML file it was read from.
    pub file: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub settings: Settings,
    pub input_root: Url,
    pub output_root: Url,
    /// User parameters, reachable from SQL as `$name`.
    pub params: Vec<(String, ScalarValue)>,
    pub sources: Vec<Source>,
    /// Folder holding one `.sql` file per view.
    pub views_dir: PathBuf,
    /// Views computed once per run into the staging folder, then read back as Parquet
    /// by the views and outputs that read them.
    pub materialize: Vec<String>,
    pub outputs: Vec<Output>,
    pub kpis: Vec<Kpi>,
    /// Sorted by `effective_from`.
    pub plans: Vec<Plan>,
    /// The bonus ledger, when the pipeline pays bonuses.
    pub ledger: Option<Ledger>,
    pub(crate) index: PositionIndex,
}

/// The bonus ledger (bonus.md): append-only entries and statements under their own root.
#[derive(Debug, Clone, PartialEq)]
pub struct Ledger {
    /// Names and pay live here, apart from the outputs BI reads.
    pub root: Url,
    pub payouts: String,
    pub scorecard: String,
    pub scorecard_summary: String,
}

impl Pipeline {
    /// A problem at a YAML key path of this pipeline, located in the file.
    pub fn diagnostic(&self, key: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            position: self.index.find(key),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }

    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// The business time zone's name, as Arrow timestamp types carry it.
    pub fn timezone_name(&self) -> &str {
        self.settings.timezone.name()
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Business time zone: timestamps belong to the day and month they fall on here.
    pub timezone: Tz,
    pub currency: String,
    /// How many months a run recomputes: `as_of`'s month and the ones before it.
    pub lookback_months: u32,
    pub engine: EngineKind,
    /// Retries and timeouts of object storage requests.
    pub storage: StorageSettings,
    /// The bad-row threshold of sources that set none.
    pub bad_rows: BadRows,
    /// DataFusion configuration, passed through by key.
    pub datafusion: Vec<(String, String)>,
}

/// object_store's retry and timeout settings for S3, GCS and Azure; `None` keeps
/// object_store's default (10 retries within 180 s, 30 s per request, 5 s to connect).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageSettings {
    pub max_retries: Option<usize>,
    pub retry_timeout_secs: Option<u64>,
    pub request_timeout_secs: Option<u64>,
    pub connect_timeout_secs: Option<u64>,
}

/// Where SQL runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// DataFusion in this process.
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    /// The file name ending the source's files must have.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => ".csv",
            Format::Parquet => ".parquet",
        }
    }
}

/// One extract: a folder of files of one format.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub format: Format,
    /// The folder, always ending in `/`.
    pub url: Url,
    /// An absent folder is an error when required, an empty table otherwise.
    pub required: bool,
    pub description: Option<String>,
    pub columns: Vec<Column>,
    /// Columns that identify a row; empty when the extract has no key.
    pub unique_key: Vec<String>,
    pub bad_rows: BadRows,
    /// How old the newest file may be; `None` when any age will do.
    pub freshness: Option<Freshness>,
}

/// An extract whose newest file is older than `max_age` is stale: a warning, or a
/// transient failure (a later retry may find the new extract) when `fail`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Freshness {
    pub max_age: std::time::Duration,
    pub fail: bool,
}

/// When bad rows stop the run: more than `max_count` of them and more than `max_ratio`
/// of the rows read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BadRows {
    pub max_count: u64,
    pub max_ratio: f64,
}

impl BadRows {
    /// extracts.md: more than 1% of the rows and more than 10 rows.
    pub const DEFAULT: BadRows = BadRows {
        max_count: 10,
        max_ratio: 0.01,
    };

    pub fn exceeded(&self, bad: u64, read: u64) -> bool {
        bad > self.max_count && (bad as f64) > self.max_ratio * (read as f64)
    }
}

impl Source {
    /// The table's Arrow schema, with timestamps as instants labelled with `timezone`.
    pub fn schema(&self, timezone: &str) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.data_type.arrow_type(timezone), c.nullable))
            .collect();
        Arc::new(Schema::new(fields))
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub data_type: ColumnType,
    pub nullable: bool,
    pub description: Option<String>,
    /// The allowed values of a closed enum; `None` for any value.
    pub values: Option<Vec<String>>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub currency: bool,
    pub pii: bool,
}

/// Column types of the extract contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Int,
    Double,
    /// Money and other decimals with two places.
    Decimal,
    Bool,
    /// A calendar date in the business time zone.
    Date,
    /// An instant.
    Timestamp,
}

/// Precision and scale of `decimal` columns.
pub const DECIMAL_PRECISION: u8 = 18;
pub const DECIMAL_SCALE: i8 = 2;

impl ColumnType {
    /// The Arrow type. Timestamps carry the business time zone so that SQL's date
    /// functions (`date_trunc`, casts to DATE) work in business time without conversion.
    pub fn arrow_type(self, timezone: &str) -> DataType {
        match self {
            ColumnType::String => DataType::Utf8,
            ColumnType::Int => DataType::Int64,
            ColumnType::Double => DataType::Float64,
            ColumnType::Decimal => DataType::Decimal128(DECIMAL_PRECISION, DECIMAL_SCALE),
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(timezone.into()))
            }
        }
    }
}

/// A view written as Parquet under the output root.
#[derive(Debug, Clone)]
pub struct Output {
    /// The table's folder under the output root.
    pub name: String,
    pub view: String,
    /// Hive-style partition columns (`period=2026-03/`).
    pub partition_by: Vec<String>,
    pub description: Option<String>,
}

/// Resolves a location written in YAML to a URL: a URL with a scheme stays as it is, a
/// path is taken relative to the current directory. The result names a folder.
pub fn folder_url(location: &str) -> Result<Url, String> {
    let mut url = if location.contains("://") {
        Url::parse(location).map_err(|e| format!("`{location}` is not a valid URL: {e}"))?
    } else {
        let path = Path::new(location);
        let absolute = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| format!("cannot read the current directory: {e}"))?
                .join(path)
        };
        Url::from_directory_path(&absolute)
            .map_err(|()| format!("`{location}` is not a usable path"))?
    };
    match url.scheme() {
        "file" | "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "memory" => {}
        other => {
            return Err(format!(
                "unsupported URL scheme `{other}` in `{location}`: use file, s3, gs, az, \
                 abfs(s), memory or a local path"
            ));
        }
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `root` joined with a relative location, or `location` when it is itself a URL.
pub fn folder_under(root: &Url, location: &str) -> Result<Url, String> {
    if location.contains("://") || Path::new(location).is_absolute() {
        return folder_url(location);
    }
    let joined = root
        .join(location)
        .map_err(|e| format!("`{location}` cannot be joined to `{root}`: {e}"))?;
    folder_url(joined.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_urls_end_in_a_slash_and_paths_become_absolute() {
        let url = folder_url("s3://bucket/a/b").unwrap();
        assert_eq!(url.as_str(), "s3://bucket/a/b/");
        let local = folder_url("fixtures").unwrap();
        assert_eq!(local.scheme(), "file");
        assert!(local.path().ends_with("/fixtures/"));
        assert!(
            folder_url("ftp://x/y")
                .unwrap_err()
                .contains("unsupported URL scheme")
        );
    }

    #[test]
    fn relative_locations_join_the_root() {
        let root = folder_url("memory://in/2026-06-30").unwrap();
        assert_eq!(
            folder_under(&root, "leads").unwrap().as_str(),
            "memory://in/2026-06-30/leads/"
        );
        assert_eq!(
            folder_under(&root, "s3://b/x").unwrap().as_str(),
            "s3://b/x/"
        );
    }
}
