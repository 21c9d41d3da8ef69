//! Config problems, each with the file, position and key path it concerns. Validation
//! collects all of them before giving up, so a user fixes a pipeline in one pass.

use std::fmt;
use std::path::{Path, PathBuf};

use super::locate::{Position, PositionIndex};

/// One problem in a pipeline: `file:line:col key.path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub position: Option<Position>,
    /// The YAML key path, when the problem is in the YAML file.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(Position { line, col }) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        match &self.key {
            Some(key) if !key.is_empty() => write!(f, " {key}: {}", self.message),
            _ => write!(f, ": {}", self.message),
        }
    }
}

/// Every problem found in a pipeline, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// `Ok(value)` when nothing was reported.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Reports problems of one YAML file, locating key paths with its position index.
pub struct YamlReporter<'a> {
    pub file: &'a Path,
    pub index: &'a PositionIndex,
    pub diagnostics: Diagnostics,
}

impl<'a> YamlReporter<'a> {
    pub fn new(file: &'a Path, index: &'a PositionIndex) -> Self {
        Self {
            file,
            index,
            diagnostics: Diagnostics::default(),
        }
    }

    /// Records a problem at `key`.
    pub fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        self.diagnostics.push(Diagnostic {
            file: self.file.to_path_buf(),
            position: self.index.find(&key),
            key: Some(key),
            message: message.into(),
        });
    }
}
