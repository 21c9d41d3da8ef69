//! Helpers shared by the integration tests.

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
    let pipeline = shipped_pipeline();
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
