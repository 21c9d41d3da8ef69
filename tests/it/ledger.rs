//! The bonus ledger across nightly runs (bonus.md, "Bonus ledger"): a sequence of runs
//! over changing fixtures, with the ledger asserted exactly after each one.
//!
//! Scores come from the fixtures (WORKED.md) and the shipped plans; curve (0.6, 0)
//! (0.8, 0.5) (1.0, 1.0) (1.5, 1.5) unless said.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{copy_fixtures, kpipe, run_python, shipped_pipeline_edited, text};

/// A pipeline copy in a temporary folder whose runs read `in/`, write `out/` and keep
/// the ledger under `fin/` (a finance-only root).
struct Nightly {
    dir: tempfile::TempDir,
    pipeline: PathBuf,
}

impl Nightly {
    fn new(edits: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_fixtures(dir.path());
        let pipeline = shipped_pipeline_edited(dir.path(), edits);
        Self { dir, pipeline }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn edit_pipeline(&self, from: &str, to: &str) {
        let yaml = std::fs::read_to_string(&self.pipeline).unwrap();
        assert!(yaml.contains(from), "the pipeline has no {from:?}");
        std::fs::write(&self.pipeline, yaml.replacen(from, to, 1)).unwrap();
    }

    fn append(&self, file: &str, row: &str) {
        let path = self.path().join("in").join(file);
        let mut rows = std::fs::read_to_string(&path).unwrap();
        rows.push_str(row);
        rows.push('\n');
        std::fs::write(&path, rows).unwrap();
    }

    /// `kpipe run` on this pipeline for 2026-06-30 with its roots.
    fn args(&self) -> Vec<&str> {
        vec![
            "run",
            self.pipeline.to_str().unwrap(),
            "--as-of",
            "2026-06-30",
            "--var",
            "input_root=in",
            "--var",
            "output_root=out",
            "--var",
            "ledger_root=fin",
        ]
    }

    fn run(&self, extra: &[&str]) -> Output {
        let mut args = self.args();
        args.extend_from_slice(extra);
        kpipe(self.path(), &args)
    }

    fn run_ok(&self, extra: &[&str]) -> String {
        let output = self.run(extra);
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    }

    /// A deal that arrives late: account A40 (owned by E4) pays its first invoice on
    /// 2026-02-12.
    fn late_deal(&self) {
        self.append(
            "accounts/accounts.csv",
            "A40,Late Deal Co,300,tech,standard,E4,2026-01-15T02:00:00Z",
        );
        self.append(
            "invoices/invoices.csv",
            "I40,A40,,2026-02-10T02:00:00Z,2026-02-12T02:00:00Z,5000.00,CNY,paid",
        );
    }

    /// `sql` run by DuckDB over the ledger, as the view `ledger`; a row per line.
    fn duckdb(&self, sql: &str) -> Vec<String> {
        let script = "import duckdb, sys\n\
             duckdb.sql(f\"CREATE VIEW ledger AS SELECT * FROM read_parquet('{sys.argv[1]}/*.parquet')\")\n\
             rows = duckdb.sql(sys.argv[2]).fetchall()\n\
             print('\\n'.join(' '.join(str(c) for c in r) for r in rows))\n";
        let folder = self.path().join("fin/bonus_ledger");
        run_python(script, &[folder.to_str().unwrap(), sql])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The ledger's objects, one per run that appended something.
    fn objects(&self) -> usize {
        match std::fs::read_dir(self.path().join("fin/bonus_ledger")) {
            Ok(entries) => entries.count(),
            Err(_) => 0,
        }
    }

    /// Every entry in the order it was recorded: (period, employee, component, kind,
    /// amount, reason, plan).
    async fn entries(&self) -> Vec<[String; 7]> {
        ledger_entries(&self.path().join("fin/bonus_ledger"))
            .await
            .into_iter()
            .map(|r| std::array::from_fn(|i| r[i].clone()))
            .collect()
    }
}

/// Every ledger entry under `folder` as text, in recording order: period, employee_id,
/// component, entry_kind, amount, reason, plan, posting_period, run_id, period_final,
/// text.
pub async fn ledger_entries(folder: &Path) -> Vec<Vec<String>> {
    if std::fs::read_dir(folder).map_or(true, |mut d| d.next().is_none()) {
        return Vec::new();
    }
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_parquet("ledger", folder.to_str().unwrap(), Default::default())
        .await
        .unwrap();
    let frame = ctx
        .sql(
            "SELECT period, employee_id, component, entry_kind, amount, reason, plan,
                    posting_period, run_id, period_final, text
             FROM ledger ORDER BY recorded_at, period, employee_id, component",
        )
        .await
        .unwrap();
    crate::common::text_rows(frame).await
}

fn entry(fields: [&str; 7]) -> [String; 7] {
    fields.map(str::to_string)
}

/// A plan from June on that pays half the target at a score of 0 (curve (0, 0.5)
/// (1.5, 1.5)), scoring what focus scores.
const RETENTION_PLAN: &str = r#"
  retention:
    effective_from: "2026-06-01"
    effective_lead: {min_company_size: 50, contact_roles: [hr_head], industries: [internet, tech], need_window_days: 90}
    payout_curve: [[0.0, 0.5], [1.5, 1.5]]
    scored:
      - {kpi: effective_leads, weight: 0.30, direction: higher, targets: {employee: 40, team: 150, company: 150}}
      - {kpi: lead_to_customer_rate_90d, weight: 0.30, direction: higher, targets: {employee: 0.30, team: 0.30, company: 0.30}}
      - {kpi: trial_retention_30d, weight: 0.20, direction: higher, targets: {employee: 0.60, team: 0.60, company: 0.60}}
      - {kpi: cpl, weight: 0.20, direction: lower, targets: {employee: 400, team: 400, company: 400}}
"#;

/// The nightly story, one run after another:
///
/// 1. First run. E4, February (launch): effective leads 1/50 = 0.02 × 0.4, webinar
///    0.6/0.4 = 1.5 × 0.3, new paying customers 0/4 × 0.2, cpl 500/200 = 2.5 capped at
///    1.5 × 0.1: score 0.608, multiplier 0.5 × 0.008/0.2 = 0.02, 8000.00 × 0.02 =
///    160.00. E1, April (focus; cpl and trial retention not applicable, weights 0.5 and
///    0.5): 0.5 × 1/40 + 0.5 × min(1.0/0.3, 1.5) = 0.7625, multiplier 0.40625, 4062.50.
///    Every other scored month is below 0.6 and pays 0.00, which appends nothing.
/// 2. The same inputs: nothing.
/// 3. A late deal: account A40 (E4) pays its first invoice on 2026-02-12. E4's new paying
///    customers in February 1/4 = 0.25 × 0.2 = +0.05: score 0.658, multiplier 0.145,
///    1160.00: an adjustment of +1000.00, data changed.
/// 4. A new plan from June (curve (0, 0.5) (1.5, 1.5)): February to May untouched; June
///    accrues E1 (score 0.384375 → 0.5 + 0.384375/1.5 = 0.75625: 7562.50), E2 (team
///    lead, north's 0.3775 → 0.7516666… rounded to 0.751667: 15000.00 × 0.751667 =
///    11275.005, rounded half away from zero: 11275.01) and E3 (0.403125 → 0.76875:
///    6150.00).
/// 5. Time passes (the window is now four months, March to June, so February is
///    locked) and a second late deal lands in February: no entry at all.
/// 6. `--restate 2026-02 --dry-run`: the drift, E4 base 1160.00 → 2160.00 (2/4 = 0.5 ×
///    0.2: score 0.708, multiplier 0.27), and no entry.
/// 7. `--restate 2026-02`: the +1000.00 adjustment, as a restatement.
/// 8. The same restatement again: nothing.
#[tokio::test]
async fn nightly_runs_append_exactly_the_differences() {
    let nightly = Nightly::new(&[]);

    // 1. First accruals.
    let stdout = nightly.run_ok(&[]);
    assert!(stdout.contains("appended 2, 14 statements"), "{stdout}");
    let first = vec![
        entry([
            "2026-02",
            "E4",
            "base",
            "accrual",
            "160.00",
            "first computed",
            "launch",
        ]),
        entry([
            "2026-04",
            "E1",
            "base",
            "accrual",
            "4062.50",
            "first computed",
            "focus",
        ]),
    ];
    assert_eq!(nightly.entries().await, first);
    let rows = ledger_entries(&nightly.path().join("fin/bonus_ledger")).await;
    assert_eq!(rows[0][7], "2026-06", "posted in the month of as_of");
    assert_eq!(rows[0][9], "true", "February is final on 2026-06-30");
    assert_eq!(
        rows[1][9], "false",
        "April's 90-day conversions are still open"
    );
    assert_eq!(
        rows[1][10],
        "computed 4062.50 = 10000.00 CNY x 0.40625 x 30/30 days (curve(score of employee) at 0.7625, plan focus)"
    );
    assert!(
        !nightly.path().join("out/bonus_ledger").exists(),
        "the ledger lives under its own root"
    );

    // 2. Same inputs: nothing, and no new object.
    nightly.run_ok(&[]);
    assert_eq!(nightly.entries().await, first);
    assert_eq!(nightly.objects(), 1);

    // 3. A late deal in February.
    nightly.late_deal();
    nightly.run_ok(&[]);
    let mut expected = first.clone();
    expected.push(entry([
        "2026-02",
        "E4",
        "base",
        "adjustment",
        "1000.00",
        "data changed",
        "launch",
    ]));
    assert_eq!(nightly.entries().await, expected);
    nightly.run_ok(&[]);
    assert_eq!(nightly.objects(), 2, "a rerun appends nothing");

    // 4. A new plan from June.
    let yaml = std::fs::read_to_string(&nightly.pipeline).unwrap();
    std::fs::write(&nightly.pipeline, format!("{yaml}{RETENTION_PLAN}")).unwrap();
    nightly.run_ok(&[]);
    for (employee, amount) in [("E1", "7562.50"), ("E2", "11275.01"), ("E3", "6150.00")] {
        expected.push(entry([
            "2026-06",
            employee,
            "base",
            "accrual",
            amount,
            "first computed",
            "retention",
        ]));
    }
    assert_eq!(nightly.entries().await, expected);

    // 5. February is locked; a change there appends nothing.
    nightly.edit_pipeline("lookback_months: 5", "lookback_months: 4");
    nightly.append(
        "accounts/accounts.csv",
        "A41,Later Deal Co,300,tech,standard,E4,2026-01-15T02:00:00Z",
    );
    nightly.append(
        "invoices/invoices.csv",
        "I41,A41,,2026-02-11T02:00:00Z,2026-02-13T02:00:00Z,5000.00,CNY,paid",
    );
    let stdout = nightly.run_ok(&[]);
    assert!(stdout.contains("appended 0"), "{stdout}");
    assert_eq!(nightly.entries().await, expected);
    assert!(
        nightly
            .path()
            .join("fin/statements/period=2026-02/E4.json")
            .exists(),
        "a locked month's statements stay"
    );

    // 6. A dry run of the restatement shows the drift and appends nothing.
    let stdout = nightly.run_ok(&["--restate", "2026-02", "--dry-run"]);
    let drift: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("period "))
        .skip(1)
        .collect();
    assert_eq!(drift.len(), 1, "{stdout}");
    let fields: Vec<&str> = drift[0].split_whitespace().collect();
    assert_eq!(
        fields,
        [
            "2026-02",
            "E4",
            "base",
            "1160.00",
            "2160.00",
            "1000.00",
            "adjustment",
            "restatement:",
            "data",
            "changed"
        ]
    );
    assert_eq!(nightly.entries().await, expected);
    assert_eq!(nightly.objects(), 3);

    // 7. The restatement.
    nightly.run_ok(&["--restate", "2026-02"]);
    expected.push(entry([
        "2026-02",
        "E4",
        "base",
        "adjustment",
        "1000.00",
        "restatement: data changed",
        "launch",
    ]));
    assert_eq!(nightly.entries().await, expected);

    // 8. Again: nothing.
    let stdout = nightly.run_ok(&["--restate", "2026-02"]);
    assert!(stdout.contains("appended 0"), "{stdout}");
    assert_eq!(nightly.objects(), 4);

    // The net of every (employee, month, component) is what the statements compute.
    let sums = nightly.duckdb(
        "SELECT period, employee_id, component, sum(amount) FROM ledger GROUP BY ALL ORDER BY ALL",
    );
    assert_eq!(
        sums,
        [
            "2026-02 E4 base 2160.00",
            "2026-04 E1 base 4062.50",
            "2026-06 E1 base 7562.50",
            "2026-06 E2 base 11275.01",
            "2026-06 E3 base 6150.00",
        ]
    );
    let statement: serde_json::Value = serde_json::from_slice(
        &std::fs::read(nightly.path().join("fin/statements/period=2026-02/E4.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(statement["total_computed"], "2160.00");
    assert_eq!(statement["total_recorded"], "2160.00");
    assert_eq!(statement["entries"].as_array().unwrap().len(), 3);
}

#[test]
fn only_a_locked_month_can_be_restated() {
    let nightly = Nightly::new(&[]);
    let output = nightly.run(&["--restate", "2026-05"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("only a locked month can be restated"),
        "{}",
        text(&output.stderr)
    );
    let output = nightly.run(&["--restate", "May"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!nightly.path().join("fin").exists());
}

/// A focus plan edited in place (its curve) is a plan change, not a data change, even
/// under the same name: entries carry the plan's fingerprint. E1, April, score 0.7625
/// on (0, 0) (1.5, 1.5): 0.7625, 7625.00, +3562.50.
#[tokio::test]
async fn an_edited_plan_reads_as_a_plan_change() {
    let nightly = Nightly::new(&[]);
    nightly.run_ok(&[]);
    let yaml = std::fs::read_to_string(&nightly.pipeline).unwrap();
    let curve = "payout_curve: [[0.6, 0.0], [0.8, 0.5], [1.0, 1.0], [1.5, 1.5]]";
    let at = yaml.rfind(curve).unwrap();
    let edited = format!(
        "{}payout_curve: [[0.0, 0.0], [1.5, 1.5]]{}",
        &yaml[..at],
        &yaml[at + curve.len()..]
    );
    std::fs::write(&nightly.pipeline, edited).unwrap();
    nightly.run_ok(&[]);
    let entries = nightly.entries().await;
    let april: Vec<_> = entries
        .iter()
        .filter(|e| e[0] == "2026-04" && e[1] == "E1")
        .collect();
    assert_eq!(
        april,
        [
            &entry([
                "2026-04",
                "E1",
                "base",
                "accrual",
                "4062.50",
                "first computed",
                "focus"
            ]),
            &entry([
                "2026-04",
                "E1",
                "base",
                "adjustment",
                "3562.50",
                "plan changed",
                "focus"
            ]),
        ]
    );
}

/// A copied ledger object would pay everything in it twice: the run refuses to go on.
#[tokio::test]
async fn a_duplicated_ledger_object_stops_the_run() {
    let nightly = Nightly::new(&[]);
    nightly.run_ok(&[]);
    let folder = nightly.path().join("fin/bonus_ledger");
    let object = std::fs::read_dir(&folder)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::copy(&object, folder.join("copy.parquet")).unwrap();
    let output = nightly.run(&[]);
    assert_eq!(output.status.code(), Some(70), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("more than once"), "{stderr}");
    assert_eq!(nightly.objects(), 2, "nothing appended");
}

#[test]
fn no_output_may_carry_the_payouts() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline =
        shipped_pipeline_edited(dir.path(), &[("\noutputs:\n", "\noutputs:\n  payouts:\n")]);
    let output = kpipe(dir.path(), &["validate", pipeline.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(78), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("outputs.payouts") && stderr.contains("names and pay per person"),
        "{stderr}"
    );
}

/// DuckDB reads the ledger with outputs.md's types.
#[test]
fn duckdb_reads_the_ledger_with_its_types() {
    let nightly = Nightly::new(&[]);
    nightly.run_ok(&[]);
    let types = nightly.duckdb("SELECT column_name, column_type FROM (DESCRIBE ledger)");
    assert_eq!(
        types,
        [
            "entry_id VARCHAR",
            "period VARCHAR",
            "posting_period VARCHAR",
            "employee_id VARCHAR",
            "employee_name VARCHAR",
            "team VARCHAR",
            "component VARCHAR",
            "entry_kind VARCHAR",
            "amount DECIMAL(18,2)",
            "currency VARCHAR",
            "plan VARCHAR",
            "rule VARCHAR",
            "basis DOUBLE",
            "multiplier DOUBLE",
            "proration DOUBLE",
            "period_final BOOLEAN",
            "reason VARCHAR",
            "run_id VARCHAR",
            "as_of DATE",
            "recorded_at TIMESTAMP WITH TIME ZONE",
            "plan_version VARCHAR",
            "text VARCHAR",
        ]
    );
}

/// (employee, amount) of every ledger entry under `dir/out`.
async fn amounts(dir: &Path) -> Vec<(String, String)> {
    ledger_entries(&dir.join("out/bonus_ledger"))
        .await
        .into_iter()
        .map(|e| (e[1].clone(), e[4].clone()))
        .collect()
}

fn first_accruals() -> Vec<(String, String)> {
    vec![
        ("E4".into(), "160.00".into()),
        ("E1".into(), "4062.50".into()),
    ]
}

/// Dead after its ledger entries were staged but before it claimed or committed, a run
/// appended nothing; the next run accrues exactly once.
#[tokio::test]
async fn a_run_dead_before_committing_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    crate::common::crash_at(dir.path(), "ledger staged");
    assert!(amounts(dir.path()).await.is_empty());
    let output = crate::common::run_shipped(dir.path(), "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(amounts(dir.path()).await, first_accruals());
}

/// Dead once its manifest (the commit) was written and before it published anything, a
/// run's ledger entries are published by recovery, once, with its outputs; the next run
/// appends nothing.
#[tokio::test]
async fn a_run_dead_after_committing_appends_once_through_recovery() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    crate::common::crash_at(dir.path(), "run manifest written");
    assert!(
        amounts(dir.path()).await.is_empty(),
        "nothing published yet"
    );
    let pipeline = crate::common::shipped_pipeline();
    let output = kpipe(
        dir.path(),
        &[
            "recover",
            pipeline.to_str().unwrap(),
            "--var",
            "input_root=in",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("recovered: 1 run(s) completed"));
    assert_eq!(amounts(dir.path()).await, first_accruals());
    assert!(
        dir.path()
            .join("out/statements/period=2026-04/E1.html")
            .exists()
    );
    assert!(
        !dir.path().join("out/_staging").exists(),
        "nothing left staged"
    );
    let output = crate::common::run_shipped(dir.path(), "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("appended 0"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(amounts(dir.path()).await, first_accruals());
}

/// Dead between claiming the ledger state and committing (a window of one PUT), a run
/// holds its claim until it is void (an hour): appending runs stop with exit 75 until
/// then, and append once after.
#[tokio::test]
async fn a_claim_left_by_a_dead_run_holds_until_it_is_void() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    crate::common::crash_at(dir.path(), "ledger state claimed");
    let output = crate::common::run_shipped(dir.path(), "in", &[]);
    assert_eq!(output.status.code(), Some(75), "{}", text(&output.stderr));
    assert!(amounts(dir.path()).await.is_empty());
    let claim = dir.path().join("out/_ledger_claims/00000000-0.json");
    let aged = std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(&claim)
        .status()
        .unwrap();
    assert!(aged.success());
    let output = crate::common::run_shipped(dir.path(), "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(amounts(dir.path()).await, first_accruals());
    assert!(
        dir.path()
            .join("out/_ledger_claims/00000000-1.json")
            .exists()
    );
}

/// A kicker earned, then taken out of the plan: each of its entries is reversed to 0.00
/// by an adjustment that says why, and the statements keep both. With focus's
/// lead_target target made 1 (share 10%, every role): E1 has 1 effective lead in April
/// and June (1000.00 each), E2 1 in April and May (10% of 15000.00: 1500.00 each), E3 3
/// in June (attainment capped at 1.5: 800.00); nobody else has one (WORKED.md §4).
#[tokio::test]
async fn a_component_no_longer_computed_is_reversed() {
    let kicker = "      lead_target: {kpi: effective_leads, scope: individual, target: 40, threshold: 1.0, share: 0.10}\n";
    let easy = "      lead_target: {kpi: effective_leads, scope: individual, target: 1, threshold: 1.0, share: 0.10}\n";
    let nightly = Nightly::new(&[(kicker, easy)]);
    nightly.run_ok(&[]);
    let earned = [
        ("2026-04", "E1", "1000.00"),
        ("2026-04", "E2", "1500.00"),
        ("2026-05", "E2", "1500.00"),
        ("2026-06", "E1", "1000.00"),
        ("2026-06", "E3", "800.00"),
    ];
    let kicker_entries = |rows: &[Vec<String>]| -> Vec<(String, String, String, String, String)> {
        rows.iter()
            .filter(|r| r[2] == "kicker:lead_target")
            .map(|r| {
                (
                    r[0].clone(),
                    r[1].clone(),
                    r[3].clone(),
                    r[4].clone(),
                    r[5].clone(),
                )
            })
            .collect()
    };
    let mut expected: Vec<_> = earned
        .iter()
        .map(|(p, e, a)| {
            (
                p.to_string(),
                e.to_string(),
                "accrual".into(),
                a.to_string(),
                "first computed".into(),
            )
        })
        .collect();
    let rows = ledger_entries(&nightly.path().join("fin/bonus_ledger")).await;
    assert_eq!(kicker_entries(&rows), expected);

    nightly.edit_pipeline(easy, "");
    nightly.run_ok(&[]);
    expected.extend(earned.iter().map(|(p, e, a)| {
        (
            p.to_string(),
            e.to_string(),
            "adjustment".into(),
            format!("-{a}"),
            "plan changed".into(),
        )
    }));
    let rows = ledger_entries(&nightly.path().join("fin/bonus_ledger")).await;
    assert_eq!(kicker_entries(&rows), expected);
    let reversal = rows
        .iter()
        .find(|r| r[0] == "2026-04" && r[1] == "E1" && r[3] == "adjustment")
        .unwrap();
    assert_eq!(
        reversal[10],
        "no longer computed for 2026-04 (not scored, or not in plan focus): 1000.00 reversed to 0.00"
    );
    let statement: serde_json::Value = serde_json::from_slice(
        &std::fs::read(nightly.path().join("fin/statements/period=2026-04/E1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(statement["entries"].as_array().unwrap().len(), 3);
    assert_eq!(statement["total_recorded"], "4062.50");
    assert_eq!(statement["total_computed"], "4062.50");
}

/// Extracts with personal data (the roster's names and bonus targets, the leads'
/// contacts) and the materialized payouts are staged under the ledger's root, never next
/// to the outputs BI reads, even for the length of a run.
#[test]
fn personal_extracts_are_staged_under_the_ledger_root() {
    let nightly = Nightly::new(&[]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kpipe"))
        .args(nightly.args())
        .env("KPIPE_CRASH_AT", "view built")
        .current_dir(nightly.path())
        .output()
        .unwrap();
    assert!(!output.status.success(), "the run did not die");
    let staged = |root: &str, folder: &str| -> Vec<String> {
        let staging = nightly.path().join(root).join("_staging");
        let run = std::fs::read_dir(&staging)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut names: Vec<String> = std::fs::read_dir(run.join(folder))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    // Materialized views: pay per person under the ledger's root only.
    assert_eq!(staged("fin", "views"), ["payouts"]);
    let public_views = staged("out", "views");
    assert!(
        public_views.contains(&"scorecard".to_string()),
        "{public_views:?}"
    );
    assert!(
        !public_views.contains(&"payouts".to_string()),
        "{public_views:?}"
    );
    let staged = |root: &str| staged(root, "");
    let pipeline = crate::common::marketing("in", "out");
    let personal: Vec<String> = pipeline
        .sources
        .iter()
        .filter(|s| s.columns.iter().any(|c| c.pii))
        .map(|s| s.name.clone())
        .collect();
    assert!(personal.contains(&"employees".to_string()), "{personal:?}");
    let private = staged("fin");
    assert!(personal.iter().all(|p| private.contains(p)), "{private:?}");
    let public = staged("out");
    assert!(public.contains(&"campaigns".to_string()), "{public:?}");
    assert!(!public.iter().any(|p| personal.contains(p)), "{public:?}");
}

/// Two runs that read the same ledger must not both append: the second to claim that
/// ledger state stops with exit 75 while the first may still commit or has committed,
/// and goes on once the first is known to have failed.
#[tokio::test]
async fn only_one_run_appends_from_a_ledger_state() {
    let nightly = Nightly::new(&[]);
    let claims = nightly.path().join("fin/_ledger_claims");
    std::fs::create_dir_all(&claims).unwrap();
    let other = "2026-06-30.20261203T000000.000Z.1";
    let claim = |name: &str| {
        std::fs::write(
            claims.join(name),
            format!("{{\"run_id\": \"{other}\", \"ledger_objects_read\": []}}"),
        )
        .unwrap();
    };
    // Another run claimed the empty ledger and has not committed yet.
    claim("00000000-0.json");
    let output = nightly.run(&[]);
    assert_eq!(output.status.code(), Some(75), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("is committing ledger entries"));
    assert_eq!(nightly.objects(), 0);

    // It failed: its claim is void, this run appends.
    std::fs::create_dir_all(nightly.path().join("out/runs")).unwrap();
    let manifest = nightly.path().join(format!("out/runs/{other}.json"));
    std::fs::write(&manifest, r#"{"outcome": "failed"}"#).unwrap();
    nightly.run_ok(&[]);
    assert_eq!(nightly.entries().await.len(), 2);
    assert!(claims.join("00000000-1.json").exists());

    // Another run claimed the ledger of one object and committed: this run's
    // differences were computed from a ledger that is no longer the ledger.
    claim("00000001-0.json");
    std::fs::write(&manifest, r#"{"outcome": "succeeded"}"#).unwrap();
    nightly.late_deal();
    let output = nightly.run(&[]);
    assert_eq!(output.status.code(), Some(75), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("committed ledger entries computed from the same ledger")
    );
    assert_eq!(nightly.entries().await.len(), 2, "nothing appended");
}

/// The ledger reads the payouts view by column: validate names what it lacks.
#[test]
fn validate_names_a_column_the_ledger_needs() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = shipped_pipeline_edited(dir.path(), &[]);
    let sql = dir.path().join("sql/payouts.sql");
    let view = std::fs::read_to_string(&sql).unwrap();
    let edited = view.replacen(") AS amount,", ") AS pay,", 1);
    assert_ne!(edited, view, "the edit applies");
    std::fs::write(&sql, edited).unwrap();
    let output = kpipe(dir.path(), &["validate", pipeline.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(78), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("payouts.sql") && stderr.contains("the ledger needs a column `amount`"),
        "{stderr}"
    );
}

/// A payouts view that gives a (period, employee, component) twice would have its
/// difference appended once per copy: the run stops before anything is staged, naming
/// the view.
#[tokio::test]
async fn payouts_with_a_repeated_key_stop_the_run() {
    let nightly = Nightly::new(&[]);
    let sql = nightly.path().join("sql/payouts.sql");
    let view = std::fs::read_to_string(&sql).unwrap();
    let twice = "FROM (SELECT * FROM components UNION ALL \
                 SELECT * FROM components WHERE component = 'base') AS c\n";
    assert!(view.ends_with("FROM components\n"));
    std::fs::write(&sql, view.replace("FROM components\n", twice)).unwrap();
    let output = nightly.run(&[]);
    assert_eq!(output.status.code(), Some(78), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("payouts.sql")
            && stderr.contains("one row per period, employee_id and component"),
        "{stderr}"
    );
    assert!(stderr.contains("(2026-02, E1, base) x2"), "{stderr}");
    assert_eq!(nightly.objects(), 0);
}

/// An employee taken off the roster is no longer scored: every amount of theirs is
/// reversed (data changed), and their statement stays with the entries and nothing
/// computed. E4's February base was 160.00.
#[tokio::test]
async fn an_employee_no_longer_scored_keeps_a_statement_of_the_reversal() {
    let nightly = Nightly::new(&[]);
    nightly.run_ok(&[]);
    let roster = nightly.path().join("in/employees/employees.csv");
    let rows = std::fs::read_to_string(&roster).unwrap();
    let without: String = rows
        .lines()
        .filter(|l| !l.starts_with("E4,"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(rows, without);
    std::fs::write(&roster, without).unwrap();
    nightly.run_ok(&[]);
    let entries = nightly.entries().await;
    assert_eq!(
        entries.last().unwrap(),
        &entry([
            "2026-02",
            "E4",
            "base",
            "adjustment",
            "-160.00",
            "data changed",
            "launch"
        ])
    );
    assert_eq!(entries.len(), 3);
    let statement: serde_json::Value = serde_json::from_slice(
        &std::fs::read(nightly.path().join("fin/statements/period=2026-02/E4.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(statement["employee_name"], "Chen Jie");
    assert_eq!(statement["components"], serde_json::json!([]));
    assert_eq!(statement["entries"].as_array().unwrap().len(), 2);
    assert_eq!(statement["total_recorded"], "0.00");
    assert_eq!(statement["total_computed"], "0.00");
}
