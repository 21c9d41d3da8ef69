//! `kpipe validate`: every problem at once, each as `file:line:col key.path: what`.

use std::path::Path;

use crate::common::{kpipe, text};

const SOURCES: &str = "\
sources:
  leads:
    format: csv
    columns:
      - {name: lead_id, type: string, nullable: false}
      - {name: created_at, type: timestamp}
";

/// Writes `pipeline.yaml` and `sql/NAME.sql` files into `dir`.
fn write(dir: &Path, yaml: &str, views: &[(&str, &str)]) {
    std::fs::write(dir.join("pipeline.yaml"), yaml).unwrap();
    std::fs::create_dir_all(dir.join("sql")).unwrap();
    for (name, sql) in views {
        std::fs::write(dir.join(format!("sql/{name}.sql")), sql).unwrap();
    }
}

/// Runs validate; returns the exit code and stderr.
fn validate(dir: &Path) -> (i32, String) {
    let output = kpipe(dir, &["validate", "pipeline.yaml"]);
    (output.status.code().unwrap(), text(&output.stderr))
}

#[test]
fn yaml_problems_are_all_reported_with_their_positions() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "\
name: broken
input_root: ${input_root:-in}
output_root: ${nowhere}
settings:
  timezone: Mars/Base
  lookback_months: 0
sources:
  leads:
    format: csv
    columns:
      - {name: lead_id, type: strin}
  spend:
    format: csv
    colums: []
  Bad-Name:
    format: parquet
    columns:
      - {name: x, type: int}
";
    write(dir.path(), yaml, &[]);
    let (code, stderr) = validate(dir.path());
    assert_eq!(code, 78, "{stderr}");
    for expected in [
        "pipeline.yaml:3:1 output_root: variable `nowhere` is not defined",
        "pipeline.yaml:5:3 settings.timezone: `Mars/Base` is not an IANA time zone",
        "pipeline.yaml:6:3 settings.lookback_months: must be from 1 to 36",
        "pipeline.yaml:11:25 sources.leads.columns[0].type: unknown variant `strin`",
        "pipeline.yaml:14:5 sources.spend.colums: unknown field `colums`",
        "pipeline.yaml:15:3 sources.Bad-Name: `Bad-Name` is not a lower-case identifier",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("(6 problem(s))"), "{stderr}");
}

#[test]
fn unknown_tables_and_cycles_name_the_views() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("name: graph\ninput_root: in\noutput_root: out\n{SOURCES}");
    write(
        dir.path(),
        &yaml,
        &[
            ("a", "SELECT * FROM b"),
            ("b", "SELECT * FROM a"),
            (
                "c",
                "SELECT lead_id\nFROM leads JOIN lead_fact USING (lead_id)",
            ),
        ],
    );
    let (code, stderr) = validate(dir.path());
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("sql/c.sql:2:17: unknown table `lead_fact`"),
        "{stderr}"
    );
    // Unknown tables are reported before ordering; fix them and the cycle shows.
    std::fs::write(dir.path().join("sql/c.sql"), "SELECT lead_id FROM leads").unwrap();
    let (code, stderr) = validate(dir.path());
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("sql/a.sql:1:15: views read each other in a cycle: a -> b -> a"),
        "{stderr}"
    );
}

#[test]
fn sql_problems_are_planned_against_the_declared_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "name: plans\ninput_root: in\noutput_root: out\n{SOURCES}\
         outputs:\n  good:\n    partition_by: [period]\n  missing:\n    view: nope\n  \
         wrong:\n    view: good\n    partition_by: [month]\n"
    );
    write(
        dir.path(),
        &yaml,
        &[
            (
                "good",
                "SELECT lead_id, $period AS period\nFROM leads\nWHERE created_at < $cutoff",
            ),
            ("bad_column", "SELECT lead_id,\n       owner\nFROM leads"),
            (
                "bad_param",
                "SELECT lead_id FROM leads\nWHERE created_at < $cut_off",
            ),
            ("reads_bad", "SELECT * FROM bad_column"),
        ],
    );
    let (code, stderr) = validate(dir.path());
    assert_eq!(code, 78, "{stderr}");
    for expected in [
        "sql/bad_column.sql:2:8: column 'owner' not found",
        "sql/bad_param.sql:2:20: unknown parameter `$cut_off`",
        "pipeline.yaml:14:5 outputs.missing.view: no view `nope`",
        "pipeline.yaml:17:20 outputs.wrong.partition_by[0]: view `good` has no column `month`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("reads_bad"),
        "a view that reads a broken view is not reported again:\n{stderr}"
    );
}

