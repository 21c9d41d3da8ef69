//! Bonus statement per employee and month.
//!
//! A [`Statement`] carries everything finance and the employee need to check a
//! payout by hand: KPI attainment, the score and the scorecard it came from, the
//! payout curve, the computed components and the ledger entries actually
//! recorded. It renders as one self-contained HTML page (no scripts, fonts or
//! external assets, so it can be mailed, archived or printed as is) and as a
//! JSON twin with the same content for machines and tests.

use std::fmt::Write as _;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    pub period: String, // "2026-04"
    pub employee_id: String,
    pub employee_name: String,
    pub team: String,
    pub role: String,      // marketer | team_lead | head
    pub plan: String,      // plan name in force
    pub level: String,     // employee | team | company: the scorecard that pays this role
    pub entity_id: String, // the scored entity (employee id, team name, or "company")
    pub score: f64,
    pub score_final: bool,
    pub multiplier: f64, // the payout curve's multiplier at the score (6 decimals)
    pub curve: Vec<(f64, f64)>, // the plan's payout curve points (score, multiplier)
    pub active_days: i64,
    pub month_days: i64,
    pub proration: f64,
    pub monthly_bonus_target: String, // decimal text, e.g. "10000.00"
    pub currency: String,             // "CNY"
    pub flags: Vec<String>,           // e.g. ["promotion_priority"]
    pub period_final: bool,
    pub as_of: String, // "2026-06-30"
    pub run_id: String,
    pub kpis: Vec<StatementKpi>,
    pub components: Vec<StatementComponent>,
    pub entries: Vec<StatementEntry>,
    pub total_computed: String, // decimal text: sum of components' amounts
    pub total_recorded: String, // decimal text: sum of ledger entries' amounts
}

