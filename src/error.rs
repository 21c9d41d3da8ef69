//! Errors by what a scheduler should do about them, and the exit codes that say so.
//!
//! | code | meaning | retry? |
//! |---|---|---|
//! | 0 | the run finished | - |
//! | 2 | the command line is wrong (clap) | no |
//! | 65 | bad input data | no: fix the extract |
//! | 70 | internal error: a bug | no: report it |
//! | 75 | transient infrastructure failure | yes |
//! | 78 | bad configuration (YAML or SQL) | no: fix the pipeline |
//! | 143 | stopped by SIGTERM or Ctrl-C before it finished | yes |

use datafusion::arrow::error::ArrowError;
use datafusion::common::DataFusionError;

use crate::config::Diagnostics;

/// Exit codes, after BSD's sysexits.h, so that a Kubernetes Job's pod failure policy can
/// tell a retry that may help from one that cannot.
pub mod exit_code {
    pub const OK: u8 = 0;
    pub const USAGE: u8 = 2;
    pub const BAD_DATA: u8 = 65;
    pub const INTERNAL: u8 = 70;
    pub const TRANSIENT: u8 = 75;
    pub const BAD_CONFIG: u8 = 78;
    /// 128 + SIGTERM, as a shell reports a process ended by it.
    pub const INTERRUPTED: u8 = 143;
}

/// A failed command.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KpipeError {
    /// The pipeline YAML or one of its SQL views is wrong; every problem is listed.
    #[error("the pipeline is not valid ({count} problem(s)):\n{problems}", count = .0.len(), problems = .0)]
    Config(Diagnostics),
    /// The command line asks for something that cannot be done (clap checks the rest).
    #[error("{0}")]
    Usage(String),
    /// An extract breaks its contract or cannot be read as its format says.
    #[error("bad input data: {0}")]
    Data(String),
    /// Storage or network failed in a way that a later attempt may not meet.
    #[error("transient failure, worth a retry: {0}")]
    Transient(String),
    /// A bug in kpipe or in what it builds on.
    #[error("internal error: {0}")]
    Internal(String),
    /// The run was asked to stop (SIGTERM, Ctrl-C) and stopped before it finished.
    #[error("stopped before the run finished: {0}")]
    Interrupted(String),
}

impl KpipeError {
    pub fn exit_code(&self) -> u8 {
        match self {
            KpipeError::Config(_) => exit_code::BAD_CONFIG,
            KpipeError::Usage(_) => exit_code::USAGE,
            KpipeError::Data(_) => exit_code::BAD_DATA,
            KpipeError::Transient(_) => exit_code::TRANSIENT,
            KpipeError::Internal(_) => exit_code::INTERNAL,
            KpipeError::Interrupted(_) => exit_code::INTERRUPTED,
        }
    }

    /// Classifies an error of the engine met while doing `what` (for example
    /// "reading source leads"), keeping `what` in the message.
    pub fn from_engine(error: DataFusionError, what: &str) -> Self {
        // kpipe's own errors raised inside a plan (a source file that breaks the
        // contract) already say what they are and where.
        if let Some(own) = own_error(&error) {
            return own.clone();
        }
        let kind = kind_of(&error);
        let message = format!("{what}: {error}");
        match kind {
            Kind::Config => KpipeError::Config(Diagnostics(vec![crate::config::Diagnostic {
                file: std::path::PathBuf::from("<pipeline>"),
                position: None,
                key: None,
                message,
            }])),
            Kind::Data => KpipeError::Data(message),
            Kind::Transient => KpipeError::Transient(message),
            Kind::Internal => KpipeError::Internal(message),
        }
    }

    pub fn from_store(error: object_store::Error, what: &str) -> Self {
        let message = format!("{what}: {error}");
        match store_kind(&error) {
            Kind::Data => KpipeError::Data(message),
            Kind::Transient => KpipeError::Transient(message),
            Kind::Config => KpipeError::Data(message),
            Kind::Internal => KpipeError::Internal(message),
        }
    }
}

fn own_error(error: &DataFusionError) -> Option<&KpipeError> {
    match error {
        DataFusionError::External(inner) => inner.downcast_ref::<KpipeError>(),
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            own_error(inner)
        }
        DataFusionError::Shared(inner) => own_error(inner),
        DataFusionError::ArrowError(inner, _) => match inner.as_ref() {
            ArrowError::ExternalError(e) => e.downcast_ref::<DataFusionError>().and_then(own_error),
            _ => None,
        },
        _ => None,
    }
}

