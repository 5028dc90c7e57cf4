//! What differs between AWS and the local cloud, as one trait: the engine's
//! pipeline (`pipeline::run`) calls nothing else of a target.

use std::collections::BTreeMap;

use super::desired::Node;
use super::error::EngineError;
use super::plan::{Live, Step};
use super::run::{Outcome, Run};
use super::state::{Recorded, State};
use super::store::Store;
use crate::stack::Stack;

/// Where a stage is deployed, and how: everything that differs between AWS and
/// the local cloud. One target value serves one stack (one region).
#[async_trait::async_trait]
pub trait Target: Send + Sync {
    /// `aws` or `local`, as state files record it.
    fn name(&self) -> &'static str;
    /// Where the stage's state and lock live.
    fn store(&self, stack: &Stack, stage: &str) -> Store;
    /// The region this target deploys the stack to.
    fn region(&self) -> String;
    /// The account (AWS: from the credentials).
    async fn account(&self) -> Result<String, EngineError>;
    /// The value of `var` in the environment of the deployed function `function`
    /// (physical name): `None` when no such function is deployed. A read that
    /// fails is an error: a secret is never rotated because a read failed.
    async fn deployed_env(&self, function: &str, var: &str) -> Result<Option<String>, EngineError>;
    /// Before a (non dry) run of a stage, deploy or destroy.
    async fn prepare(&self, _stage: &StageRef<'_>, _recorded: Option<&State>) -> Result<(), EngineError> {
        Ok(())
    }
    /// What is live of each recorded resource (absent from the map: trusted).
    async fn observe(&self, recorded: &State) -> Result<BTreeMap<String, Live>, EngineError>;
    /// Objects of the stage that the state does not list although they carry
    /// its name and tags (a create that reached the cloud after its deploy was
    /// killed and after the next deploy had looked for it), as records the
    /// plan deletes. Observed together with `observe`.
    async fn orphans(&self, _recorded: &State) -> Result<Vec<(String, Recorded)>, EngineError> {
        Ok(Vec::new())
    }
    /// Create or update (`step.action`) one node; returns what to record.
    async fn apply(&self, run: &Run<'_>, node: &Node, step: &Step) -> Result<Recorded, EngineError>;
    /// Delete one recorded resource (gone already is fine).
    async fn delete(&self, run: &Run<'_>, id: &str, recorded: &Recorded) -> Result<(), EngineError>;
    /// After a (non dry) run: the local target serves the new version, or
    /// removes the stage's files; AWS checks a destroyed stage left nothing.
    async fn finish(&self, _stage: &StageRef<'_>, _outcome: &Outcome) -> Result<(), EngineError> {
        Ok(())
    }

    // ---- what the commands need of a deployed stage ----

    /// Make sure the deployed stage answers (the local target starts its
    /// server again if it died).
    async fn ready(&self, _state: &State) -> Result<(), EngineError> {
        Ok(())
    }
    /// Invoke a deployed function (physical name) synchronously.
    async fn invoke(&self, function: &str, payload: Vec<u8>, log: bool) -> Result<Invoked, EngineError>;
    /// The log events of a deployed function (physical name) matching
    /// `query`, oldest first; none when it has no log group.
    async fn log_events(&self, function: &str, query: &LogQuery) -> Result<Vec<LogEvent>, EngineError>;
    /// What the target adds to a stage's report (the local server): a line of
    /// text and its JSON form.
    fn about(&self) -> Option<(String, serde_json::Value)> {
        None
    }
    /// A sandbox on this machine: destroying needs no confirmation.
    fn sandbox(&self) -> bool {
        false
    }
}

/// The answer of an invoke.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub body: String,
    /// Lambda's `FunctionError` (`Unhandled`), when the function failed.
    pub function_error: Option<String>,
    /// The tail of the function's log, when asked for.
    pub log: Option<String>,
}

/// Which log events `stackctl logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only events at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only events whose message contains this text.
    pub filter: Option<String>,
}

/// One line a function wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogEvent {
    /// Unique within the group (CloudWatch's event id; locally, the line's offset).
    pub id: String,
    pub timestamp_ms: i64,
    pub stream: String,
    pub message: String,
}

/// The stage a run works on, as hooks see it.
pub struct StageRef<'a> {
    pub stack: &'a str,
    pub stage: &'a str,
    pub destroy: bool,
}
