//! Deploy and destroy on the local cloud with the same engine as on AWS: the same
//! desired graph, the same planner (observation finds what was deleted or edited
//! by hand under `.stackctl/local/`), the same state file format and deploy lock.
//! Only the executor differs: each step writes or removes the files that stand
//! for the AWS object (see `cloud`), then the stage's server reloads them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cloud::{self, ApiFile, FunctionFile, LifecycleFile, MethodFile, PermissionFile, RoleFile, StageFile};
use crate::build::package::sha256_hex;
use crate::build::Artifact;
use crate::engine::desired::{self, Context, Desired, MethodIntegration, Node, Spec};
use crate::engine::lock::{self, Lock};
use crate::engine::plan::{self, Action, Live, Plan, Step};
use crate::engine::state::{self, Recorded, State};
use crate::stack::Stack;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("{0}")]
    Input(String),
    #[error("{id}: {message}\n  hint: {hint}")]
    Step { id: String, message: String, hint: String },
    #[error("{0}")]
    Server(String),
}

/// What a local deploy or destroy did.
pub struct Outcome {
    pub plan: Plan,
    pub state: State,
    /// The stage's invoke URL when it has an API.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dry_run: bool,
    pub progress: bool,
    /// Do not start the background server (`serve` runs it in the foreground).
    pub no_server: bool,
    /// Port for the API (default: the stage's previous port, else a free one).
    pub port: Option<u16>,
}

/// The deploy context of the local cloud: account 000000000000, the stack's region.
pub fn context(stack: &Stack, stage: &str, project: &Path) -> Result<Context, LocalError> {
    let region = stack.region.clone().unwrap_or_else(|| cloud::DEFAULT_REGION.into());
    let parameters = resolve_parameters(stack, stage, project)?;
    Ok(Context { stage: stage.into(), account: cloud::ACCOUNT.into(), region, parameters })
}

/// Parameters as on AWS: the deployer's environment, else the default; a
/// `generate: true` secret keeps the value the deployed function already has
/// (read back from its local configuration), or gets a new random one.
fn resolve_parameters(stack: &Stack, stage: &str, project: &Path) -> Result<BTreeMap<String, String>, LocalError> {
    let dir = cloud::stage_dir(project, &stack.name, stage);
    let mut out = BTreeMap::new();
    for p in &stack.parameters {
        if let Some(v) = std::env::var(&p.env).ok().filter(|v| !v.is_empty()) {
            out.insert(p.name.clone(), v);
        } else if p.generate {
            let existing = stack.functions.iter().find_map(|f| {
                let (var, _) = f.environment.iter().find(|(_, v)| matches!(v, crate::stack::model::EnvValue::Parameter(n) if *n == p.name))?;
                let name = crate::naming::function_name(&stack.name, stage, &f.name);
                let config: FunctionFile = cloud::read_json(&dir.join("functions").join(&name).join("config.json")).ok()?;
                config.environment.get(var).cloned()
            });
            out.insert(p.name.clone(), existing.unwrap_or_else(|| format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())));
        } else if let Some(d) = &p.default {
            out.insert(p.name.clone(), d.clone());
        } else {
            return Err(LocalError::Input(format!("parameter `{}` has no value\n  hint: set the environment variable {} before deploying", p.name, p.env)));
        }
    }
    Ok(out)
}

/// Size and modification time of a file, as recorded after writing it.
pub fn stamp(meta: &std::fs::Metadata) -> String {
    let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{}:{modified}", meta.len())
}

fn policy_digest(policy: &serde_json::Value) -> String {
    sha256_hex(&serde_json::to_vec(policy).unwrap_or_default())
}

