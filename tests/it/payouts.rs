//! The `payouts` view: what each scored employee earns per month and component, in
//! exact cents (bonus.md). No output may carry it (names and pay per person); these
//! tests read it back from the JSON statements the ledger writes, which list every
//! component of every scored employee and month, 0.00 included.

use std::collections::BTreeMap;

use crate::common::{copy_fixtures, run_pipeline, shipped_pipeline_edited, text};

/// Runs a copy of the shipped pipeline, edited; returns `(period, employee, component)
/// -> [basis, multiplier, active_days, month_days, amount]` from the statements.
async fn payouts(edits: &[(&str, &str)]) -> BTreeMap<Vec<String>, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    let pipeline = shipped_pipeline_edited(dir.path(), edits);
    let output = run_pipeline(dir.path(), &pipeline, "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let number = |v: &serde_json::Value| match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut rows = BTreeMap::new();
    for partition in std::fs::read_dir(dir.path().join("out/statements")).unwrap() {
        for file in std::fs::read_dir(partition.unwrap().path()).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let s: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            for c in s["components"].as_array().unwrap() {
                let key = vec![
                    number(&s["period"]),
                    number(&s["employee_id"]),
                    number(&c["component"]),
                ];
                let value = vec![
                    number(&c["basis"]),
                    number(&c["multiplier"]),
                    number(&s["active_days"]),
                    number(&s["month_days"]),
                    number(&c["amount"]),
                ];
                assert!(rows.insert(key, value).is_none());
            }
        }
    }
    rows
}

fn row<'a>(
    rows: &'a BTreeMap<Vec<String>, Vec<String>>,
    period: &str,
    employee: &str,
    component: &str,
) -> &'a [String] {
    &rows[&vec![
        period.to_string(),
        employee.to_string(),
        component.to_string(),
    ]]
}

/// Scores from `scorecards_match_the_hand_worked_scores` and its neighbours; curve
/// (0.6, 0) (0.8, 0.5) (1.0, 1.0) (1.5, 1.5).
///
/// * E1, 2026-04 (marketer, focus): score 0.7625 lies between 0.6 and 0.8: multiplier
///   0.5 × 0.1625 / 0.2 = 0.40625; 10000.00 × 0.40625 × 30/30 = 4062.50.
/// * E4, 2026-02 (marketer, launch): score 0.608 → 0.02; 8000.00 × 0.02 = 160.00.
/// * E1, 2026-05: score 0.6 exactly, the curve's first point: 0.00.
/// * E2 (team lead) is paid on north's score, below 0.6 every month: 0.00.
/// * E3 joined on 2026-05-15: active 17 of May's 31 days.
/// * No kicker is earned: effective leads far below 50 / 40, north's trial retention
///   0.5 in February is 0.83 of its 0.60 target.
#[tokio::test]
async fn payouts_follow_the_curve_at_the_score_of_the_role() {
    let rows = payouts(&[]).await;
    assert_eq!(
        row(&rows, "2026-04", "E1", "base")[1..],
        ["0.40625", "30", "30", "4062.50"]
    );
    assert_eq!(
        row(&rows, "2026-02", "E4", "base")[1..],
        ["0.02", "28", "28", "160.00"]
    );
    assert_eq!(row(&rows, "2026-05", "E1", "base")[4], "0.00");
    assert_eq!(row(&rows, "2026-05", "E3", "base")[2..4], ["17", "31"]);
    for period in ["2026-02", "2026-03", "2026-04", "2026-05", "2026-06"] {
        assert_eq!(row(&rows, period, "E2", "base")[4], "0.00", "{period}");
    }
    let kickers: Vec<_> = rows
        .iter()
        .filter(|(k, v)| k[2].starts_with("kicker:") && v[4] != "0.00")
        .collect();
    assert!(kickers.is_empty(), "{kickers:?}");
    assert!(
        !rows.keys().any(|k| k[1] == "E6"),
        "E6 joins after the window"
    );
}

