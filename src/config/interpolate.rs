//! Config, step 1: substitutes pipeline variables in YAML string values.
//!
//! `${NAME}` takes the variable's value, `${NAME:-default}` falls back to `default` when
//! the variable is undefined (the default may itself hold `${...}`, so
//! `${ledger_root:-${output_root:-out}}` follows another variable), and `$$` is a
//! literal `$`. Values come from `--var` first
//! and the environment second. Substitution happens after YAML parsing, on string values
//! only, so a value can never change the structure of the document.

use serde_yaml_ng::Value;

/// Where variable values come from.
pub trait Variables {
    fn lookup(&self, name: &str) -> Option<String>;
}

/// `--var` values first, then the process environment.
pub struct CliThenEnv<'a> {
    pub vars: &'a [(String, String)],
}

impl Variables for CliThenEnv<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.vars
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .or_else(|| std::env::var(name).ok())
    }
}

/// A problem found while substituting, at a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    pub path: String,
    pub message: String,
}

/// Substitutes variables in every string value of `value`, in place, and returns every
/// problem found.
pub fn interpolate(value: &mut Value, vars: &dyn Variables) -> Vec<InterpolationError> {
    let mut errors = Vec::new();
    walk(value, String::new(), vars, &mut errors);
    errors
}

fn walk(
    value: &mut Value,
    path: String,
    vars: &dyn Variables,
    errors: &mut Vec<InterpolationError>,
) {
    match value {
        Value::String(text) => match substitute(text, vars) {
            Ok(done) => *text = done,
            Err(message) => errors.push(InterpolationError { path, message }),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, format!("{path}[{i}]"), vars, errors);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let key = key
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{key:?}"));
                let child = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                walk(item, child, vars, errors);
            }
        }
        Value::Tagged(tagged) => walk(&mut tagged.value, path, vars, errors),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Substitutes the variables of one string.
pub fn substitute(text: &str, vars: &dyn Variables) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(body) = rest.strip_prefix("${") {
            let end = closing_brace(body).ok_or_else(|| {
                format!("unclosed `${{` in {text:?}: write `$$` for a literal `$`")
            })?;
            out.push_str(&resolve(&body[..end], vars)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Where the `}` closing a `${` is in `body` (the text after the `${`), skipping the
/// `${...}` nested in a default.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = body.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The value of one `${...}` body: `NAME` or `NAME:-default`.
fn resolve(body: &str, vars: &dyn Variables) -> Result<String, String> {
    let (name, default) = match body.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (body, None),
    };
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(format!(
            "`${{{body}}}` is not a variable: names are letters, digits and _"
        ));
    }
    match (vars.lookup(name), default) {
        (Some(value), _) => Ok(value),
        (None, Some(default)) => substitute(default, vars),
        (None, None) => Err(format!(
            "variable `{name}` is not defined: pass --var {name}=VALUE, set it in the \
             environment, or write ${{{name}:-default}}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, &'static str>);

    impl Variables for Map {
        fn lookup(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    fn vars() -> Map {
        Map(HashMap::from([("root", "s3://bucket/x"), ("empty", "")]))
    }

    #[test]
    fn substitutes_defined_variables_and_defaults() {
        let v = vars();
        assert_eq!(
            substitute("${root}/leads", &v).unwrap(),
            "s3://bucket/x/leads"
        );
        assert_eq!(substitute("${missing:-out}/a", &v).unwrap(), "out/a");
        assert_eq!(substitute("${root:-ignored}", &v).unwrap(), "s3://bucket/x");
        assert_eq!(substitute("[${empty}]", &v).unwrap(), "[]");
        assert_eq!(substitute("${missing:-}", &v).unwrap(), "");
    }

    #[test]
    fn a_default_may_follow_another_variable() {
        let v = vars();
        assert_eq!(
            substitute("${ledger:-${root:-out}}/l", &v).unwrap(),
            "s3://bucket/x/l"
        );
        assert_eq!(substitute("${ledger:-${nope:-out}}", &v).unwrap(), "out");
        assert!(
            substitute("${ledger:-${nope}}", &v)
                .unwrap_err()
                .contains("`nope` is not defined")
        );
        assert!(
            substitute("${a:-${b:-c}", &v)
                .unwrap_err()
                .contains("unclosed")
        );
    }

    #[test]
    fn dollar_escapes_and_lone_dollars() {
        let v = vars();
        assert_eq!(
            substitute("cost $$5 ${root}", &v).unwrap(),
            "cost $5 s3://bucket/x"
        );
        assert_eq!(substitute("$$${root}", &v).unwrap(), "$s3://bucket/x");
        assert_eq!(substitute("a $b", &v).unwrap(), "a $b");
    }

    #[test]
    fn undefined_unclosed_and_malformed_are_errors() {
        let v = vars();
        assert!(
            substitute("${nope}", &v)
                .unwrap_err()
                .contains("`nope` is not defined")
        );
        assert!(substitute("${root", &v).unwrap_err().contains("unclosed"));
        assert!(
            substitute("${a-b}", &v)
                .unwrap_err()
                .contains("not a variable")
        );
        assert!(
            substitute("${}", &v)
                .unwrap_err()
                .contains("not a variable")
        );
    }

    #[test]
    fn values_never_change_structure_and_every_error_has_its_path() {
        let mut doc: Value =
            serde_yaml_ng::from_str("a: ${root}\nlist: [x, '${nope}']\nm: {k: '${other}'}\nn: 5\n")
                .unwrap();
        let errors = interpolate(&mut doc, &vars());
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["list[1]", "m.k"]);
        assert_eq!(doc["a"].as_str(), Some("s3://bucket/x"));
        assert_eq!(doc["n"].as_u64(), Some(5));
    }

    #[test]
    fn cli_values_win_over_the_environment() {
        let vars = vec![("PATH".to_string(), "from-cli".to_string())];
        let lookup = CliThenEnv { vars: &vars };
        assert_eq!(lookup.lookup("PATH").as_deref(), Some("from-cli"));
        assert!(lookup.lookup("KPIPE_SURELY_UNDEFINED_VAR").is_none());
    }
}
