//! A run in progress, as a target's steps see it: the context, the desired
//! graph, and the state recorded so far, saved after every step.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::desired::{Context, Desired, Node, Spec};
use super::error::EngineError;
use super::plan::Plan;
use super::state::{Recorded, State};
use super::store::Store;
use crate::progress::Progress;

/// One run in progress, as a target's steps see it: the context, the desired
/// graph, and the state recorded so far (other resources' ids and outputs).
pub struct Run<'a> {
    pub ctx: &'a Context,
    pub desired: &'a Desired,
    store: &'a Store,
    state: Mutex<State>,
    /// Saves one at a time, each of the latest state: never an older snapshot last.
    saving: tokio::sync::Mutex<()>,
    pub(super) fail_after: Option<usize>,
    pub(super) started: Mutex<usize>,
    pub progress: &'a dyn Progress,
}

impl<'a> Run<'a> {
    pub fn new(ctx: &'a Context, desired: &'a Desired, store: &'a Store, state: State, fail_after: Option<usize>, progress: &'a dyn Progress) -> Run<'a> {
        Run { ctx, desired, store, state: Mutex::new(state), saving: tokio::sync::Mutex::new(()), fail_after, started: Mutex::new(0), progress }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn into_state(self) -> State {
        self.state.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    /// What is recorded for `id` now.
    pub fn recorded(&self, id: &str) -> Option<Recorded> {
        self.lock().resources.get(id).cloned()
    }

    /// An output of a recorded resource: `id` (its physical id), `arn`, or a key
    /// of its outputs.
    pub fn output(&self, id: &str, key: &str) -> Result<String, EngineError> {
        let st = self.lock();
        let r = st.resources.get(id).ok_or_else(|| EngineError::Operation(format!("{id} is not deployed yet")))?;
        match key {
            "id" => Ok(r.physical_id.clone()),
            "arn" => r.arn.clone().ok_or_else(|| EngineError::Operation(format!("{id} has no ARN recorded"))),
            _ => r.outputs.get(key).cloned().ok_or_else(|| EngineError::Operation(format!("{id} has no `{key}` recorded"))),
        }
    }

    /// The physical name of a function (known from the desired graph before it
    /// exists, so what refers to it need not wait for it).
    pub fn function_name(&self, function: &str) -> Result<String, EngineError> {
        match self.desired.get(function).map(|n| &n.spec) {
            Some(Spec::Function { name, .. }) => Ok(name.clone()),
            _ => self.output(function, "id"),
        }
    }

    /// The physical name of a role, likewise.
    pub fn role_name(&self, role: &str) -> Result<String, EngineError> {
        match self.desired.get(role).map(|n| &n.spec) {
            Some(Spec::Role { name, .. }) => Ok(name.clone()),
            _ => self.output(role, "id"),
        }
    }

    /// Record `value` for `id` (or remove it) and save the state.
    pub async fn record(&self, id: &str, value: Option<Recorded>) -> Result<(), EngineError> {
        let _one_at_a_time = self.saving.lock().await;
        let snapshot = {
            let mut st = self.lock();
            match value {
                Some(v) => st.resources.insert(id.to_owned(), v),
                None => st.resources.remove(id),
            };
            st.account = Some(self.ctx.account.clone());
            st.region = Some(self.ctx.region.clone());
            st.clone()
        };
        self.store.save(&snapshot).await
    }

    /// What to record for a node.
    pub fn recorded_for(node: &Node, physical_id: String, arn: Option<String>, outputs: BTreeMap<String, String>) -> Recorded {
        Recorded { kind: node.spec.kind(), physical_id, arn, hash: node.hash.clone(), depends_on: node.depends_on.clone(), outputs }
    }
}


/// What a run did: its plan, and the state it left.
#[derive(Debug)]
pub struct Outcome {
    pub plan: Plan,
    pub state: State,
}
