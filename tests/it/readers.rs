//! Outputs open in real readers, DuckDB and pyarrow, with Hive partitions recognised and
//! the column names and types of outputs.md.

use crate::common::{root, run_python, run_shipped, text};

/// Runs the shipped pipeline on the fixtures into a temporary folder.
fn run_marketing() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = root().join("fixtures");
    let output = run_shipped(dir.path(), fixtures.to_str().unwrap(), &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    dir
}

/// Prints `name: [(column, type), ...]` for every partitioned output, as DuckDB reads it.
const DUCKDB: &str = r#"
import sys, duckdb
out = sys.argv[1]
con = duckdb.connect()
for table in ["kpi_values", "scorecard", "scorecard_summary", "channel_performance", "followup_impact", "churn_reasons"]:
    rel = con.sql(f"SELECT * FROM read_parquet('{out}/{table}/*/*.parquet', hive_partitioning = true)")
    print(f"{table}: {[(n, str(t)) for n, t in zip(rel.columns, rel.types)]}")
print("rows:", con.execute(f"SELECT count(*) FROM read_parquet('{out}/kpi_values/*/*.parquet', hive_partitioning = true)").fetchone()[0])
print("cpl:", con.execute(f"SELECT actual FROM read_parquet('{out}/kpi_values/*/*.parquet', hive_partitioning = true) WHERE period = '2026-02' AND entity_id = 'company' AND kpi = 'cpl'").fetchone()[0])
"#;

#[test]
fn duckdb_reads_every_partitioned_output_with_the_types_of_outputs_md() {
    let dir = run_marketing();
    let out = dir.path().join("out");
    let stdout = run_python(DUCKDB, &[out.to_str().unwrap()]);
    let line = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("{stdout}"))
            .to_string()
    };
    assert_eq!(
        line("kpi_values"),
        "[('level', 'VARCHAR'), ('entity_id', 'VARCHAR'), ('kpi', 'VARCHAR'), ('actual', 'DOUBLE'), \
         ('numerator', 'DOUBLE'), ('denominator', 'DOUBLE'), ('is_final', 'BOOLEAN'), ('as_of', 'DATE'), \
         ('period', 'VARCHAR')]"
    );
    assert_eq!(
        line("scorecard"),
        "[('level', 'VARCHAR'), ('entity_id', 'VARCHAR'), ('kpi', 'VARCHAR'), ('actual', 'DOUBLE'), \
         ('numerator', 'DOUBLE'), ('denominator', 'DOUBLE'), ('target', 'DOUBLE'), ('direction', 'VARCHAR'), \
         ('attainment', 'DOUBLE'), ('plan_weight', 'DOUBLE'), ('weight', 'DOUBLE'), ('weighted_score', 'DOUBLE'), \
         ('applicable', 'BOOLEAN'), ('missing', 'BOOLEAN'), ('is_final', 'BOOLEAN'), ('plan', 'VARCHAR'), \
         ('as_of', 'DATE'), ('period', 'VARCHAR')]"
    );
    assert_eq!(
        line("scorecard_summary"),
        "[('level', 'VARCHAR'), ('entity_id', 'VARCHAR'), ('score', 'DOUBLE'), ('is_final', 'BOOLEAN'), \
         ('plan', 'VARCHAR'), ('flags', 'VARCHAR[]'), ('as_of', 'DATE'), ('period', 'VARCHAR')]"
    );
    assert_eq!(
        line("channel_performance"),
        "[('channel', 'VARCHAR'), ('leads', 'BIGINT'), ('effective_leads', 'BIGINT'), \
         ('lead_quality_rate', 'DOUBLE'), ('spend', 'DECIMAL(18,2)'), ('cpl', 'DOUBLE'), \
         ('lead_to_customer_rate_90d', 'DOUBLE'), ('is_final', 'BOOLEAN'), ('as_of', 'DATE'), ('period', 'VARCHAR')]"
    );
    assert_eq!(
        line("followup_impact"),
        "[('touched_within_24h', 'BOOLEAN'), ('effective_leads', 'BIGINT'), ('converted_90d', 'BIGINT'), \
         ('conversion_rate', 'DOUBLE'), ('is_final', 'BOOLEAN'), ('as_of', 'DATE'), ('period', 'VARCHAR')]"
    );
    assert_eq!(
        line("churn_reasons"),
        "[('churn_reason', 'VARCHAR'), ('responses', 'BIGINT'), ('share', 'DOUBLE'), ('as_of', 'DATE'), \
         ('period', 'VARCHAR')]"
    );
    assert_eq!(line("rows"), "458");
    assert_eq!(line("cpl"), "850.25");
}

const PYARROW: &str = r#"
import sys
import pyarrow.dataset as ds
out = sys.argv[1]
q = ds.dataset(f"{out}/quarantine", format="parquet").to_table()
print("quarantine", [(f.name, str(f.type)) for f in q.schema], q.num_rows)
s = ds.dataset(f"{out}/scorecard_summary", format="parquet", partitioning="hive").to_table()
rows = [r for r in s.to_pylist() if r["entity_id"] == "E1" and r["period"] == "2026-02"]
print("flags", rows[0]["flags"])
"#;

#[test]
fn pyarrow_reads_the_quarantine_and_the_flags() {
    let dir = run_marketing();
    let out = dir.path().join("out");
    let stdout = run_python(PYARROW, &[out.to_str().unwrap()]);
    assert!(
        stdout.contains(
            "quarantine [('run_id', 'string'), ('table', 'string'), ('file', 'string'), ('line', 'int64'), \
             ('column', 'string'), ('reason', 'string'), ('record', 'string')] 23"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("flags ['promotion_priority']"), "{stdout}");
}
