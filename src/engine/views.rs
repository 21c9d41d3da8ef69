//! Engine, step 1: the SQL views. One `.sql` file per view, named after the file; the
//! tables a view reads are found in its SQL, and its `$name` parameters are replaced by
//! typed literals in the parsed statement, never by editing SQL text.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use datafusion::common::{DataFusionError, ScalarValue, TableReference};
use datafusion::execution::SessionState;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    self, Expr, Value, visit_expressions, visit_expressions_mut, visit_relations,
};

use datafusion::common::config::Dialect;
use datafusion::sql::sqlparser::tokenizer::Span;

use crate::config::{Diagnostic, Diagnostics, Position, is_identifier};

/// One parsed view.
#[derive(Debug, Clone)]
pub struct View {
    pub name: String,
    pub file: PathBuf,
    pub sql: String,
    pub statement: DFStatement,
    /// Tables (sources or views) the view reads, by name, sorted.
    pub reads: Vec<String>,
    /// `$name` parameters it uses, sorted.
    pub params: Vec<String>,
}

impl View {
    /// A problem in this view's SQL file.
    pub fn diagnostic(&self, position: Option<Position>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            position,
            key: None,
            message: message.into(),
        }
    }
}

/// Reads and parses every `.sql` file of `dir`, sorted by name.
pub fn load_views(dir: &Path, state: &SessionState) -> (Vec<View>, Diagnostics) {
    let mut diagnostics = Diagnostics::default();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect(),
        Err(e) => {
            diagnostics.push(file_problem(
                dir,
                None,
                format!("cannot list the views folder: {e}"),
            ));
            return (Vec::new(), diagnostics);
        }
    };
    files.sort();
    let mut views = Vec::new();
    for file in files {
        match parse_view(&file, state) {
            Ok(view) => views.push(view),
            Err(problem) => diagnostics.push(problem),
        }
    }
    (views, diagnostics)
}

fn parse_view(file: &Path, state: &SessionState) -> Result<View, Diagnostic> {
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    if !is_identifier(&name) {
        return Err(file_problem(
            file,
            None,
            format!("`{name}` is not a lower-case identifier: a view is named after its file"),
        ));
    }
    let sql = std::fs::read_to_string(file)
        .map_err(|e| file_problem(file, None, format!("cannot read the view: {e}")))?;
    parse_sql(name, file, sql, state)
}

/// Parses the SQL of view `name`, written in `file`.
pub fn parse_sql(
    name: String,
    file: &Path,
    sql: String,
    state: &SessionState,
) -> Result<View, Diagnostic> {
    let statement = state
        .sql_to_statement(&sql, &Dialect::Generic)
        .map_err(|e| file_problem(file, error_position(&e), sql_error_message(&e)))?;
    let DFStatement::Statement(inner) = &statement else {
        return Err(file_problem(file, None, "a view is one SELECT query"));
    };
    if !matches!(inner.as_ref(), ast::Statement::Query(_)) {
        return Err(file_problem(file, None, "a view is one SELECT query"));
    }
    let reads = table_references(&statement, file)?;
    let params = placeholders(inner)
        .into_iter()
        .map(|(name, _)| name)
        .collect::<BTreeSet<_>>();
    Ok(View {
        name,
        file: file.to_path_buf(),
        sql,
        statement,
        reads,
        params: params.into_iter().collect(),
    })
}

/// The tables a statement reads, without its CTE names.
fn table_references(statement: &DFStatement, file: &Path) -> Result<Vec<String>, Diagnostic> {
    let (relations, _ctes) = datafusion::sql::resolve::resolve_table_references(statement, true)
        .map_err(|e| file_problem(file, None, sql_error_message(&e)))?;
    let mut reads = BTreeSet::new();
    for relation in relations {
        match relation {
            TableReference::Bare { table } => {
                reads.insert(table.to_string());
            }
            other => {
                return Err(file_problem(
                    file,
                    relation_position(statement, other.table()),
                    format!("`{other}`: views read sources and views by their bare name"),
                ));
            }
        }
    }
    Ok(reads.into_iter().collect())
}

