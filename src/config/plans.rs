//! Config: the KPI catalogue and the effective-dated plans that weight KPIs into
//! scores and money (bonus.md, plans.md). A plan that breaks the rules of bonus.md is
//! refused here, by name and rule, before any data is read.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde::Deserialize;

use super::diagnostics::YamlReporter;

/// Whether more or less of a KPI is better.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Higher,
    Lower,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Higher => "higher",
            Direction::Lower => "lower",
        }
    }
}

/// The levels a scorecard is computed at.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Employee,
    Team,
    Company,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Employee, Level::Team, Level::Company];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Employee => "employee",
            Level::Team => "team",
            Level::Company => "company",
        }
    }
}

/// One KPI of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Kpi {
    pub id: String,
    pub direction: Direction,
    /// A ratio (numerator over denominator) rather than a plain count or sum.
    pub ratio: bool,
    /// The levels it is computed at.
    pub levels: Vec<Level>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKpi {
    direction: Direction,
    #[serde(default)]
    ratio: bool,
    #[serde(default)]
    levels: Option<Vec<Level>>,
    #[serde(default)]
    description: Option<String>,
}

/// A plan: for the months it is in force, which KPIs count, how much, and how they
/// turn into money.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    pub effective_from: NaiveDate,
    pub effective_lead: EffectiveLead,
    pub attainment_cap: f64,
    /// (score, multiplier) points, increasing in score.
    pub payout_curve: Vec<(f64, f64)>,
    /// Which level's score pays each role.
    pub roles: BTreeMap<String, Level>,
    pub scored: Vec<ScoredKpi>,
    pub kickers: Vec<Kicker>,
    pub flags: Vec<Flag>,
}

/// The effective-lead rule's parameters (kpis.md).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectiveLead {
    #[serde(default = "default_min_company_size")]
    pub min_company_size: i64,
    #[serde(default = "default_contact_roles")]
    pub contact_roles: Vec<String>,
    #[serde(default = "default_industries")]
    pub industries: Vec<String>,
    #[serde(default)]
    pub need_window_days: Option<i64>,
}

impl Default for EffectiveLead {
    fn default() -> Self {
        Self {
            min_company_size: default_min_company_size(),
            contact_roles: default_contact_roles(),
            industries: default_industries(),
            need_window_days: None,
        }
    }
}

fn default_min_company_size() -> i64 {
    50
}

fn default_contact_roles() -> Vec<String> {
    vec!["hr_head".into()]
}

