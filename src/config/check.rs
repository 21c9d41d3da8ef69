//! Config, step 3: turns the YAML as written into a checked [`Pipeline`], reporting every
//! problem at once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionConfig;
use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

use super::diagnostics::{Diagnostic, Diagnostics, YamlReporter};
use super::interpolate::{Variables, interpolate};
use super::locate::PositionIndex;
use super::model::*;
use super::raw::*;

/// Names that SQL views reach as `$name`, set by every run; user parameters may not
/// take them.
pub const BUILTIN_PARAMS: &[&str] = &[
    "as_of",
    "cutoff",
    "period",
    "window_start",
    "window_start_at",
    "lookback_months",
    "timezone",
    "currency",
];

/// Reads, interpolates and checks the pipeline at `file`.
pub fn load(file: &Path, vars: &dyn Variables) -> Result<Pipeline, Diagnostics> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: file.to_path_buf(),
            position: None,
            key: None,
            message: format!("cannot read the pipeline file: {e}"),
        }])
    })?;
    check_text(file, &text, vars)
}

/// Checks pipeline YAML `text`, read from `file`.
pub fn check_text(file: &Path, text: &str, vars: &dyn Variables) -> Result<Pipeline, Diagnostics> {
    let index = PositionIndex::build(text);
    let mut report = YamlReporter::new(file, &index);

    let mut document: Value = match serde_yaml_ng::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            let position = e.location().map(|l| super::locate::Position {
                line: l.line(),
                col: l.column(),
            });
            return Err(Diagnostics(vec![Diagnostic {
                file: file.to_path_buf(),
                position,
                key: None,
                message: format!("not valid YAML: {e}"),
            }]));
        }
    };
    if !document.is_mapping() {
        report.error(
            "",
            "a pipeline is a YAML mapping with name, input_root, output_root and sources",
        );
        return Err(report.diagnostics);
    }
    for problem in interpolate(&mut document, vars) {
        report.error(problem.path, problem.message);
    }

    let Some(raw) = typed::<RawPipeline>(document, "", &mut report) else {
        return Err(report.diagnostics);
    };
    let pipeline = build(file, raw, &mut report);
    let diagnostics = std::mem::take(&mut report.diagnostics);
    drop(report);
    let mut pipeline = diagnostics.into_result(pipeline)?;
    pipeline.index = index;
    Ok(pipeline)
}

fn build(file: &Path, raw: RawPipeline, report: &mut YamlReporter) -> Pipeline {
    check_identifier(&raw.name, "name", report);
    let settings = settings(raw.settings, report);
    let input_root = root(&raw.input_root, "input_root", report);
    let output_root = root(&raw.output_root, "output_root", report);
    let params = params(raw.params, report);
    let sources = sources(raw.sources, &input_root, settings.bad_rows, report);
    let (views_dir, materialize) = views_dir(file, raw.views, report);
    let outputs = outputs(raw.outputs, report);
    let kpis = super::plans::kpis(raw.kpis, report);
    let plans = super::plans::plans(raw.plans, &kpis, report);
    let ledger = raw
        .ledger
        .map(|raw| ledger(raw, &output_root, &outputs, report));
    Pipeline {
        file: file.to_path_buf(),
        name: raw.name,
        description: raw.description,
        settings,
        input_root,
        output_root,
        params,
        sources,
        views_dir,
        materialize,
        outputs,
        kpis,
        plans,
        ledger,
        index: PositionIndex::default(),
    }
}

fn ledger(
    raw: RawLedger,
    output_root: &url::Url,
    outputs: &[Output],
    report: &mut YamlReporter,
) -> Ledger {
    let root = match raw.root.as_deref() {
        None | Some("") => output_root.clone(),
        Some(location) => root(location, "ledger.root", report),
    };
    let ledger = Ledger {
        root,
        payouts: raw.payouts.unwrap_or_else(|| "payouts".into()),
        scorecard: raw.scorecard.unwrap_or_else(|| "scorecard".into()),
        scorecard_summary: raw
            .scorecard_summary
            .unwrap_or_else(|| "scorecard_summary".into()),
    };
    // The ledger's folders sit next to the outputs when both share a root.
    for name in LEDGER_FOLDERS {
        if ledger.root == *output_root && outputs.iter().any(|o| o.name == name) {
            report.error(
                format!("outputs.{name}"),
                format!("`{name}` is where the ledger writes under the same root"),
            );
        }
    }
    ledger
}