/// Where `table` is first named in the statement, for error messages.
pub fn relation_position(statement: &DFStatement, table: &str) -> Option<Position> {
    let DFStatement::Statement(inner) = statement else {
        return None;
    };
    let found = visit_relations(inner.as_ref(), |name: &ast::ObjectName| {
        let last = name.0.last().and_then(|part| part.as_ident());
        match last {
            Some(ident) if ident.value.eq_ignore_ascii_case(table) => {
                ControlFlow::Break(span_position(ident.span))
            }
            _ => ControlFlow::Continue(()),
        }
    });
    match found {
        ControlFlow::Break(position) => position,
        ControlFlow::Continue(()) => None,
    }
}

/// Every `$name` placeholder with where it is written.
fn placeholders(statement: &ast::Statement) -> Vec<(String, Option<Position>)> {
    let mut found = Vec::new();
    let _ = visit_expressions(statement, |expr: &Expr| {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(text) = &value.value
        {
            found.push((
                text.trim_start_matches(['$', ':', '@', '?']).to_string(),
                span_position(value.span),
            ));
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// Replaces every `$name` of the view's statement by the typed literal of `lookup(name)`,
/// and reports the names it does not know.
pub fn bind_params(
    view: &View,
    state: &SessionState,
    lookup: &dyn Fn(&str) -> Option<ScalarValue>,
) -> Result<DFStatement, Diagnostics> {
    let mut problems = Diagnostics::default();
    let DFStatement::Statement(inner) = &view.statement else {
        return Ok(view.statement.clone());
    };
    for (name, position) in placeholders(inner) {
        if lookup(&name).is_none() {
            problems.push(view.diagnostic(position, format!("unknown parameter `${name}`")));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut statement = inner.as_ref().clone();
    let result = visit_expressions_mut(&mut statement, |expr: &mut Expr| {
        if let Expr::Value(value) = expr
            && let Value::Placeholder(text) = &value.value
        {
            let name = text.trim_start_matches(['$', ':', '@', '?']);
            let scalar = lookup(name).expect("every placeholder was checked above");
            match literal(&scalar, state) {
                Ok(replacement) => *expr = replacement,
                Err(e) => return ControlFlow::Break(e),
            }
        }
        ControlFlow::Continue(())
    });
    if let ControlFlow::Break(message) = result {
        return Err(Diagnostics(vec![view.diagnostic(None, message)]));
    }
    Ok(DFStatement::Statement(Box::new(statement)))
}

/// The SQL AST of a typed literal. Strings become string literal nodes, so no value can
/// be read as SQL. Dates and timestamps are built from text kpipe formats itself.
fn literal(value: &ScalarValue, state: &SessionState) -> Result<Expr, String> {
    let plain = |v: Value| Ok(Expr::Value(v.into()));
    match value {
        ScalarValue::Utf8(Some(s)) => plain(Value::SingleQuotedString(s.clone())),
        ScalarValue::Int64(Some(i)) => plain(Value::Number(i.to_string(), false)),
        ScalarValue::Float64(Some(f)) if f.is_finite() => {
            plain(Value::Number(format!("{f:?}"), false))
        }
        ScalarValue::Boolean(Some(b)) => plain(Value::Boolean(*b)),
        ScalarValue::Date32(Some(_)) | ScalarValue::TimestampMicrosecond(Some(_), _) => {
            let text = match value {
                ScalarValue::TimestampMicrosecond(Some(micros), _) => {
                    chrono::DateTime::from_timestamp_micros(*micros)
                        .ok_or_else(|| format!("internal: {micros} µs is out of range"))?
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                }
                _ => value.to_string(),
            };
            let cast = format!("arrow_cast('{text}', '{}')", value.data_type());
            state
                .sql_to_expr(&cast, &Dialect::Generic)
                .map_err(|e| format!("internal: cannot express parameter {value:?} in SQL: {e}"))
        }
        other => Err(format!(
            "internal: parameter value {other:?} has no SQL literal"
        )),
    }
}

fn span_position(span: Span) -> Option<Position> {
    (span.start.line > 0).then_some(Position {
        line: span.start.line as usize,
        col: span.start.column as usize,
    })
}

fn file_problem(file: &Path, position: Option<Position>, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        position,
        key: None,
        message: message.into(),
    }
}

/// The position DataFusion gives for an SQL error: its diagnostic's span when it has
/// one, else the `Line: L, Column: C` of a parser message.
pub fn error_position(error: &DataFusionError) -> Option<Position> {
    if let Some(span) = error.diagnostic().and_then(|d| d.span) {
        return Some(Position {
            line: span.start.line as usize,
            col: span.start.column as usize,
        });
    }
    let text = error.to_string();
    let line = number_after(&text, "Line: ")?;
    let col = number_after(&text, "Column: ")?;
    Some(Position { line, col })
}

fn number_after(text: &str, label: &str) -> Option<usize> {
    let start = text.rfind(label)? + label.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// DataFusion's message without its wrapping ("Error during planning: ...").
pub fn sql_error_message(error: &DataFusionError) -> String {
    if let Some(diagnostic) = error.diagnostic() {
        return diagnostic.message.clone();
    }
    error.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    fn view_from(sql: &str) -> View {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("my_view.sql");
        std::fs::write(&file, sql).unwrap();
        parse_view(&file, &SessionContext::new().state()).unwrap()
    }

    #[test]
    fn reads_are_found_in_the_sql_without_ctes() {
        let view = view_from(
            "WITH recent AS (SELECT * FROM leads WHERE x > 1)\n\
             SELECT * FROM recent JOIN spend USING (day)\n\
             WHERE EXISTS (SELECT 1 FROM touches t WHERE t.lead_id = recent.lead_id)",
        );
        assert_eq!(view.name, "my_view");
        assert_eq!(view.reads, ["leads", "spend", "touches"]);
    }

    #[test]
    fn only_select_queries_are_views() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.sql");
        std::fs::write(&file, "CREATE TABLE x (a INT)").unwrap();
        let problem = parse_view(&file, &SessionContext::new().state()).unwrap_err();
        assert!(problem.message.contains("one SELECT query"), "{problem}");
    }

    #[test]
    fn syntax_errors_carry_the_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("broken.sql");
        std::fs::write(&file, "SELECT a,\n  b\nFROM leads\nWHERE = 3").unwrap();
        let problem = parse_view(&file, &SessionContext::new().state()).unwrap_err();
        assert_eq!(
            problem.position,
            Some(Position { line: 4, col: 7 }),
            "{problem}"
        );
    }

    #[test]
    fn parameters_become_typed_literals_and_unknown_ones_are_reported() {
        let view = view_from("SELECT $as_of AS d, $name AS s, $n AS n\nFROM t WHERE x = $nope");
        assert_eq!(view.params, ["as_of", "n", "name", "nope"]);
        let state = SessionContext::new().state();
        let lookup = |name: &str| match name {
            "as_of" => Some(ScalarValue::Date32(Some(20_634))),
            "name" => Some(ScalarValue::Utf8(Some("o'brien; DROP TABLE x".into()))),
            "n" => Some(ScalarValue::Int64(Some(5))),
            _ => None,
        };
        let problems = bind_params(&view, &state, &lookup).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems.0[0].position, Some(Position { line: 2, col: 18 }));
        assert!(problems.0[0].message.contains("`$nope`"));

        let view = view_from("SELECT $as_of AS d, $name AS s, $n AS n");
        let bound = bind_params(&view, &state, &lookup).unwrap();
        let text = bound.to_string();
        assert!(
            text.contains("arrow_cast('2026-06-30', 'Date32')"),
            "{text}"
        );
        assert!(text.contains("'o''brien; DROP TABLE x'"), "{text}");
    }
}
