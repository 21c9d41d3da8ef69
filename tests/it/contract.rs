//! The extract contract: bad rows go to the quarantine with file, line, column and the
//! first rule they break; good rows go on; thresholds stop the run.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::SessionContext;
use kpipe::storage::Stores;
use kpipe::{KpipeError, Runner};
use url::Url;

use crate::common::Vars;

const PIPELINE: &str = "\
name: contract
input_root: ${root}/in
output_root: ${root}/out
sources:
  leads:
    format: csv
    unique_key: [lead_id]
    columns:
      - {name: lead_id, type: string, nullable: false}
      - {name: created_at, type: timestamp, nullable: false}
      - {name: channel, type: string, nullable: false, enum: [linkedin, webinar]}
      - {name: company_size, type: int}
      - {name: contact_email, type: string, pii: true}
  spend:
    format: csv
    columns:
      - {name: day, type: date, nullable: false}
      - {name: amount, type: decimal, nullable: false, min: 0}
      - {name: currency, type: string, nullable: false, currency: true}
  touches:
    format: parquet
    columns:
      - {name: touch_id, type: string, nullable: false}
      - {name: kind, type: string, nullable: false, enum: [call, email]}
      - {name: touched_at, type: timestamp, nullable: false}
outputs:
  good_leads:
";

/// Line numbers are physical lines: the header is line 1, and L5's quoted e-mail
/// spans lines 7 and 8. The file starts with a UTF-8 byte-order mark.
const LEADS: &str = "\u{feff}lead_id,created_at,channel,company_size,contact_email
L1,2026-03-01T09:15:00Z,linkedin,10,a@x.example
L2,2026-03-01 09:15:00,linkedin,10,b@x.example
L3,2026-03-01T09:15:00+0800,webinar,10,
L4,2026-03-01T09:15:00Z,tiktok,12.0,c@x.example
,2026-03-01T09:15:00Z,Linkedin,1,
\"L5\",\"2026-03-01T09:15:00+08:00\",\"webinar\",\"7\",\"multi
line\"
L6,2026-03-01T09:15:00Z,linkedin,5,d@x.example
L6,2026-03-02T09:15:00Z,webinar,6,e@x.example
L7,2026-02-30T00:00:00Z,linkedin,5,
L2,2026-03-05T00:00:00.5Z,linkedin,3,
L8,2026-03-01T09:15:00Z,linkedin,1,2,3
";

const SPEND: &str = "day,amount,currency
2026-03-01,10.00,CNY
2026-03-01,-1.00,CNY
2026-03-01,5.00,USD
2026-03-01,5.001,CNY
2026-03-01,-5.001,USD
2026-13-01,5.00,CNY
";

/// Every bad row, with the first rule it breaks. L2 at line 12 is good: its other copy
/// (line 3) was already bad, and duplicates are looked for among good rows only. L4
/// breaks two rules; `bad_number` comes before `unknown_enum_value`.
const QUARANTINE: &str = "\
+---------+--------------------+------+--------------+------------------------+
| table   | file               | line | column       | reason                 |
+---------+--------------------+------+--------------+------------------------+
| leads   | in/leads/leads.csv | 3    | created_at   | bad_timestamp          |
| leads   | in/leads/leads.csv | 4    | created_at   | bad_timestamp          |
| leads   | in/leads/leads.csv | 5    | company_size | bad_number             |
| leads   | in/leads/leads.csv | 6    | lead_id      | missing_required_value |
| leads   | in/leads/leads.csv | 9    | lead_id      | duplicate_key          |
| leads   | in/leads/leads.csv | 10   | lead_id      | duplicate_key          |
| leads   | in/leads/leads.csv | 11   | created_at   | bad_timestamp          |
| leads   | in/leads/leads.csv | 13   |              | malformed_record       |
| spend   | in/spend/spend.csv | 3    | amount       | out_of_range           |
| spend   | in/spend/spend.csv | 4    | currency     | wrong_currency         |
| spend   | in/spend/spend.csv | 5    | amount       | bad_number             |
| spend   | in/spend/spend.csv | 6    | amount       | bad_number             |
| spend   | in/spend/spend.csv | 7    | day          | bad_date               |
| touches | in/touches/t.parquet | 1  | kind         | unknown_enum_value     |
+---------+--------------------+------+--------------+------------------------+";

