//! One deploy at a time per stage. The lock is taken with an atomic create (a file
//! created with O_EXCL locally, an S3 `PutObject` with `If-None-Match: *` for the
//! team backend), so two deploys of one stage can never interleave; the second
//! fails at once, naming the holder.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("stage `{stage}` of stack `{stack}` is locked by another deploy: {holder}\n  hint: wait for it to finish; if that process is gone for good, remove the lock at {location}")]
    Held { stack: String, stage: String, holder: String, location: String },
    #[error("cannot take the deploy lock at {location}: {message}")]
    Io { location: String, message: String },
    /// The remote backend failed (its message names the call).
    #[error("{0}")]
    Remote(String),
}

/// A lock object in a shared backend (the S3 state bucket), created atomically.
#[async_trait::async_trait]
pub trait RemoteLock: Send + Sync {
    fn location(&self) -> String;
    /// Create the lock object holding `holder` unless it exists: `Ok(None)` when
    /// taken, `Ok(Some(current holder))` when someone holds it.
    async fn create(&self, holder: &str) -> Result<Option<String>, LockError>;
    async fn delete(&self);
}

/// Where the lock lives.
pub enum Backend {
    Local(PathBuf),
    Remote(Box<dyn RemoteLock>),
}

impl Backend {
    fn location(&self) -> String {
        match self {
            Backend::Local(p) => p.display().to_string(),
            Backend::Remote(r) => r.location(),
        }
    }
}

/// This machine's name, as lock holders record it.
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "unknown-host".into())
}

/// Who holds a lock: user, host, process and time, for the other deploy's message.
pub fn holder(command: &str) -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = hostname();
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    format!("{user}@{host} pid {} ({command}, since unix time {since})", std::process::id())
}

pub struct Lock {
    backend: Backend,
    released: bool,
}

impl Lock {
    pub async fn acquire(backend: Backend, stack: &str, stage: &str, holder: &str) -> Result<Lock, LockError> {
        let location = backend.location();
        let held = |holder: String| LockError::Held { stack: stack.into(), stage: stage.into(), holder, location: location.clone() };
        match &backend {
            Backend::Local(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| LockError::Io { location: location.clone(), message: e.to_string() })?;
                }
                for attempt in 0..2 {
                    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                        Ok(mut f) => {
                            use std::io::Write;
                            f.write_all(holder.as_bytes()).map_err(|e| LockError::Io { location: location.clone(), message: e.to_string() })?;
                            return Ok(Lock { backend, released: false });
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            let current = std::fs::read_to_string(path).unwrap_or_default();
                            // A holder on this machine whose process is gone left a stale lock.
                            if attempt == 0 && is_stale_here(&current) {
                                let _ = std::fs::remove_file(path);
                                continue;
                            }
                            return Err(held(current));
                        }
                        Err(e) => return Err(LockError::Io { location: location.clone(), message: e.to_string() }),
                    }
                }
                Err(held("unknown".into()))
            }
            Backend::Remote(remote) => match remote.create(holder).await? {
                None => Ok(Lock { backend, released: false }),
                Some(current) => Err(held(current)),
            },
        }
    }

    pub async fn release(mut self) {
        self.released = true;
        match &self.backend {
            Backend::Local(path) => {
                let _ = std::fs::remove_file(path);
            }
            Backend::Remote(remote) => remote.delete().await,
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // A local lock is released even when the deploy fails with an error;
        // a remote lock needs the async release (done on every path of `engine::run`).
        if !self.released
            && let Backend::Local(path) = &self.backend
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn is_stale_here(holder: &str) -> bool {
    let host = hostname();
    let Some((who, rest)) = holder.split_once(" pid ") else { return false };
    if !who.ends_with(&format!("@{host}")) {
        return false;
    }
    let pid: Option<u32> = rest.split_whitespace().next().and_then(|p| p.parse().ok());
    pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_local_lock_fails_naming_the_holder_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("production.lock");
        let first = Lock::acquire(Backend::Local(path.clone()), "car-search", "production", &holder("deploy")).await.unwrap();
        let err = Lock::acquire(Backend::Local(path.clone()), "car-search", "production", "someone else").await.err().unwrap().to_string();
        assert!(err.contains("locked by another deploy") && err.contains(&format!("pid {}", std::process::id())), "{err}");
        first.release().await;
        Lock::acquire(Backend::Local(path), "car-search", "production", "next").await.unwrap().release().await;
    }

    #[tokio::test]
    async fn a_lock_left_by_a_dead_process_on_this_host_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.lock");
        let host = super::hostname();
        std::fs::write(&path, format!("me@{host} pid 4000000 (deploy, since unix time 1)")).unwrap();
        Lock::acquire(Backend::Local(path), "s", "dev", "new").await.unwrap().release().await;
    }
}
