//! The engine on AWS in one call, for library users, tests and benchmarks:
//! `deploy` and `destroy` of one stack's stage with a set of clients.

use std::path::Path;

use super::client::Clients;
use super::target::AwsTarget;
use crate::build::Artifact;
use crate::engine::error::EngineError;
use crate::engine::state::State;
use crate::engine::target::Target;
use crate::engine::Mode;
pub use crate::engine::run::Outcome;
use crate::progress::lines_if;
use crate::stack::Stack;

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dry_run: bool,
    /// Progress lines on stderr.
    pub progress: bool,
    /// Test hook: stop with an error after this many steps.
    pub fail_after: Option<usize>,
}

/// Plan (and unless `dry_run`, apply) `stack` to `stage`.
pub async fn deploy(clients: &Clients, stack: &Stack, stage: &str, artifacts: &[Artifact], project: &Path, opts: &Options) -> Result<Outcome, EngineError> {
    let target = AwsTarget::new(clients.clone(), project);
    let store = target.store(stack, stage);
    let engine_opts = crate::engine::Options { dry_run: opts.dry_run, fail_after: opts.fail_after };
    crate::engine::run(&target, &store, &stack.name, stage, Mode::Deploy { stack, artifacts }, &engine_opts, lines_if(opts.progress).as_ref()).await
}

/// Delete every recorded resource of the stage, then its state.
pub async fn destroy(clients: &Clients, stack: &Stack, stage: &str, project: &Path, opts: &Options) -> Result<Outcome, EngineError> {
    let target = AwsTarget::new(clients.clone(), project);
    let store = target.store(stack, stage);
    let engine_opts = crate::engine::Options { dry_run: opts.dry_run, fail_after: opts.fail_after };
    crate::engine::run(&target, &store, &stack.name, stage, Mode::Destroy, &engine_opts, lines_if(opts.progress).as_ref()).await
}

/// The physical name of a function of a deployed stage.
pub fn function_physical(state: &State, function: &str) -> Option<String> {
    state.function_physical(function)
}