fn write_touches(dir: &Path, zoned: bool) {
    let zone = zoned.then(|| "UTC".into());
    let schema = Arc::new(Schema::new(vec![
        Field::new("touch_id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new(
            "touched_at",
            DataType::Timestamp(TimeUnit::Microsecond, zone.clone()),
            false,
        ),
        Field::new("extra", DataType::Int64, true),
    ]));
    let micros = 1_772_356_500_000_000; // 2026-03-01T09:15:00Z
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec!["T1", "T2", "T3"])),
            Arc::new(StringArray::from(vec!["call", "sms", "email"])),
            Arc::new(TimestampMicrosecondArray::from(vec![micros; 3]).with_timezone_opt(zone)),
            Arc::new(Int64Array::from(vec![1, 2, 3])),
        ],
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("in/touches")).unwrap();
    let file = std::fs::File::create(dir.join("in/touches/t.parquet")).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// Lays out the pipeline and its extracts in `dir`.
fn setup(dir: &Path) {
    setup_with(dir, PIPELINE);
}

fn setup_with(dir: &Path, pipeline: &str) {
    std::fs::write(dir.join("pipeline.yaml"), pipeline).unwrap();
    std::fs::create_dir_all(dir.join("sql")).unwrap();
    std::fs::write(
        dir.join("sql/good_leads.sql"),
        "SELECT lead_id, created_at, company_size FROM leads",
    )
    .unwrap();
    for (table, name, text) in [("leads", "leads.csv", LEADS), ("spend", "spend.csv", SPEND)] {
        std::fs::create_dir_all(dir.join("in").join(table)).unwrap();
        std::fs::write(dir.join("in").join(table).join(name), text).unwrap();
    }
    write_touches(dir, true);
}

