//! How an engine run fails.

use super::lock::LockError;
use super::state::StateError;

/// How a run failed. `Input` is the user's to fix (exit 2); the rest are
/// operations that failed (exit 1). A target's error keeps its own message.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Operation(String),
    #[error(transparent)]
    Target(Box<dyn std::error::Error + Send + Sync>),
}

impl EngineError {
    /// The user can fix it (input, a state file to look at): exit code 2.
    pub fn is_input(&self) -> bool {
        matches!(self, EngineError::Input(_) | EngineError::State(_))
    }
}