enum Kind {
    Config,
    Data,
    Transient,
    Internal,
}

fn kind_of(error: &DataFusionError) -> Kind {
    match error {
        DataFusionError::Context(_, inner) => kind_of(inner),
        DataFusionError::Shared(inner) => kind_of(inner),
        DataFusionError::ObjectStore(e) => store_kind(e),
        DataFusionError::IoError(_) => Kind::Transient,
        DataFusionError::ArrowError(e, _) => arrow_kind(e),
        DataFusionError::ParquetError(_) => Kind::Data,
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::Configuration(_)
        | DataFusionError::ResourcesExhausted(_) => Kind::Config,
        DataFusionError::External(inner) => {
            if let Some(e) = inner.downcast_ref::<object_store::Error>() {
                store_kind(e)
            } else if let Some(e) = inner.downcast_ref::<ArrowError>() {
                arrow_kind(e)
            } else if let Some(e) = inner.downcast_ref::<DataFusionError>() {
                kind_of(e)
            } else if inner.downcast_ref::<std::io::Error>().is_some() {
                Kind::Transient
            } else {
                Kind::Internal
            }
        }
        DataFusionError::Diagnostic(_, inner) => kind_of(inner),
        DataFusionError::Collection(errors) => {
            errors.first().map(kind_of).unwrap_or(Kind::Internal)
        }
        _ => Kind::Internal,
    }
}

fn arrow_kind(error: &ArrowError) -> Kind {
    match error {
        ArrowError::ExternalError(inner) => {
            if let Some(e) = inner.downcast_ref::<DataFusionError>() {
                kind_of(e)
            } else if let Some(e) = inner.downcast_ref::<object_store::Error>() {
                store_kind(e)
            } else {
                Kind::Data
            }
        }
        ArrowError::IoError(..) => Kind::Transient,
        ArrowError::ParseError(_)
        | ArrowError::CsvError(_)
        | ArrowError::JsonError(_)
        | ArrowError::CastError(_)
        | ArrowError::InvalidArgumentError(_)
        | ArrowError::ParquetError(_)
        | ArrowError::SchemaError(_) => Kind::Data,
        _ => Kind::Internal,
    }
}

fn store_kind(error: &object_store::Error) -> Kind {
    use object_store::Error as E;
    match error {
        E::NotFound { .. } | E::PermissionDenied { .. } | E::Unauthenticated { .. } => Kind::Data,
        E::InvalidPath { .. } | E::NotSupported { .. } | E::NotImplemented { .. } => Kind::Internal,
        // Cloud stores report some refusals (a LIST answered 403) as generic errors that
        // carry only the HTTP status in their text; a retry cannot help those.
        E::Generic { source, .. } if refused(&source.to_string()) => Kind::Data,
        _ => Kind::Transient,
    }
}

fn refused(message: &str) -> bool {
    ["401 Unauthorized", "403 Forbidden", "404 Not Found"]
        .iter()
        .any(|status| message.contains(status))
}

pub type Result<T, E = KpipeError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_what_a_retry_can_do() {
        let store = DataFusionError::ObjectStore(Box::new(object_store::Error::Generic {
            store: "S3",
            source: "connection reset".into(),
        }));
        assert_eq!(
            KpipeError::from_engine(store, "x").exit_code(),
            exit_code::TRANSIENT
        );

        let parse =
            DataFusionError::ArrowError(Box::new(ArrowError::ParseError("bad".into())), None);
        let wrapped = parse.context("reading leads");
        assert_eq!(
            KpipeError::from_engine(wrapped, "x").exit_code(),
            exit_code::BAD_DATA
        );

        let plan = DataFusionError::Plan("no such column".into());
        assert_eq!(
            KpipeError::from_engine(plan, "x").exit_code(),
            exit_code::BAD_CONFIG
        );

        let bug = DataFusionError::Internal("oops".into());
        let error = KpipeError::from_engine(bug, "planning");
        assert_eq!(error.exit_code(), exit_code::INTERNAL);
        assert!(error.to_string().contains("planning"));
    }

    #[test]
    fn a_missing_object_is_bad_input_not_a_retry() {
        let missing = object_store::Error::NotFound {
            path: "x".into(),
            source: "404".into(),
        };
        assert_eq!(
            KpipeError::from_store(missing, "reading").exit_code(),
            exit_code::BAD_DATA
        );
    }
}