fn default_industries() -> Vec<String> {
    vec!["internet".into(), "tech".into()]
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoredKpi {
    pub kpi: String,
    pub weight: f64,
    pub targets: Targets,
    /// Restates the catalogue's direction, as plans.md's tables do; must agree with it.
    #[serde(default)]
    pub direction: Option<Direction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    pub employee: f64,
    pub team: f64,
    pub company: f64,
}

impl Targets {
    pub fn at(&self, level: Level) -> f64 {
        match level {
            Level::Employee => self.employee,
            Level::Team => self.team,
            Level::Company => self.company,
        }
    }
}

/// Who earns a kicker: the employee on their own attainment, or every member of a team
/// on the team's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KickerScope {
    Individual,
    Team,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Kicker {
    pub name: String,
    pub kpi: String,
    pub scope: KickerScope,
    pub target: f64,
    pub threshold: f64,
    /// Share of the monthly bonus target paid when earned.
    pub share: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKicker {
    kpi: String,
    scope: KickerScope,
    target: f64,
    #[serde(default = "one")]
    threshold: f64,
    share: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    pub name: String,
    pub kpi: String,
    pub target: f64,
    pub threshold: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlag {
    kpi: String,
    target: f64,
    #[serde(default = "one")]
    threshold: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    effective_from: String,
    #[serde(default)]
    effective_lead: Option<EffectiveLead>,
    #[serde(default)]
    attainment_cap: Option<f64>,
    #[serde(default)]
    payout_curve: Option<Vec<(f64, f64)>>,
    #[serde(default)]
    roles: Option<BTreeMap<String, Level>>,
    scored: Vec<ScoredKpi>,
    #[serde(default)]
    kickers: BTreeMap<String, RawKicker>,
    #[serde(default)]
    flags: BTreeMap<String, RawFlag>,
}

/// bonus.md's defaults.
pub const DEFAULT_CAP: f64 = 1.5;
pub const DEFAULT_CURVE: [(f64, f64); 4] = [(0.6, 0.0), (0.8, 0.5), (1.0, 1.0), (1.5, 1.5)];
const WEIGHT_TOLERANCE: f64 = 1e-9;

/// The KPI catalogue, in declared order.
pub fn kpis(raw: serde_yaml_ng::Mapping, report: &mut YamlReporter) -> Vec<Kpi> {
    let mut out = Vec::new();
    for (key, value) in raw {
        let Some(id) = key.as_str().map(str::to_string) else {
            report.error("kpis", "KPI ids are strings");
            continue;
        };
        let path = format!("kpis.{id}");
        super::check::check_identifier(&id, &path, report);
        let Some(raw) = super::check::typed::<RawKpi>(value, &path, report) else {
            continue;
        };
        let levels = raw.levels.unwrap_or_else(|| Level::ALL.to_vec());
        if levels.is_empty() {
            report.error(
                format!("{path}.levels"),
                "a KPI is computed at one level at least",
            );
        }
        out.push(Kpi {
            id,
            direction: raw.direction,
            ratio: raw.ratio,
            levels,
            description: raw.description,
        });
    }
    out
}

/// The plans, sorted by `effective_from`, each checked against bonus.md's rules.
pub fn plans(raw: serde_yaml_ng::Mapping, kpis: &[Kpi], report: &mut YamlReporter) -> Vec<Plan> {
    let mut out: Vec<Plan> = Vec::new();
    for (key, value) in raw {
        let Some(name) = key.as_str().map(str::to_string) else {
            report.error("plans", "plan names are strings");
            continue;
        };
        let path = format!("plans.{name}");
        super::check::check_identifier(&name, &path, report);
        let Some(raw) = super::check::typed::<RawPlan>(value, &path, report) else {
            continue;
        };
        if let Some(plan) = plan(name, raw, &path, kpis, report) {
            out.push(plan);
        }
    }
    out.sort_by_key(|p| p.effective_from);
    for pair in out.windows(2) {
        if pair[0].effective_from == pair[1].effective_from {
            let key = format!("plans.{}.effective_from", pair[1].name);
            report.error(
                key,
                format!(
                    "plan `{}` starts the same day as plan `{}`",
                    pair[1].name, pair[0].name
                ),
            );
        }
    }
    out
}

// `!(x > 0.0)` on purpose: NaN (`.nan` in YAML) fails the check too.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn plan(
    name: String,
    raw: RawPlan,
    path: &str,
    kpis: &[Kpi],
    report: &mut YamlReporter,
) -> Option<Plan> {
    let mut refuse =
        |key: String, rule: String| report.error(key, format!("plan `{name}`: {rule}"));

    let effective_from = match NaiveDate::parse_from_str(&raw.effective_from, "%Y-%m-%d") {
        Ok(date) if date.format("%d").to_string() == "01" => Some(date),
        Ok(_) => {
            refuse(
                format!("{path}.effective_from"),
                "a plan takes effect on the first day of a month".into(),
            );
            None
        }
        Err(_) => {
            refuse(
                format!("{path}.effective_from"),
                format!("`{}` is not a date YYYY-MM-DD", raw.effective_from),
            );
            None
        }
    };

    let scored = &raw.scored;
    if !(3..=5).contains(&scored.len()) {
        refuse(
            format!("{path}.scored"),
            format!("scores {} KPIs; a plan scores 3 to 5", scored.len()),
        );
    }
    let mut seen = HashSet::new();
    for (i, s) in scored.iter().enumerate() {
        let key = format!("{path}.scored[{i}]");
        match kpis.iter().find(|k| k.id == s.kpi) {
            None => refuse(
                format!("{key}.kpi"),
                format!("`{}` is not a KPI of the catalogue (kpis:)", s.kpi),
            ),
            Some(kpi) => {
                if s.direction.is_some_and(|d| d != kpi.direction) {
                    refuse(
                        format!("{key}.direction"),
                        format!("`{}` is a {}-is-better KPI", s.kpi, kpi.direction.as_str()),
                    );
                }
            }
        }
        if !seen.insert(&s.kpi) {
            refuse(format!("{key}.kpi"), format!("`{}` is scored twice", s.kpi));
        }
        if !(s.weight > 0.0) {
            refuse(
                format!("{key}.weight"),
                format!("weight {} is not positive", s.weight),
            );
        }
        for level in Level::ALL {
            let target = s.targets.at(level);
            if !(target > 0.0) {
                refuse(
                    format!("{key}.targets.{}", level.as_str()),
                    format!("target {target} is not above 0"),
                );
            }
        }
    }
    let total: f64 = scored.iter().map(|s| s.weight).sum();
    if (total - 1.0).abs() > WEIGHT_TOLERANCE {
        refuse(
            format!("{path}.scored"),
            format!("weights sum to {total}, not 1"),
        );
    }

    let attainment_cap = raw.attainment_cap.unwrap_or(DEFAULT_CAP);
    if !(attainment_cap > 0.0) {
        refuse(
            format!("{path}.attainment_cap"),
            format!("cap {attainment_cap} is not positive"),
        );
    }
    let payout_curve = raw.payout_curve.unwrap_or_else(|| DEFAULT_CURVE.to_vec());
    if payout_curve.is_empty() || payout_curve.windows(2).any(|w| !(w[1].0 > w[0].0)) {
        refuse(
            format!("{path}.payout_curve"),
            "the curve's points must increase in score".into(),
        );
    }

    let roles = raw.roles.unwrap_or_else(|| {
        BTreeMap::from([
            ("marketer".to_string(), Level::Employee),
            ("team_lead".to_string(), Level::Team),
            ("head".to_string(), Level::Company),
        ])
    });

    let known = |kpi: &str| kpis.iter().any(|k| k.id == kpi);
    let mut kickers = Vec::new();
    for (kicker, k) in raw.kickers {
        let key = format!("{path}.kickers.{kicker}");
        if !known(&k.kpi) {
            refuse(
                format!("{key}.kpi"),
                format!("`{}` is not a KPI of the catalogue (kpis:)", k.kpi),
            );
        }
        if !(k.target > 0.0) {
            refuse(
                format!("{key}.target"),
                format!("target {} is not above 0", k.target),
            );
        }
        if !(k.share >= 0.0) {
            refuse(
                format!("{key}.share"),
                format!("share {} is negative", k.share),
            );
        }
        kickers.push(Kicker {
            name: kicker,
            kpi: k.kpi,
            scope: k.scope,
            target: k.target,
            threshold: k.threshold,
            share: k.share,
        });
    }
    let mut flags = Vec::new();
    for (flag, f) in raw.flags {
        let key = format!("{path}.flags.{flag}");
        if !known(&f.kpi) {
            refuse(
                format!("{key}.kpi"),
                format!("`{}` is not a KPI of the catalogue (kpis:)", f.kpi),
            );
        }
        if !(f.target > 0.0) {
            refuse(
                format!("{key}.target"),
                format!("target {} is not above 0", f.target),
            );
        }
        flags.push(Flag {
            name: flag,
            kpi: f.kpi,
            target: f.target,
            threshold: f.threshold,
        });
    }

    Some(Plan {
        name,
        effective_from: effective_from?,
        effective_lead: raw.effective_lead.unwrap_or_default(),
        attainment_cap,
        payout_curve,
        roles,
        scored: raw.scored,
        kickers,
        flags,
    })
}

/// The plan in force for the month starting `month_start`: the latest one whose
/// `effective_from` is on or before it.
pub fn in_force(plans: &[Plan], month_start: NaiveDate) -> Option<&Plan> {
    plans.iter().rev().find(|p| p.effective_from <= month_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_named(name: &str, from: (i32, u32)) -> Plan {
        Plan {
            name: name.into(),
            effective_from: NaiveDate::from_ymd_opt(from.0, from.1, 1).unwrap(),
            effective_lead: EffectiveLead::default(),
            attainment_cap: DEFAULT_CAP,
            payout_curve: DEFAULT_CURVE.to_vec(),
            roles: BTreeMap::new(),
            scored: Vec::new(),
            kickers: Vec::new(),
            flags: Vec::new(),
        }
    }

    #[test]
    fn the_latest_plan_started_by_the_month_is_in_force() {
        let plans = [
            plan_named("launch", (2026, 1)),
            plan_named("focus", (2026, 4)),
        ];
        let month = |m| NaiveDate::from_ymd_opt(2026, m, 1).unwrap();
        assert_eq!(
            in_force(&plans, NaiveDate::from_ymd_opt(2025, 12, 1).unwrap()),
            None
        );
        assert_eq!(in_force(&plans, month(1)).unwrap().name, "launch");
        assert_eq!(in_force(&plans, month(3)).unwrap().name, "launch");
        assert_eq!(in_force(&plans, month(4)).unwrap().name, "focus");
        assert_eq!(in_force(&plans, month(12)).unwrap().name, "focus");
    }
}
