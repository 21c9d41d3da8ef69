//! Engine: the tables kpipe derives from the pipeline itself, for SQL views to join:
//! the months of the run's window with the plan in force and its effective-lead
//! parameters (`periods`), the KPI catalogue (`kpi_catalogue`), and every plan's scored
//! KPIs, kickers, flags, payout curve and roles. They are VALUES plans, so they travel with a query plan to a cluster.
//!
//! `kpi_values` is derived too: the union of one `kpi_<id>` view per KPI of the
//! catalogue, with `actual` computed as kpis.md says (see [`kpi_values_sql`]).

use std::sync::Arc;

use chrono::{Months, NaiveDate};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::catalog::empty::EmptyTable;
use datafusion::catalog::view::ViewTable;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, lit};
use datafusion::prelude::{SessionContext, col};

use super::params::{RunValues, start_of_day};
use crate::config::{EffectiveLead, Pipeline, in_force};
use crate::error::{KpipeError, Result};

/// Tables kpipe registers itself; no source or view may take these names.
pub const RESERVED: &[&str] = &[
    "periods",
    "kpi_catalogue",
    "plans",
    "plan_kpis",
    "plan_kickers",
    "plan_flags",
    "plan_curve",
    "plan_roles",
    "kpi_values",
    "quarantine",
    "ledger_recorded",
    "ledger_appended",
    "ledger_drift",
];

/// The view each KPI of the catalogue is computed by.
pub fn kpi_view(kpi: &str) -> String {
    format!("kpi_{kpi}")
}

/// Registers the derived tables for the run described by `values`.
pub fn register(ctx: &SessionContext, pipeline: &Pipeline, values: &RunValues) -> Result<()> {
    let tz = pipeline.timezone_name();
    let text = |s: &str| ScalarValue::Utf8(Some(s.to_string()));
    let float = |f: f64| ScalarValue::Float64(Some(f));
    let texts = |items: &[String]| {
        let scalars: Vec<ScalarValue> = items.iter().map(|s| text(s)).collect();
        ScalarValue::List(ScalarValue::new_list_nullable(&scalars, &DataType::Utf8))
    };

    let mut periods = Vec::new();
    for start in values.months() {
        let next = start
            .checked_add_months(Months::new(1))
            .expect("next month exists");
        let plan = in_force(&pipeline.plans, start);
        let default_rule = EffectiveLead::default();
        let rule = plan.map_or(&default_rule, |p| &p.effective_lead);
        periods.push(vec![
            text(&start.format("%Y-%m").to_string()),
            date(start),
            date(next.pred_opt().expect("a month has a last day")),
            instant(tz, values.timezone, start)?,
            instant(tz, values.timezone, next)?,
            ScalarValue::Utf8(plan.map(|p| p.name.clone())),
            ScalarValue::Int64(Some(rule.min_company_size)),
            texts(&rule.contact_roles),
            texts(&rule.industries),
            ScalarValue::Int64(rule.need_window_days),
        ]);
    }
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some(tz.into()));
    let list = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    table(
        ctx,
        "periods",
        &[
            ("period", DataType::Utf8),
            ("month_start", DataType::Date32),
            ("month_end", DataType::Date32),
            ("month_start_at", ts.clone()),
            ("next_month_start_at", ts),
            ("plan", DataType::Utf8),
            ("min_company_size", DataType::Int64),
            ("contact_roles", list.clone()),
            ("industries", list),
            ("need_window_days", DataType::Int64),
        ],
        periods,
    )?;

    let mut plans = Vec::new();
    let mut kpis = Vec::new();
    let mut kickers = Vec::new();
    let mut flags = Vec::new();
    let mut curve = Vec::new();
    let mut roles = Vec::new();
    for plan in &pipeline.plans {
        let name = || text(&plan.name);
        plans.push(vec![
            name(),
            date(plan.effective_from),
            float(plan.attainment_cap),
            text(&crate::manifest::plan_version(plan)),
        ]);
        for scored in &plan.scored {
            let direction = pipeline
                .kpis
                .iter()
                .find(|k| k.id == scored.kpi)
                .map(|k| k.direction.as_str());
            for level in crate::config::Level::ALL {
                kpis.push(vec![
                    name(),
                    text(&scored.kpi),
                    text(level.as_str()),
                    float(scored.weight),
                    float(scored.targets.at(level)),
                    text(direction.unwrap_or("higher")),
                ]);
            }
        }
        for k in &plan.kickers {
            let scope = match k.scope {
                crate::config::KickerScope::Individual => "individual",
                crate::config::KickerScope::Team => "team",
            };
            kickers.push(vec![
                name(),
                text(&k.name),
                text(&k.kpi),
                text(scope),
                float(k.target),
                float(k.threshold),
                float(k.share),
            ]);
        }
        for f in &plan.flags {
            flags.push(vec![
                name(),
                text(&f.name),
                text(&f.kpi),
                float(f.target),
                float(f.threshold),
            ]);
        }
        for (i, (score, multiplier)) in plan.payout_curve.iter().enumerate() {
            curve.push(vec![
                name(),
                ScalarValue::Int64(Some(i as i64)),
                float(*score),
                float(*multiplier),
            ]);
        }
        for (role, level) in &plan.roles {
            roles.push(vec![name(), text(role), text(level.as_str())]);
        }
    }
    use DataType::{Boolean, Date32, Float64, Int64, Utf8};
    let catalogue = pipeline
        .kpis
        .iter()
        .map(|k| {
            vec![
                text(&k.id),
                text(k.direction.as_str()),
                ScalarValue::Boolean(Some(k.ratio)),
            ]
        })
        .collect();
    table(
        ctx,
        "kpi_catalogue",
        &[("kpi", Utf8), ("direction", Utf8), ("ratio", Boolean)],
        catalogue,
    )?;
    table(
        ctx,
        "plans",
        &[
            ("plan", Utf8),
            ("effective_from", Date32),
            ("attainment_cap", Float64),
            ("version", Utf8),
        ],
        plans,
    )?;
    table(
        ctx,
        "plan_kpis",
        &[
            ("plan", Utf8),
            ("kpi", Utf8),
            ("level", Utf8),
            ("weight", Float64),
            ("target", Float64),
            ("direction", Utf8),
        ],
        kpis,
    )?;
    table(
        ctx,
        "plan_kickers",
        &[
            ("plan", Utf8),
            ("kicker", Utf8),
            ("kpi", Utf8),
            ("scope", Utf8),
            ("target", Float64),
            ("threshold", Float64),
            ("share", Float64),
        ],
        kickers,
    )?;
    table(
        ctx,
        "plan_flags",
        &[
            ("plan", Utf8),
            ("flag", Utf8),
            ("kpi", Utf8),
            ("target", Float64),
            ("threshold", Float64),
        ],
        flags,
    )?;
    table(
        ctx,
        "plan_curve",
        &[
            ("plan", Utf8),
            ("point", Int64),
            ("score", Float64),
            ("multiplier", Float64),
        ],
        curve,
    )?;
    table(
        ctx,
        "plan_roles",
        &[("plan", Utf8), ("role", Utf8), ("level", Utf8)],
        roles,
    )?;
    Ok(())
}

