//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kpipe::config::{self, Pipeline, Variables};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn shipped_pipeline() -> PathBuf {
    root().join("pipelines/marketing.yaml")
}

/// Fixed variables, so that tests never depend on the environment.
pub struct Vars(pub Vec<(&'static str, String)>);

impl Variables for Vars {
    fn lookup(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }
}

/// The shipped pipeline with its roots pointed at `input` and `output`.
pub fn marketing(input: &str, output: &str) -> Pipeline {
    let vars = Vars(vec![
        ("input_root", input.to_string()),
        ("output_root", output.to_string()),
    ]);
    config::load(&shipped_pipeline(), &vars).unwrap_or_else(|d| panic!("{d}"))
}

/// Runs the `kpipe` binary in `dir`.
pub fn kpipe(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kpipe"))
        .args(args)
        .current_dir(dir)
        .env_remove("KPIPE_LOG")
        .env_remove("KPIPE_LOG_FORMAT")
        .output()
        .expect("the kpipe binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The Python that has pyarrow and duckdb: `KPIPE_PYTHON`, else the `.venv` that
/// `scripts/test.sh` makes, else `python3`.
pub fn python() -> PathBuf {
    if let Ok(python) = std::env::var("KPIPE_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = root().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Runs a Python script with `args`, failing the test with its output if it fails.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let output = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect(
            "python runs: run the tests with scripts/test.sh, which installs pyarrow and duckdb",
        );
    assert!(
        output.status.success(),
        "python failed (run the tests with scripts/test.sh, which installs pyarrow and duckdb):\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Runs the shipped pipeline with the `kpipe` binary in `dir`, for as_of 2026-06-30,
/// reading `input_root`; `extra` arguments are appended.
pub fn run_shipped(dir: &Path, input_root: &str, extra: &[&str]) -> Output {
    run_pipeline(dir, &shipped_pipeline(), input_root, extra)
}

/// Runs `pipeline` with the `kpipe` binary in `dir`, for as_of 2026-06-30, reading
/// `input_root`; `extra` arguments are appended.
pub fn run_pipeline(dir: &Path, pipeline: &Path, input_root: &str, extra: &[&str]) -> Output {
    let input = format!("input_root={input_root}");
    let mut args = vec![
        "run",
        pipeline.to_str().unwrap(),
        "--as-of",
        "2026-06-30",
        "--var",
        &input,
    ];
    args.extend_from_slice(extra);
    kpipe(dir, &args)
}

/// Starts the shipped pipeline on `dir/in` in the background, logging JSON to a pipe.
pub fn spawn_shipped(dir: &Path) -> std::process::Child {
    let pipeline = shipped_pipeline();
    Command::new(env!("CARGO_BIN_EXE_kpipe"))
        .args([
            "run",
            pipeline.to_str().unwrap(),
            "--as-of",
            "2026-06-30",
            "--var",
            "input_root=in",
        ])
        .args(["--log-format", "json"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs the shipped pipeline on `dir/in` (outputs and ledger under `dir/out`), dying
/// on the spot at `step` (`KPIPE_CRASH_AT`: no clean-up, as a SIGKILL would leave it).
pub fn crash_at(dir: &Path, step: &str) {
    let pipeline = shipped_pipeline();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kpipe"))
        .args(["run", pipeline.to_str().unwrap(), "--as-of", "2026-06-30"])
        .args(["--var", "input_root=in"])
        .env("KPIPE_CRASH_AT", step)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(!output.status.success(), "the run did not die at {step}");
    assert!(
        text(&output.stderr).contains("KPIPE_CRASH_AT: dying here"),
        "{}",
        text(&output.stderr)
    );
}

/// Copies the bundled fixtures to `dir/in`, for tests that break them.
pub fn copy_fixtures(dir: &Path) {
    copy_dir(&root().join("fixtures"), &dir.join("in"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Rows of a hand-worked CSV of `fixtures/expected/`, keyed by their first `key_len`
/// columns. The files hold no quoted fields.
pub fn expected_rows(
    name: &str,
    key_len: usize,
) -> (Vec<String>, BTreeMap<Vec<String>, Vec<String>>) {
    let text = std::fs::read_to_string(root().join("fixtures/expected").join(name)).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let cells: Vec<String> = l.split(',').map(String::from).collect();
            (cells[..key_len].to_vec(), cells[key_len..].to_vec())
        })
        .collect();
    (header, rows)
}

/// Asserts that `got` has exactly the rows of `expected`, numbers equal within 1e-9
/// relative, listing every difference.
pub fn assert_same_rows(
    what: &str,
    got: &BTreeMap<Vec<String>, Vec<String>>,
    expected: &BTreeMap<Vec<String>, Vec<String>>,
) {
    let same = |a: &str, b: &str| {
        a == b
            || match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                _ => false,
            }
    };
    let mut differences = Vec::new();
    for key in expected
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        match (expected.get(key), got.get(key)) {
            (Some(e), Some(g))
                if e.len() == g.len() && e.iter().zip(g).all(|(a, b)| same(b, a)) => {}
            (e, g) => differences.push(format!("{key:?}: expected {e:?}, got {g:?}")),
        }
    }
    assert!(
        differences.is_empty(),
        "{what}: {} of {} expected rows differ:\n{}",
        differences.len(),
        expected.len(),
        differences.join("\n")
    );
}

/// Reads a table written by kpipe with DataFusion, every column as text (null as ""),
/// keyed by its first `key_len` columns of `columns`.
pub async fn written_rows(
    ctx: &datafusion::prelude::SessionContext,
    table_url: &str,
    partitioned: bool,
    columns: &[&str],
    key_len: usize,
) -> BTreeMap<Vec<String>, Vec<String>> {
    use datafusion::arrow::datatypes::DataType;
    let mut options = datafusion::prelude::ParquetReadOptions::default();
    if partitioned {
        options = options.table_partition_cols(vec![("period".to_string(), DataType::Utf8)]);
    }
    let frame = ctx.read_parquet(table_url, options).await.unwrap();
    let frame = frame.select_columns(columns).unwrap();
    let mut rows = BTreeMap::new();
    for cells in text_rows(frame).await {
        assert!(
            rows.insert(cells[..key_len].to_vec(), cells[key_len..].to_vec())
                .is_none(),
            "duplicate {cells:?}"
        );
    }
    rows
}

/// Every row of `frame`, each cell as text (null as "").
pub async fn text_rows(frame: datafusion::prelude::DataFrame) -> Vec<Vec<String>> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let mut rows = Vec::new();
    for batch in frame.collect().await.unwrap() {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).unwrap())
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(
                (0..batch.num_columns())
                    .map(|c| {
                        if batch.column(c).is_null(row) {
                            String::new()
                        } else {
                            formatters[c].value(row).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    rows
}

/// A copy of the shipped pipeline in `dir`, with its views, and `from` replaced by `to`
/// in the YAML (a test's own settings).
pub fn shipped_pipeline_with(dir: &Path, from: &str, to: &str) -> PathBuf {
    shipped_pipeline_edited(dir, &[(from, to)])
}

/// A copy of the shipped pipeline in `dir`, with its views, and the first occurrence of
/// each `from` replaced by its `to` in the YAML.
pub fn shipped_pipeline_edited(dir: &Path, edits: &[(&str, &str)]) -> PathBuf {
    let mut yaml = std::fs::read_to_string(shipped_pipeline()).unwrap();
    for (from, to) in edits {
        assert!(yaml.contains(from), "the shipped pipeline has no {from:?}");
        yaml = yaml.replacen(from, to, 1);
    }
    let file = dir.join("pipeline-copy.yaml");
    std::fs::write(&file, yaml).unwrap();
    std::fs::create_dir_all(dir.join("sql")).unwrap();
    for entry in std::fs::read_dir(root().join("pipelines/sql")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join("sql").join(path.file_name().unwrap())).unwrap();
    }
    file
}
