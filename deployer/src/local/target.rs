//! `LocalTarget`: the engine's `Target` on the local cloud. Steps write the
//! stage's files (`resources`); around a run, the stage's server is stopped,
//! started or reloaded (`server::process`), and its port chosen so the URL stays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::cloud;
use super::resources::{remove_dir, remove_file, Files};
use super::server::process;
use crate::engine::desired::Node;
use crate::engine::error::EngineError;
use crate::engine::kind::Kind;
use crate::engine::plan::{Live, Step};
use crate::engine::run::{Outcome, Run};
use crate::engine::state::{Recorded, State};
use crate::engine::store::Store;
use crate::engine::target::{Invoked, LogEvent, LogQuery, StageRef, Target};
use crate::stack::Stack;

/// How the stage's server is run.
#[derive(Debug, Clone, Default)]
pub struct Serving {
    /// Do not start the background server (`serve` runs it in the foreground).
    pub no_server: bool,
    /// Port for the API (default: the stage's previous port, else a free one).
    pub port: Option<u16>,
}

/// The local cloud, for one stack and stage of a project.
pub struct LocalTarget {
    pub project: PathBuf,
    region: String,
    files: Files,
    state_path: PathBuf,
    serving: Serving,
    /// The API's port, chosen before planning.
    port: Mutex<Option<u16>>,
}

impl LocalTarget {
    pub fn new(project: &Path, stack: &Stack, stage: &str, serving: Serving) -> LocalTarget {
        LocalTarget {
            project: project.to_path_buf(),
            region: stack.region.clone().unwrap_or_else(|| cloud::DEFAULT_REGION.into()),
            files: Files { dir: cloud::stage_dir(project, &stack.name, stage) },
            state_path: cloud::state_path(project, &stack.name, stage),
            serving,
            port: Mutex::new(None),
        }
    }

    /// The stage's directory under `.stackctl/local/`.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    fn chosen_port(&self) -> Option<u16> {
        *self.port.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn step_error(&self, id: &str, what: &str, e: std::io::Error) -> EngineError {
        EngineError::Operation(format!(
            "{id}: cannot {what} the local resource under {}: {e}\n  hint: check the directory's permissions and free space, then deploy again (finished steps are recorded)",
            self.files.dir.display()
        ))
    }
}