fn date(day: NaiveDate) -> ScalarValue {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
    ScalarValue::Date32(Some((day - epoch).num_days() as i32))
}

fn instant(tz_name: &str, tz: chrono_tz::Tz, day: NaiveDate) -> Result<ScalarValue> {
    let micros = start_of_day(tz, day)?;
    Ok(ScalarValue::TimestampMicrosecond(
        Some(micros),
        Some(tz_name.into()),
    ))
}

/// Registers `rows` as a VALUES view with `columns`; an empty table when there is no row.
fn table(
    ctx: &SessionContext,
    name: &str,
    columns: &[(&str, DataType)],
    rows: Vec<Vec<ScalarValue>>,
) -> Result<()> {
    let internal =
        |e: datafusion::common::DataFusionError| KpipeError::Internal(format!("table {name}: {e}"));
    if rows.is_empty() {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), true))
            .collect();
        ctx.register_table(
            name,
            Arc::new(EmptyTable::new(Arc::new(Schema::new(fields)))),
        )
        .map_err(internal)?;
        return Ok(());
    }
    let rows: Vec<Vec<Expr>> = rows
        .into_iter()
        .map(|row| row.into_iter().map(lit).collect())
        .collect();
    let plan = LogicalPlanBuilder::values(rows).map_err(internal)?;
    let projection: Vec<Expr> = columns
        .iter()
        .enumerate()
        .map(|(i, (column, _))| col(format!("column{}", i + 1)).alias(*column))
        .collect();
    let plan = plan
        .project(projection)
        .and_then(|p| p.build())
        .map_err(internal)?;
    ctx.register_table(name, Arc::new(ViewTable::new(plan, None)))
        .map_err(internal)?;
    Ok(())
}

/// The SQL of `kpi_values`: one `SELECT` per KPI of the catalogue over its view
/// `kpi_<id>`, which yields `period, level, entity_id, numerator, denominator,
/// is_final`. A ratio's actual is numerator / denominator, null when the denominator
/// is 0 or null; a count's actual is its numerator, and a count reports neither
/// numerator nor denominator (outputs.md). KPI ids are checked identifiers, so this
/// text is built from names only, never from values.
pub fn kpi_values_sql(pipeline: &Pipeline) -> Option<String> {
    let selects: Vec<String> = pipeline
        .kpis
        .iter()
        .map(|kpi| {
            let (actual, numerator, denominator) = if kpi.ratio {
                (
                    "CASE WHEN denominator = 0 THEN CAST(NULL AS DOUBLE) \
                     ELSE CAST(numerator AS DOUBLE) / CAST(denominator AS DOUBLE) END",
                    "CAST(numerator AS DOUBLE)",
                    "CAST(denominator AS DOUBLE)",
                )
            } else {
                ("CAST(numerator AS DOUBLE)", "CAST(NULL AS DOUBLE)", "CAST(NULL AS DOUBLE)")
            };
            format!(
                "SELECT period, level, entity_id, '{id}' AS kpi, {actual} AS actual, \
                 {numerator} AS numerator, {denominator} AS denominator, is_final, $as_of AS as_of\n\
                 FROM {view}",
                id = kpi.id,
                view = kpi_view(&kpi.id),
            )
        })
        .collect();
    (!selects.is_empty()).then(|| selects.join("\nUNION ALL\n"))
}