#[test]
fn validate_reads_no_data() {
    let dir = tempfile::tempdir().unwrap();
    // The input root does not exist, and the required extract is not there: validate
    // still passes, because it only plans against the declared schemas.
    let yaml = format!("name: ok\ninput_root: /nonexistent/extracts\noutput_root: out\n{SOURCES}")
        .replace("format: csv", "format: csv\n    required: true");
    write(
        dir.path(),
        &yaml,
        &[(
            "v",
            "SELECT count(*) AS n FROM leads WHERE created_at < $cutoff",
        )],
    );
    let output = kpipe(dir.path(), &["validate", "pipeline.yaml"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout).trim(),
        "ok: 1 sources, 1 views, 0 outputs"
    );
}

const KPIS: &str = "\
kpis:
  leads: {direction: higher}
  effective_leads: {direction: higher}
  cpl: {direction: lower, ratio: true}
";

#[test]
fn plans_that_break_the_rules_are_refused_by_name_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "name: plans\ninput_root: in\noutput_root: out\n{SOURCES}{KPIS}\
plans:
  few:
    effective_from: '2026-01-01'
    scored:
      - {{kpi: leads, weight: 0.5, targets: {{employee: 1, team: 1, company: 1}}}}
      - {{kpi: cpl, weight: 0.4, direction: higher, targets: {{employee: 0, team: 1, company: 1}}}}
  many:
    effective_from: '2026-04-15'
    scored:
      - {{kpi: leads, weight: 0.2, targets: {{employee: 1, team: 1, company: 1}}}}
      - {{kpi: effective_leads, weight: 0.2, targets: {{employee: 1, team: 1, company: 1}}}}
      - {{kpi: cpl, weight: 0.2, targets: {{employee: 1, team: 1, company: 1}}}}
      - {{kpi: cpl, weight: 0.2, targets: {{employee: 1, team: 1, company: 1}}}}
      - {{kpi: reach, weight: 0.1, targets: {{employee: 1, team: 1, company: 1}}}}
      - {{kpi: leads, weight: 0.1, targets: {{employee: 1, team: 1, company: -2}}}}
"
    );
    write(dir.path(), &yaml, &[]);
    let (code, stderr) = validate(dir.path());
    assert_eq!(code, 78, "{stderr}");
    for expected in [
        "plans.few.scored: plan `few`: scores 2 KPIs; a plan scores 3 to 5",
        "plans.few.scored: plan `few`: weights sum to 0.9, not 1",
        "plans.few.scored[1].direction: plan `few`: `cpl` is a lower-is-better KPI",
        "plans.few.scored[1].targets.employee: plan `few`: target 0 is not above 0",
        "plans.many.effective_from: plan `many`: a plan takes effect on the first day of a month",
        "plans.many.scored: plan `many`: scores 6 KPIs; a plan scores 3 to 5",
        "plans.many.scored[3].kpi: plan `many`: `cpl` is scored twice",
        "plans.many.scored[4].kpi: plan `many`: `reach` is not a KPI of the catalogue (kpis:)",
        "plans.many.scored[5].kpi: plan `many`: `leads` is scored twice",
        "plans.many.scored[5].targets.company: plan `many`: target -2 is not above 0",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("pipeline.yaml:17:5 plans.few.scored: plan `few`: scores 2 KPIs"),
        "{stderr}"
    );
}

#[test]
fn materializing_an_unknown_view_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "name: m\ninput_root: in\noutput_root: out\nviews:\n  materialize: [v, nope]\n{SOURCES}"
    );
    write(dir.path(), &yaml, &[("v", "SELECT lead_id FROM leads")]);
    let (code, stderr) = validate(dir.path());
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("pipeline.yaml:5:20 views.materialize[1]: no view `nope`"),
        "{stderr}"
    );
    assert!(!stderr.contains("`v`"), "{stderr}");
}