/// The folders the ledger owns under its root.
pub const LEDGER_FOLDERS: [&str; 2] = ["bonus_ledger", "statements"];

/// Deserializes `value` as `T`, reporting a failure at the key path where it happened.
pub(super) fn typed<T: DeserializeOwned>(
    value: Value,
    key: &str,
    report: &mut YamlReporter,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(t) => Some(t),
        Err(e) => {
            let inner = e.path().to_string();
            let path = match (key.is_empty(), inner.as_str()) {
                (_, ".") => key.to_string(),
                (true, inner) => inner.to_string(),
                (false, inner) if inner.starts_with('[') => format!("{key}{inner}"),
                (false, inner) => format!("{key}.{inner}"),
            };
            report.error(path, e.into_inner().to_string());
            None
        }
    }
}

fn settings(value: Value, report: &mut YamlReporter) -> Settings {
    let raw = if value.is_null() {
        Some(RawSettings::default())
    } else {
        typed::<RawSettings>(value, "settings", report)
    };
    let raw = raw.unwrap_or_default();

    let timezone = raw.timezone.as_deref().unwrap_or("Asia/Shanghai");
    let timezone = timezone.parse::<Tz>().unwrap_or_else(|_| {
        report.error(
            "settings.timezone",
            format!("`{timezone}` is not an IANA time zone"),
        );
        Tz::UTC
    });
    let currency = raw.currency.unwrap_or_else(|| "CNY".to_string());
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        report.error(
            "settings.currency",
            format!("`{currency}` is not an ISO 4217 code"),
        );
    }
    let lookback_months = raw.lookback_months.unwrap_or(5);
    if !(1..=36).contains(&lookback_months) {
        report.error("settings.lookback_months", "must be from 1 to 36");
    }
    let engine = match raw.engine.unwrap_or(RawEngine::Local) {
        RawEngine::Local => EngineKind::Local,
        RawEngine::Ballista => {
            // TODO(ballista): the cluster engine is its own piece of work; until it lands,
            // say so instead of silently running locally.
            report.error(
                "settings.engine",
                "engine `ballista` is not supported yet: use `local`",
            );
            EngineKind::Local
        }
    };
    Settings {
        timezone,
        currency,
        lookback_months,
        engine,
        storage: raw
            .storage
            .map_or_else(StorageSettings::default, |s| StorageSettings {
                max_retries: s.max_retries,
                retry_timeout_secs: s.retry_timeout_secs,
                request_timeout_secs: s.request_timeout_secs,
                connect_timeout_secs: s.connect_timeout_secs,
            }),
        bad_rows: bad_rows(raw.bad_rows, "settings.bad_rows", BadRows::DEFAULT, report),
        datafusion: datafusion_options(raw.datafusion, report),
    }
}

fn bad_rows(
    raw: Option<RawBadRows>,
    key: &str,
    default: BadRows,
    report: &mut YamlReporter,
) -> BadRows {
    let Some(raw) = raw else { return default };
    if !(0.0..=1.0).contains(&raw.max_ratio) {
        report.error(
            format!("{key}.max_ratio"),
            "a share of the rows, from 0 to 1",
        );
    }
    BadRows {
        max_count: raw.max_count,
        max_ratio: raw.max_ratio,
    }
}

/// DataFusion options as strings, each checked by DataFusion itself.
fn datafusion_options(
    options: std::collections::BTreeMap<String, Value>,
    report: &mut YamlReporter,
) -> Vec<(String, String)> {
    let mut config = SessionConfig::new();
    let mut out = Vec::new();
    for (key, value) in options {
        let path = format!("settings.datafusion.{key}");
        let text = match value {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => {
                report.error(path, "a DataFusion option is a string, number or boolean");
                continue;
            }
        };
        match config.options_mut().set(&key, &text) {
            Ok(()) => out.push((key, text)),
            Err(e) => report.error(path, format!("DataFusion refused it: {e}")),
        }
    }
    out
}

