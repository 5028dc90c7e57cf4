//! The deployment engine, one pipeline for every target:
//!
//! ```text
//! lock → load state → context (account, region, parameters) → desired graph
//!      → observe what is live → plan → execute level by level, recording
//!      after every step → target's finish (local: serve the new version)
//! ```
//!
//! `destroy` is the same run with an empty desired graph; `destroy --discover`
//! the same run over a state rebuilt from tags. What differs per target lives
//! behind [`Target`]: the AWS SDK (`crate::aws`) and the local cloud
//! (`crate::local`). This folder never names either: the planner, the graph and
//! the state format are pure; `run`, `execute` and `store` do I/O only through a
//! `Target`, a `Store` and a `Progress`.

pub mod cfn;
pub mod desired;
pub mod error;
pub mod execute;
pub mod kind;
pub mod lock;
pub mod openapi;
pub mod parameters;
pub mod pipeline;
pub mod plan;
pub mod run;
pub mod state;
pub mod store;
pub mod target;

pub use error::EngineError;
pub use kind::Kind;
pub use pipeline::{check_owner, context, run, Mode, Options};
pub use state::{CLOUDFORMATION, SDK};
pub use run::Outcome;
pub use target::{Invoked, StageRef, Target};
