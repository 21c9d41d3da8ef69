//! The bonus ledger (bonus.md, outputs.md `bonus_ledger`): append-only money that
//! finance pays from.
//!
//! Each run reads back every entry recorded so far, compares the sum per (employee,
//! month, component) with what the payouts view computes for the months the run
//! recomputes, and appends the difference: an `accrual` the first time, an `adjustment`
//! after. The entries of one run are one Parquet object, `bonus_ledger/<run_id>.parquet`
//! under the ledger's root, staged and published with the run's outputs through the
//! run manifest, so they are committed together with the outputs they come from or not
//! at all. Everything here is SQL over the run's tables, so it scales with the engine.

pub mod claim;
pub mod statement;
pub mod statements;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::TableProvider;
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::TryStreamExt;
use url::Url;

use crate::config::Ledger;
use crate::error::{KpipeError, Result};
use crate::storage::{Stores, object_path};

/// The ledger's folder under its root.
pub const TABLE: &str = "bonus_ledger";
/// Every entry recorded before this run.
pub const RECORDED: &str = "ledger_recorded";
/// The entries this run appends, read back from the staged object.
pub const APPENDED: &str = "ledger_appended";
/// The entries this run would append, with the amounts they reconcile.
pub const DRIFT: &str = "ledger_drift";

/// The columns of a ledger entry: outputs.md's, then `plan_version` (the plan's
/// fingerprint, so that an edited plan reads as a plan change) and `text` (bonus.md's
/// short explanation).
pub fn schema() -> SchemaRef {
    use DataType::{Boolean, Date32, Float64, Utf8};
    let text = |name: &str| Field::new(name, Utf8, false);
    Arc::new(Schema::new(vec![
        text("entry_id"),
        text("period"),
        text("posting_period"),
        text("employee_id"),
        text("employee_name"),
        text("team"),
        text("component"),
        text("entry_kind"),
        Field::new("amount", DataType::Decimal128(18, 2), false),
        text("currency"),
        text("plan"),
        text("rule"),
        Field::new("basis", Float64, true),
        Field::new("multiplier", Float64, true),
        Field::new("proration", Float64, true),
        Field::new("period_final", Boolean, false),
        text("reason"),
        text("run_id"),
        Field::new("as_of", Date32, false),
        Field::new(
            "recorded_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        text("plan_version"),
        text("text"),
    ]))
}

/// What the run stamps on every entry it appends.
#[derive(Debug, Clone)]
pub struct Posting {
    pub run_id: String,
    pub as_of: chrono::NaiveDate,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// The month restated on purpose, if any (`--restate`).
    pub restated: Option<String>,
}

/// The objects of the ledger as the run found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub objects: Vec<String>,
    pub entries: usize,
}

/// The folder holding the ledger's objects.
pub fn folder(ledger: &Ledger) -> Result<Url> {
    crate::sinks::publish::folder(&ledger.root, TABLE)
}

/// Where this run's entries are published: one object per run.
pub fn object_url(ledger: &Ledger, run_id: &str) -> Result<Url> {
    folder(ledger)?
        .join(&format!("{run_id}.parquet"))
        .map_err(|e| KpipeError::Internal(format!("ledger object for {run_id}: {e}")))
}

/// The ledger's objects, sorted.
async fn list_objects(stores: &mut Stores, ledger: &Ledger) -> Result<Vec<String>> {
    let url = folder(ledger)?;
    let store = stores.store_for(&url)?;
    let prefix = object_path(&url)?;
    let what = format!("listing the ledger {}", crate::storage::display_url(&url));
    let mut objects: Vec<String> = store
        .list(Some(&prefix))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .map_err(|e| KpipeError::from_store(e, &what))?;
    objects.retain(|o| o.ends_with(".parquet"));
    objects.sort();
    Ok(objects)
}