/// With launch's curve made (0, 1.0) (1.5, 1.5), its team_retention target 0.50 and
/// focus's lead_target target 1:
///
/// * E4, 2026-03, left on the 10th: score 0.2083333 → 1 + 0.5 × 0.2083333 / 1.5 =
///   1.0694444, rounded to 1.069444; 8000.00 × 1.069444 × 10 / 31 = 2759.8554…,
///   rounded once: 2759.86.
/// * E1, 2026-03: score 0.2971429 → 1.0990476 → 1.099048; 10000.00 × 1.099048 =
///   10990.48.
/// * E3 joined on 2026-05-15 (focus's curve edited the same way): score 0 → 1.0;
///   8000.00 × 1.0 × 17 / 31 = 4387.0967…, rounded once: 4387.10.
/// * north's trial retention in 2026-02 is 1 of 2 = 0.5, attainment 1.0 against 0.50:
///   team_retention's 5% for every member active in February, E1 500.00 and E2
///   (15000.00) 750.00.
/// * E1 has 1 effective lead in 2026-04, attainment 1.0 against 1: lead_target's 10%,
///   1000.00.
#[tokio::test]
async fn proration_rounding_and_kickers_are_exact() {
    let launch_curve = "payout_curve: [[0.6, 0.0], [0.8, 0.5], [1.0, 1.0], [1.5, 1.5]]";
    let launch_retention = "team_retention: {kpi: trial_retention_30d, scope: team, target: 0.60,";
    let focus_leads = "lead_target: {kpi: effective_leads, scope: individual, target: 40,";
    let rows = payouts(&[
        (launch_curve, "payout_curve: [[0.0, 1.0], [1.5, 1.5]]"),
        (launch_curve, "payout_curve: [[0.0, 1.0], [1.5, 1.5]]"),
        (
            launch_retention,
            "team_retention: {kpi: trial_retention_30d, scope: team, target: 0.50,",
        ),
        (
            focus_leads,
            "lead_target: {kpi: effective_leads, scope: individual, target: 1,",
        ),
    ])
    .await;
    assert_eq!(
        row(&rows, "2026-03", "E4", "base")[1..],
        ["1.069444", "10", "31", "2759.86"]
    );
    assert_eq!(
        row(&rows, "2026-03", "E1", "base")[1..],
        ["1.099048", "31", "31", "10990.48"]
    );
    assert_eq!(
        row(&rows, "2026-05", "E3", "base")[1..],
        ["1.0", "17", "31", "4387.10"]
    );
    assert_eq!(
        row(&rows, "2026-02", "E1", "kicker:team_retention")[4],
        "500.00"
    );
    assert_eq!(
        row(&rows, "2026-02", "E2", "kicker:team_retention")[4],
        "750.00"
    );
    assert_eq!(
        row(&rows, "2026-02", "E4", "kicker:team_retention")[4],
        "0.00",
        "south earned nothing"
    );
    assert_eq!(
        row(&rows, "2026-04", "E1", "kicker:lead_target")[..2],
        ["1.0", "0.1"]
    );
    assert_eq!(
        row(&rows, "2026-04", "E1", "kicker:lead_target")[4],
        "1000.00"
    );
}

/// Every component of every scored employee and month on the fixtures, against
/// `fixtures/expected/payouts.csv` (WORKED.md §11; `fixtures/reference.py` recomputes
/// it independently): 42 rows, all 0.00 but E4's February base (160.00) and E1's April
/// base (4062.50).
#[tokio::test]
async fn every_payout_matches_the_hand_worked_file() {
    let rows = payouts(&[]).await;
    let (_, expected) = crate::common::expected_rows("payouts.csv", 3);
    let computed: std::collections::BTreeMap<Vec<String>, Vec<String>> = rows
        .into_iter()
        .map(|(key, value)| (key, vec![value[4].clone()]))
        .collect();
    assert_eq!(computed, expected);
}
