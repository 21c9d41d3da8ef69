//! Sources: the extract contract, enforced as one vectorised DataFusion plan per source.
//!
//! From the raw text rows of `scan.rs`, the plan finds for every row the first rule it
//! breaks (extracts.md, "Parsing rules, settled"), in this order: a malformed record,
//! a missing required value, a bad timestamp or date, a bad number (or boolean), an
//! unknown enum value, a value out of range, a wrong currency; then, among the rows
//! that passed all of these, every copy of a duplicated key. Within a rule, columns are
//! checked in declared order. Good rows get their declared types; bad rows keep a
//! masked copy of the record for the quarantine. Nothing is checked row by row in Rust.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::JoinType;
use datafusion::functions::expr_fn::{concat, regexp_like, replace};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{Expr, case, lit, not, try_cast, when};
use datafusion::prelude::{DataFrame, col};

use super::scan::{FILE, LINE, MALFORMED};
use crate::config::{Column, ColumnType, Source};

/// Columns the checked rows carry besides the declared ones.
pub const REASON: &str = "_reason";
pub const COLUMN: &str = "_column";
pub const RECORD: &str = "_record";
const COPIES: &str = "_copies";

const TIMESTAMP: &str =
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$";
const DATE: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$";
const INT: &str = r"^[+-]?[0-9]+$";
const DECIMAL: &str = r"^[+-]?[0-9]+(\.[0-9]{1,2})?$";
const DOUBLE: &str = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$";

/// Why a row is bad, as the quarantine records it.
pub mod reason {
    pub const MALFORMED: &str = "malformed_record";
    pub const MISSING: &str = "missing_required_value";
    pub const BAD_TIMESTAMP: &str = "bad_timestamp";
    pub const BAD_DATE: &str = "bad_date";
    pub const BAD_NUMBER: &str = "bad_number";
    pub const BAD_BOOLEAN: &str = "bad_boolean";
    pub const UNKNOWN_ENUM: &str = "unknown_enum_value";
    pub const OUT_OF_RANGE: &str = "out_of_range";
    pub const WRONG_CURRENCY: &str = "wrong_currency";
    pub const DUPLICATE_KEY: &str = "duplicate_key";
}

/// One rule broken by one column: the condition under which it is, on raw text.
struct Breach {
    reason: &'static str,
    column: String,
    when: Expr,
}

/// The checked rows of `raw`: declared columns with their types, `_file`, `_line`,
/// and `_reason`, `_column`, `_record` (null on good rows).
pub fn check(
    raw: DataFrame,
    source: &Source,
    timezone: &str,
    currency: &str,
) -> datafusion::common::Result<DataFrame> {
    let breaches = breaches(source, timezone, currency);
    let reason_expr = first_of(&breaches, |b| lit(b.reason));
    let column_expr = first_of(&breaches, |b| match b.column.as_str() {
        "" => lit(datafusion::common::ScalarValue::Utf8(None)),
        name => lit(name.to_string()),
    });
    let checked = raw
        .with_column(REASON, reason_expr)?
        .with_column(COLUMN, column_expr)?;
    let checked = flag_duplicates(checked, source)?;

    let mut projection: Vec<Expr> = source.columns.iter().map(|c| typed(c, timezone)).collect();
    projection.push(col(FILE));
    projection.push(col(LINE));
    projection.push(col(REASON));
    projection.push(col(COLUMN));
    projection.push(
        when(col(REASON).is_not_null(), record(source))
            .end()?
            .alias(RECORD),
    );
    checked.select(projection)
}

/// `CASE WHEN breach1 THEN value(breach1) WHEN ... END`, null when no rule is broken.
fn first_of(breaches: &[Breach], value: impl Fn(&Breach) -> Expr) -> Expr {
    let Some((first, rest)) = breaches.split_first() else {
        return lit(datafusion::common::ScalarValue::Utf8(None));
    };
    let mut builder = when(first.when.clone(), value(first));
    for breach in rest {
        builder = builder.when(breach.when.clone(), value(breach));
    }
    builder
        .otherwise(lit(datafusion::common::ScalarValue::Utf8(None)))
        .expect("a CASE with branches builds")
}

