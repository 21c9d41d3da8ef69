//! Config, step 0: maps every YAML key path to the line and column where it is written,
//! so that a problem found later (by serde or by validation) can point at the source.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column in the YAML file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub col: usize,
}

/// Key paths (`sources.leads.columns[2].type`) to the position of the key (for mapping
/// entries) or of the item (for sequence entries).
#[derive(Debug, Default)]
pub struct PositionIndex {
    positions: HashMap<String, Position>,
}

impl PositionIndex {
    /// Indexes `text`. A text that does not parse yields an empty index: the YAML
    /// deserializer reports the syntax error with its own position.
    pub fn build(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Self::default();
        }
        Self {
            positions: builder.positions,
        }
    }

    /// The position of `path`, or of its nearest indexed ancestor.
    pub fn find(&self, path: &str) -> Option<Position> {
        let mut path = path;
        loop {
            if let Some(position) = self.positions.get(path) {
                return Some(*position);
            }
            path = parent(path)?;
        }
    }
}

/// The parent of a key path: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → `""`, `""` → none.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// One open collection while walking the events.
enum Frame {
    /// A mapping: the path of the mapping, and the key just read, if its value is next.
    Mapping { path: String, key: Option<String> },
    /// A sequence: the path of the sequence and the index of the next item.
    Sequence { path: String, next: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    positions: HashMap<String, Position>,
}

impl Builder {
    /// Called for every node (scalar or collection start): returns the node's path, or
    /// `None` when the node is a mapping key.
    fn enter_node(&mut self, scalar: Option<&str>, mark: Marker) -> Option<String> {
        // yaml-rust2 counts lines from 1 and columns from 0.
        let position = Position {
            line: mark.line(),
            col: mark.col() + 1,
        };
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Sequence { path, next }) => {
                let item = format!("{path}[{next}]");
                *next += 1;
                self.positions.insert(item.clone(), position);
                Some(item)
            }
            Some(Frame::Mapping { path, key }) => match key.take() {
                Some(key) => Some(join(path, &key)),
                None => {
                    // A key. Complex (non-scalar) keys are not used by pipelines; they get
                    // an empty name and are rejected later by the deserializer.
                    let name = scalar.unwrap_or_default().to_string();
                    self.positions.insert(join(path, &name), position);
                    *key = Some(name);
                    None
                }
            },
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, ..) => {
                self.enter_node(Some(&value), mark);
            }
            Event::Alias(_) => {
                self.enter_node(None, mark);
            }
            Event::MappingStart(..) => {
                let path = self.enter_node(None, mark).unwrap_or_default();
                self.stack.push(Frame::Mapping { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.enter_node(None, mark).unwrap_or_default();
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
name: demo
sources:
  leads:
    columns:
      - name: lead_id
        type: string
      - {name: created_at, type: timestamp}
";

    #[test]
    fn finds_keys_and_sequence_items() {
        let index = PositionIndex::build(YAML);
        assert_eq!(index.find("name"), Some(Position { line: 1, col: 1 }));
        assert_eq!(
            index.find("sources.leads"),
            Some(Position { line: 3, col: 3 })
        );
        assert_eq!(
            index.find("sources.leads.columns[0].type"),
            Some(Position { line: 6, col: 9 })
        );
        assert_eq!(
            index.find("sources.leads.columns[1]"),
            Some(Position { line: 7, col: 9 })
        );
        assert_eq!(
            index.find("sources.leads.columns[1].type"),
            Some(Position { line: 7, col: 28 })
        );
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let index = PositionIndex::build(YAML);
        assert_eq!(
            index.find("sources.leads.nope"),
            index.find("sources.leads")
        );
        assert_eq!(index.find("missing.key"), None);
    }
}
