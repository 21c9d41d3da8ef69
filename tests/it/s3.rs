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

const SHIPPED_STORAGE: &str = "storage: {max_retries: 10, retry_timeout_secs: 180, request_timeout_secs: 30, connect_timeout_secs: 5}";
/// Few, quick retries: for a store that stays down.
const IMPATIENT_STORAGE: &str = "storage: {max_retries: 1, retry_timeout_secs: 5, request_timeout_secs: 5, connect_timeout_secs: 1}";

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
    let pipeline =
        crate::common::shipped_pipeline_with(dir.path(), SHIPPED_STORAGE, IMPATIENT_STORAGE);
    let endpoint = format!("http://127.0.0.1:{closed}");
    let output = kpipe_on_s3(
        dir.path(),
        &endpoint,
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

/// What the fault proxy does to one connection.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Answers the first request with 503 and closes.
    Unavailable,
    /// Answers the first request with 403 (access denied) and closes.
    Forbidden,
    /// Closes the connection as soon as it is accepted.
    Reset,
    /// Forwards, after holding the request for a second.
    Slow,
    /// Reads the request and never answers.
    Hang,
    /// Forwards.
    None,
}

/// A TCP proxy of the project's own in front of an S3 server: connection `i` suffers
/// `plan[i]`, and every connection after the plan, `after`.
struct FaultProxy {
    port: u16,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FaultProxy {
    fn start(upstream: u16, plan: Vec<Fault>, after: Fault) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&connections);
        std::thread::spawn(move || {
            for (i, client) in listener.incoming().enumerate() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Ok(client) = client else { continue };
                let fault = plan.get(i).copied().unwrap_or(after);
                std::thread::spawn(move || serve(client, upstream, fault));
            }
        });
        Self { port, connections }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn serve(mut client: TcpStream, upstream: u16, fault: Fault) {
    use std::io::{Read, Write};
    match fault {
        Fault::Reset => drop(client),
        Fault::Unavailable | Fault::Forbidden | Fault::Hang => {
            let mut head = [0u8; 4096];
            let _ = client.read(&mut head);
            let answer: &[u8] = match fault {
                Fault::Unavailable => {
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                }
                Fault::Forbidden => b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                _ => {
                    // Holds the connection until the client gives up on it.
                    let _ = client.read(&mut head);
                    return;
                }
            };
            let _ = client.write_all(answer);
        }
        Fault::Slow | Fault::None => {
            if matches!(fault, Fault::Slow) {
                std::thread::sleep(Duration::from_secs(1));
            }
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                return;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let up = std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
                let _ = s2.shutdown(std::net::Shutdown::Write);
            });
            let (mut s, mut c) = (server, client);
            let _ = std::io::copy(&mut s, &mut c);
            let _ = c.shutdown(std::net::Shutdown::Write);
            let _ = up.join();
        }
    }
}

/// Short request timeouts so that a hung connection is given up quickly and retried.
const QUICK_TIMEOUTS: &str = "storage: {max_retries: 10, retry_timeout_secs: 120, request_timeout_secs: 3, connect_timeout_secs: 2}";

#[test]
fn retries_ride_out_503s_resets_slow_answers_and_hung_connections() {
    let server = S3Server::start();
    let fixtures = root().join("fixtures");
    run_python(UPLOAD, &[&server.endpoint(), fixtures.to_str().unwrap()]);
    use Fault::*;
    let plan = vec![
        Unavailable,
        Reset,
        Slow,
        Hang,
        Unavailable,
        None,
        Reset,
        Slow,
        Unavailable,
        Hang,
    ];
    let proxy = FaultProxy::start(server.port, plan, None);
    let dir = tempfile::tempdir().unwrap();
    let pipeline =
        crate::common::shipped_pipeline_with(dir.path(), SHIPPED_STORAGE, QUICK_TIMEOUTS);

    let output = kpipe_on_s3(
        dir.path(),
        &proxy.endpoint(),
        &pipeline,
        &[
            "input_root=s3://kpipe/extracts",
            "output_root=s3://kpipe/marketing",
        ],
    );

    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let connections = proxy.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        connections > 10,
        "every planned fault was met: {connections} connections"
    );
    let stdout = run_python(READ, &[&server.port.to_string()]);
    assert!(stdout.contains("kpi_values 458"), "{stdout}");
}

