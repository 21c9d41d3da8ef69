//! A full run of the shipped pipeline on `fixtures/`, through `file://` and `memory://`,
//! with every output value worked out by hand below.
//!
//! The window for as_of 2026-06-30 is 2026-02 .. 2026-06; the cutoff is
//! 2026-07-01T00:00+08:00 = 2026-06-30T16:00Z. Leads, by Shanghai month of creation:
//!
//! | lead | month | channel | effective? why |
//! |---|---|---|---|
//! | L10 | 2026-01 | organic | yes, but before the window |
//! | L01 | 2026-02 | linkedin | yes |
//! | L02 | 2026-02 | webinar | no: company_size 30 < 50 |
//! | L03 | 2026-03 | linkedin | no: industry finance |
//! | L04 | 2026-04 | search_ads | yes: 2026-03-31T17:30Z is April 1 in Shanghai |
//! | L05 | 2026-04 | webinar | no: contact_role hr_staff |
//! | L06 | 2026-04 | referral | no: industry `Internet` is not `internet` |
//! | L07 | 2026-05 | linkedin | yes (no owner; quoted newlines in the CSV) |
//! | L08 | 2026-06 | trade_show | no: form_budget 0.00 (created 23:59:59 June 30) |
//! | L09 | - | linkedin | not known: created exactly at the cutoff |
//! | L11 | 2026-06 | whitepaper | no: form_positions is blank |
//! | L12 | 2026-06 | whitepaper | yes: company_size 50 is enough |
//!
//! Spend known at as_of by month and channel: 2026-02 linkedin 1000.00 + 500.50
//! (channel-wide) = 1500.50; 2026-03 webinar 300.00; 2026-04 search_ads 250.25;
//! 2026-06 whitepaper 99.99. 2026-01-31 is before the window, 2026-07-01 after as_of.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use kpipe::Runner;
use kpipe::storage::Stores;
use object_store::ObjectStoreExt;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use url::Url;

use crate::common::{marketing, root};

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
}

const LEAD_FUNNEL: &str = "\
+---------+------------+-------+-----------------+-------------------+------------+
| period  | channel    | leads | effective_leads | lead_quality_rate | as_of      |
+---------+------------+-------+-----------------+-------------------+------------+
| 2026-02 | linkedin   | 1     | 1               | 1.0               | 2026-06-30 |
| 2026-02 | webinar    | 1     | 0               | 0.0               | 2026-06-30 |
| 2026-03 | linkedin   | 1     | 0               | 0.0               | 2026-06-30 |
| 2026-04 | referral   | 1     | 0               | 0.0               | 2026-06-30 |
| 2026-04 | search_ads | 1     | 1               | 1.0               | 2026-06-30 |
| 2026-04 | webinar    | 1     | 0               | 0.0               | 2026-06-30 |
| 2026-05 | linkedin   | 1     | 1               | 1.0               | 2026-06-30 |
| 2026-06 | trade_show | 1     | 0               | 0.0               | 2026-06-30 |
| 2026-06 | whitepaper | 2     | 1               | 0.5               | 2026-06-30 |
+---------+------------+-------+-----------------+-------------------+------------+";

/// A zero denominator gives a null cost; zero spend over an effective lead costs 0.
const CHANNEL_SPEND: &str = "\
+---------+------------+---------+-----------------+--------+------------+
| period  | channel    | spend   | effective_leads | cpl    | as_of      |
+---------+------------+---------+-----------------+--------+------------+
| 2026-02 | linkedin   | 1500.50 | 1               | 1500.5 | 2026-06-30 |
| 2026-02 | webinar    | 0.00    | 0               |        | 2026-06-30 |
| 2026-03 | linkedin   | 0.00    | 0               |        | 2026-06-30 |
| 2026-03 | webinar    | 300.00  | 0               |        | 2026-06-30 |
| 2026-04 | referral   | 0.00    | 0               |        | 2026-06-30 |
| 2026-04 | search_ads | 250.25  | 1               | 250.25 | 2026-06-30 |
| 2026-04 | webinar    | 0.00    | 0               |        | 2026-06-30 |
| 2026-05 | linkedin   | 0.00    | 1               | 0.0    | 2026-06-30 |
| 2026-06 | trade_show | 0.00    | 0               |        | 2026-06-30 |
| 2026-06 | whitepaper | 99.99   | 1               | 99.99  | 2026-06-30 |
+---------+------------+---------+-----------------+--------+------------+";