/// What is on disk for each recorded resource: missing, or edited by hand.
pub fn observe(dir: &Path, recorded: &State) -> BTreeMap<String, Live> {
    let mut live = BTreeMap::new();
    for (id, r) in &recorded.resources {
        let status = match r.kind.as_str() {
            "role" => match cloud::read_json::<RoleFile>(&dir.join("roles").join(format!("{}.json", r.physical_id))) {
                Err(_) => Live::Missing,
                Ok(f) if r.outputs.get("policy_sha256").is_some_and(|d| *d != policy_digest(&f.policy)) => Live::Drifted("inline policy edited by hand".into()),
                Ok(_) => Live::Present,
            },
            "bucket" => if dir.join("buckets").join(&r.physical_id).is_dir() { Live::Present } else { Live::Missing },
            "function" => {
                let fdir = dir.join("functions").join(&r.physical_id);
                let bootstrap = fdir.join("bootstrap");
                match (std::fs::metadata(&bootstrap), cloud::read_json::<FunctionFile>(&fdir.join("config.json"))) {
                    (Ok(meta), Ok(_)) => {
                        // Unchanged size and time: the file we wrote. Otherwise compare contents.
                        let same_file = r.outputs.get("bootstrap_stamp").is_some_and(|s| *s == stamp(&meta));
                        if same_file || std::fs::read(&bootstrap).is_ok_and(|code| r.outputs.get("bootstrap_sha256") == Some(&sha256_hex(&code))) {
                            Live::Present
                        } else {
                            Live::Drifted("code replaced by hand".into())
                        }
                    }
                    _ => Live::Missing,
                }
            }
            "rest_api" | "api_resource" => match cloud::read_json::<ApiFile>(&dir.join("api").join("api.json")) {
                Ok(a) if r.kind == "api_resource" || a.id == r.physical_id => Live::Present,
                _ => Live::Missing,
            },
            "method" => if dir.join("api").join("methods").join(cloud::file_name(id)).is_file() { Live::Present } else { Live::Missing },
            "permission" => if dir.join("api").join("permissions").join(format!("{}.json", r.physical_id)).is_file() { Live::Present } else { Live::Missing },
            "gateway_responses" => if dir.join("api").join("gateway-responses.json").is_file() { Live::Present } else { Live::Missing },
            "deployment" => if dir.join("api").join("stage.json").is_file() { Live::Present } else { Live::Missing },
            _ => Live::Present,
        };
        live.insert(id.clone(), status);
    }
    live
}

/// The executor of the local cloud: applies a plan's steps to the stage directory.
struct Executor<'a> {
    dir: PathBuf,
    ctx: &'a Context,
    desired: &'a Desired,
    state: State,
    state_path: PathBuf,
    port: u16,
    progress: bool,
}

