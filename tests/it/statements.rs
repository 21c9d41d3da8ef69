//! Statements people read: the HTML page renders in headless Chromium (Debian's
//! `chromium`, which scripts/test.sh installs) and says what the JSON twin says.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{copy_fixtures, root, run_python, run_shipped, text};

/// `KPIPE_CHROMIUM`, else `chromium` or `chromium-browser` on the PATH.
fn chromium() -> PathBuf {
    if let Ok(path) = std::env::var("KPIPE_CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("no chromium: run the tests with scripts/test.sh, which installs Debian's chromium");
}

/// Runs headless Chromium on `page` with `args`; returns its stdout.
fn headless(page: &Path, args: &[&str], profile: &Path) -> String {
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url::Url::from_file_path(page).unwrap().as_str())
        .output()
        .expect("chromium runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

/// E1's April statement (WORKED.md; tests/it/ledger.rs works the amount out): Chromium
/// parses it into the expected DOM, and paints it: the attainment chart's green bar
/// (lead_to_customer_rate_90d at the 1.5 cap, 320 × 16 pixels) and blue bar
/// (effective_leads at 0.025, 5 × 16) are on the screenshot.
#[test]
fn a_statement_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    let output = run_shipped(dir.path(), "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let page = dir.path().join("out/statements/period=2026-04/E1.html");
    let profile = dir.path().join("chromium-profile");

    let dom = headless(&page, &["--dump-dom"], &profile);
    for expected in [
        "<title>Bonus statement 2026-04",
        "id=\"score\">0.7625<",
        "id=\"attainment-chart\"",
        "data-kpi=\"lead_to_customer_rate_90d\"",
        "data-kpi=\"trial_retention_30d\"",
        "4062.50",
        "first computed",
        "promotion_priority",
    ] {
        assert!(dom.contains(expected), "no {expected:?} in\n{dom}");
    }

    let shot = dir.path().join("statement.png");
    headless(
        &page,
        &[
            "--window-size=1000,1400",
            &format!("--screenshot={}", shot.display()),
        ],
        &profile,
    );
    let script = root().join("tests/scripts/png_colour_count.py");
    let count = |colour: &str| {
        let out = run_python(
            &std::fs::read_to_string(&script).unwrap(),
            &[shot.to_str().unwrap(), colour],
        );
        let fields: Vec<u64> = out.split_whitespace().map(|f| f.parse().unwrap()).collect();
        assert_eq!(fields[..2], [1000, 1400]);
        fields[2]
    };
    assert_eq!(count("3c8d5a"), 320 * 16, "the green bar at the cap");
    assert_eq!(count("4a6fa5"), 5 * 16, "the blue bar at 0.025");
}

/// The JSON twin carries what the page shows.
#[test]
fn the_json_twin_matches_the_page() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    let output = run_shipped(dir.path(), "in", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let folder = dir.path().join("out/statements/period=2026-04");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("E1.json")).unwrap()).unwrap();
    assert_eq!(json["employee_name"], "Li Wei");
    assert_eq!(json["plan"], "focus");
    assert_eq!(json["score"], 0.7625);
    assert_eq!(json["multiplier"], 0.40625);
    assert_eq!(json["flags"], serde_json::json!(["promotion_priority"]));
    let kpis: Vec<(&str, bool)> = json["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kpi"].as_str().unwrap(),
                k["applicable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kpis,
        [
            ("cpl", false),
            ("effective_leads", true),
            ("lead_to_customer_rate_90d", true),
            ("trial_retention_30d", false)
        ]
    );
    let components: Vec<(&str, &str)> = json["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["component"].as_str().unwrap(),
                c["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        components,
        [
            ("base", "4062.50"),
            ("kicker:lead_target", "0.00"),
            ("kicker:team_retention", "0.00")
        ]
    );
    assert_eq!(json["entries"][0]["amount"], "4062.50");
    assert_eq!(json["total_recorded"], "4062.50");
    let page = std::fs::read_to_string(folder.join("E1.html")).unwrap();
    assert!(page.contains("id=\"total-recorded\">4062.50<"), "{page}");
}