async fn run(
    dir: &Path,
    extra: Vec<(&'static str, String)>,
) -> Result<kpipe::RunSummary, KpipeError> {
    let mut vars = vec![("root", dir.display().to_string())];
    vars.extend(extra);
    let pipeline = kpipe::config::load(&dir.join("pipeline.yaml"), &Vars(vars))
        .unwrap_or_else(|d| panic!("{d}"));
    Runner::new(pipeline, Stores::default())
        .run(NaiveDate::from_ymd_opt(2026, 3, 31).unwrap())
        .await
}

async fn query(dir: &Path, table: &str, sql: &str) -> String {
    let ctx = SessionContext::new();
    let url = Url::from_directory_path(dir.join("out").join(table)).unwrap();
    ctx.register_parquet(table, url.as_str(), Default::default())
        .await
        .unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

#[tokio::test]
async fn bad_rows_are_quarantined_with_where_and_why() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let summary = run(dir.path(), vec![]).await.unwrap();

    let source = |name: &str| summary.sources.iter().find(|s| s.name == name).unwrap();
    assert_eq!(
        (source("leads").rows_read, source("leads").rows_bad),
        (11, 8)
    );
    assert_eq!(
        (source("spend").rows_read, source("spend").rows_bad),
        (6, 5)
    );
    assert_eq!(
        (source("touches").rows_read, source("touches").rows_bad),
        (3, 1)
    );

    let root = format!("{}/", dir.path().display());
    let sql = format!(
        "SELECT \"table\", replace(replace(file, 'file://{root}', ''), '{root}', '') AS file, line, \"column\", reason \
         FROM quarantine ORDER BY \"table\", line"
    );
    let text = query(dir.path(), "quarantine", &sql).await;
    let expected = QUARANTINE.replace(
        "| touches | in/touches/t.parquet | 1  |",
        "| touches | in/touches/t.parquet | 1    |",
    );
    assert_eq!(normalise(&text), normalise(&expected));

    let good = query(dir.path(), "good_leads", "SELECT lead_id, CAST(created_at AS VARCHAR) AS t, company_size FROM good_leads ORDER BY lead_id").await;
    assert_eq!(
        good,
        "+---------+-------------------------------+--------------+\n\
         | lead_id | t                             | company_size |\n\
         +---------+-------------------------------+--------------+\n\
         | L1      | 2026-03-01T17:15:00+08:00     | 10           |\n\
         | L2      | 2026-03-05T08:00:00.500+08:00 | 3            |\n\
         | L5      | 2026-03-01T09:15:00+08:00     | 7            |\n\
         +---------+-------------------------------+--------------+"
    );
}

/// Compares tables without caring for column widths.
fn normalise(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
        .collect()
}

#[tokio::test]
async fn quarantined_records_mask_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    run(dir.path(), vec![]).await.unwrap();
    let text = query(
        dir.path(),
        "quarantine",
        "SELECT record, run_id FROM quarantine WHERE line = 3 AND \"table\" = 'leads'",
    )
    .await;
    assert!(
        text.contains(
            r#"{"lead_id":"L2","created_at":"2026-03-01 09:15:00","channel":"linkedin","company_size":"10","contact_email":"***"}"#
        ),
        "{text}"
    );
    let all = query(dir.path(), "quarantine", "SELECT record FROM quarantine").await;
    assert!(
        !all.contains("@x.example"),
        "an e-mail address leaked into the quarantine:\n{all}"
    );
    assert!(
        text.contains("2026-03-31."),
        "the run id starts with as_of:\n{text}"
    );
}

#[tokio::test]
async fn too_many_bad_rows_stop_the_run_after_the_quarantine_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let strict = PIPELINE.replace(
        "unique_key: [lead_id]\n",
        "unique_key: [lead_id]\n    bad_rows: {max_count: 0, max_ratio: 0}\n",
    );
    setup_with(dir.path(), &strict);
    let error = run(dir.path(), vec![]).await.unwrap_err();
    assert_eq!(error.exit_code(), 65);
    let message = error.to_string();
    assert!(
        message.contains("`leads` has 8 bad rows of 11 read"),
        "{message}"
    );
    assert!(
        !message.contains("`spend`"),
        "spend is within the default limit: {message}"
    );
    assert!(
        dir.path().join("out/quarantine/data.parquet").is_file(),
        "the quarantine is still written"
    );
    assert!(
        !dir.path().join("out/good_leads").exists(),
        "no output is written"
    );
    assert!(
        !dir.path().join("out/_staging").exists(),
        "the staged extracts are removed"
    );
}

#[tokio::test]
async fn a_parquet_timestamp_without_a_zone_names_the_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    write_touches(dir.path(), false);
    let error = run(dir.path(), vec![]).await.unwrap_err();
    assert_eq!(error.exit_code(), 65, "{error}");
    let message = error.to_string();
    assert!(
        message.contains("in/touches/t.parquet: column `touched_at` is stored as Timestamp"),
        "{message}"
    );
}

#[tokio::test]
async fn non_utf8_bytes_name_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let mut bytes = b"day,amount,currency\n2026-03-01,10.00,CNY\n2026-03-02,10.00,CN".to_vec();
    bytes.extend([0xff, b'\n']);
    std::fs::write(dir.path().join("in/spend/spend.csv"), bytes).unwrap();
    let error = run(dir.path(), vec![]).await.unwrap_err();
    assert_eq!(error.exit_code(), 65, "{error}");
    assert!(
        error
            .to_string()
            .contains("in/spend/spend.csv:3: column `currency` is not UTF-8"),
        "{error}"
    );
}