fn root(location: &str, key: &str, report: &mut YamlReporter) -> url::Url {
    folder_url(location).unwrap_or_else(|message| {
        report.error(key, message);
        url::Url::parse("memory:///").expect("a constant URL parses")
    })
}

fn params(raw: serde_yaml_ng::Mapping, report: &mut YamlReporter) -> Vec<(String, ScalarValue)> {
    let mut out = Vec::new();
    for (key, value) in raw {
        let Some(name) = key.as_str().map(str::to_string) else {
            report.error("params", "parameter names are strings");
            continue;
        };
        let path = format!("params.{name}");
        check_identifier(&name, &path, report);
        if BUILTIN_PARAMS.contains(&name.as_str()) {
            report.error(
                &path,
                format!("`{name}` is set by every run and cannot be redefined"),
            );
        }
        let scalar = match value {
            Value::Bool(b) => ScalarValue::Boolean(Some(b)),
            Value::Number(n) if n.is_i64() => ScalarValue::Int64(n.as_i64()),
            Value::Number(n) => ScalarValue::Float64(n.as_f64()),
            Value::String(s) => ScalarValue::Utf8(Some(s)),
            _ => {
                report.error(&path, "a parameter is a string, number or boolean");
                continue;
            }
        };
        out.push((name, scalar));
    }
    out
}

fn sources(
    raw: serde_yaml_ng::Mapping,
    input_root: &url::Url,
    default_bad_rows: BadRows,
    report: &mut YamlReporter,
) -> Vec<Source> {
    let mut out = Vec::new();
    for (key, value) in raw {
        let Some(name) = key.as_str().map(str::to_string) else {
            report.error("sources", "source names are strings");
            continue;
        };
        let path = format!("sources.{name}");
        check_identifier(&name, &path, report);
        let Some(raw) = typed::<RawSource>(value, &path, report) else {
            continue;
        };
        let location = raw.location.as_deref().unwrap_or(&name);
        let url = folder_under(input_root, location).unwrap_or_else(|message| {
            report.error(format!("{path}.location"), message);
            input_root.clone()
        });
        let columns = columns(raw.columns, &path, report);
        for (i, key) in raw.unique_key.iter().enumerate() {
            if !columns.iter().any(|c| &c.name == key) {
                report.error(
                    format!("{path}.unique_key[{i}]"),
                    format!("`{key}` is not a column of the source"),
                );
            }
        }
        let bad_rows = bad_rows(
            raw.bad_rows,
            &format!("{path}.bad_rows"),
            default_bad_rows,
            report,
        );
        out.push(Source {
            name,
            format: match raw.format {
                RawFormat::Csv => Format::Csv,
                RawFormat::Parquet => Format::Parquet,
            },
            url,
            required: raw.required,
            description: raw.description,
            columns,
            unique_key: raw.unique_key,
            bad_rows,
            freshness: raw.freshness.and_then(|f| {
                if !(f.max_age_hours > 0.0 && f.max_age_hours.is_finite()) {
                    report.error(
                        format!("{path}.freshness.max_age_hours"),
                        "a number of hours above 0",
                    );
                    return None;
                }
                Some(Freshness {
                    max_age: std::time::Duration::from_secs_f64(f.max_age_hours * 3600.0),
                    fail: f.on_stale == RawOnStale::Fail,
                })
            }),
        });
    }
    if out.is_empty() && report.diagnostics.is_empty() {
        report.error("sources", "a pipeline reads at least one source");
    }
    out
}

