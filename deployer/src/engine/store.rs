//! Where a stage's state and deploy lock live: a JSON file under the project
//! (always written: the local copy), plus, for a team, a remote object (the S3
//! state backend) that is the reference. The engine reads and writes state only
//! through a `Store`; targets say which store a stage has.

use std::path::{Path, PathBuf};

use super::lock::{self, Backend, Lock, LockError};
use super::state::{self, State, StateError};
use super::error::EngineError;

/// A shared state backend (the S3 state bucket).
#[async_trait::async_trait]
pub trait RemoteState: Send + Sync {
    /// `s3://bucket/key`, for messages.
    fn location(&self) -> String;
    /// The document, `None` when there is none.
    async fn get(&self) -> Result<Option<String>, EngineError>;
    async fn put(&self, document: &[u8]) -> Result<(), EngineError>;
    async fn delete(&self) -> Result<(), EngineError>;
    /// The stage's lock beside the state.
    fn lock(&self) -> Box<dyn lock::RemoteLock>;
}

pub struct Store {
    /// `aws` or `local`: a state of another target is refused.
    pub target: &'static str,
    pub local: Option<PathBuf>,
    pub remote: Option<Box<dyn RemoteState>>,
    /// After a destroy, the directories of the state file left empty are
    /// removed up to this one (the local cloud leaves nothing behind).
    pub prune_up_to: Option<PathBuf>,
}

impl Store {
    /// A state file (and a lock file beside it).
    pub fn file(target: &'static str, path: PathBuf) -> Store {
        Store { target, local: Some(path), remote: None, prune_up_to: None }
    }

    /// Nothing persisted, no lock: a state that exists only for one run (a
    /// stage rebuilt from tags and destroyed).
    pub fn memory(target: &'static str) -> Store {
        Store { target, local: None, remote: None, prune_up_to: None }
    }

    pub fn location(&self) -> String {
        match (&self.remote, &self.local) {
            (Some(r), _) => r.location(),
            (None, Some(p)) => p.display().to_string(),
            (None, None) => "memory".into(),
        }
    }

    /// The recorded state of the stage; `None` when never deployed. A document
    /// of another stack, stage, target or schema is refused, never overwritten.
    pub async fn load(&self, stack: &str, stage: &str) -> Result<Option<State>, EngineError> {
        if let Some(remote) = &self.remote {
            let Some(text) = remote.get().await? else { return Ok(None) };
            let location = remote.location();
            let st = state::parse(&text, Path::new(&location), stack, stage)?;
            return check_target(st, Path::new(&location), self.target).map(Some).map_err(Into::into);
        }
        match &self.local {
            Some(path) => Ok(state::load(path, stack, stage, self.target)?),
            None => Ok(None),
        }
    }

    /// Write the state (atomically on disk, then to the remote backend).
    pub async fn save(&self, st: &State) -> Result<(), EngineError> {
        if let Some(path) = &self.local {
            state::save(path, st).map_err(|e| EngineError::Operation(format!("cannot write the state file {}: {e}", path.display())))?;
        }
        if let Some(remote) = &self.remote {
            remote.put(&serde_json::to_vec_pretty(st).unwrap_or_default()).await?;
        }
        Ok(())
    }

    /// Remove the state of a destroyed stage.
    pub async fn remove(&self) -> Result<(), EngineError> {
        if let Some(path) = &self.local {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(EngineError::Operation(format!("cannot remove {}: {e}", path.display())));
                }
                _ => {}
            }
        }
        if let Some(remote) = &self.remote {
            remote.delete().await?;
        }
        Ok(())
    }

    /// Remove the state file's directories left empty, up to `prune_up_to`
    /// (after the lock beside the state is released).
    pub fn prune(&self) {
        let (Some(path), Some(root)) = (&self.local, &self.prune_up_to) else { return };
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(root)) {
            if std::fs::remove_dir(d).is_err() {
                return;
            }
            dir = d.parent();
        }
    }

    /// Take the stage's deploy lock (`None` for a store in memory).
    pub async fn lock(&self, stack: &str, stage: &str, command: &str) -> Result<Option<Lock>, LockError> {
        let backend = match (&self.remote, &self.local) {
            (Some(r), _) => Backend::Remote(r.lock()),
            (None, Some(p)) => Backend::Local(p.with_extension("lock")),
            (None, None) => return Ok(None),
        };
        Lock::acquire(backend, stack, stage, &lock::holder(command)).await.map(Some)
    }
}

fn check_target(st: State, path: &Path, target: &str) -> Result<State, StateError> {
    if st.target != target {
        return Err(StateError::Target { path: path.into(), target: target.into(), found: st.target });
    }
    Ok(st)
}
