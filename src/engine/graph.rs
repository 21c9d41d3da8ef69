//! Engine, step 2: the view graph. Orders views so that each comes after everything it
//! reads, and reports unknown tables and cycles by name.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::Diagnostics;

use super::views::{View, relation_position};

/// Views in an order where every view comes after the views it reads.
#[derive(Debug)]
pub struct ViewGraph {
    pub views: Vec<View>,
}

impl ViewGraph {
    /// Orders `views` over the tables in `sources`. Reports a view named like a source, a
    /// read of a table that is neither, and every cycle.
    pub fn try_new(views: Vec<View>, sources: &BTreeSet<String>) -> Result<Self, Diagnostics> {
        let mut problems = Diagnostics::default();
        let names: BTreeSet<String> = views.iter().map(|v| v.name.clone()).collect();
        for view in &views {
            if sources.contains(&view.name) {
                problems.push(view.diagnostic(
                    None,
                    format!("view `{}` has the name of a source", view.name),
                ));
            }
            for table in &view.reads {
                if !sources.contains(table) && !names.contains(table) {
                    let position = relation_position(&view.statement, table);
                    problems.push(view.diagnostic(
                        position,
                        format!("unknown table `{table}`: not a source of the pipeline nor a view"),
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        order(views)
    }

    pub fn view(&self, name: &str) -> Option<&View> {
        self.views.iter().find(|v| v.name == name)
    }

    /// Every table `name` depends on, directly or not, sources included.
    pub fn upstream(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![name.to_string()];
        while let Some(next) = stack.pop() {
            if let Some(view) = self.view(&next) {
                for table in &view.reads {
                    if seen.insert(table.clone()) {
                        stack.push(table.clone());
                    }
                }
            }
        }
        seen
    }
}

/// Kahn's algorithm, taking ready views by name so the order is stable.
fn order(views: Vec<View>) -> Result<ViewGraph, Diagnostics> {
    let index: HashMap<String, usize> = views
        .iter()
        .enumerate()
        .map(|(i, v)| (v.name.clone(), i))
        .collect();
    let mut waiting_on: Vec<usize> = vec![0; views.len()];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); views.len()];
    for (i, view) in views.iter().enumerate() {
        for table in &view.reads {
            if let Some(&j) = index.get(table) {
                waiting_on[i] += 1;
                readers[j].push(i);
            }
        }
    }
    let mut ready: BTreeMap<String, usize> = BTreeMap::new();
    for (i, view) in views.iter().enumerate() {
        if waiting_on[i] == 0 {
            ready.insert(view.name.clone(), i);
        }
    }
    let mut ordered = Vec::with_capacity(views.len());
    while let Some((_, i)) = ready.pop_first() {
        ordered.push(i);
        for &reader in &readers[i] {
            waiting_on[reader] -= 1;
            if waiting_on[reader] == 0 {
                ready.insert(views[reader].name.clone(), reader);
            }
        }
    }
    if ordered.len() < views.len() {
        return Err(cycles(&views, &index, &waiting_on));
    }
    let mut slots: Vec<Option<View>> = views.into_iter().map(Some).collect();
    let views = ordered
        .into_iter()
        .map(|i| slots[i].take().expect("each view is ordered once"))
        .collect();
    Ok(ViewGraph { views })
}

/// One diagnostic per cycle among the views that could not be ordered, naming the
/// views of the cycle in the order they read each other.
fn cycles(views: &[View], index: &HashMap<String, usize>, waiting_on: &[usize]) -> Diagnostics {
    let stuck: BTreeSet<usize> = (0..views.len()).filter(|&i| waiting_on[i] > 0).collect();
    let mut reported: BTreeSet<usize> = BTreeSet::new();
    let mut problems = Diagnostics::default();
    for &start in &stuck {
        if reported.contains(&start) {
            continue;
        }
        // Follow reads among stuck views until one repeats: that closes a cycle.
        let mut path = vec![start];
        let mut at = start;
        loop {
            let next = views[at]
                .reads
                .iter()
                .filter_map(|t| index.get(t).copied())
                .find(|j| stuck.contains(j))
                .expect("a view left waiting reads another waiting view");
            if let Some(pos) = path.iter().position(|&p| p == next) {
                let cycle = &path[pos..];
                if cycle.iter().all(|c| !reported.contains(c)) {
                    let mut names: Vec<&str> =
                        cycle.iter().map(|&c| views[c].name.as_str()).collect();
                    names.push(&views[cycle[0]].name);
                    let first = &views[cycle[0]];
                    let position =
                        relation_position(&first.statement, &views[cycle[1 % cycle.len()]].name);
                    problems.push(first.diagnostic(
                        position,
                        format!("views read each other in a cycle: {}", names.join(" -> ")),
                    ));
                }
                reported.extend(path.iter().copied());
                break;
            }
            path.push(next);
            at = next;
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    fn views(files: &[(&str, &str)]) -> Vec<View> {
        let dir = tempfile::tempdir().unwrap();
        for (name, sql) in files {
            std::fs::write(dir.path().join(format!("{name}.sql")), sql).unwrap();
        }
        let (views, problems) =
            super::super::views::load_views(dir.path(), &SessionContext::new().state());
        assert!(problems.is_empty(), "{problems}");
        views
    }

    fn sources() -> BTreeSet<String> {
        ["leads", "spend"].into_iter().map(String::from).collect()
    }

    #[test]
    fn orders_views_after_what_they_read() {
        let graph = ViewGraph::try_new(
            views(&[
                (
                    "a_report",
                    "SELECT * FROM b_lead_facts JOIN c_spend_facts USING (d)",
                ),
                ("b_lead_facts", "SELECT * FROM leads"),
                (
                    "c_spend_facts",
                    "SELECT * FROM spend JOIN b_lead_facts USING (d)",
                ),
            ]),
            &sources(),
        )
        .unwrap();
        let order: Vec<_> = graph.views.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(order, ["b_lead_facts", "c_spend_facts", "a_report"]);
        let upstream: Vec<_> = graph.upstream("a_report").into_iter().collect();
        assert_eq!(
            upstream,
            ["b_lead_facts", "c_spend_facts", "leads", "spend"]
        );
    }

    #[test]
    fn a_cycle_is_reported_with_its_members() {
        let problems = ViewGraph::try_new(
            views(&[
                ("x", "SELECT * FROM y"),
                ("y", "SELECT * FROM\n  z"),
                ("z", "SELECT * FROM x"),
                ("ok", "SELECT * FROM leads"),
            ]),
            &sources(),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 1, "{problems}");
        let text = problems.to_string();
        assert!(text.contains("cycle: x -> y -> z -> x"), "{text}");
        assert!(text.contains("x.sql:1:15"), "{text}");
    }

    #[test]
    fn a_view_reading_itself_is_a_cycle() {
        let problems =
            ViewGraph::try_new(views(&[("me", "SELECT * FROM me")]), &sources()).unwrap_err();
        assert!(
            problems.to_string().contains("cycle: me -> me"),
            "{problems}"
        );
    }

    #[test]
    fn unknown_tables_are_named_with_their_position() {
        let problems = ViewGraph::try_new(
            views(&[
                ("v", "SELECT *\nFROM leads JOIN lead_fact USING (id)"),
                ("w", "SELECT * FROM nothing"),
            ]),
            &sources(),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems}");
        let text = problems.to_string();
        assert!(
            text.contains("v.sql:2:17: unknown table `lead_fact`"),
            "{text}"
        );
        assert!(
            text.contains("w.sql:1:15: unknown table `nothing`"),
            "{text}"
        );
    }
}
