//! What a run publishes besides its tables: the run manifest, and which partitions a run
//! owns.

use std::path::Path;

use crate::common::{copy_fixtures, run_shipped, text};

/// The single manifest under `out/runs/`, parsed.
fn manifest(out: &Path) -> serde_json::Value {
    let runs: Vec<_> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    serde_json::from_slice(&std::fs::read(&runs[0]).unwrap()).unwrap()
}

#[test]
fn a_run_writes_a_manifest_of_its_inputs_and_outputs_last() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    let output = run_shipped(dir.path(), "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));

    let m = manifest(&dir.path().join("out"));
    assert_eq!(m["outcome"], "succeeded");
    assert_eq!(m["as_of"], "2026-06-30");
    assert_eq!(
        m["periods"],
        serde_json::json!(["2026-02", "2026-03", "2026-04", "2026-05", "2026-06"])
    );
    assert_eq!(m["pipeline"]["version"].as_str().unwrap().len(), 64);
    assert_eq!(m["plans"][1]["name"], "focus");

    let inputs = m["inputs"].as_array().unwrap();
    let leads: Vec<_> = inputs.iter().filter(|i| i["source"] == "leads").collect();
    assert_eq!(leads.len(), 4, "three lead files and bad-rows.csv");
    let read: u64 = leads.iter().map(|i| i["rows_read"].as_u64().unwrap()).sum();
    let bad: u64 = leads
        .iter()
        .map(|i| i["rows_quarantined"].as_u64().unwrap())
        .sum();
    assert_eq!((read, bad), (29, 3));
    let bad_file = leads
        .iter()
        .find(|i| i["path"].as_str().unwrap().ends_with("leads/bad-rows.csv"))
        .unwrap();
    assert_eq!(bad_file["rows_quarantined"], 3);
    assert!(bad_file["size"].as_u64().unwrap() > 0);

    let outputs = m["outputs"].as_array().unwrap();
    let kpi_files: Vec<_> = outputs
        .iter()
        .filter(|o| o["table"] == "kpi_values")
        .collect();
    assert_eq!(kpi_files.len(), 5);
    let rows: u64 = kpi_files.iter().map(|o| o["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, 458);
    assert!(
        kpi_files[0]["path"]
            .as_str()
            .unwrap()
            .ends_with("/out/kpi_values/period=2026-02/data.parquet")
    );
    assert!(
        m["timings_ms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["step"] == "run")
    );
}

#[test]
fn a_run_stopped_by_bad_rows_still_records_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    // employees allows no bad row at all.
    let employees = dir.path().join("in/employees/employees.csv");
    let mut text_rows = std::fs::read_to_string(&employees).unwrap();
    text_rows.push_str("E7,Zhao Lei,north,intern,1000.00,CNY,2026-01-01,\n");
    std::fs::write(&employees, text_rows).unwrap();

    let output = run_shipped(dir.path(), "in", &[]);
    assert_eq!(output.status.code(), Some(65), "{}", text(&output.stderr));
    let m = manifest(&dir.path().join("out"));
    assert_eq!(m["outcome"], "failed");
    assert_eq!(m["error"]["exit_code"], 65);
    assert!(
        m["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`employees` has 1 bad rows"),
        "{m}"
    );
    let tables: Vec<&str> = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["table"].as_str().unwrap())
        .collect();
    assert_eq!(tables, ["quarantine"], "only the quarantine is written");
    assert!(!dir.path().join("out/kpi_values").exists());
}

#[test]
fn a_month_without_rows_loses_its_partition_and_locked_months_stay() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    // A partition of a month before the window, from an earlier run: locked, kept.
    let locked = dir
        .path()
        .join("out/churn_reasons/period=2025-12/data.parquet");
    std::fs::create_dir_all(locked.parent().unwrap()).unwrap();
    std::fs::write(&locked, b"an older run's partition").unwrap();
    let output = run_shipped(dir.path(), "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let may = dir
        .path()
        .join("out/churn_reasons/period=2026-05/data.parquet");
    assert!(may.is_file());

    // The feedback of May goes away (A14's, stamped 2026-04-30T16:00Z, is May 1 in
    // Shanghai); the next run has no churn reason in May.
    let feedback = dir.path().join("in/trial_feedback/trial_feedback.csv");
    let kept: Vec<String> = std::fs::read_to_string(&feedback)
        .unwrap()
        .lines()
        .filter(|l| !l.contains(",2026-05-") && !l.contains(",2026-04-30T16:00:00Z"))
        .map(String::from)
        .collect();
    std::fs::write(&feedback, kept.join("\n") + "\n").unwrap();
    std::fs::remove_dir_all(dir.path().join("out/runs")).unwrap();
    let output = run_shipped(dir.path(), "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));

    assert!(!may.exists(), "the stale May partition is removed");
    assert!(
        dir.path()
            .join("out/churn_reasons/period=2026-03/data.parquet")
            .is_file()
    );
    assert_eq!(std::fs::read(&locked).unwrap(), b"an older run's partition");
}

#[test]
fn sigterm_stops_the_run_without_publishing_what_it_had_not_finished() {
    use std::io::{BufRead, BufReader};
    use std::process::Command;

    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    let mut child = crate::common::spawn_shipped(dir.path());

    // Stop it while it builds views: after the sources are staged, before any table
    // but the quarantine is written.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let building = line.contains("\"view built\"");
        seen.push(line);
        if building {
            break;
        }
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    seen.extend(lines.map(|l| l.unwrap()));
    let status = child.wait().unwrap();

    assert_eq!(status.code(), Some(143), "{}", seen.join("\n"));
    let out = dir.path().join("out");
    assert!(
        !out.join("kpi_values").exists(),
        "nothing unfinished is published"
    );
    assert!(
        !out.join("_staging")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some()),
        "staging is removed"
    );
    let m = manifest(&out);
    assert_eq!(m["outcome"], "interrupted");
    assert_eq!(m["error"]["exit_code"], 143);
}

/// Every `data.parquet` under `out/kpi_values`, by path, with its bytes.
fn kpi_objects(out: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut objects = std::collections::BTreeMap::new();
    for partition in std::fs::read_dir(out.join("kpi_values")).unwrap() {
        let partition = partition.unwrap().path();
        for file in std::fs::read_dir(&partition).unwrap() {
            let file = file.unwrap().path();
            objects.insert(
                file.strip_prefix(out).unwrap().display().to_string(),
                std::fs::read(&file).unwrap(),
            );
        }
    }
    objects
}

#[test]
fn a_run_killed_at_any_point_before_publishing_leaves_the_previous_state() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    let output = run_shipped(dir.path(), "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let out = dir.path().join("out");
    let previous = kpi_objects(&out);

    // New data: one more effective lead in June, so a finished run would change June.
    let leads = dir.path().join("in/leads/leads-3.csv");
    let mut rows = std::fs::read_to_string(&leads).unwrap();
    let header: Vec<&str> = rows.lines().next().unwrap().split(',').collect();
    let value = |column: &str| match column {
        "lead_id" => "L99",
        "created_at" => "2026-06-15T02:00:00Z",
        "channel" => "linkedin",
        "company_size" => "500",
        "company_tier" => "standard",
        "industry" => "tech",
        "contact_role" => "hr_head",
        "form_positions" => "Engineer",
        "form_headcount" => "2",
        "form_budget" => "10000.00",
        "hiring_need_on" => "2026-06-01",
        "owner_id" => "E1",
        _ => "",
    };
    rows.push_str(
        &header
            .iter()
            .map(|c| value(c))
            .collect::<Vec<_>>()
            .join(","),
    );
    rows.push('\n');
    std::fs::write(&leads, rows).unwrap();

    for event in ["source read", "view built", "output staged"] {
        crate::common::crash_at(dir.path(), event);
        assert_eq!(
            kpi_objects(&out),
            previous,
            "killed at {event:?}: readers see the previous run"
        );
        let runs = std::fs::read_dir(out.join("runs")).unwrap().count();
        assert_eq!(
            runs, 1,
            "killed at {event:?}: a killed run wrote no manifest"
        );
    }

    let output = run_shipped(dir.path(), "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let now = kpi_objects(&out);
    assert_eq!(
        now.len(),
        previous.len(),
        "one object per partition, never two"
    );
    assert_ne!(
        now["kpi_values/period=2026-06/data.parquet"],
        previous["kpi_values/period=2026-06/data.parquet"]
    );
    assert_eq!(
        now["kpi_values/period=2026-02/data.parquet"],
        previous["kpi_values/period=2026-02/data.parquet"]
    );
    assert_eq!(
        std::fs::read_dir(out.join("runs")).unwrap().count(),
        2,
        "published exactly once more"
    );
}

#[test]
fn a_run_killed_after_committing_is_completed_by_recovery() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    let out = dir.path().join("out");

    // What a run on these inputs publishes, from a clean run elsewhere.
    let clean = tempfile::tempdir().unwrap();
    copy_fixtures(clean.path());
    let output = run_shipped(clean.path(), "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let expected = kpi_objects(&clean.path().join("out"));

    // Dead as soon as its manifest (the commit) is written, before publishing.
    crate::common::crash_at(dir.path(), "run manifest written");
    let m = manifest(&out);
    assert_eq!(m["outcome"], "succeeded");
    assert!(!out.join("kpi_values").exists(), "nothing published yet");

    let output = crate::common::kpipe(
        dir.path(),
        &[
            "recover",
            crate::common::shipped_pipeline().to_str().unwrap(),
            "--var",
            "input_root=in",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        kpi_objects(&out),
        expected,
        "the committed run is published whole"
    );
    assert!(!out.join("_staging").exists(), "nothing is left staged");
}
