//! Builds every scored employee's statement for the months a run recomputes, from the
//! run's own tables (payouts, scorecards, the ledger before and after the run), and
//! stages them under the ledger's root: `statements/period=P/<employee>.html` and
//! `.json`. Statements are few (employees × months), so they are collected and
//! rendered here; the data behind them was reduced by the engine.

use std::collections::BTreeMap;

use object_store::ObjectStoreExt;
use url::Url;

use super::statement::{Statement, StatementComponent, StatementEntry, StatementKpi};
use super::{APPENDED, RECORDED, query_rows};
use crate::config::Ledger;
use crate::error::{KpipeError, Result};
use crate::sinks::publish::StagedFile;
use crate::storage::{Stores, object_path};

/// The folder statements are published in, under the ledger's root.
pub const FOLDER: &str = "statements";

type Key = (String, String);

/// Builds the statements of every (month, employee) the payouts view has for the months
/// of the run.
pub async fn build(
    ctx: &datafusion::prelude::SessionContext,
    ledger: &Ledger,
    as_of: chrono::NaiveDate,
    run_id: &str,
) -> Result<Vec<Statement>> {
    let booked = "period IN (SELECT b.period FROM periods AS b)";
    let payouts = query_rows(
        ctx,
        &format!(
            "SELECT period, employee_id, employee_name, team, role, level, plan,
                    CASE level WHEN 'employee' THEN employee_id WHEN 'team' THEN team
                         ELSE 'company' END AS entity_id,
                    component, rule, basis, multiplier, proration, active_days, month_days,
                    monthly_bonus_target, amount, currency
             FROM {} WHERE {booked} ORDER BY period, employee_id, component",
            ledger.payouts
        ),
        "reading the payouts for statements",
    )
    .await?;
    let summaries = query_rows(
        ctx,
        &format!(
            "SELECT period, level, entity_id, score, is_final,
                    array_to_string(flags, ',') AS flags
             FROM {} WHERE {booked}",
            ledger.scorecard_summary
        ),
        "reading the scorecard summary for statements",
    )
    .await?;
    let mut summary: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for r in summaries {
        summary.insert((r[0].clone(), r[1].clone(), r[2].clone()), r[3..].to_vec());
    }
    let kpi_rows = query_rows(
        ctx,
        &format!(
            "SELECT period, level, entity_id, kpi, direction, actual, target, attainment,
                    plan_weight, weight, weighted_score, applicable, missing, is_final
             FROM {} WHERE {booked} ORDER BY period, level, entity_id, kpi",
            ledger.scorecard
        ),
        "reading the scorecard for statements",
    )
    .await?;
    let mut kpis: BTreeMap<(String, String, String), Vec<StatementKpi>> = BTreeMap::new();
    for r in kpi_rows {
        kpis.entry((r[0].clone(), r[1].clone(), r[2].clone()))
            .or_default()
            .push(StatementKpi {
                kpi: r[3].clone(),
                direction: r[4].clone(),
                actual: float(&r[5]),
                target: float(&r[6]).unwrap_or(0.0),
                attainment: float(&r[7]),
                plan_weight: float(&r[8]).unwrap_or(0.0),
                weight: float(&r[9]).unwrap_or(0.0),
                weighted_score: float(&r[10]).unwrap_or(0.0),
                applicable: r[11] == "true",
                missing: r[12] == "true",
                is_final: r[13] == "true",
            });
    }
    let entry_rows = query_rows(
        ctx,
        &format!(
            "SELECT period, employee_id, entry_id, posting_period, entry_kind, component,
                    amount, reason, text, run_id, recorded_at, period_final,
                    employee_name, team, plan, currency
             FROM (SELECT * FROM {RECORDED} UNION ALL SELECT * FROM {APPENDED}) AS e
             WHERE {booked}
             ORDER BY period, employee_id, recorded_at, component, entry_id"
        ),
        "reading the ledger for statements",
    )
    .await?;
    let mut entries: BTreeMap<Key, Vec<StatementEntry>> = BTreeMap::new();
    let mut who: BTreeMap<Key, [String; 4]> = BTreeMap::new();
    for r in entry_rows {
        // Who the latest entry names, for a month that only the ledger still has.
        who.insert(
            (r[0].clone(), r[1].clone()),
            [r[12].clone(), r[13].clone(), r[14].clone(), r[15].clone()],
        );
        entries
            .entry((r[0].clone(), r[1].clone()))
            .or_default()
            .push(StatementEntry {
                entry_id: r[2].clone(),
                posting_period: r[3].clone(),
                entry_kind: r[4].clone(),
                component: r[5].clone(),
                amount: r[6].clone(),
                reason: r[7].clone(),
                text: r[8].clone(),
                run_id: r[9].clone(),
                recorded_at: r[10].clone(),
                period_final: r[11] == "true",
            });
    }
    let curve_rows = query_rows(
        ctx,
        "SELECT plan, score, multiplier FROM plan_curve ORDER BY plan, point",
        "reading the payout curves",
    )
    .await?;
    let mut curves: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in curve_rows {
        curves
            .entry(r[0].clone())
            .or_default()
            .push((float(&r[1]).unwrap_or(0.0), float(&r[2]).unwrap_or(0.0)));
    }
    let final_rows = query_rows(
        ctx,
        "SELECT period, bool_and(is_final) AS period_final FROM kpi_values GROUP BY period",
        "reading the months' finality",
    )
    .await?;
    let finality: BTreeMap<String, bool> = final_rows
        .into_iter()
        .map(|r| (r[0].clone(), r[1] == "true"))
        .collect();

    let mut statements: BTreeMap<Key, Statement> = BTreeMap::new();
    for r in payouts {
        let key = (r[0].clone(), r[1].clone());
        let statement = statements.entry(key.clone()).or_insert_with(|| {
            let level_key = (r[0].clone(), r[5].clone(), r[7].clone());
            let own = summary.get(&level_key);
            let flags = summary
                .get(&(r[0].clone(), "employee".to_string(), r[1].clone()))
                .map(|s| {
                    s[2].split(',')
                        .filter(|f| !f.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            Statement {
                period: r[0].clone(),
                employee_id: r[1].clone(),
                employee_name: r[2].clone(),
                team: r[3].clone(),
                role: r[4].clone(),
                plan: r[6].clone(),
                level: r[5].clone(),
                entity_id: r[7].clone(),
                score: own.and_then(|s| float(&s[0])).unwrap_or(0.0),
                score_final: own.is_some_and(|s| s[1] == "true"),
                multiplier: 0.0,
                curve: curves.get(&r[6]).cloned().unwrap_or_default(),
                active_days: r[13].parse().unwrap_or(0),
                month_days: r[14].parse().unwrap_or(0),
                proration: float(&r[12]).unwrap_or(0.0),
                monthly_bonus_target: r[15].clone(),
                currency: r[17].clone(),
                flags,
                period_final: finality.get(&r[0]).copied().unwrap_or(false),
                as_of: as_of.to_string(),
                run_id: run_id.to_string(),
                kpis: kpis.remove(&level_key).unwrap_or_default(),
                components: Vec::new(),
                entries: entries.remove(&key).unwrap_or_default(),
                total_computed: String::new(),
                total_recorded: String::new(),
            }
        });
        if r[8] == "base" {
            statement.multiplier = float(&r[11]).unwrap_or(0.0);
        }
        statement.components.push(StatementComponent {
            component: r[8].clone(),
            rule: r[9].clone(),
            basis: float(&r[10]),
            multiplier: float(&r[11]).unwrap_or(0.0),
            amount: r[16].clone(),
        });
    }
    // A month whose components were all reversed (the employee is no longer scored in
    // it) keeps a statement: its entries, and nothing computed.
    for (key, month_entries) in entries {
        let [name, team, plan, currency] = who.remove(&key).unwrap_or_default();
        statements.insert(
            key.clone(),
            Statement {
                period: key.0.clone(),
                employee_id: key.1.clone(),
                employee_name: name,
                team,
                role: String::new(),
                plan: plan.clone(),
                level: String::new(),
                entity_id: String::new(),
                score: 0.0,
                score_final: false,
                multiplier: 0.0,
                curve: curves.get(&plan).cloned().unwrap_or_default(),
                active_days: 0,
                month_days: 0,
                proration: 0.0,
                monthly_bonus_target: String::new(),
                currency,
                flags: Vec::new(),
                period_final: finality.get(&key.0).copied().unwrap_or(false),
                as_of: as_of.to_string(),
                run_id: run_id.to_string(),
                kpis: Vec::new(),
                components: Vec::new(),
                entries: month_entries,
                total_computed: String::new(),
                total_recorded: String::new(),
            },
        );
    }
    let mut out: Vec<Statement> = statements.into_values().collect();
    for s in &mut out {
        s.total_computed = cents_text(s.components.iter().map(|c| c.amount.as_str()))?;
        s.total_recorded = cents_text(s.entries.iter().map(|e| e.amount.as_str()))?;
    }
    Ok(out)
}

/// Writes each statement as HTML and JSON under `staging` (the run's staging folder
/// under the ledger root); returns where each one is staged and where it is published.
pub(crate) async fn stage(
    stores: &mut Stores,
    ledger: &Ledger,
    staging: &Url,
    statements: &[Statement],
) -> Result<Vec<StagedFile>> {
    let store = stores.store_for(staging)?;
    let staged_root = object_path(staging)?.join(FOLDER);
    let published_root = object_path(&ledger.root)?.join(FOLDER);
    let base = crate::storage::base_of(&ledger.root);
    let mut files = Vec::new();
    for s in statements {
        let pages = [
            ("html", super::statement::render_html(s)),
            ("json", super::statement::render_json(s)),
        ];
        for (extension, body) in pages {
            let name = format!("{}.{extension}", s.employee_id);
            let partition = format!("period={}", s.period);
            let staged = staged_root
                .clone()
                .join(partition.as_str())
                .join(name.as_str());
            let published = published_root
                .clone()
                .join(partition.as_str())
                .join(name.as_str());
            store
                .put(&staged, body.into_bytes().into())
                .await
                .map_err(|e| KpipeError::from_store(e, &format!("staging statement {staged}")))?;
            files.push(StagedFile {
                table: FOLDER.to_string(),
                staged: Some(url_of(&base, &staged)?),
                published: url_of(&base, &published)?,
                rows: 1,
            });
        }
    }
    tracing::info!(statements = statements.len(), "statements staged");
    Ok(files)
}

fn url_of(base: &str, path: &object_store::path::Path) -> Result<Url> {
    Url::parse(&format!("{base}/{path}"))
        .map_err(|e| KpipeError::Internal(format!("{base}/{path}: {e}")))
}

fn float(text: &str) -> Option<f64> {
    text.parse().ok()
}

/// The sum of decimal amounts written with at most 2 decimals, as `-123.45`; exact.
fn cents_text<'a>(amounts: impl Iterator<Item = &'a str>) -> Result<String> {
    let mut cents: i128 = 0;
    for amount in amounts {
        cents += to_cents(amount)
            .ok_or_else(|| KpipeError::Internal(format!("`{amount}` is not an amount")))?;
    }
    let sign = if cents < 0 { "-" } else { "" };
    Ok(format!(
        "{sign}{}.{:02}",
        cents.abs() / 100,
        cents.abs() % 100
    ))
}

fn to_cents(amount: &str) -> Option<i128> {
    let (negative, digits) = match amount.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, amount),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if fraction.len() > 2 || whole.is_empty() {
        return None;
    }
    let cents =
        whole.parse::<i128>().ok()? * 100 + format!("{fraction:0<2}").parse::<i128>().ok()?;
    Some(if negative { -cents } else { cents })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_add_up_exactly() {
        let amounts = ["4062.50", "-0.10", "0.2", "1000"];
        assert_eq!(cents_text(amounts.into_iter()).unwrap(), "5062.60");
        assert_eq!(cents_text(["-5.05"].into_iter()).unwrap(), "-5.05");
        assert_eq!(cents_text(std::iter::empty()).unwrap(), "0.00");
        assert!(cents_text(["1.234"].into_iter()).is_err());
    }
}