/// Read from the Parquet fixture of campaigns; C3 has no owner.
const CAMPAIGN_SPEND: &str = "\
+---------+-------------+-------------------+---------------+----------+---------+------------+
| period  | campaign_id | campaign_name     | campaign_kind | owner_id | spend   | as_of      |
+---------+-------------+-------------------+---------------+----------+---------+------------+
| 2026-02 | C1          | LinkedIn Q1       | ads           | E1       | 1000.00 | 2026-06-30 |
| 2026-03 | C2          | HR webinar series | webinar       | E2       | 300.00  | 2026-06-30 |
| 2026-06 | C3          | Hiring guide 2026 | whitepaper    |          | 99.99   | 2026-06-30 |
+---------+-------------+-------------------+---------------+----------+---------+------------+";

/// Runs the shipped pipeline from `input` to `output` with the default stores.
async fn run_marketing(input: &Url, output: &Url, as_of: NaiveDate) -> kpipe::RunSummary {
    let pipeline = marketing(input.as_str(), output.as_str());
    Runner::new(pipeline, Stores::default())
        .run(as_of)
        .await
        .unwrap()
}

/// Reads table `name` under `root` back with DataFusion, partitions included, sorted.
async fn read_back(ctx: &SessionContext, root: &Url, name: &str, partitioned: bool) -> String {
    let mut options = ParquetReadOptions::default();
    if partitioned {
        options = options.table_partition_cols(vec![("period".to_string(), DataType::Utf8)]);
    }
    let url = root.join(&format!("{name}/")).unwrap();
    let frame = ctx.read_parquet(url.as_str(), options).await.unwrap();
    let columns: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut order = vec!["period".to_string()];
    order.extend(columns.iter().filter(|c| *c != "period").cloned());
    let ordered: Vec<&str> = order.iter().map(String::as_str).collect();
    let frame = frame.select_columns(&ordered).unwrap();
    let sort = order
        .iter()
        .take(3)
        .map(|c| datafusion::prelude::col(c.as_str()).sort(true, true))
        .collect();
    let batches = frame.sort(sort).unwrap().collect().await.unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

async fn assert_outputs(ctx: &SessionContext, out: &Url) {
    assert_eq!(read_back(ctx, out, "lead_funnel", true).await, LEAD_FUNNEL);
    assert_eq!(
        read_back(ctx, out, "channel_spend", true).await,
        CHANNEL_SPEND
    );
    assert_eq!(
        read_back(ctx, out, "campaign_spend", false).await,
        CAMPAIGN_SPEND
    );
}

#[tokio::test]
async fn runs_on_local_files_and_writes_hive_partitions() {
    let out = tempfile::tempdir().unwrap();
    let input = Url::from_directory_path(root().join("fixtures")).unwrap();
    let output = Url::from_directory_path(out.path()).unwrap();

    let summary = run_marketing(&input, &output, as_of()).await;

    let read = |name: &str| {
        summary
            .sources
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .rows_read
    };
    assert_eq!(
        (
            read("leads"),
            read("spend"),
            read("employees"),
            read("campaigns")
        ),
        (12, 7, 4, 3)
    );
    assert_eq!(
        read("invoices"),
        0,
        "an absent optional extract is an empty table"
    );
    let files = |name: &str| {
        summary
            .outputs
            .iter()
            .find(|o| o.name == name)
            .unwrap()
            .files
            .len()
    };
    assert_eq!(
        files("lead_funnel"),
        5,
        "one object per month of the window"
    );
    assert!(
        out.path()
            .join("lead_funnel/period=2026-04/data.parquet")
            .is_file()
    );
    assert!(out.path().join("campaign_spend/data.parquet").is_file());

    assert_outputs(&SessionContext::new(), &output).await;
}

#[tokio::test]
async fn a_rerun_on_the_same_inputs_writes_the_same_bytes() {
    let out = tempfile::tempdir().unwrap();
    let input = Url::from_directory_path(root().join("fixtures")).unwrap();
    let output = Url::from_directory_path(out.path()).unwrap();
    let object = out.path().join("channel_spend/period=2026-02/data.parquet");

    run_marketing(&input, &output, as_of()).await;
    let first = std::fs::read(&object).unwrap();
    run_marketing(&input, &output, as_of()).await;
    let second = std::fs::read(&object).unwrap();

    assert_eq!(first, second);
    let in_partition = std::fs::read_dir(object.parent().unwrap()).unwrap().count();
    assert_eq!(
        in_partition, 1,
        "a rerun replaces the partition's object, never adds one"
    );
}

/// Copies `fixtures/` into `store`, keeping relative paths.
async fn upload_fixtures(store: &InMemory) {
    let fixtures = root().join("fixtures");
    let mut stack = vec![fixtures.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(&fixtures)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let bytes = std::fs::read(&path).unwrap();
            store
                .put(&ObjectPath::from(relative), bytes.into())
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn runs_on_in_memory_object_storage() {
    let extracts = Arc::new(InMemory::new());
    upload_fixtures(&extracts).await;
    let results = Arc::new(InMemory::new());
    let stores = Stores::default()
        .with_store("memory://extracts", extracts.clone())
        .with_store("memory://results", results.clone());
    let pipeline = marketing("memory://extracts/", "memory://results/marketing");

    Runner::new(pipeline, stores).run(as_of()).await.unwrap();

    let written = results
        .get(&ObjectPath::from(
            "marketing/lead_funnel/period=2026-06/data.parquet",
        ))
        .await;
    assert!(written.is_ok(), "the output is in the in-memory store");
    let ctx = SessionContext::new();
    let base = Url::parse("memory://results").unwrap();
    ctx.register_object_store(&base, results);
    assert_outputs(&ctx, &Url::parse("memory://results/marketing/").unwrap()).await;
}

#[tokio::test]
async fn an_earlier_as_of_sees_only_what_had_happened_by_then() {
    let out = tempfile::tempdir().unwrap();
    let input = Url::from_directory_path(root().join("fixtures")).unwrap();
    let output = Url::from_directory_path(out.path()).unwrap();
    // as_of 2026-03-31: the window is 2025-11 .. 2026-03; L04 (April 1 in Shanghai) and
    // everything later is not known yet.
    let as_of = NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
    run_marketing(&input, &output, as_of).await;

    let text = read_back(&SessionContext::new(), &output, "lead_funnel", true).await;
    let periods: Vec<&str> = text
        .lines()
        .skip(3)
        .filter_map(|l| l.split('|').nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(periods, ["2026-01", "2026-02", "2026-02", "2026-03"]);
    assert!(!text.contains("search_ads"), "{text}");
}

#[test]
fn the_shipped_plans_are_those_of_plans_md() {
    let pipeline = marketing("fixtures", "out");
    let names: Vec<&str> = pipeline.plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["launch", "focus"]);
    let month = |m| NaiveDate::from_ymd_opt(2026, m, 1).unwrap();
    let march = kpipe::config::in_force(&pipeline.plans, month(3)).unwrap();
    let april = kpipe::config::in_force(&pipeline.plans, month(4)).unwrap();
    assert_eq!(
        (march.name.as_str(), march.effective_lead.need_window_days),
        ("launch", None)
    );
    assert_eq!(
        (april.name.as_str(), april.effective_lead.need_window_days),
        ("focus", Some(90))
    );
    let weights: Vec<(&str, f64)> = april
        .scored
        .iter()
        .map(|s| (s.kpi.as_str(), s.weight))
        .collect();
    assert_eq!(
        weights,
        [
            ("effective_leads", 0.3),
            ("lead_to_customer_rate_90d", 0.3),
            ("trial_retention_30d", 0.2),
            ("cpl", 0.2)
        ]
    );
    assert_eq!(april.scored[3].targets.employee, 400.0);
    assert_eq!(pipeline.kpis.len(), 18, "every KPI id of kpis.md");
}