#[async_trait::async_trait]
impl Target for LocalTarget {
    fn name(&self) -> &'static str {
        "local"
    }

    fn store(&self, _stack: &Stack, _stage: &str) -> Store {
        let mut store = Store::file("local", self.state_path.clone());
        store.prune_up_to = Some(self.project.join(".stackctl"));
        store
    }

    fn region(&self) -> String {
        self.region.clone()
    }

    async fn account(&self) -> Result<String, EngineError> {
        Ok(cloud::ACCOUNT.into())
    }

    async fn deployed_env(&self, function: &str, var: &str) -> Result<Option<String>, EngineError> {
        self.files.function_env(function, var)
    }

    /// A destroy stops the stage's servers first. A deploy stops a server of the
    /// stage that does not answer (verified ours by its command line) before its
    /// port is considered, so the stage keeps it, then picks the port.
    async fn prepare(&self, at: &StageRef<'_>, recorded: Option<&State>) -> Result<(), EngineError> {
        let dir = &self.files.dir;
        if at.destroy {
            process::stop(dir).map_err(EngineError::Operation)?;
            return Ok(());
        }
        let serve = !self.serving.no_server;
        let server = if serve { process::running(dir) } else { None };
        let released = server.is_none() && serve && process::stop(dir).map_err(EngineError::Operation)? > 0;
        let mut port = choose_port(dir, recorded, self.serving.port, released)?;
        // A server of this stage that died left its port recorded: if something
        // else took it meanwhile, the stage moves to a new port.
        if server.is_none() && serve && self.serving.port.is_none() && !port_is_free(port) {
            port = free_port().map_err(|e| EngineError::Operation(format!("no free loopback port: {e}")))?;
        }
        *self.port.lock().unwrap_or_else(|p| p.into_inner()) = Some(port);
        Ok(())
    }

    async fn observe(&self, recorded: &State) -> Result<BTreeMap<String, Live>, EngineError> {
        let mut live = self.files.observe(recorded);
        // The URL changes with the port: the deployment is made again.
        if let Some(port) = self.chosen_port() {
            for (id, r) in &recorded.resources {
                let moved = match r.kind {
                    Kind::Deployment => r.outputs.get("port").is_some_and(|p| *p != port.to_string()),
                    Kind::Role | Kind::Bucket | Kind::Function | Kind::RestApi | Kind::ApiResource | Kind::Method | Kind::Permission | Kind::GatewayResponses | Kind::LogGroup | Kind::Schedule | Kind::CloudformationStack => false,
                };
                if moved && live.get(id) == Some(&Live::Present) {
                    live.insert(id.clone(), Live::Outdated(format!("the local API moves to port {port}")));
                }
            }
        }
        Ok(live)
    }

    async fn apply(&self, run: &Run<'_>, node: &Node, _step: &Step) -> Result<Recorded, EngineError> {
        // `prepare` chose it (steps run only after it).
        let port = self.chosen_port().unwrap_or_default();
        self.files.write(run, node, port).map_err(|e| self.step_error(&node.id, "write", e))
    }

    async fn delete(&self, _run: &Run<'_>, id: &str, recorded: &Recorded) -> Result<(), EngineError> {
        self.files.delete(id, recorded).map_err(|e| self.step_error(id, "delete", e))
    }

    /// The stage's server runs and answers: one that died is started again on
    /// its recorded port.
    async fn ready(&self, state: &State) -> Result<(), EngineError> {
        let dir = &self.files.dir;
        if process::running(dir).is_some() {
            return Ok(());
        }
        let Some(port) = recorded_port(state).filter(|p| *p != 0) else {
            return Err(EngineError::Input(format!(
                "stage `{}` of stack `{}` has no local server port recorded\n  hint: run `stackctl deploy --target local --stage {}`",
                state.stage, state.stack, state.stage
            )));
        };
        eprintln!("starting the local server of stack `{}` stage `{}` again", state.stack, state.stage);
        process::ensure(dir, port, false).map_err(EngineError::Operation)?;
        process::running(dir).map(|_| ()).ok_or_else(|| EngineError::Operation("the local server did not start".into()))
    }

    async fn invoke(&self, function: &str, payload: Vec<u8>, log: bool) -> Result<Invoked, EngineError> {
        let dir = &self.files.dir;
        let server = process::running(dir).ok_or_else(|| EngineError::Operation("the local server is not running".into()))?;
        let mut r = process::control(&server, &format!("/__stackctl/invoke/{function}"))
            .config()
            .timeout_global(Some(std::time::Duration::from_secs(960)))
            .build()
            .send(&payload[..])
            .map_err(|e| EngineError::Operation(format!("function {function}: the local server did not answer: {e}")))?;
        let function_error = r.headers().get("x-amz-function-error").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().unwrap_or_default();
        if status != 200 {
            return Err(EngineError::Operation(format!("function {function}: the local Lambda answered {status}: {body}")));
        }
        let log = log.then(|| {
            let text = std::fs::read_to_string(process::log_path(dir)).unwrap_or_default();
            let prefix = format!("[{function}] ");
            let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        });
        Ok(Invoked { body, function_error, log })
    }

    async fn log_events(&self, function: &str, query: &LogQuery) -> Result<Vec<LogEvent>, EngineError> {
        super::logs::read(&self.files.dir, function, query).map_err(|e| EngineError::Operation(format!("log group of {function}: cannot read it: {e}")))
    }

    fn about(&self) -> Option<(String, serde_json::Value)> {
        let dir = &self.files.dir;
        let log = display(&process::log_path(dir));
        Some(match process::running(dir) {
            Some(s) => (format!("pid {} on port {}, log {log}", s.pid, s.port), serde_json::json!({ "pid": s.pid, "port": s.port, "log": log })),
            None => ("not running (`stackctl deploy --target local` starts it)".into(), serde_json::Value::Null),
        })
    }

    fn sandbox(&self) -> bool {
        true
    }

    /// A deploy makes sure the stage's server runs the new version; a destroy
    /// removes what no resource accounts for (the server's log, objects'
    /// metadata), the state, and the directories left empty.
    async fn finish(&self, at: &StageRef<'_>, outcome: &Outcome) -> Result<(), EngineError> {
        let dir = &self.files.dir;
        if !at.destroy {
            if !self.serving.no_server
                && let Some(port) = self.chosen_port()
            {
                process::ensure(dir, port, !outcome.plan.is_empty()).map_err(EngineError::Operation)?;
            }
            return Ok(());
        }
        remove_dir(dir).map_err(|e| EngineError::Operation(format!("cannot remove {}: {e}", dir.display())))?;
        remove_file(&self.state_path).map_err(|e| EngineError::Operation(format!("cannot remove {}: {e}", self.state_path.display())))?;
        // The stack's folder, when this was its last stage (the state's folders
        // go after the lock is released: `Store::prune`).
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
        Ok(())
    }
}

/// The port the stage's deployment was recorded with.
fn recorded_port(state: &State) -> Option<u16> {
    state.resources.get("deployment").and_then(|d| d.outputs.get("port")).and_then(|p| p.parse().ok())
}

/// A free loopback port.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The port of the stage's API: its running server's, else the recorded one
/// when still free, else a new free port. When this deploy has just stopped the
/// stage's own server (`released`), the kernel may hold its port for a moment
/// after the process is gone: it is waited for (up to 3 s) so the URL stays.
fn choose_port(dir: &Path, recorded: Option<&State>, wanted: Option<u16>, released: bool) -> Result<u16, EngineError> {
    if let Some(p) = wanted {
        return Ok(p);
    }
    if let Some(s) = process::running(dir) {
        return Ok(s.port);
    }
    let previous = recorded.and_then(recorded_port);
    let free = |p: u16| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(if released { 3 } else { 0 });
        loop {
            if port_is_free(p) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    match previous {
        Some(p) if free(p) => Ok(p),
        _ => free_port().map_err(|e| EngineError::Operation(format!("no free loopback port: {e}"))),
    }
}


fn display(p: &Path) -> String {
    p.strip_prefix("./").unwrap_or(p).display().to_string()
}