fn columns(raw: Vec<RawColumn>, source_path: &str, report: &mut YamlReporter) -> Vec<Column> {
    if raw.is_empty() {
        report.error(
            format!("{source_path}.columns"),
            "a source declares at least one column",
        );
    }
    let mut seen = HashSet::new();
    raw.into_iter()
        .enumerate()
        .map(|(i, c)| {
            let path = format!("{source_path}.columns[{i}].name");
            check_identifier(&c.name, &path, report);
            if !seen.insert(c.name.clone()) {
                report.error(&path, format!("column `{}` is declared twice", c.name));
            }
            check_column_rules(&c, &format!("{source_path}.columns[{i}]"), report);
            Column {
                name: c.name,
                data_type: match c.data_type {
                    RawType::String => ColumnType::String,
                    RawType::Int => ColumnType::Int,
                    RawType::Double => ColumnType::Double,
                    RawType::Decimal => ColumnType::Decimal,
                    RawType::Bool => ColumnType::Bool,
                    RawType::Date => ColumnType::Date,
                    RawType::Timestamp => ColumnType::Timestamp,
                },
                nullable: c.nullable,
                description: c.description,
                values: c.values,
                min: c.min,
                max: c.max,
                currency: c.currency,
                pii: c.pii,
            }
        })
        .collect()
}

/// Rules only make sense on some types: an enum is a string, a range is numeric.
fn check_column_rules(c: &RawColumn, path: &str, report: &mut YamlReporter) {
    let numeric = matches!(
        c.data_type,
        RawType::Int | RawType::Double | RawType::Decimal
    );
    if let Some(values) = &c.values {
        if c.data_type != RawType::String {
            report.error(format!("{path}.enum"), "only string columns are enums");
        }
        if values.is_empty() {
            report.error(format!("{path}.enum"), "an enum lists at least one value");
        }
    }
    if (c.min.is_some() || c.max.is_some()) && !numeric {
        report.error(
            format!("{path}.min"),
            "a range applies to int, double and decimal columns",
        );
    }
    if let (Some(min), Some(max)) = (c.min, c.max)
        && min > max
    {
        report.error(
            format!("{path}.max"),
            format!("max {max} is below min {min}"),
        );
    }
    if c.currency && c.data_type != RawType::String {
        report.error(
            format!("{path}.currency"),
            "a currency column is a string column",
        );
    }
}

fn views_dir(file: &Path, value: Value, report: &mut YamlReporter) -> (PathBuf, Vec<String>) {
    let raw = if value.is_null() {
        Some(RawViews::default())
    } else {
        typed::<RawViews>(value, "views", report)
    };
    let raw = raw.unwrap_or_default();
    let dir = raw.dir.unwrap_or_else(|| "sql".to_string());
    let base = file.parent().unwrap_or(Path::new("."));
    let dir = base.join(dir);
    if !dir.is_dir() {
        report.error(
            "views.dir",
            format!("`{}` is not a folder of .sql files", dir.display()),
        );
    }
    (dir, raw.materialize)
}

fn outputs(raw: serde_yaml_ng::Mapping, report: &mut YamlReporter) -> Vec<Output> {
    let mut out = Vec::new();
    for (key, value) in raw {
        let Some(name) = key.as_str().map(str::to_string) else {
            report.error("outputs", "output names are strings");
            continue;
        };
        let path = format!("outputs.{name}");
        check_identifier(&name, &path, report);
        let raw = if value.is_null() {
            Some(RawOutput {
                view: None,
                partition_by: Vec::new(),
                description: None,
            })
        } else {
            typed::<RawOutput>(value, &path, report)
        };
        let Some(raw) = raw else { continue };
        let mut seen = HashSet::new();
        for (i, column) in raw.partition_by.iter().enumerate() {
            if !seen.insert(column) {
                report.error(
                    format!("{path}.partition_by[{i}]"),
                    format!("`{column}` is listed twice"),
                );
            }
        }
        out.push(Output {
            view: raw.view.unwrap_or_else(|| name.clone()),
            name,
            partition_by: raw.partition_by,
            description: raw.description,
        });
    }
    out
}

/// Names of pipelines, sources, columns, parameters and outputs are lower-case SQL
/// identifiers, so SQL can use them unquoted.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub(super) fn check_identifier(name: &str, key: &str, report: &mut YamlReporter) {
    if !is_identifier(name) {
        report.error(
            key,
            format!("`{name}` is not a lower-case identifier (a-z, 0-9, _)"),
        );
    }
}
