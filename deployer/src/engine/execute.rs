//! The executor: runs exactly the plan on a target, level by level (the steps
//! of one level together), and records the state after every step that
//! succeeded, so a run stopped at any point converges when run again.

use std::collections::BTreeMap;

use super::error::EngineError;
use super::plan::{Action, Plan, Step};
use super::run::Run;
use super::target::Target;
use crate::progress::Event;

/// Run the plan. On error, every step that completed is recorded.
pub async fn execute(target: &dyn Target, run: &Run<'_>, plan: &Plan) -> Result<(), EngineError> {
    let mut levels: BTreeMap<usize, Vec<&Step>> = BTreeMap::new();
    for s in plan.changes() {
        levels.entry(s.level).or_default().push(s);
    }
    for steps in levels.into_values() {
        let results = futures::future::join_all(steps.iter().map(|s| step(target, run, s))).await;
        for r in results {
            r?;
        }
    }
    Ok(())
}

async fn step(target: &dyn Target, run: &Run<'_>, step: &Step) -> Result<(), EngineError> {
    {
        let mut started = run.started.lock().unwrap_or_else(|p| p.into_inner());
        if run.fail_after.is_some_and(|n| *started >= n) {
            return Err(EngineError::Operation(format!("{}: injected failure before this step", step.id)));
        }
        *started += 1;
    }
    run.progress.report(Event::Started { id: &step.id, action: step.action.name() });
    let clock = std::time::Instant::now();
    let result = apply_step(target, run, step).await;
    match &result {
        Ok(()) => run.progress.report(Event::Finished { id: &step.id, done: step.action.past_tense(), seconds: clock.elapsed().as_secs_f64() }),
        Err(e) => run.progress.report(Event::Failed { id: &step.id, error: &e.to_string() }),
    }
    result
}

async fn apply_step(target: &dyn Target, run: &Run<'_>, step: &Step) -> Result<(), EngineError> {
    match step.action {
        Action::Delete => {
            if let Some(r) = run.recorded(&step.id) {
                target.delete(run, &step.id, &r).await?;
            }
            run.record(&step.id, None).await
        }
        Action::Create | Action::Update | Action::Replace => {
            let node = run.desired.get(&step.id).ok_or_else(|| EngineError::Operation(format!("{} is not desired", step.id)))?;
            if step.action == Action::Replace
                && let Some(r) = run.recorded(&step.id)
            {
                target.delete(run, &step.id, &r).await?;
            }
            let recorded = target.apply(run, node, step).await?;
            run.record(&step.id, Some(recorded)).await
        }
        Action::NoOp => Ok(()),
    }
}
