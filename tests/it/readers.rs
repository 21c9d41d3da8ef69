//! Outputs open in real readers, DuckDB and pyarrow, with Hive partitions recognised.

use crate::common::{root, run_python, run_shipped, text};

/// Runs the shipped pipeline on the fixtures into a temporary folder.
fn run_marketing() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = root().join("fixtures");
    let output = run_shipped(dir.path(), fixtures.to_str().unwrap(), &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    dir
}

const DUCKDB: &str = r#"
import sys, duckdb
out = sys.argv[1]
con = duckdb.connect()
rel = con.sql(f"SELECT * FROM read_parquet('{out}/lead_funnel/*/*.parquet', hive_partitioning = true)")
print("columns", [(n, str(t)) for n, t in zip(rel.columns, rel.types)])
print("rows", con.execute(f"SELECT count(*) FROM read_parquet('{out}/lead_funnel/*/*.parquet', hive_partitioning = true)").fetchone()[0])
print("june", con.execute(f"SELECT channel, leads, effective_leads FROM read_parquet('{out}/lead_funnel/*/*.parquet', hive_partitioning = true) WHERE period = '2026-06' ORDER BY channel").fetchall())
print("spend", con.execute(f"SELECT typeof(spend), sum(spend) FROM read_parquet('{out}/channel_spend/*/*.parquet', hive_partitioning = true) GROUP BY 1").fetchall())
"#;

#[test]
fn duckdb_reads_the_partitioned_outputs() {
    let dir = run_marketing();
    let out = dir.path().join("out");
    let stdout = run_python(DUCKDB, &[out.to_str().unwrap()]);
    let line = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .unwrap_or_else(|| panic!("{stdout}"))
            .to_string()
    };
    assert_eq!(
        line("columns"),
        "[('channel', 'VARCHAR'), ('leads', 'BIGINT'), ('effective_leads', 'BIGINT'), \
         ('lead_quality_rate', 'DOUBLE'), ('as_of', 'DATE'), ('period', 'VARCHAR')]"
    );
    assert_eq!(line("rows"), "9");
    assert_eq!(line("june"), "[('trade_show', 1, 0), ('whitepaper', 2, 1)]");
    // 1500.50 + 300.00 + 250.25 + 99.99, as an exact decimal.
    assert_eq!(line("spend"), "[('DECIMAL(18,2)', Decimal('2150.74'))]");
}

const PYARROW: &str = r#"
import sys
import pyarrow.dataset as ds
out = sys.argv[1]
table = ds.dataset(f"{out}/channel_spend", format="parquet", partitioning="hive").to_table()
print("schema", [(f.name, str(f.type)) for f in table.schema])
rows = sorted(table.to_pylist(), key=lambda r: (r["period"], r["channel"]))
print("first", rows[0]["period"], rows[0]["channel"], rows[0]["spend"], rows[0]["cpl"])
print("nulls", sum(1 for r in rows if r["cpl"] is None))
flat = ds.dataset(f"{out}/campaign_spend", format="parquet").to_table()
print("campaigns", flat.num_rows, flat.column("owner_id").to_pylist())
"#;

#[test]
fn pyarrow_reads_the_partitioned_outputs() {
    let dir = run_marketing();
    let out = dir.path().join("out");
    let stdout = run_python(PYARROW, &[out.to_str().unwrap()]);
    assert!(
        stdout.contains(
            "schema [('channel', 'string'), ('spend', 'decimal128(18, 2)'), ('effective_leads', 'int64'), \
             ('cpl', 'double'), ('as_of', 'date32[day]'), ('period', 'string')]"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("first 2026-02 linkedin 1500.50 1500.5"),
        "{stdout}"
    );
    assert!(stdout.contains("nulls 6"), "{stdout}");
    assert!(
        stdout.contains("campaigns 3 ['E1', 'E2', None]"),
        "{stdout}"
    );
}
