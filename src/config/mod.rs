//! Config: the pipeline YAML, from text to a checked [`Pipeline`] that later stages
//! trust. The steps are: locate (key paths to positions), interpolate (`${VAR}`), raw
//! (strict deserialization), check (rules), model (the checked types).

mod check;
mod diagnostics;
mod interpolate;
mod locate;
mod model;
mod plans;
mod raw;

pub use check::{BUILTIN_PARAMS, check_text, is_identifier, load};
pub use diagnostics::{Diagnostic, Diagnostics};
pub use interpolate::{CliThenEnv, Variables};
pub use locate::Position;
pub use model::*;
pub use plans::{
    DEFAULT_CAP, DEFAULT_CURVE, Direction, EffectiveLead, Flag, Kicker, KickerScope, Kpi, Level,
    Plan, ScoredKpi, Targets, in_force,
};
