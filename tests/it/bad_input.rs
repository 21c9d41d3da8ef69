//! Bad input gets a clear error naming the file (and the line where there is one),
//! the bad-data exit code, and never a panic.

use crate::common::{copy_fixtures, kpipe, run_shipped, text};

/// Runs the shipped pipeline on a copy of the fixtures changed by `change`; returns
/// the exit code and stderr.
fn run_with(change: impl FnOnce(&std::path::Path)) -> (Option<i32>, String) {
    let (code, stderr, _) = run_in_copy(change);
    (code, stderr)
}

fn run_in_copy(change: impl FnOnce(&std::path::Path)) -> (Option<i32>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    change(&dir.path().join("in"));
    let output = run_shipped(dir.path(), "in", &[]);
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (output.status.code(), stderr, dir)
}

#[test]
fn an_empty_csv_file_names_the_file() {
    let (code, stderr) =
        run_with(|input| std::fs::write(input.join("touches/empty.csv"), "").unwrap());
    assert_eq!(code, Some(65), "{stderr}");
    assert!(
        stderr.contains("in/touches/empty.csv: the file is empty"),
        "{stderr}"
    );
}

#[test]
fn a_truncated_parquet_file_names_the_file() {
    let (code, stderr) = run_with(|input| {
        let file = input.join("campaigns/campaigns.parquet");
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    });
    assert_eq!(code, Some(65), "{stderr}");
    assert!(
        stderr.contains("in/campaigns/campaigns.parquet: not a readable Parquet file"),
        "{stderr}"
    );
}

#[test]
fn a_csv_that_is_not_csv_names_the_file_and_line() {
    let (code, stderr, dir) = run_in_copy(|input| {
        std::fs::write(
            input.join("touches/broken.csv"),
            "touch_id,lead_id,employee_id,touched_at,kind\n\"T1,L1\n",
        )
        .unwrap();
    });
    // An unclosed quote swallows the rest of the file: a malformed record, quarantined
    // with its line, not a crash; one bad row of 27 is within the threshold.
    assert_eq!(code, Some(0), "{stderr}");
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("out/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&runs[0]).unwrap()).unwrap();
    let broken = manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"].as_str().unwrap().ends_with("touches/broken.csv"))
        .unwrap();
    assert_eq!(
        (
            broken["rows_read"].as_u64(),
            broken["rows_quarantined"].as_u64()
        ),
        (Some(1), Some(1))
    );
}

#[test]
fn a_yaml_that_is_not_a_pipeline_is_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body, expected) in [
        ("list.yaml", "- a\n- b\n", "a pipeline is a YAML mapping"),
        ("text.yaml", "just words", "a pipeline is a YAML mapping"),
        (
            "other.yaml",
            "apiVersion: v1\nkind: Pod\n",
            "unknown field `apiVersion`",
        ),
        ("broken.yaml", "name: [unclosed\n", "not valid YAML"),
    ] {
        std::fs::write(dir.path().join(name), body).unwrap();
        let output = kpipe(dir.path(), &["validate", name]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(78), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains(expected),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// The shipped pipeline with `freshness` on leads, in `dir` with its views.
fn pipeline_with_freshness(dir: &std::path::Path, on_stale: &str) -> std::path::PathBuf {
    crate::common::shipped_pipeline_with(
        dir,
        "    unique_key: [lead_id]\n",
        &format!(
            "    unique_key: [lead_id]\n    freshness: {{max_age_hours: 36, on_stale: {on_stale}}}\n"
        ),
    )
}

/// Makes every lead file look written in 2020.
fn age_leads(dir: &std::path::Path) {
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_580_000_000);
    for entry in std::fs::read_dir(dir.join("in/leads")).unwrap() {
        let file = std::fs::File::options()
            .append(true)
            .open(entry.unwrap().path())
            .unwrap();
        file.set_modified(old).unwrap();
    }
}

#[test]
fn a_stale_extract_fails_the_run_when_configured_to() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    age_leads(dir.path());
    let pipeline = pipeline_with_freshness(dir.path(), "fail");
    let output = crate::common::run_pipeline(dir.path(), &pipeline, "in", &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("extract `leads` is stale"), "{stderr}");
    assert!(!dir.path().join("out/kpi_values").exists());
}

#[test]
fn a_stale_extract_warns_by_default() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    age_leads(dir.path());
    let pipeline = pipeline_with_freshness(dir.path(), "warn");
    let output = crate::common::run_pipeline(dir.path(), &pipeline, "in", &[]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("extract is stale") && stderr.contains("leads"),
        "{stderr}"
    );

    // The same pipeline on files written just now passes without a word.
    let fresh = tempfile::tempdir().unwrap();
    copy_fixtures(fresh.path());
    let pipeline = pipeline_with_freshness(fresh.path(), "fail");
    let output = crate::common::run_pipeline(fresh.path(), &pipeline, "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!text(&output.stderr).contains("stale"));
}

#[test]
fn an_unreadable_file_in_an_extract_folder_is_named_not_skipped() {
    let (code, stderr) = run_with(|input| {
        std::os::unix::fs::symlink("/nonexistent/leads.csv", input.join("leads/leads-9.csv"))
            .unwrap();
    });
    assert_eq!(code, Some(65), "{stderr}");
    assert!(
        stderr.contains("in/leads/leads-9.csv: cannot be read"),
        "{stderr}"
    );
}

#[test]
fn a_header_naming_a_column_twice_or_not_in_utf8_names_the_file() {
    let (code, stderr) = run_with(|input| {
        std::fs::write(
            input.join("touches/twice.csv"),
            "touch_id,lead_id,employee_id,touched_at,kind,kind\n",
        )
        .unwrap();
    });
    assert_eq!(code, Some(65), "{stderr}");
    assert!(
        stderr.contains("in/touches/twice.csv:1: the header names column `kind` twice"),
        "{stderr}"
    );

    let (code, stderr) = run_with(|input| {
        std::fs::write(
            input.join("touches/latin1.csv"),
            b"touch_id,lead_id,employee_id,touched_at,kind,caf\xe9\n",
        )
        .unwrap();
    });
    assert_eq!(code, Some(65), "{stderr}");
    assert!(
        stderr.contains("in/touches/latin1.csv:1: the header row is not UTF-8"),
        "{stderr}"
    );
}
