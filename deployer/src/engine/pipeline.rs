//! One run of the pipeline, for every target:
//! lock → load → context → desired → observe → plan → execute → record → finish.

use std::collections::BTreeMap;

use super::desired::{self, Context, Desired};
use super::error::EngineError;
use super::execute;
use super::parameters;
use super::plan;
use super::run::{Outcome, Run};
use super::state::{State, SDK};
use super::store::Store;
use super::target::{StageRef, Target};
use crate::build::Artifact;
use crate::progress::Progress;
use crate::stack::Stack;

/// What a run does.
pub enum Mode<'a> {
    Deploy { stack: &'a Stack, artifacts: &'a [Artifact] },
    /// Delete everything recorded.
    Destroy,
    /// Delete everything `state` lists (a state rebuilt from tags), whatever
    /// the store holds.
    DestroyFrom(State),
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Plan only.
    pub dry_run: bool,
    /// Test hook: stop with an error before the step that would be the N+1th.
    pub fail_after: Option<usize>,
}


/// A stage belongs to the engine that deployed it: the other refuses it.
pub fn check_owner(recorded: Option<&State>, wanted: &str, stack: &str, stage: &str) -> Result<(), EngineError> {
    match recorded {
        Some(s) if s.engine != wanted && !s.resources.is_empty() => Err(EngineError::Input(format!(
            "stage `{stage}` of stack `{stack}` is deployed with the `{}` engine; it cannot be deployed with `{wanted}`\n  hint: destroy it with `--engine {}` first, or use another stage",
            s.engine, s.engine
        ))),
        _ => Ok(()),
    }
}

/// The deploy context of a stack on a target: account, region, parameters
/// (`recorded`: the stage's state, so generated secrets keep their value).
pub async fn context(target: &dyn Target, stack: &Stack, stage: &str, recorded: Option<&State>) -> Result<Context, EngineError> {
    let account = target.account().await?;
    let parameters = parameters::resolve(target, stack, stage, recorded.is_some()).await?;
    Ok(Context { stage: stage.into(), account, region: target.region(), parameters })
}

/// One run of the pipeline on `target`.
pub async fn run(target: &dyn Target, store: &Store, stack: &str, stage: &str, mode: Mode<'_>, opts: &Options, progress: &dyn Progress) -> Result<Outcome, EngineError> {
    let destroy = !matches!(mode, Mode::Deploy { .. });
    let command = if destroy { "destroy" } else { "deploy" };
    let lock = if opts.dry_run { None } else { store.lock(stack, stage, command).await? };
    let result = run_locked(target, store, stack, stage, mode, opts, progress).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    // The lock file sits beside the state: its folders go once it is released.
    if destroy && !opts.dry_run && result.as_ref().is_ok_and(|o| o.state.resources.is_empty()) {
        store.prune();
    }
    result
}

async fn run_locked(target: &dyn Target, store: &Store, stack: &str, stage: &str, mode: Mode<'_>, opts: &Options, progress: &dyn Progress) -> Result<Outcome, EngineError> {
    let destroy = !matches!(mode, Mode::Deploy { .. });
    let at = StageRef { stack, stage, destroy };
    let (recorded, ctx, desired) = match mode {
        Mode::Deploy { stack: spec, artifacts } => {
            // The state and the account are independent reads: together.
            let (recorded, account) = futures::join!(store.load(stack, stage), target.account());
            let recorded = recorded?;
            check_owner(recorded.as_ref(), SDK, stack, stage)?;
            let account = account?;
            if let Some(r) = &recorded
                && r.account.as_deref().is_some_and(|a| a != account)
            {
                return Err(EngineError::Input(format!(
                    "stage `{stage}` of stack `{stack}` was deployed to account {}, but the credentials are for account {account}\n  hint: use the credentials of that account, or another stage name",
                    r.account.as_deref().unwrap_or_default(),
                )));
            }
            let parameters = parameters::resolve(target, spec, stage, recorded.is_some()).await?;
            let ctx = Context { stage: stage.into(), account, region: target.region(), parameters };
            let desired = desired::desired(spec, artifacts, &ctx).map_err(EngineError::Input)?;
            (recorded, ctx, desired)
        }
        Mode::Destroy | Mode::DestroyFrom(_) => {
            let recorded = match mode {
                Mode::DestroyFrom(s) => Some(s),
                _ => store.load(stack, stage).await?,
            };
            check_owner(recorded.as_ref(), SDK, stack, stage)?;
            let ctx = Context {
                stage: stage.into(),
                account: recorded.as_ref().and_then(|r| r.account.clone()).unwrap_or_default(),
                region: recorded.as_ref().and_then(|r| r.region.clone()).unwrap_or_else(|| target.region()),
                parameters: BTreeMap::new(),
            };
            (recorded, ctx, Desired { stack: stack.into(), stage: stage.into(), nodes: Vec::new() })
        }
    };
    if !opts.dry_run {
        target.prepare(&at, recorded.as_ref()).await?;
    }
    let mut recorded = recorded;
    let live = match &mut recorded {
        Some(r) if !destroy => {
            let (live, orphans) = futures::join!(target.observe(r), target.orphans(r));
            for (id, orphan) in orphans? {
                r.resources.insert(id, orphan);
            }
            live?
        }
        _ => BTreeMap::new(),
    };
    let plan = plan::plan(&desired, recorded.as_ref(), &live);
    let current = recorded.unwrap_or_else(|| State::empty(stack, stage, target.name()));
    if opts.dry_run {
        return Ok(Outcome { plan, state: current });
    }
    let state = if plan.is_empty() {
        current
    } else {
        let run = Run::new(&ctx, &desired, store, current, opts.fail_after, progress);
        execute::execute(target, &run, &plan).await?;
        run.into_state()
    };
    if destroy && state.resources.is_empty() {
        store.remove().await?;
    }
    let outcome = Outcome { plan, state };
    target.finish(&at, &outcome).await?;
    Ok(outcome)
}