/// Registers every entry recorded so far as `ledger_recorded`, after checking that no
/// entry is there twice (a copied object would pay twice).
pub async fn register_recorded(
    ctx: &SessionContext,
    stores: &mut Stores,
    ledger: &Ledger,
) -> Result<Recorded> {
    let objects = list_objects(stores, ledger).await?;
    let url = folder(ledger)?;
    // The objects listed now, by name: every read of the ledger in this run sees the
    // same entries as the claim names, whatever another run publishes meanwhile.
    let base = crate::storage::base_of(&ledger.root);
    let urls = objects
        .iter()
        .map(|o| {
            Url::parse(&format!("{base}/{o}"))
                .map_err(|e| KpipeError::Internal(format!("ledger object {o}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let table = entries_table(&urls, "reading the bonus ledger")?;
    ctx.register_table(RECORDED, table)
        .map_err(|e| engine_error(e, "registering the bonus ledger"))?;
    // One scan: how many entries, and one that is there more than once, if any.
    let counted = query_rows(
        ctx,
        &format!(
            "SELECT CAST(COALESCE(sum(copies), 0) AS BIGINT) AS entries,
                    min(CASE WHEN copies > 1 THEN entry_id END) AS repeated
             FROM (SELECT entry_id, count(*) AS copies FROM {RECORDED} GROUP BY entry_id)"
        ),
        "checking the bonus ledger",
    )
    .await?;
    let row = counted
        .into_iter()
        .next()
        .ok_or_else(|| KpipeError::Internal("counting the ledger gave no row".into()))?;
    if !row[1].is_empty() {
        return Err(KpipeError::Internal(format!(
            "the bonus ledger under {} holds entry {} more than once: an object was \
             copied or written twice; move the copy away before the next run",
            crate::storage::display_url(&url),
            row[1]
        )));
    }
    let entries = row[0]
        .parse()
        .map_err(|e| KpipeError::Internal(format!("ledger entry count {}: {e}", row[0])))?;
    Ok(Recorded { objects, entries })
}

/// The payouts view must give one row per (period, employee, component), with none of
/// them null: a repeated key would be appended once per copy, a null one every run.
pub async fn check_payout_keys(
    ctx: &SessionContext,
    ledger: &Ledger,
    file: &std::path::Path,
) -> Result<()> {
    let sql = format!(
        "SELECT CAST(period AS VARCHAR) AS period, CAST(employee_id AS VARCHAR) AS employee_id,
                CAST(component AS VARCHAR) AS component, count(*) AS copies
         FROM {}
         WHERE period IN (SELECT b.period FROM periods AS b) OR period IS NULL
         GROUP BY period, employee_id, component
         HAVING count(*) > 1 OR period IS NULL OR employee_id IS NULL OR component IS NULL
         ORDER BY 1, 2, 3 LIMIT 5",
        ledger.payouts
    );
    let batches = query_rows(ctx, &sql, "checking the payouts").await?;
    let rows = batches;
    if rows.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = rows
        .iter()
        .map(|r| format!("({}, {}, {}) x{}", r[0], r[1], r[2], r[3]))
        .collect();
    Err(KpipeError::Config(crate::config::Diagnostics(vec![
        crate::config::Diagnostic {
            file: file.to_path_buf(),
            position: None,
            key: None,
            message: format!(
                "the ledger needs one row per period, employee_id and component, none null; \
             found {}",
                shown.join(", ")
            ),
        },
    ])))
}

/// Registers `ledger_drift`: for each (employee, month, component) of the months this
/// run recomputes whose computed amount differs from the sum recorded, the entry that
/// reconciles them, with `recorded` and `computed` beside it. Months outside `periods`
/// (locked) are never touched. Computed once, into `staging` (the ledger root's), since
/// the dry-run report and the staged entries both read it.
pub async fn register_drift(
    ctx: &SessionContext,
    ledger: &Ledger,
    posting: &Posting,
    staging: &Url,
) -> Result<()> {
    let sql = drift_sql(ledger, posting);
    let plan = ctx
        .sql(&sql)
        .await
        .map_err(|e| engine_error(e, "planning the ledger entries"))?
        .into_unoptimized_plan();
    let folder = crate::sinks::publish::folder(staging, "views")?;
    crate::engine::materialize(ctx, DRIFT, plan, &folder).await
}

/// The entries to append, in the ledger's columns.
pub async fn entries(ctx: &SessionContext) -> Result<DataFrame> {
    let columns: Vec<String> = schema()
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    ctx.sql(&format!("SELECT {} FROM {DRIFT}", columns.join(", ")))
        .await
        .map_err(|e| engine_error(e, "planning the ledger entries"))
}

/// Registers the entries read back from the object this run staged (or none).
pub async fn register_appended(ctx: &SessionContext, staged: Option<&Url>) -> Result<()> {
    let what = "reading back the staged ledger entries";
    let staged: Vec<Url> = staged.into_iter().cloned().collect();
    let table = entries_table(&staged, what)?;
    ctx.register_table(APPENDED, table)
        .map_err(|e| engine_error(e, what))?;
    Ok(())
}

/// The ledger entries in exactly the Parquet objects `objects`, with the ledger's schema.
fn entries_table(objects: &[Url], what: &str) -> Result<Arc<dyn TableProvider>> {
    if objects.is_empty() {
        return Ok(Arc::new(EmptyTable::new(schema())));
    }
    let engine = |e| engine_error(e, what);
    let paths = objects
        .iter()
        .map(|url| ListingTableUrl::parse(url.as_str()))
        .collect::<datafusion::common::Result<Vec<_>>>()
        .map_err(engine)?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(paths)
        .with_listing_options(options)
        .with_schema(schema());
    Ok(Arc::new(ListingTable::try_new(config).map_err(engine)?))
}

/// bonus.md's invariant, checked on what was written before anything is committed: for
/// every employee and month the run recomputes, the entries recorded plus the entries
/// appended (read back from the staged object) add up to the payouts just computed.
pub async fn cross_check(ctx: &SessionContext, ledger: &Ledger) -> Result<()> {
    let repeated = query_rows(
        ctx,
        &format!(
            "SELECT entry_id FROM (SELECT entry_id FROM {RECORDED} UNION ALL \
             SELECT entry_id FROM {APPENDED}) GROUP BY entry_id HAVING count(*) > 1 LIMIT 5"
        ),
        "cross-checking the bonus ledger",
    )
    .await?;
    if let Some(first) = repeated.first() {
        return Err(KpipeError::Internal(format!(
            "this run would append entry {} twice, nothing was committed",
            first[0]
        )));
    }
    let payouts = &ledger.payouts;
    let sql = format!(
        "WITH booked AS (SELECT period FROM periods),
         entries AS (
             SELECT period, employee_id, currency, amount FROM {RECORDED}
             UNION ALL
             SELECT period, employee_id, currency, amount FROM {APPENDED}
         ),
         ledger_net AS (
             SELECT period, employee_id, currency, sum(amount) AS net FROM entries
             WHERE period IN (SELECT b.period FROM booked AS b)
             GROUP BY period, employee_id, currency
         ),
         computed AS (
             SELECT period, employee_id, currency, sum(amount) AS net FROM {payouts}
             WHERE period IN (SELECT b.period FROM booked AS b)
             GROUP BY period, employee_id, currency
         )
         SELECT
             CAST(COALESCE(l.period, c.period) AS VARCHAR) AS period,
             CAST(COALESCE(l.employee_id, c.employee_id) AS VARCHAR) AS employee_id,
             concat(CAST(COALESCE(l.net, 0) AS VARCHAR), ' ', COALESCE(l.currency, c.currency)) AS ledger,
             concat(CAST(COALESCE(c.net, 0) AS VARCHAR), ' ', COALESCE(c.currency, l.currency)) AS computed
         FROM ledger_net AS l
         FULL JOIN computed AS c
           ON l.period = c.period AND l.employee_id = c.employee_id AND l.currency = c.currency
         WHERE COALESCE(l.net, 0) <> COALESCE(c.net, 0)
         ORDER BY 1, 2
         LIMIT 10"
    );
    let batches = query_rows(ctx, &sql, "cross-checking the bonus ledger").await?;
    let rows = batches;
    if rows.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {}: ledger {} vs payouts {}", r[0], r[1], r[2], r[3]))
        .collect();
    Err(KpipeError::Internal(format!(
        "the bonus ledger does not add up to the payouts, nothing was committed: {}",
        shown.join("; ")
    )))
}

/// One line of drift: what a dry run prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub period: String,
    pub employee_id: String,
    pub component: String,
    pub recorded: String,
    pub computed: String,
    pub amount: String,
    pub entry_kind: String,
    pub reason: String,
}

/// The entries this run would append, as drift lines, sorted.
pub async fn drift(ctx: &SessionContext) -> Result<Vec<Drift>> {
    let sql = format!(
        "SELECT period, employee_id, component,
                CAST(recorded AS VARCHAR) AS recorded, CAST(computed AS VARCHAR) AS computed,
                CAST(amount AS VARCHAR) AS amount, entry_kind, reason
         FROM {DRIFT} ORDER BY period, employee_id, component"
    );
    Ok(query_rows(ctx, &sql, "computing the ledger drift")
        .await?
        .into_iter()
        .map(|r| Drift {
            period: r[0].clone(),
            employee_id: r[1].clone(),
            component: r[2].clone(),
            recorded: r[3].clone(),
            computed: r[4].clone(),
            amount: r[5].clone(),
            entry_kind: r[6].clone(),
            reason: r[7].clone(),
        })
        .collect())
}

/// The drift as a table for people.
pub fn drift_text(drift: &[Drift]) -> String {
    if drift.is_empty() {
        return "no drift: the ledger already holds what this run computes\n".into();
    }
    let mut out = format!(
        "{:<8} {:<12} {:<24} {:>12} {:>12} {:>12}  {:<10} {}\n",
        "period", "employee", "component", "recorded", "computed", "drift", "kind", "reason"
    );
    for d in drift {
        out.push_str(&format!(
            "{:<8} {:<12} {:<24} {:>12} {:>12} {:>12}  {:<10} {}\n",
            d.period,
            d.employee_id,
            d.component,
            d.recorded,
            d.computed,
            d.amount,
            d.entry_kind,
            d.reason
        ));
    }
    out
}

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The drift query. Reasons: `first computed` for an accrual; `plan changed` when the
/// plan (by name or fingerprint) differs from the one of the component's latest entry;
/// `data changed` otherwise; a restated month's adjustments say `restatement: ...`.
fn drift_sql(ledger: &Ledger, posting: &Posting) -> String {
    let payouts = &ledger.payouts;
    let run_id = literal(&posting.run_id);
    let as_of = literal(&posting.as_of.to_string());
    let posting_period = literal(&posting.as_of.format("%Y-%m").to_string());
    let recorded_at = literal(
        &posting
            .recorded_at
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string(),
    );
    let restated = posting
        .restated
        .as_deref()
        .map_or("NULL".to_string(), literal);
    format!(
        "WITH booked AS (
    SELECT p.period, p.plan, pl.version AS plan_version
    FROM periods AS p LEFT JOIN plans AS pl ON pl.plan = p.plan
),
computed AS (
    SELECT c.*, b.plan_version
    FROM {payouts} AS c JOIN booked AS b ON b.period = c.period
),
history AS (
    SELECT
        period, employee_id, component, currency,
        sum(amount) AS recorded,
        last_value(plan ORDER BY recorded_at, entry_id) AS last_plan,
        last_value(plan_version ORDER BY recorded_at, entry_id) AS last_plan_version,
        last_value(employee_name ORDER BY recorded_at, entry_id) AS last_name,
        last_value(team ORDER BY recorded_at, entry_id) AS last_team
    FROM {RECORDED}
    WHERE period IN (SELECT b.period FROM booked AS b)
    GROUP BY period, employee_id, component, currency
),
finality AS (
    SELECT period, bool_and(is_final) AS period_final FROM kpi_values GROUP BY period
),
matched AS (
    SELECT
        COALESCE(c.period, h.period) AS period,
        COALESCE(c.employee_id, h.employee_id) AS employee_id,
        COALESCE(c.employee_name, h.last_name) AS employee_name,
        COALESCE(c.team, h.last_team) AS team,
        COALESCE(c.component, h.component) AS component,
        COALESCE(c.currency, h.currency) AS currency,
        c.employee_id IS NOT NULL AS still_computed,
        COALESCE(c.amount, CAST(0 AS DECIMAL(18, 2))) AS computed,
        COALESCE(h.recorded, CAST(0 AS DECIMAL(18, 2))) AS recorded,
        h.period IS NULL AS first_entry,
        h.last_plan,
        h.last_plan_version,
        c.plan AS computed_plan,
        c.plan_version AS computed_plan_version,
        c.rule,
        c.basis,
        c.multiplier,
        c.proration,
        c.active_days,
        c.month_days,
        c.monthly_bonus_target
    FROM computed AS c
    FULL JOIN history AS h
      ON h.period = c.period AND h.employee_id = c.employee_id AND h.component = c.component
     AND h.currency = c.currency
),
entries AS (
    SELECT
        m.*,
        CAST(m.computed - m.recorded AS DECIMAL(18, 2)) AS amount,
        COALESCE(m.computed_plan, b.plan, m.last_plan) AS plan,
        COALESCE(m.computed_plan_version, b.plan_version, m.last_plan_version) AS plan_version,
        COALESCE(f.period_final, false) AS period_final
    FROM matched AS m
    LEFT JOIN booked AS b ON b.period = m.period
    LEFT JOIN finality AS f ON f.period = m.period
    WHERE m.computed <> m.recorded
),
explained AS (
    SELECT
        e.*,
        CASE WHEN e.first_entry THEN 'accrual' ELSE 'adjustment' END AS entry_kind,
        CASE
            WHEN e.first_entry THEN 'first computed'
            ELSE concat(
                CASE WHEN e.period = {restated} THEN 'restatement: ' ELSE '' END,
                CASE
                    WHEN e.plan <> e.last_plan OR e.plan_version <> e.last_plan_version
                    THEN 'plan changed'
                    ELSE 'data changed'
                END
            )
        END AS reason,
        CASE
            WHEN NOT e.still_computed THEN concat(
                'no longer computed for ', e.period,
                ' (not scored, or not in plan ', e.plan, '): ',
                CAST(e.recorded AS VARCHAR), ' reversed to 0.00')
            ELSE concat(
                CASE WHEN e.first_entry THEN '' ELSE concat('was ', CAST(e.recorded AS VARCHAR), ', ') END,
                'computed ', CAST(e.computed AS VARCHAR), ' = ',
                CAST(e.monthly_bonus_target AS VARCHAR), ' ', e.currency,
                ' x ', CAST(e.multiplier AS VARCHAR),
                ' x ', CAST(e.active_days AS VARCHAR), '/', CAST(e.month_days AS VARCHAR), ' days',
                ' (', e.rule, ' at ', COALESCE(CAST(round(e.basis, 4) AS VARCHAR), 'no value'),
                ', plan ', e.plan, ')')
        END AS text
    FROM entries AS e
)
SELECT
    substr(encode(sha256(concat_ws('|', {run_id}, period, employee_id, component,
        CAST(amount AS VARCHAR), CAST(recorded AS VARCHAR))), 'hex'), 1, 32) AS entry_id,
    CAST(period AS VARCHAR) AS period,
    CAST({posting_period} AS VARCHAR) AS posting_period,
    CAST(employee_id AS VARCHAR) AS employee_id,
    CAST(COALESCE(employee_name, '') AS VARCHAR) AS employee_name,
    CAST(COALESCE(team, '') AS VARCHAR) AS team,
    CAST(component AS VARCHAR) AS component,
    CAST(entry_kind AS VARCHAR) AS entry_kind,
    amount,
    CAST(COALESCE(currency, '') AS VARCHAR) AS currency,
    CAST(COALESCE(plan, '') AS VARCHAR) AS plan,
    CAST(COALESCE(rule, 'no longer computed') AS VARCHAR) AS rule,
    CAST(basis AS DOUBLE) AS basis,
    CAST(multiplier AS DOUBLE) AS multiplier,
    CAST(proration AS DOUBLE) AS proration,
    period_final,
    CAST(reason AS VARCHAR) AS reason,
    CAST({run_id} AS VARCHAR) AS run_id,
    CAST({as_of} AS DATE) AS as_of,
    arrow_cast({recorded_at}, 'Timestamp(Microsecond, Some(\"UTC\"))') AS recorded_at,
    CAST(COALESCE(plan_version, '') AS VARCHAR) AS plan_version,
    CAST(text AS VARCHAR) AS text,
    recorded,
    computed
FROM explained"
    )
}

/// An engine error met in kpipe's own SQL: a planning problem there is a bug of kpipe
/// (the payouts view's columns were checked by validate), not of the pipeline.
fn engine_error(error: datafusion::common::DataFusionError, what: &str) -> KpipeError {
    match KpipeError::from_engine(error, what) {
        KpipeError::Config(problems) => KpipeError::Internal(problems.to_string()),
        other => other,
    }
}

/// Runs `sql` and gives every row, each column as text in the order selected (nulls as
/// empty text). For kpipe's own small results: counts, drift, statements.
pub(crate) async fn query_rows(
    ctx: &SessionContext,
    sql: &str,
    what: &str,
) -> Result<Vec<Vec<String>>> {
    use datafusion::arrow::array::{Array, AsArray};
    let engine = |e| engine_error(e, what);
    let batches = ctx
        .sql(sql)
        .await
        .map_err(engine)?
        .collect()
        .await
        .map_err(engine)?;
    let mut rows = Vec::new();
    for batch in batches {
        let texts = batch
            .columns()
            .iter()
            .map(|column| datafusion::arrow::compute::cast(column, &DataType::Utf8))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| KpipeError::Internal(format!("{what}: a column as text: {e}")))?;
        for row in 0..batch.num_rows() {
            rows.push(
                texts
                    .iter()
                    .map(|a| {
                        let a = a.as_string::<i32>();
                        if a.is_null(row) {
                            String::new()
                        } else {
                            a.value(row).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn context(recorded: &str, appended: &str, computed: &str) -> SessionContext {
        let ctx = SessionContext::new();
        let views = [
            ("periods", "SELECT '2026-04' AS period".to_string()),
            (RECORDED, recorded.to_string()),
            (APPENDED, appended.to_string()),
            ("payouts", computed.to_string()),
        ];
        for (name, sql) in views {
            ctx.sql(&format!("CREATE VIEW {name} AS {sql}"))
                .await
                .unwrap();
        }
        ctx
    }

    fn entry(period: &str, employee: &str, amount: &str) -> String {
        format!(
            "SELECT '{period}' AS period, '{employee}' AS employee_id, 'CNY' AS currency, \
             CAST({amount} AS DECIMAL(18, 2)) AS amount, '{period}{employee}{amount}' AS entry_id"
        )
    }

    fn ledger() -> Ledger {
        Ledger {
            root: Url::parse("memory:///").unwrap(),
            payouts: "payouts".into(),
            scorecard: "scorecard".into(),
            scorecard_summary: "scorecard_summary".into(),
        }
    }

    #[tokio::test]
    async fn the_cross_check_passes_when_the_ledger_adds_up() {
        let recorded = entry("2026-04", "E1", "4000.00");
        let appended = entry("2026-04", "E1", "62.50");
        // Entries of a locked month (not in `periods`) are not compared.
        let recorded = format!("{recorded} UNION ALL {}", entry("2026-01", "E1", "9.99"));
        let computed = entry("2026-04", "E1", "4062.50");
        let ctx = context(&recorded, &appended, &computed).await;
        cross_check(&ctx, &ledger()).await.unwrap();
    }

    #[tokio::test]
    async fn the_cross_check_fails_on_an_entry_appended_twice() {
        let appended = entry("2026-04", "E1", "62.50");
        let twice = format!("{appended} UNION ALL {appended}");
        let computed = entry("2026-04", "E1", "125.00");
        let ctx = context(&entry("2026-04", "E1", "0"), &twice, &computed).await;
        let error = cross_check(&ctx, &ledger()).await.unwrap_err();
        assert!(error.to_string().contains("twice"), "{error}");
    }

    #[tokio::test]
    async fn the_cross_check_fails_with_an_internal_error_naming_who_and_when() {
        let recorded = entry("2026-04", "E1", "4000.00");
        let appended = entry("2026-04", "E1", "62.50");
        let computed = format!(
            "{} UNION ALL {}",
            entry("2026-04", "E1", "4062.51"),
            entry("2026-04", "E2", "10.00")
        );
        let ctx = context(&recorded, &appended, &computed).await;
        let error = cross_check(&ctx, &ledger()).await.unwrap_err();
        assert_eq!(error.exit_code(), crate::error::exit_code::INTERNAL);
        let message = error.to_string();
        assert!(
            message.contains("2026-04 E1: ledger 4062.50 CNY vs payouts 4062.51 CNY")
                && message.contains("2026-04 E2: ledger 0.00 CNY vs payouts 10.00 CNY"),
            "{message}"
        );
    }
}