impl Executor<'_> {
    fn run(&mut self, plan: &Plan) -> Result<(), LocalError> {
        let mut steps: Vec<&Step> = plan.changes().collect();
        // Level order: every step after the steps it depends on (deletes run in
        // the plan's reverse order already).
        steps.sort_by_key(|s| s.level);
        for step in steps {
            let started = std::time::Instant::now();
            match step.action {
                Action::Delete => {
                    if let Some(r) = self.state.resources.get(&step.id).cloned() {
                        self.delete(&step.id, &r).map_err(|e| self.io_error(&step.id, "delete", e))?;
                    }
                    self.record(&step.id, None)?;
                }
                Action::Create | Action::Update | Action::Replace => {
                    let node = self.desired.get(&step.id).ok_or_else(|| LocalError::Input(format!("{} is not desired", step.id)))?;
                    if step.action == Action::Replace
                        && let Some(r) = self.state.resources.get(&step.id).cloned()
                    {
                        self.delete(&step.id, &r).map_err(|e| self.io_error(&step.id, "delete", e))?;
                    }
                    let recorded = self.apply(node).map_err(|e| self.io_error(&step.id, "write", e))?;
                    self.record(&step.id, Some(recorded))?;
                }
                Action::NoOp => {}
            }
            if self.progress {
                eprintln!("  {:<8} {:<36} {:>6.3}s", step.action.past_tense(), step.id, started.elapsed().as_secs_f64());
            }
        }
        Ok(())
    }

    fn io_error(&self, id: &str, what: &str, e: std::io::Error) -> LocalError {
        LocalError::Step {
            id: id.into(),
            message: format!("cannot {what} the local resource under {}: {e}", self.dir.display()),
            hint: "check the directory's permissions and free space, then deploy again (finished steps are recorded)".into(),
        }
    }

    fn record(&mut self, id: &str, value: Option<Recorded>) -> Result<(), LocalError> {
        match value {
            Some(v) => self.state.resources.insert(id.to_owned(), v),
            None => self.state.resources.remove(id),
        };
        self.state.account = Some(self.ctx.account.clone());
        self.state.region = Some(self.ctx.region.clone());
        state::save(&self.state_path, &self.state).map_err(|e| LocalError::Step {
            id: id.into(),
            message: format!("cannot write the state file {}: {e}", self.state_path.display()),
            hint: "check the directory's permissions and free space".into(),
        })
    }

    fn output(&self, id: &str) -> std::io::Result<String> {
        self.state.resources.get(id).map(|r| r.physical_id.clone()).ok_or_else(|| std::io::Error::other(format!("{id} is not deployed yet")))
    }

    /// A desired function's physical name (known before the function exists).
    fn function_name(&self, function: &str) -> std::io::Result<String> {
        match self.desired.get(function).map(|n| &n.spec) {
            Some(Spec::Function { name, .. }) => Ok(name.clone()),
            _ => self.output(function),
        }
    }

    fn recorded(node: &Node, physical_id: String, arn: Option<String>, outputs: BTreeMap<String, String>) -> Recorded {
        Recorded { kind: plan::kind_of(&node.spec).into(), physical_id, arn, hash: node.hash.clone(), depends_on: node.depends_on.clone(), outputs }
    }

    fn apply(&self, node: &Node) -> std::io::Result<Recorded> {
        let (account, region) = (&self.ctx.account, &self.ctx.region);
        match &node.spec {
            Spec::Role { name, path, policy, .. } => {
                let file = self.dir.join("roles").join(format!("{name}.json"));
                // A role keeps its access key across updates (functions keep running).
                let (access_key, secret_key) = match cloud::read_json::<RoleFile>(&file) {
                    Ok(old) => (old.access_key, old.secret_key),
                    Err(_) => (format!("LSIA{}", cloud::random_id(16, true)), cloud::random_id(40, false)),
                };
                let arn = format!("arn:aws:iam::{account}:role{path}{name}");
                cloud::write_json(&file, &RoleFile { name: name.clone(), arn: arn.clone(), policy: policy.clone(), access_key, secret_key }, true)?;
                let outputs = [("policy_sha256".to_string(), policy_digest(policy))].into();
                Ok(Self::recorded(node, name.clone(), Some(arn), outputs))
            }
            Spec::Bucket { name, lifecycle } => {
                std::fs::create_dir_all(self.dir.join("buckets").join(name))?;
                cloud::write_json(&self.dir.join("lifecycle").join(format!("{name}.json")), &LifecycleFile { bucket: name.clone(), rules: lifecycle.clone() }, false)?;
                Ok(Self::recorded(node, name.clone(), Some(format!("arn:aws:s3:::{name}")), BTreeMap::new()))
            }
            Spec::Function { name, role, memory, timeout, environment, code_sha256, zip, .. } => {
                let fdir = self.dir.join("functions").join(name);
                std::fs::create_dir_all(&fdir)?;
                let code = extract_bootstrap(zip)?;
                crate::build::write_atomic(&fdir.join("bootstrap"), &code)?;
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(fdir.join("bootstrap"), std::fs::Permissions::from_mode(0o755))?;
                }
                let arn = format!("arn:aws:lambda:{region}:{account}:function:{name}");
                let config = FunctionFile {
                    name: name.clone(),
                    arn: arn.clone(),
                    role: match self.desired.get(role).map(|n| &n.spec) {
                        Some(Spec::Role { name, .. }) => name.clone(),
                        _ => self.output(role)?,
                    },
                    memory: *memory,
                    timeout: *timeout,
                    environment: environment.clone(),
                    code_sha256: code_sha256.clone(),
                };
                cloud::write_json(&fdir.join("config.json"), &config, true)?;
                let meta = std::fs::metadata(fdir.join("bootstrap"))?;
                let outputs = [
                    ("bootstrap_sha256".to_string(), sha256_hex(&code)),
                    ("bootstrap_stamp".to_string(), stamp(&meta)),
                    ("code_sha256".to_string(), code_sha256.clone()),
                ]
                .into();
                Ok(Self::recorded(node, name.clone(), Some(arn), outputs))
            }
            Spec::RestApi { name, .. } => {
                let id = self.state.resources.get(&node.id).map(|r| r.physical_id.clone()).unwrap_or_else(|| cloud::random_id(10, false));
                cloud::write_json(&self.dir.join("api").join("api.json"), &ApiFile { id: id.clone(), name: name.clone() }, false)?;
                Ok(Self::recorded(node, id, None, BTreeMap::new()))
            }
            Spec::ApiResource { .. } => Ok(Self::recorded(node, cloud::random_id(6, false), None, BTreeMap::new())),
            Spec::Method { path, http_method, integration } => {
                let integration = match integration {
                    MethodIntegration::Proxy { function } => MethodIntegration::Proxy { function: self.function_name(function)? },
                    MethodIntegration::Aws { function, request_templates } => {
                        MethodIntegration::Aws { function: self.function_name(function)?, request_templates: request_templates.clone() }
                    }
                    other => other.clone(),
                };
                let file = MethodFile { path: path.clone(), http_method: http_method.clone(), integration };
                cloud::write_json(&self.dir.join("api").join("methods").join(cloud::file_name(&node.id)), &file, false)?;
                Ok(Self::recorded(node, format!("{http_method} {path}"), None, BTreeMap::new()))
            }
            Spec::Permission { function, statement_id, http_method, path } => {
                let file = PermissionFile { function: self.output(function)?, statement_id: statement_id.clone(), http_method: http_method.clone(), path: path.clone() };
                cloud::write_json(&self.dir.join("api").join("permissions").join(format!("{statement_id}.json")), &file, false)?;
                Ok(Self::recorded(node, statement_id.clone(), None, BTreeMap::new()))
            }
            Spec::GatewayResponses { allow_origin } => {
                cloud::write_json(&self.dir.join("api").join("gateway-responses.json"), &serde_json::json!({ "allow_origin": allow_origin }), false)?;
                Ok(Self::recorded(node, "gateway-responses".into(), None, BTreeMap::new()))
            }
            Spec::Deployment { stage, .. } => {
                let api_id = self.output("api")?;
                let methods: Vec<MethodFile> = cloud::read_all(&self.dir.join("api").join("methods"))?;
                let cors_origin = std::fs::read(self.dir.join("api").join("gateway-responses.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v["allow_origin"].as_str().map(str::to_owned));
                let deployment_id = cloud::random_id(6, false);
                let snapshot = StageFile { stage: stage.clone(), api_id, deployment_id: deployment_id.clone(), methods, cors_origin };
                cloud::write_json(&self.dir.join("api").join("stage.json"), &snapshot, false)?;
                let url = format!("http://127.0.0.1:{}/{stage}", self.port);
                let outputs = [("url".to_string(), url), ("port".to_string(), self.port.to_string())].into();
                Ok(Self::recorded(node, deployment_id, None, outputs))
            }
        }
    }

    fn delete(&self, id: &str, r: &Recorded) -> std::io::Result<()> {
        let api = self.dir.join("api");
        match r.kind.as_str() {
            "role" => remove_file(&self.dir.join("roles").join(format!("{}.json", r.physical_id))),
            "bucket" => {
                remove_dir(&self.dir.join("buckets").join(&r.physical_id))?;
                // s3s-fs keeps object metadata beside the buckets.
                if let Ok(entries) = std::fs::read_dir(self.dir.join("buckets")) {
                    let prefix = format!(".bucket-{}.", r.physical_id);
                    for e in entries.flatten() {
                        if e.file_name().to_string_lossy().starts_with(&prefix) {
                            remove_file(&e.path())?;
                        }
                    }
                }
                remove_file(&self.dir.join("lifecycle").join(format!("{}.json", r.physical_id)))
            }
            "function" => remove_dir(&self.dir.join("functions").join(&r.physical_id)),
            "rest_api" => remove_dir(&api),
            "method" => remove_file(&api.join("methods").join(cloud::file_name(id))),
            "permission" => remove_file(&api.join("permissions").join(format!("{}.json", r.physical_id))),
            "gateway_responses" => remove_file(&api.join("gateway-responses.json")),
            "deployment" => remove_file(&api.join("stage.json")),
            _ => Ok(()),
        }
    }
}