#[derive(Debug, Clone, Serialize)]
pub struct StatementKpi {
    pub kpi: String,
    pub direction: String, // higher | lower
    pub actual: Option<f64>,
    pub target: f64,
    pub attainment: Option<f64>, // None when not applicable
    pub plan_weight: f64,
    pub weight: f64, // weight used after rescaling
    pub weighted_score: f64,
    pub applicable: bool,
    pub missing: bool,
    pub is_final: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatementComponent {
    pub component: String,  // base | kicker:NAME
    pub rule: String,       // e.g. "curve(score of employee)" or "team attainment >= 1.0"
    pub basis: Option<f64>, // score or attainment used
    pub multiplier: f64,
    pub amount: String, // decimal text
}

#[derive(Debug, Clone, Serialize)]
pub struct StatementEntry {
    pub entry_id: String,
    pub posting_period: String,
    pub entry_kind: String, // accrual | adjustment
    pub component: String,
    pub amount: String, // decimal text, may be negative "-250.00"
    pub reason: String,
    pub text: String,
    pub run_id: String,
    pub recorded_at: String, // RFC 3339 UTC
    pub period_final: bool,
}

/// Inline stylesheet: the page must stand alone, so nothing is linked. Plain
/// system fonts and light borders keep it readable on screen and on paper.
const CSS: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #222; background: #fff; margin: 2rem auto; max-width: 980px; padding: 0 1rem; line-height: 1.4; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1.75rem 0 .5rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tfoot td { font-weight: 600; background: #fafafa; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0; }
dl.meta dt { color: #555; }
dl.meta dd { margin: 0; }
.muted, tr.na td { color: #888; }
tr.missing td { color: #a05a00; }
.badge { padding: 0 .4rem; border-radius: 3px; border: 1px solid #bbb; }
.final { background: #eef7ee; }
.provisional { background: #fff6e5; }
.warning { color: #a00; font-weight: 600; border: 1px solid #a00; padding: .4rem .6rem; }
td.explain { min-width: 22rem; }
td.run { font-size: .75rem; color: #555; word-break: break-all; width: 11rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"#;

/// The page: one self-contained HTML document (no external CSS, fonts, scripts or images).
pub fn render_html(s: &Statement) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let title = format!(
        "Bonus statement {} — {} ({})",
        s.period, s.employee_name, s.employee_id
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{}</style>\n</head>\n<body>\n",
        escape(&title),
        CSS
    );
    header(&mut out, s);
    kpi_section(&mut out, s);
    chart_section(&mut out, s);
    payout_section(&mut out, s);
    flags_section(&mut out, s);
    entries_section(&mut out, s);
    out.push_str("</body>\n</html>\n");
    out
}

/// The JSON twin (pretty), same content as the page.
pub fn render_json(s: &Statement) -> String {
    // Only strings, numbers, bools, options and vectors: serialization cannot fail
    // (serde_json writes non-finite floats as null rather than erroring).
    serde_json::to_string_pretty(s).expect("Statement always serializes to JSON")
}

/// HTML-escapes text so names, rules and free-text reasons can never inject markup.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Scores, attainments and weights: four decimals, as the scorecard computes them.
fn fmt4(v: f64) -> String {
    format!("{v:.4}")
}

/// KPI actuals/targets are often counts; show them without noise decimals when integral.
fn fmt_value(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        if v == 0.0 {
            "0".to_string()
        } else {
            format!("{v:.0}")
        }
    } else {
        fmt4(v)
    }
}

/// Attainment cell text; "missing" wins over "n/a" because it explains why the KPI dropped out.
fn attainment_text(k: &StatementKpi) -> String {
    if k.missing {
        "missing".to_string()
    } else if !k.applicable {
        "n/a".to_string()
    } else {
        k.attainment.map_or_else(|| "—".to_string(), fmt4)
    }
}

/// Totals are decimal text; "4062.5" and "4062.50" are the same money, so compare numerically.
fn totals_match(a: &str, b: &str) -> bool {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() < 0.005,
        _ => a.trim() == b.trim(),
    }
}

/// One `<dt>/<dd>` pair; `value_html` must already be escaped.
fn meta_row(out: &mut String, label: &str, value_html: &str) {
    let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(label), value_html);
}

fn header(out: &mut String, s: &Statement) {
    let _ = write!(
        out,
        "<header>\n<h1>Bonus statement {}</h1>\n<p><strong>{}</strong> ({})</p>\n<dl class=\"meta\">\n",
        escape(&s.period),
        escape(&s.employee_name),
        escape(&s.employee_id)
    );
    let plain = [
        ("Team", &s.team),
        ("Role", &s.role),
        ("Period", &s.period),
        ("Plan", &s.plan),
        ("As of", &s.as_of),
    ];
    for (label, value) in plain {
        meta_row(out, label, &escape(value));
    }
    meta_row(out, "Run", &format!("<code>{}</code>", escape(&s.run_id)));
    let status = if s.period_final {
        "<span class=\"badge final\">final</span>"
    } else {
        "<span class=\"badge provisional\">provisional: KPIs can still change</span>"
    };
    meta_row(out, "Month", status);
    out.push_str("</dl>\n</header>\n");
}

fn kpi_section(out: &mut String, s: &Statement) {
    out.push_str(
        "<section id=\"kpis\">\n<h2>KPIs</h2>\n<table>\n<thead><tr><th>KPI</th><th>Direction</th>\
         <th class=\"num\">Actual</th><th class=\"num\">Target</th><th class=\"num\">Attainment</th>\
         <th class=\"num\">Plan weight</th><th class=\"num\">Weight used</th>\
         <th class=\"num\">Weighted score</th></tr></thead>\n<tbody>\n",
    );
    for k in &s.kpis {
        kpi_row(out, k);
    }
    if s.kpis.is_empty() {
        out.push_str("<tr><td colspan=\"8\" class=\"muted\">no KPIs</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    let provisional = if s.score_final {
        ""
    } else {
        " <span class=\"muted\">(provisional)</span>"
    };
    let _ = write!(
        out,
        "<p>Total score <strong id=\"score\">{}</strong>{} — scored at level <code>{}</code> \
         on <code>{}</code></p>\n</section>\n",
        fmt4(s.score),
        provisional,
        escape(&s.level),
        escape(&s.entity_id)
    );
}

fn kpi_row(out: &mut String, k: &StatementKpi) {
    let class = if k.missing {
        " class=\"missing\""
    } else if !k.applicable {
        " class=\"na\""
    } else {
        ""
    };
    let actual = k.actual.map_or_else(|| "—".to_string(), fmt_value);
    let provisional = if k.is_final {
        ""
    } else {
        " <span class=\"muted\">(provisional)</span>"
    };
    let _ = writeln!(
        out,
        "<tr data-kpi=\"{}\"{}><td>{}</td><td>{}</td><td class=\"num\">{}{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
        escape(&k.kpi),
        class,
        escape(&k.kpi),
        escape(&k.direction),
        actual,
        provisional,
        fmt_value(k.target),
        attainment_text(k),
        fmt4(k.plan_weight),
        fmt4(k.weight),
        fmt4(k.weighted_score)
    );
}

/// Chart geometry (px). Bars start after a label column and leave room on the
/// right for the numeric label, so everything fits in the 560px width.
const CHART_W: f64 = 560.0;
const LABEL_RIGHT: f64 = 170.0;
const BAR_X: f64 = 180.0;
const BAR_MAX_W: f64 = 320.0;
const ROW_H: f64 = 26.0;
const CHART_TOP: f64 = 22.0;
const LABEL_CHARS: usize = 24;

/// Scale end: at least 1.5 so the target line never sits at the edge, wider if a KPI overshoots.
fn chart_scale(kpis: &[StatementKpi]) -> f64 {
    kpis.iter()
        .filter(|k| k.applicable)
        .filter_map(|k| k.attainment)
        .filter(|a| a.is_finite())
        .fold(1.5, f64::max)
}

/// Long KPI ids would overrun the label column; the full id stays in the row's `<title>`.
fn short_label(s: &str) -> String {
    if s.chars().count() <= LABEL_CHARS {
        return s.to_string();
    }
    let mut t: String = s.chars().take(LABEL_CHARS - 1).collect();
    t.push('…');
    t
}

fn chart_section(out: &mut String, s: &Statement) {
    let scale = chart_scale(&s.kpis);
    let rows = s.kpis.len().max(1) as f64;
    let height = CHART_TOP + rows * ROW_H + 8.0;
    let summary: Vec<String> = s
        .kpis
        .iter()
        .map(|k| format!("{} {}", k.kpi, attainment_text(k)))
        .collect();
    let aria = format!("Attainment per KPI (target 1.0): {}", summary.join(", "));
    let _ = write!(
        out,
        "<section id=\"chart\">\n<h2>Attainment per KPI</h2>\n\
         <svg id=\"attainment-chart\" role=\"img\" aria-label=\"{}\" width=\"{CHART_W:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {CHART_W:.0} {height:.0}\" font-size=\"12\" font-family=\"system-ui, sans-serif\">\n\
         <title>Attainment per KPI; dashed line = target 1.0</title>\n",
        escape(&aria)
    );
    let target_x = BAR_X + BAR_MAX_W / scale;
    let _ = write!(
        out,
        "<line x1=\"{target_x:.1}\" y1=\"{:.1}\" x2=\"{target_x:.1}\" y2=\"{:.1}\" \
         stroke=\"#444\" stroke-width=\"1\" stroke-dasharray=\"4 3\"/>\n\
         <text x=\"{target_x:.1}\" y=\"12\" text-anchor=\"middle\" fill=\"#444\">target</text>\n",
        CHART_TOP - 4.0,
        height - 4.0
    );
    for (i, k) in s.kpis.iter().enumerate() {
        chart_bar(out, k, CHART_TOP + i as f64 * ROW_H, scale);
    }
    if s.kpis.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"{BAR_X:.0}\" y=\"{:.1}\" fill=\"#888\">no KPIs</text>",
            CHART_TOP + 17.0
        );
    }
    out.push_str("</svg>\n</section>\n");
}

/// One KPI row of the chart: label, bar (if applicable) and value label.
fn chart_bar(out: &mut String, k: &StatementKpi, top: f64, scale: f64) {
    let text_y = top + 17.0;
    let _ = write!(
        out,
        "<g data-kpi=\"{}\"><title>{}: {}</title>\
         <text x=\"{LABEL_RIGHT:.0}\" y=\"{text_y:.1}\" text-anchor=\"end\" fill=\"#222\">{}</text>",
        escape(&k.kpi),
        escape(&k.kpi),
        attainment_text(k),
        escape(&short_label(&k.kpi))
    );
    match k.attainment.filter(|_| k.applicable && !k.missing) {
        Some(a) => {
            let clamped = if a.is_finite() {
                a.clamp(0.0, scale)
            } else {
                0.0
            };
            let w = BAR_MAX_W * clamped / scale;
            let fill = if a >= 1.0 { "#3c8d5a" } else { "#4a6fa5" };
            let _ = write!(
                out,
                "<rect x=\"{BAR_X:.0}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"16\" fill=\"{fill}\"/>\
                 <text x=\"{:.1}\" y=\"{text_y:.1}\" fill=\"#222\">{}</text>",
                top + 5.0,
                BAR_X + w + 4.0,
                fmt4(a)
            );
        }
        None => {
            let _ = write!(
                out,
                "<text x=\"{BAR_X:.0}\" y=\"{text_y:.1}\" fill=\"#888\">{}</text>",
                attainment_text(k)
            );
        }
    }
    out.push_str("</g>\n");
}

fn payout_section(out: &mut String, s: &Statement) {
    out.push_str("<section id=\"payout\">\n<h2>Payout</h2>\n<dl class=\"meta\">\n");
    let target = format!(
        "{} {}",
        escape(&s.monthly_bonus_target),
        escape(&s.currency)
    );
    meta_row(
        out,
        "Monthly bonus target",
        &format!("<span class=\"num\">{target}</span>"),
    );
    let days = format!(
        "{} of {} days (proration {})",
        s.active_days,
        s.month_days,
        fmt4(s.proration)
    );
    meta_row(out, "Active days", &days);
    meta_row(
        out,
        "Curve point",
        &format!("score {} → multiplier {}", fmt4(s.score), s.multiplier),
    );
    let points: Vec<String> = s.curve.iter().map(|(x, y)| format!("{x} → {y}")).collect();
    let curve = if points.is_empty() {
        "none".to_string()
    } else {
        points.join("; ")
    };
    meta_row(
        out,
        "Payout curve",
        &format!("<span class=\"muted\">score → multiplier:</span> {curve}"),
    );
    out.push_str(
        "</dl>\n<table>\n<thead><tr><th>Component</th><th>Rule</th><th class=\"num\">Basis</th>\
         <th class=\"num\">Multiplier</th><th class=\"num\">Amount</th></tr></thead>\n<tbody>\n",
    );
    for c in &s.components {
        let basis = c.basis.map_or_else(|| "—".to_string(), fmt4);
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td></tr>",
            escape(&c.component),
            escape(&c.rule),
            basis,
            c.multiplier,
            escape(&c.amount)
        );
    }
    if s.components.is_empty() {
        out.push_str("<tr><td colspan=\"5\" class=\"muted\">no components</td></tr>\n");
    }
    let _ = write!(
        out,
        "</tbody>\n<tfoot><tr><td colspan=\"4\">Total computed ({})</td>\
         <td class=\"num\" id=\"total-computed\">{}</td></tr></tfoot>\n</table>\n</section>\n",
        escape(&s.currency),
        escape(&s.total_computed)
    );
}

fn flags_section(out: &mut String, s: &Statement) {
    out.push_str("<section id=\"flags\">\n<h2>Flags</h2>\n");
    if s.flags.is_empty() {
        out.push_str("<p class=\"muted\">none</p>\n");
    } else {
        out.push_str("<ul>\n");
        for f in &s.flags {
            let _ = writeln!(out, "<li><code>{}</code></li>", escape(f));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

fn entries_section(out: &mut String, s: &Statement) {
    out.push_str(
        "<section id=\"ledger\">\n<h2>Ledger entries</h2>\n<table>\n<thead><tr><th>Posting period</th>\
         <th>Kind</th><th>Component</th><th class=\"num\">Amount</th><th>Reason</th><th>Explanation</th>\
         <th>Run, recorded at</th><th>Final?</th></tr></thead>\n<tbody>\n",
    );
    for e in &s.entries {
        let _ = writeln!(
            out,
            "<tr data-entry=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td>\
             <td class=\"explain\">{}</td><td class=\"run\"><code>{}</code><br>{}</td><td>{}</td></tr>",
            escape(&e.entry_id),
            escape(&e.posting_period),
            escape(&e.entry_kind),
            escape(&e.component),
            escape(&e.amount),
            escape(&e.reason),
            escape(&e.text),
            escape(&e.run_id),
            escape(&e.recorded_at),
            if e.period_final { "yes" } else { "no" }
        );
    }
    if s.entries.is_empty() {
        out.push_str("<tr><td colspan=\"8\" class=\"muted\">no entries</td></tr>\n");
    }
    let _ = write!(
        out,
        "</tbody>\n<tfoot><tr><td colspan=\"3\">Total recorded ({})</td>\
         <td class=\"num\" id=\"total-recorded\">{}</td><td colspan=\"4\"></td></tr></tfoot>\n</table>\n",
        escape(&s.currency),
        escape(&s.total_recorded)
    );
    // The ledger should always sum to the computed total; if not, say so loudly.
    if !totals_match(&s.total_recorded, &s.total_computed) {
        let _ = writeln!(
            out,
            "<p class=\"warning\" role=\"alert\">Warning: total recorded {} differs from total computed {}.</p>",
            escape(&s.total_recorded),
            escape(&s.total_computed)
        );
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kpi(
        id: &str,
        dir: &str,
        actual: Option<f64>,
        target: f64,
        att: Option<f64>,
        w: (f64, f64),
    ) -> StatementKpi {
        let applicable = att.is_some();
        StatementKpi {
            kpi: id.into(),
            direction: dir.into(),
            actual,
            target,
            attainment: att,
            plan_weight: w.0,
            weight: w.1,
            weighted_score: att.unwrap_or(0.0) * w.1,
            applicable,
            missing: false,
            is_final: true,
        }
    }

    /// Small but consistent: 10000.00 target, curve multiplier 0.40625 at score 0.7625.
    fn sample() -> Statement {
        Statement {
            period: "2026-04".into(),
            employee_id: "E1".into(),
            employee_name: "Li Wei".into(),
            team: "Growth".into(),
            role: "marketer".into(),
            plan: "marketing-2026".into(),
            level: "employee".into(),
            entity_id: "E1".into(),
            score: 0.7625,
            score_final: true,
            multiplier: 0.40625,
            curve: vec![(0.6, 0.0), (1.0, 1.0), (1.5, 1.5)],
            active_days: 30,
            month_days: 30,
            proration: 1.0,
            monthly_bonus_target: "10000.00".into(),
            currency: "CNY".into(),
            flags: vec![],
            period_final: true,
            as_of: "2026-06-30".into(),
            run_id: "run-1".into(),
            kpis: vec![
                kpi(
                    "leads",
                    "higher",
                    Some(650.0),
                    800.0,
                    Some(0.8125),
                    (0.6, 1.0),
                ),
                kpi("cac", "lower", None, 120.0, None, (0.4, 0.0)),
            ],
            components: vec![StatementComponent {
                component: "base".into(),
                rule: "curve(score of employee)".into(),
                basis: Some(0.7625),
                multiplier: 0.40625,
                amount: "4062.50".into(),
            }],
            entries: vec![StatementEntry {
                entry_id: "L-0001".into(),
                posting_period: "2026-04".into(),
                entry_kind: "accrual".into(),
                component: "base".into(),
                amount: "4062.50".into(),
                reason: "monthly accrual".into(),
                text: "base bonus 2026-04".into(),
                run_id: "run-1".into(),
                recorded_at: "2026-06-30T12:00:00Z".into(),
                period_final: true,
            }],
            total_computed: "4062.50".into(),
            total_recorded: "4062.50".into(),
        }
    }

    #[test]
    fn text_values_are_html_escaped() {
        let mut s = sample();
        s.employee_name = "<b>&\"x'".into();
        let html = render_html(&s);
        assert!(html.contains("&lt;b&gt;&amp;&quot;x&#39;"));
        assert!(!html.contains("<b>&\"x'"));
    }

    #[test]
    fn page_shows_score_kpis_amounts_and_is_self_contained() {
        let html = render_html(&sample());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("id=\"score\">0.7625<"));
        // Each KPI appears once in the table and once in the chart.
        assert_eq!(html.matches("data-kpi=\"leads\"").count(), 2);
        assert_eq!(html.matches("data-kpi=\"cac\"").count(), 2);
        assert!(html.contains("n/a"));
        assert!(html.contains("4062.50"));
        assert!(html.contains("id=\"attainment-chart\""));
        assert!(!html.contains("class=\"warning\""));
        for banned in ["http://", "https://", "<script"] {
            assert!(!html.contains(banned), "page must not contain {banned}");
        }
    }

    #[test]
    fn json_twin_round_trips() {
        let json = render_json(&sample());
        let v: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(v["components"][0]["amount"], "4062.50");
        assert_eq!(v["kpis"].as_array().unwrap().len(), 2);
    }
}
