//! kpipe against a real S3 API: moto's server on loopback, started by the test, with
//! credentials and endpoint from the standard `AWS_*` variables.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{python, root, run_python, shipped_pipeline, text};

/// A moto S3 server on a free loopback port, stopped when dropped.
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto runs: run the tests with scripts/test.sh, which installs it");
        let server = Self { child, port };
        // Wait for the server to listen; this bounds start-up, not any measured work.
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates bucket `kpipe` and uploads `fixtures/` under `extracts/`.
const UPLOAD: &str = r#"
import sys, pathlib, boto3
endpoint, fixtures = sys.argv[1], pathlib.Path(sys.argv[2])
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                  aws_secret_access_key="testing", region_name="us-east-1")
s3.create_bucket(Bucket="kpipe")
for path in fixtures.rglob("*"):
    if path.is_file() and path.suffix in (".csv", ".parquet") and "expected" not in path.parts:
        s3.upload_file(str(path), "kpipe", "extracts/" + path.relative_to(fixtures).as_posix())
print("uploaded")
"#;

/// Reads the outputs back over S3 with pyarrow.
const READ: &str = r#"
import sys, json
import pyarrow.dataset as ds
from pyarrow import fs
port = sys.argv[1]
s3 = fs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", access_key="testing",
                     secret_key="testing", region="us-east-1")
kpis = ds.dataset("kpipe/marketing/kpi_values", filesystem=s3, format="parquet", partitioning="hive").to_table()
print("kpi_values", kpis.num_rows)
runs = s3.get_file_info(fs.FileSelector("kpipe/marketing/runs"))
manifest = json.loads(s3.open_input_file(runs[0].path).read())
print("manifest", len(runs), manifest["outcome"], manifest["inputs"][0]["path"].startswith("s3://kpipe/extracts/"), manifest["inputs"][0]["etag"] is not None)
staging = s3.get_file_info(fs.FileSelector("kpipe/marketing/_staging", allow_not_found=True, recursive=True))
print("staging", len(staging))
"#;

fn kpipe_on_s3(dir: &Path, endpoint: &str, pipeline: &Path, vars: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kpipe"));
    command
        .args(["run", pipeline.to_str().unwrap(), "--as-of", "2026-06-30"])
        .current_dir(dir)
        .env("AWS_ENDPOINT", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1");
    for var in vars {
        command.args(["--var", var]);
    }
    command.output().unwrap()
}

#[test]
fn reads_extracts_from_s3_and_writes_outputs_to_s3() {
    let server = S3Server::start();
    let fixtures = root().join("fixtures");
    run_python(UPLOAD, &[&server.endpoint(), fixtures.to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();

    let output = kpipe_on_s3(
        dir.path(),
        &server.endpoint(),
        &shipped_pipeline(),
        &[
            "input_root=s3://kpipe/extracts",
            "output_root=s3://kpipe/marketing",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));

    let stdout = run_python(READ, &[&server.port.to_string()]);
    assert!(stdout.contains("kpi_values 458"), "{stdout}");
    assert!(
        stdout.contains("manifest 1 succeeded True True"),
        "{stdout}"
    );
    assert!(stdout.contains("staging 0"), "{stdout}");
}

#[test]
fn a_store_that_stays_down_is_a_transient_failure_and_leaves_outputs_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    // Outputs from an earlier good run, on local disk.
    let fixtures = root().join("fixtures");
    let first = crate::common::run_shipped(dir.path(), fixtures.to_str().unwrap(), &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let object = dir
        .path()
        .join("out/kpi_values/period=2026-03/data.parquet");
    let before = std::fs::read(&object).unwrap();

    // Extracts on an S3 endpoint where nothing listens, with few retries.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = std::fs::read_to_string(shipped_pipeline()).unwrap().replace(
        "storage: {max_retries: 10, retry_timeout_secs: 180, request_timeout_secs: 30, connect_timeout_secs: 5}",
        "storage: {max_retries: 1, retry_timeout_secs: 5, request_timeout_secs: 5, connect_timeout_secs: 1}",
    );
    let pipeline = shipped_pipeline().with_file_name("down.yaml");
    let pipeline = dir.path().join(pipeline.file_name().unwrap());
    std::fs::write(&pipeline, yaml).unwrap();
    std::fs::create_dir_all(dir.path().join("sql")).unwrap();
    for entry in std::fs::read_dir(root().join("pipelines/sql")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            dir.path().join("sql").join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    let output = kpipe_on_s3(
        dir.path(),
        &format!("http://127.0.0.1:{closed}"),
        &pipeline,
        &["input_root=s3://kpipe/extracts"],
    );

    assert_eq!(output.status.code(), Some(75), "{}", text(&output.stderr));
    assert_eq!(
        std::fs::read(&object).unwrap(),
        before,
        "published outputs are untouched"
    );
}