fn remove_file(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_dir(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The `bootstrap` of a function zip (the code "uploaded" to the local cloud).
fn extract_bootstrap(zip: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(zip)?;
    let mut archive = zip::ZipArchive::new(file).map_err(std::io::Error::other)?;
    let mut entry = archive.by_name("bootstrap").map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    entry.read_to_end(&mut out)?;
    Ok(out)
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
fn choose_port(dir: &Path, recorded: Option<&State>, wanted: Option<u16>, released: bool) -> Result<u16, LocalError> {
    if let Some(p) = wanted {
        return Ok(p);
    }
    if let Some(s) = super::server::running(dir) {
        return Ok(s.port);
    }
    let previous = recorded.and_then(|r| r.resources.get("deployment")).and_then(|d| d.outputs.get("port")).and_then(|p| p.parse().ok());
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
        _ => free_port().map_err(|e| LocalError::Server(format!("no free loopback port: {e}"))),
    }
}

/// Plan and (unless `dry_run`) apply `stack` on the local cloud, then make sure
/// the stage's server runs the new version.
pub fn deploy(stack: &Stack, stage: &str, artifacts: &[Artifact], project: &Path, opts: &Options) -> Result<Outcome, LocalError> {
    let state_path = cloud::state_path(project, &stack.name, stage);
    let dir = cloud::stage_dir(project, &stack.name, stage);
    let _lock = if opts.dry_run { None } else { Some(acquire(&state_path, &stack.name, stage, "deploy")?) };
    let recorded = state::load(&state_path, &stack.name, stage, "local")?;
    let ctx = context(stack, stage, project)?;
    let desired = desired::desired(stack, artifacts, &ctx).map_err(LocalError::Input)?;
    let live = recorded.as_ref().map(|r| observe(&dir, r)).unwrap_or_default();
    let plan = plan::plan(&desired, recorded.as_ref(), &live);
    let mut current = recorded.clone().unwrap_or_else(|| State::empty(&stack.name, stage, "local"));
    if opts.dry_run {
        let url = url_of(&current);
        return Ok(Outcome { plan, state: current, url });
    }
    let server = if opts.no_server { None } else { super::server::running(&dir) };
    // A server of this stage that does not answer is stopped (verified ours by
    // its command line) before its port is considered, so the stage keeps it.
    let released = server.is_none() && !opts.no_server && super::server::stop(&dir).map_err(LocalError::Server)? > 0;
    let mut port = choose_port(&dir, recorded.as_ref(), opts.port, released)?;
    // A server of this stage that died left its port recorded: if something else
    // took it meanwhile, the stage moves to a new port (a new deployment).
    if server.is_none() && !opts.no_server && opts.port.is_none() && !port_is_free(port) {
        port = free_port().map_err(|e| LocalError::Server(e.to_string()))?;
    }
    let mut plan = plan;
    if current.resources.get("deployment").and_then(|d| d.outputs.get("port")).is_some_and(|p| *p != port.to_string()) {
        // The URL changes: the deployment is made again (the planner cannot know ports).
        if let Some(step) = plan.steps.iter_mut().find(|s| s.id == "deployment" && s.action == Action::NoOp) {
            step.action = Action::Update;
            step.reason = format!("the local API moves to port {port}");
        }
    }
    if !plan.is_empty() {
        let mut exec = Executor { dir: dir.clone(), ctx: &ctx, desired: &desired, state: current, state_path: state_path.clone(), port, progress: opts.progress };
        exec.run(&plan)?;
        current = exec.state;
    }
    if !opts.no_server {
        super::server::ensure(&dir, port, !plan.is_empty()).map_err(LocalError::Server)?;
    }
    let url = url_of(&current);
    Ok(Outcome { plan, state: current, url })
}

fn acquire(state_path: &Path, stack: &str, stage: &str, command: &str) -> Result<Lock, LocalError> {
    let backend = lock::Backend::Local(state_path.with_extension("lock"));
    // The local backend is plain file I/O: no async runtime needed (and callers
    // may already be inside one).
    Ok(futures::executor::block_on(Lock::acquire(backend, stack, stage, &lock::holder(command)))?)
}

pub fn url_of(state: &State) -> Option<String> {
    state.resources.get("deployment").and_then(|d| d.outputs.get("url")).cloned()
}

/// Stop the stage's server, delete every recorded resource (reverse order), then
/// remove the stage's directory, state and lock: nothing of the stage is left.
pub fn destroy(stack: &Stack, stage: &str, project: &Path, opts: &Options) -> Result<Outcome, LocalError> {
    let state_path = cloud::state_path(project, &stack.name, stage);
    let dir = cloud::stage_dir(project, &stack.name, stage);
    let lock = acquire(&state_path, &stack.name, stage, "destroy")?;
    let recorded = state::load(&state_path, &stack.name, stage, "local")?;
    super::server::stop(&dir).map_err(LocalError::Server)?;
    let mut plan = Plan::default();
    let mut current = State::empty(&stack.name, stage, "local");
    if let Some(recorded) = recorded {
        let ctx = Context { stage: stage.into(), account: cloud::ACCOUNT.into(), region: recorded.region.clone().unwrap_or_else(|| cloud::DEFAULT_REGION.into()), parameters: BTreeMap::new() };
        let empty = Desired { stack: stack.name.clone(), stage: stage.into(), nodes: Vec::new() };
        plan = plan::plan(&empty, Some(&recorded), &BTreeMap::new());
        if opts.dry_run {
            return Ok(Outcome { plan, state: recorded, url: None });
        }
        let mut exec = Executor { dir: dir.clone(), ctx: &ctx, desired: &empty, state: recorded, state_path: state_path.clone(), port: 0, progress: opts.progress };
        exec.run(&plan)?;
        current = exec.state;
    }
    // What no resource accounts for (the server's log, objects' metadata) goes too.
    remove_dir(&dir).map_err(|e| LocalError::Server(format!("cannot remove {}: {e}", dir.display())))?;
    remove_file(&state_path).map_err(|e| LocalError::Server(format!("cannot remove {}: {e}", state_path.display())))?;
    drop(lock);
    prune_empty(project, &[dir.parent(), state_path.parent(), Some(&project.join(".stackctl/local/state")), Some(&project.join(".stackctl/local")), Some(&project.join(".stackctl"))]);
    Ok(Outcome { plan, state: current, url: None })
}

/// Remove directories left empty (never a non-empty one).
fn prune_empty(_project: &Path, dirs: &[Option<&Path>]) {
    for d in dirs.iter().flatten() {
        let _ = std::fs::remove_dir(d);
    }
}
