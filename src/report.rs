//! What a run reports: the closing summary (logged, and printed as a table) and the
//! view graph that `explain` prints.

use std::fmt::Write as _;

use crate::config::Pipeline;
use crate::engine::ViewGraph;
use crate::run::{OutputStat, RunSummary, ms};

pub(crate) fn log_summary(summary: &RunSummary) {
    let rows_read: u64 = summary.sources.iter().map(|s| s.rows_read).sum();
    let rows_bad: u64 = summary.sources.iter().map(|s| s.rows_bad).sum();
    let rows_written: usize = summary.outputs.iter().map(OutputStat::rows).sum();
    tracing::info!(
        as_of = %summary.as_of,
        run_id = %summary.run_id,
        sources = summary.sources.len(),
        rows_read,
        rows_bad,
        views = summary.views.len(),
        outputs = summary.outputs.len(),
        rows_written,
        ledger_appended = summary.ledger.as_ref().map_or(0, |l| l.drift.len()),
        ms = ms(summary.elapsed),
        "run finished"
    );
}

impl RunSummary {
    /// The closing summary as a table for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "kpipe run {} for as_of {} finished in {} ms",
            self.run_id,
            self.as_of,
            ms(self.elapsed)
        );
        let row = |out: &mut String,
                   step: &str,
                   name: &str,
                   files: String,
                   rows: String,
                   bad: String,
                   ms: String| {
            let _ = writeln!(
                out,
                "{step:<8} {name:<28} {files:>6} {rows:>10} {bad:>8} {ms:>8}"
            );
        };
        row(
            &mut out,
            "step",
            "name",
            "files".into(),
            "rows".into(),
            "bad".into(),
            "ms".into(),
        );
        for s in &self.sources {
            row(
                &mut out,
                "source",
                &s.name,
                s.files.len().to_string(),
                s.rows_read.to_string(),
                s.rows_bad.to_string(),
                ms(s.elapsed).to_string(),
            );
        }
        for v in &self.views {
            row(
                &mut out,
                "view",
                &v.name,
                String::new(),
                v.rows.to_string(),
                String::new(),
                ms(v.elapsed).to_string(),
            );
        }
        for o in &self.outputs {
            row(
                &mut out,
                "output",
                &o.name,
                o.files.len().to_string(),
                o.rows().to_string(),
                String::new(),
                ms(o.elapsed).to_string(),
            );
        }
        if let Some(ledger) = &self.ledger {
            let verb = if ledger.dry_run {
                "would append"
            } else {
                "appended"
            };
            let _ = writeln!(
                out,
                "\nbonus ledger: {} entries before this run, {verb} {}, {} statements",
                ledger.entries_before,
                ledger.drift.len(),
                ledger.statements
            );
            if ledger.dry_run || !ledger.drift.is_empty() {
                out.push_str(&crate::ledger::drift_text(&ledger.drift));
            }
        }
        out
    }
}

pub(crate) fn explain_text(pipeline: &Pipeline, graph: &ViewGraph) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pipeline {} ({})",
        pipeline.name,
        pipeline.file.display()
    );
    let _ = writeln!(out, "\nsources:");
    for source in &pipeline.sources {
        let required = if source.required { ", required" } else { "" };
        let format = format!("{:?}", source.format).to_lowercase();
        let _ = writeln!(
            out,
            "  {:<24} {format} at {}{required}",
            source.name,
            crate::storage::display_url(&source.url)
        );
    }
    let _ = writeln!(out, "\nviews, in build order:");
    for view in &graph.views {
        let reads = if view.reads.is_empty() {
            "nothing".to_string()
        } else {
            view.reads.join(", ")
        };
        let _ = writeln!(out, "  {:<24} reads {reads}", view.name);
        if !view.params.is_empty() {
            let params: Vec<String> = view.params.iter().map(|p| format!("${p}")).collect();
            let _ = writeln!(out, "  {:<24} params {}", "", params.join(", "));
        }
    }
    let _ = writeln!(out, "\noutputs:");
    for output in &pipeline.outputs {
        let mut location = format!(
            "{}{}/",
            crate::storage::display_url(&pipeline.output_root),
            output.name
        );
        for column in &output.partition_by {
            let _ = write!(location, "{column}=…/");
        }
        let upstream: Vec<String> = graph.upstream(&output.view).into_iter().collect();
        let _ = writeln!(
            out,
            "  {:<24} view {} -> {}data.parquet",
            output.name, output.view, location
        );
        let _ = writeln!(out, "  {:<24} from {}", "", upstream.join(", "));
    }
    if let Some(ledger) = &pipeline.ledger {
        let root = crate::storage::display_url(&ledger.root);
        let _ = writeln!(out, "\nbonus ledger (names and pay, under its own root):");
        let _ = writeln!(
            out,
            "  {:<24} view {} -> {root}bonus_ledger/<run_id>.parquet",
            "bonus_ledger", ledger.payouts
        );
        let _ = writeln!(
            out,
            "  {:<24} -> {root}statements/period=…/<employee>.html, .json",
            "statements"
        );
    }
    out
}