/// Every rule of every column, in the order a row is judged by.
fn breaches(source: &Source, timezone: &str, currency: &str) -> Vec<Breach> {
    let mut out = vec![Breach {
        reason: reason::MALFORMED,
        column: String::new(),
        when: col(MALFORMED).is_not_null(),
    }];
    let raw = |c: &Column| col(format!("\"{}\"", c.name));
    let present = |c: &Column| raw(c).is_not_null();
    let breach = |reason, c: &Column, when| Breach {
        reason,
        column: c.name.clone(),
        when,
    };

    for c in source.columns.iter().filter(|c| !c.nullable) {
        out.push(breach(reason::MISSING, c, raw(c).is_null()));
    }
    for c in &source.columns {
        let (reason, pattern) = match c.data_type {
            ColumnType::Timestamp => (reason::BAD_TIMESTAMP, TIMESTAMP),
            ColumnType::Date => (reason::BAD_DATE, DATE),
            _ => continue,
        };
        out.push(breach(
            reason,
            c,
            present(c).and(malformed(raw(c), pattern, c.data_type.arrow_type(timezone))),
        ));
    }
    for c in &source.columns {
        let target = c.data_type.arrow_type(timezone);
        let when = match c.data_type {
            ColumnType::Int => malformed(raw(c), INT, target),
            ColumnType::Decimal => malformed(raw(c), DECIMAL, target),
            ColumnType::Double => malformed(raw(c), DOUBLE, target),
            ColumnType::Bool => {
                out.push(breach(
                    reason::BAD_BOOLEAN,
                    c,
                    present(c).and(not(raw(c).in_list(vec![lit("true"), lit("false")], false))),
                ));
                continue;
            }
            _ => continue,
        };
        out.push(breach(reason::BAD_NUMBER, c, present(c).and(when)));
    }
    for c in &source.columns {
        if let Some(values) = &c.values {
            let list = values.iter().map(|v| lit(v.clone())).collect();
            out.push(breach(
                reason::UNKNOWN_ENUM,
                c,
                present(c).and(not(raw(c).in_list(list, false))),
            ));
        }
    }
    for c in &source.columns {
        let number = || try_cast(raw(c), DataType::Float64);
        let low = c.min.map(|min| number().lt(lit(min)));
        let high = c.max.map(|max| number().gt(lit(max)));
        let when = match (low, high) {
            (Some(l), Some(h)) => l.or(h),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => continue,
        };
        out.push(breach(reason::OUT_OF_RANGE, c, present(c).and(when)));
    }
    for c in source.columns.iter().filter(|c| c.currency) {
        out.push(breach(
            reason::WRONG_CURRENCY,
            c,
            present(c).and(raw(c).not_eq(lit(currency))),
        ));
    }
    out
}

/// Text that does not have the form `pattern`, or has it but is no real value of
/// `target` (a 30th of February, an integer too large).
fn malformed(text: Expr, pattern: &str, target: DataType) -> Expr {
    not(regexp_like(text.clone(), lit(pattern), None)).or(try_cast(text, target).is_null())
}

/// Marks every copy of a key that more than one good row has. Rows already bad are
/// left as they are: duplicates are looked for only among rows that passed every
/// other check.
fn flag_duplicates(checked: DataFrame, source: &Source) -> datafusion::common::Result<DataFrame> {
    if source.unique_key.is_empty() {
        return Ok(checked);
    }
    let names: Vec<String> = checked
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let key = |name: &String| col(format!("\"{name}\""));
    let key_alias = |name: &String| format!("_key_{name}");

    let good = checked.clone().filter(col(REASON).is_null())?;
    let bad = checked.filter(col(REASON).is_not_null())?;
    let copies = good
        .clone()
        .aggregate(
            source.unique_key.iter().map(key).collect(),
            vec![count(lit(1)).alias(COPIES)],
        )?
        .filter(col(COPIES).gt(lit(1i64)))?
        .select(
            source
                .unique_key
                .iter()
                .map(|k| key(k).alias(key_alias(k)))
                .chain([col(COPIES)])
                .collect::<Vec<_>>(),
        )?;
    let left: Vec<&str> = source.unique_key.iter().map(String::as_str).collect();
    let right_names: Vec<String> = source.unique_key.iter().map(key_alias).collect();
    let right: Vec<&str> = right_names.iter().map(String::as_str).collect();
    let joined = good.join(copies, JoinType::Left, &left, &right, None)?;

    let key_list = source.unique_key.join(",");
    let projection: Vec<Expr> = names
        .iter()
        .map(|name| match name.as_str() {
            REASON => when(col(COPIES).is_not_null(), lit(reason::DUPLICATE_KEY))
                .otherwise(col(REASON))
                .expect("a CASE with a branch builds")
                .alias(REASON),
            COLUMN => when(col(COPIES).is_not_null(), lit(key_list.clone()))
                .otherwise(col(COLUMN))
                .expect("a CASE with a branch builds")
                .alias(COLUMN),
            other => col(format!("\"{other}\"")),
        })
        .collect();
    joined.select(projection)?.union(bad)
}

/// The declared type of a column, from its checked text.
fn typed(c: &Column, timezone: &str) -> Expr {
    let raw = col(format!("\"{}\"", c.name));
    match c.data_type {
        ColumnType::String => raw.alias(&c.name),
        other => try_cast(raw, other.arrow_type(timezone)).alias(&c.name),
    }
}

/// The raw record as a JSON object, personal data masked: `{"lead_id":"L1",...}`.
fn record(source: &Source) -> Expr {
    let mut parts: Vec<Expr> = vec![lit("{")];
    for (i, c) in source.columns.iter().enumerate() {
        let raw = col(format!("\"{}\"", c.name));
        let value = if c.pii {
            lit("\"***\"")
        } else {
            concat(vec![lit("\""), json_escape(raw.clone()), lit("\"")])
        };
        let separator = if i == 0 { "" } else { "," };
        parts.push(lit(format!("{separator}\"{}\":", c.name)));
        parts.push(
            case(raw.is_null())
                .when(lit(true), lit("null"))
                .otherwise(value)
                .expect("a CASE builds"),
        );
    }
    parts.push(lit("}"));
    concat(parts)
}

fn json_escape(text: Expr) -> Expr {
    let mut escaped = replace(text, lit("\\"), lit("\\\\"));
    for (from, to) in [("\"", "\\\""), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")] {
        escaped = replace(escaped, lit(from), lit(to));
    }
    escaped
}
