//! The `kpipe` binary: run, explain, exit codes and logs.

use crate::common::{copy_fixtures, kpipe, root, run_shipped, shipped_pipeline, text};

#[test]
fn explain_prints_the_view_graph_and_where_outputs_go() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = shipped_pipeline();
    let output = kpipe(
        dir.path(),
        &[
            "explain",
            pipeline.to_str().unwrap(),
            "--var",
            "output_root=s3://acme-kpi/marketing",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let position = |needle: &str| {
        stdout
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in\n{stdout}"))
    };
    assert!(
        position("  lead_facts ") < position("  kpi_leads "),
        "build order:\n{stdout}"
    );
    assert!(
        position("  kpi_leads ") < position("  kpi_values "),
        "build order:\n{stdout}"
    );
    assert!(
        position("  kpi_values ") < position("  scorecard "),
        "build order:\n{stdout}"
    );
    assert!(
        stdout.contains("reads entities, lead_facts, owner_entities, periods"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "view kpi_values -> s3://acme-kpi/marketing/kpi_values/period=…/data.parquet"
        ),
        "{stdout}"
    );
}

#[test]
fn run_writes_out_and_logs_json_without_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = root().join("fixtures");
    let output = run_shipped(
        dir.path(),
        fixtures.to_str().unwrap(),
        &["--log-format", "json"],
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // The default output root is ./out, relative to where kpipe runs.
    assert!(
        dir.path()
            .join("out/kpi_values/period=2026-06/data.parquet")
            .is_file()
    );

    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let finished = events
        .iter()
        .find(|e| e["message"] == "run finished")
        .expect("a closing summary");
    assert_eq!(
        finished["rows_read"], 224,
        "201 good rows and 23 bad ones (fixtures/expected/quarantine.csv)"
    );
    let view = events
        .iter()
        .find(|e| e["message"] == "view built" && e["view"] == "lead_facts")
        .unwrap();
    assert_eq!(
        view["rows"], 25,
        "26 good leads, and L09 is not known at the cutoff"
    );
    for secret in ["hr@acme.example", "+86 138", "Li Wei"] {
        assert!(
            !stderr.contains(secret),
            "personal data {secret:?} in the logs"
        );
    }
    assert!(
        text(&output.stdout).contains("output   kpi_values"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn a_missing_required_extract_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    std::fs::remove_dir_all(dir.path().join("in/spend")).unwrap();
    let output = run_shipped(dir.path(), "in", &[]);
    assert_eq!(output.status.code(), Some(65), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("required extract `spend` is missing"),
        "{}",
        text(&output.stderr)
    );
    let out = dir.path().join("out");
    assert!(
        !out.join("kpi_values").exists() && !out.join("quarantine").exists(),
        "no table is written"
    );
    let runs: Vec<_> = std::fs::read_dir(out.join("runs")).unwrap().collect();
    assert_eq!(runs.len(), 1, "the manifest records the failed run");
}

#[test]
fn a_csv_without_a_contract_column_names_the_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    std::fs::write(
        dir.path().join("in/spend/extra.csv"),
        "day,channel,amount,currency\n2026-06-01,linkedin,1.00,CNY\n",
    )
    .unwrap();
    let output = run_shipped(dir.path(), "in", &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("in/spend/extra.csv: the header has no column `campaign_id`"),
        "{stderr}"
    );
}

#[test]
fn an_empty_local_folder_is_an_empty_required_extract() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    std::fs::remove_file(dir.path().join("in/spend/spend.csv")).unwrap();
    std::fs::remove_file(dir.path().join("in/spend/bad-rows.csv")).unwrap();
    let output = run_shipped(dir.path(), "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout)
            .lines()
            .any(|l| l.starts_with("source   spend") && l.contains(" 0 "))
    );
}

#[test]
fn bad_command_lines_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = kpipe(dir.path(), &["run", "x.yaml", "--as-of", "30/06/2026"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("is not YYYY-MM-DD"));
}

#[test]
fn the_shipped_pipeline_validates_without_reading_data() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = shipped_pipeline();
    // No extracts where the input root points: validate reads nothing.
    let output = kpipe(
        dir.path(),
        &[
            "validate",
            pipeline.to_str().unwrap(),
            "--var",
            "input_root=/nonexistent",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout).trim(),
        "ok: 12 sources, 34 views, 6 outputs"
    );
}