#[test]
fn a_store_failing_every_request_leaves_the_previous_outputs_readable() {
    let server = S3Server::start();
    let fixtures = root().join("fixtures");
    run_python(UPLOAD, &[&server.endpoint(), fixtures.to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        "input_root=s3://kpipe/extracts",
        "output_root=s3://kpipe/marketing",
    ];
    let first = kpipe_on_s3(dir.path(), &server.endpoint(), &shipped_pipeline(), &vars);
    assert!(first.status.success(), "{}", text(&first.stderr));

    // Every request through the proxy now gets a 503.
    let proxy = FaultProxy::start(server.port, Vec::new(), Fault::Unavailable);
    let pipeline =
        crate::common::shipped_pipeline_with(dir.path(), SHIPPED_STORAGE, IMPATIENT_STORAGE);
    let output = kpipe_on_s3(dir.path(), &proxy.endpoint(), &pipeline, &vars);

    assert_eq!(output.status.code(), Some(75), "{}", text(&output.stderr));
    let stdout = run_python(READ, &[&server.port.to_string()]);
    assert!(
        stdout.contains("kpi_values 458") && stdout.contains("manifest 1 succeeded"),
        "{stdout}"
    );
}

#[test]
fn access_denied_is_bad_input_naming_the_location_not_a_retry() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(server.port, Vec::new(), Fault::Forbidden);
    let dir = tempfile::tempdir().unwrap();
    let output = kpipe_on_s3(
        dir.path(),
        &proxy.endpoint(),
        &shipped_pipeline(),
        &["input_root=s3://kpipe/extracts"],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(65), "{stderr}");
    assert!(stderr.contains("s3://kpipe/extracts/leads/"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// S3 operations the ledger test needs: `make BUCKET`, `put BUCKET KEY TEXT`, `keys
/// BUCKET PREFIX`, `ledger BUCKET PREFIX` (sum of amounts per employee, from pyarrow).
const S3_OPS: &str = r#"
import sys, boto3
endpoint, op, args = sys.argv[1], sys.argv[2], sys.argv[3:]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                  aws_secret_access_key="testing", region_name="us-east-1")
if op == "make":
    s3.create_bucket(Bucket=args[0])
elif op == "put":
    s3.put_object(Bucket=args[0], Key=args[1], Body=args[2].encode())
elif op == "keys":
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=args[0], Prefix=args[1])
    print("\n".join(sorted(o["Key"] for p in pages for o in p.get("Contents", []))))
elif op == "ledger":
    import pyarrow.dataset as ds
    from pyarrow import fs
    host = endpoint.split("//")[1]
    filesystem = fs.S3FileSystem(endpoint_override=host, scheme="http", access_key="testing",
                                 secret_key="testing", region="us-east-1")
    table = ds.dataset(f"{args[0]}/{args[1]}", filesystem=filesystem, format="parquet").to_table()
    rows = sorted(zip(table["employee_id"].to_pylist(), map(str, table["amount"].to_pylist())))
    print("\n".join(f"{e} {a}" for e, a in rows))
"#;

/// The ledger under its own bucket, as finance would keep it: entries and statements go
/// there and nowhere else, and the ledger claim is a real conditional write: a claim
/// already on the server (another run's, still committing) stops an appending run.
#[test]
fn the_ledger_lives_in_its_own_bucket_and_claims_with_conditional_writes() {
    let server = S3Server::start();
    let endpoint = server.endpoint();
    let fixtures = root().join("fixtures");
    run_python(UPLOAD, &[&endpoint, fixtures.to_str().unwrap()]);
    run_python(S3_OPS, &[&endpoint, "make", "finance"]);
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        "input_root=s3://kpipe/extracts",
        "output_root=s3://kpipe/marketing",
        "ledger_root=s3://finance/marketing",
    ];
    let output = kpipe_on_s3(dir.path(), &endpoint, &shipped_pipeline(), &vars);
    assert!(output.status.success(), "{}", text(&output.stderr));

    let ledger = run_python(
        S3_OPS,
        &[&endpoint, "ledger", "finance", "marketing/bonus_ledger"],
    );
    assert_eq!(
        ledger.lines().collect::<Vec<_>>(),
        ["E1 4062.50", "E4 160.00"]
    );
    let finance = run_python(S3_OPS, &[&endpoint, "keys", "finance", "marketing/"]);
    assert!(
        finance.contains("marketing/_ledger_claims/00000000-0.json"),
        "{finance}"
    );
    assert!(
        finance.contains("marketing/statements/period=2026-04/E1.html"),
        "{finance}"
    );
    assert!(!finance.contains("_staging"), "{finance}");
    let public = run_python(S3_OPS, &[&endpoint, "keys", "kpipe", "marketing/"]);
    assert!(public.contains("marketing/kpi_values/"), "{public}");
    for private in ["bonus_ledger", "statements", "_staging"] {
        assert!(!public.contains(private), "{private} in {public}");
    }

    // Another run holds the claim on the ledger of one object, and a late deal makes
    // this run append from that same ledger.
    let other = "{\"run_id\": \"2026-06-30.20261203T000000.000Z.1\"}";
    let claim = "marketing/_ledger_claims/00000001-0.json";
    run_python(S3_OPS, &[&endpoint, "put", "finance", claim, other]);
    let accounts = "A40,Late Deal Co,300,tech,standard,E4,2026-01-15T02:00:00Z\n";
    let invoices = "invoice_id,account_id,subscription_id,issued_at,paid_at,amount,currency,status\n\
                    I40,A40,,2026-02-10T02:00:00Z,2026-02-12T02:00:00Z,5000.00,CNY,paid\n";
    let header = "account_id,company_name,company_size,industry,tier,owner_id,created_at\n";
    run_python(
        S3_OPS,
        &[
            &endpoint,
            "put",
            "kpipe",
            "extracts/accounts/late.csv",
            &format!("{header}{accounts}"),
        ],
    );
    run_python(
        S3_OPS,
        &[
            &endpoint,
            "put",
            "kpipe",
            "extracts/invoices/late.csv",
            invoices,
        ],
    );
    let output = kpipe_on_s3(dir.path(), &endpoint, &shipped_pipeline(), &vars);
    assert_eq!(output.status.code(), Some(75), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("is committing ledger entries"),
        "{}",
        text(&output.stderr)
    );
    let ledger = run_python(
        S3_OPS,
        &[&endpoint, "ledger", "finance", "marketing/bonus_ledger"],
    );
    assert_eq!(ledger.lines().count(), 2, "nothing appended: {ledger}");
}
