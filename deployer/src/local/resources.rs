//! The local cloud's resources as files: each step writes or removes the
//! files that stand for the AWS object (see `cloud` for the layout), as the
//! AWS target makes the API calls.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cloud::{self, ApiFile, FunctionFile, LifecycleFile, MethodFile, PermissionFile, RoleFile, ScheduleFile, StageFile};
use crate::digest::sha256_hex;
use crate::engine::desired::{MethodIntegration, Node, Spec};
use crate::engine::error::EngineError;
use crate::engine::kind::Kind;
use crate::engine::plan::Live;
use crate::engine::run::Run;
use crate::engine::state::{Recorded, State};

/// A physical name the run knows, as an I/O result.
fn name_of(r: Result<String, EngineError>) -> std::io::Result<String> {
    r.map_err(|e| std::io::Error::other(e.to_string()))
}

/// One stage's directory.
pub struct Files {
    pub dir: PathBuf,
}

impl Files {
    pub fn write(&self, run: &Run<'_>, node: &Node, port: u16) -> std::io::Result<Recorded> {
        let (account, region) = (&run.ctx.account, &run.ctx.region);
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
                let outputs = [("policy_sha256".to_string(), crate::digest::policy(&policy.to_string()))].into();
                Ok(Run::recorded_for(node, name.clone(), Some(arn), outputs))
            }
            Spec::Bucket { name, lifecycle } => {
                std::fs::create_dir_all(self.dir.join("buckets").join(name))?;
                cloud::write_json(&self.dir.join("lifecycle").join(format!("{name}.json")), &LifecycleFile { bucket: name.clone(), rules: lifecycle.clone() }, false)?;
                Ok(Run::recorded_for(node, name.clone(), Some(format!("arn:aws:s3:::{name}")), BTreeMap::new()))
            }
            Spec::LogGroup { name, retention_days } => {
                super::logs::write_group(&self.dir, &super::logs::GroupFile { name: name.clone(), retention_days: *retention_days })?;
                let arn = crate::engine::desired::log_group_arn(run.ctx, name);
                Ok(Run::recorded_for(node, name.clone(), Some(arn), [("retention_days".to_string(), retention_days.to_string())].into()))
            }
            Spec::Function { name, role, memory, timeout, environment, code_sha256, zip, reserved_concurrency, .. } => {
                let fdir = self.dir.join("functions").join(name);
                std::fs::create_dir_all(&fdir)?;
                let bootstrap_sha256 = install_bootstrap(zip, code_sha256, &fdir.join("bootstrap"))?;
                let arn = crate::engine::desired::function_arn(run.ctx, name);
                let config = FunctionFile {
                    name: name.clone(),
                    arn: arn.clone(),
                    role: name_of(run.role_name(role))?,
                    memory: *memory,
                    timeout: *timeout,
                    environment: environment.clone(),
                    code_sha256: code_sha256.clone(),
                    reserved_concurrency: *reserved_concurrency,
                };
                cloud::write_json(&fdir.join("config.json"), &config, true)?;
                let meta = std::fs::metadata(fdir.join("bootstrap"))?;
                let outputs = [
                    ("bootstrap_sha256".to_string(), bootstrap_sha256),
                    ("bootstrap_stamp".to_string(), cloud::stamp(&meta)),
                    ("code_sha256".to_string(), code_sha256.clone()),
                ]
                .into();
                Ok(Run::recorded_for(node, name.clone(), Some(arn), outputs))
            }
            Spec::Schedule { rule, expression, function, .. } => {
                let file = self.dir.join("schedules").join(format!("{rule}.json"));
                // A rule keeps its creation time across updates (its rate's phase).
                let created_ms = cloud::read_json::<ScheduleFile>(&file).map(|f| f.created_ms).unwrap_or_else(|_| {
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
                });
                let arn = format!("arn:aws:events:{region}:{account}:rule/{rule}");
                let schedule = ScheduleFile { rule: rule.clone(), arn: arn.clone(), expression: expression.clone(), function: name_of(run.output(function, "id"))?, created_ms };
                cloud::write_json(&file, &schedule, false)?;
                Ok(Run::recorded_for(node, rule.clone(), Some(arn), [("expression".to_string(), expression.clone())].into()))
            }
            Spec::RestApi { name, .. } => {
                let id = run.recorded(&node.id).map(|r| r.physical_id).unwrap_or_else(|| cloud::random_id(10, false));
                cloud::write_json(&self.dir.join("api").join("api.json"), &ApiFile { id: id.clone(), name: name.clone() }, false)?;
                Ok(Run::recorded_for(node, id, None, BTreeMap::new()))
            }
            Spec::ApiResource { .. } => Ok(Run::recorded_for(node, cloud::random_id(6, false), None, BTreeMap::new())),
            Spec::Method { path, http_method, integration, request } => {
                let integration = match integration {
                    MethodIntegration::Proxy { function } => MethodIntegration::Proxy { function: name_of(run.function_name(function))? },
                    MethodIntegration::Aws { function, request_templates, responses } => MethodIntegration::Aws {
                        function: name_of(run.function_name(function))?,
                        request_templates: request_templates.clone(),
                        responses: responses.clone(),
                    },
                    other => other.clone(),
                };
                let file = MethodFile { path: path.clone(), http_method: http_method.clone(), integration, request: request.clone() };
                cloud::write_json(&self.dir.join("api").join("methods").join(cloud::file_name(&node.id)), &file, false)?;
                Ok(Run::recorded_for(node, format!("{http_method} {path}"), None, BTreeMap::new()))
            }
            Spec::Permission { function, statement_id, http_method, path } => {
                let file = PermissionFile { function: name_of(run.output(function, "id"))?, statement_id: statement_id.clone(), http_method: http_method.clone(), path: path.clone() };
                cloud::write_json(&self.dir.join("api").join("permissions").join(format!("{statement_id}.json")), &file, false)?;
                Ok(Run::recorded_for(node, statement_id.clone(), None, BTreeMap::new()))
            }
            Spec::GatewayResponses { allow_origin } => {
                cloud::write_json(&self.dir.join("api").join("gateway-responses.json"), &serde_json::json!({ "allow_origin": allow_origin }), false)?;
                Ok(Run::recorded_for(node, "gateway-responses".into(), None, BTreeMap::new()))
            }
            Spec::Deployment { stage, variables, .. } => {
                let api_id = name_of(run.output("api", "id"))?;
                let methods: Vec<MethodFile> = cloud::read_all(&self.dir.join("api").join("methods"))?;
                let cors_origin = std::fs::read(self.dir.join("api").join("gateway-responses.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v["allow_origin"].as_str().map(str::to_owned));
                let deployment_id = cloud::random_id(6, false);
                let snapshot = StageFile { stage: stage.clone(), api_id, deployment_id: deployment_id.clone(), methods, cors_origin, variables: variables.clone() };
                cloud::write_json(&self.dir.join("api").join("stage.json"), &snapshot, false)?;
                let url = format!("http://127.0.0.1:{}/{stage}", port);
                let outputs = [("url".to_string(), url), ("port".to_string(), port.to_string())].into();
                Ok(Run::recorded_for(node, deployment_id, None, outputs))
            }
        }
    }

    pub fn delete(&self, id: &str, r: &Recorded) -> std::io::Result<()> {
        let api = self.dir.join("api");
        match r.kind {
            Kind::Role => remove_file(&self.dir.join("roles").join(format!("{}.json", r.physical_id))),
            Kind::Bucket => {
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
            Kind::Function => remove_dir(&self.dir.join("functions").join(&r.physical_id)),
            Kind::LogGroup => remove_dir(&super::logs::group_dir(&self.dir, &r.physical_id)),
            Kind::Schedule => remove_file(&self.dir.join("schedules").join(format!("{}.json", r.physical_id))),
            Kind::RestApi => remove_dir(&api),
            // A resource exists only through its methods' paths.
            Kind::ApiResource => Ok(()),
            Kind::Method => remove_file(&api.join("methods").join(cloud::file_name(id))),
            Kind::Permission => remove_file(&api.join("permissions").join(format!("{}.json", r.physical_id))),
            Kind::GatewayResponses => remove_file(&api.join("gateway-responses.json")),
            Kind::Deployment => remove_file(&api.join("stage.json")),
            Kind::CloudformationStack => Err(std::io::Error::other("the local cloud has no CloudFormation")),
        }
    }

    /// What is on disk for each recorded resource: missing, or edited by hand.
    pub fn observe(&self, recorded: &State) -> BTreeMap<String, Live> {
        let dir = &self.dir;
        let present = |yes: bool| if yes { Live::Present } else { Live::Missing };
        let mut live = BTreeMap::new();
        for (id, r) in &recorded.resources {
            let status = match r.kind {
                Kind::Role => match cloud::read_json::<RoleFile>(&dir.join("roles").join(format!("{}.json", r.physical_id))) {
                    Err(_) => Live::Missing,
                    Ok(f) if r.outputs.get("policy_sha256").is_some_and(|d| *d != crate::digest::policy(&f.policy.to_string())) => Live::Drifted("inline policy edited by hand".into()),
                    Ok(_) => Live::Present,
                },
                Kind::Bucket => present(dir.join("buckets").join(&r.physical_id).is_dir()),
                Kind::Function => self.observe_function(r),
                Kind::LogGroup => match super::logs::read_group(dir, &r.physical_id) {
                    Err(_) => Live::Missing,
                    Ok(g) if r.outputs.get("retention_days").is_some_and(|d| *d != g.retention_days.to_string()) => Live::Drifted(format!("its retention is {} days", g.retention_days)),
                    Ok(_) => Live::Present,
                },
                Kind::Schedule => match cloud::read_json::<ScheduleFile>(&dir.join("schedules").join(format!("{}.json", r.physical_id))) {
                    Err(_) => Live::Missing,
                    Ok(f) if r.outputs.get("expression").is_some_and(|e| *e != f.expression) => Live::Drifted(format!("its schedule is {}", f.expression)),
                    Ok(_) => Live::Present,
                },
                Kind::RestApi => present(cloud::read_json::<ApiFile>(&dir.join("api").join("api.json")).is_ok_and(|a| a.id == r.physical_id)),
                Kind::ApiResource => present(cloud::read_json::<ApiFile>(&dir.join("api").join("api.json")).is_ok()),
                Kind::Method => present(dir.join("api").join("methods").join(cloud::file_name(id)).is_file()),
                Kind::Permission => present(dir.join("api").join("permissions").join(format!("{}.json", r.physical_id)).is_file()),
                Kind::GatewayResponses => present(dir.join("api").join("gateway-responses.json").is_file()),
                Kind::Deployment => present(dir.join("api").join("stage.json").is_file()),
                Kind::CloudformationStack => Live::Present,
            };
            live.insert(id.clone(), status);
        }
        live
    }

    fn observe_function(&self, r: &Recorded) -> Live {
        let fdir = self.dir.join("functions").join(&r.physical_id);
        let bootstrap = fdir.join("bootstrap");
        match (std::fs::metadata(&bootstrap), cloud::read_json::<FunctionFile>(&fdir.join("config.json"))) {
            (Ok(meta), Ok(_)) => {
                // Unchanged size and time: the file we wrote. Otherwise compare contents.
                let same_file = r.outputs.get("bootstrap_stamp").is_some_and(|s| *s == cloud::stamp(&meta));
                if same_file || std::fs::read(&bootstrap).is_ok_and(|code| r.outputs.get("bootstrap_sha256") == Some(&sha256_hex(&code))) {
                    Live::Present
                } else {
                    Live::Drifted("code replaced by hand".into())
                }
            }
            _ => Live::Missing,
        }
    }

    /// `var` of a deployed function's configuration; `None` when the function
    /// is not there. A configuration that cannot be read is an error.
    pub fn function_env(&self, function: &str, var: &str) -> Result<Option<String>, EngineError> {
        let path = self.dir.join("functions").join(function).join("config.json");
        match cloud::read_json::<FunctionFile>(&path) {
            Ok(config) => Ok(config.environment.get(var).cloned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EngineError::Operation(format!("cannot read {}: {e}\n  hint: restore it, or destroy the local stage and deploy again", path.display()))),
        }
    }
}

pub fn remove_file(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub fn remove_dir(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Put the function's code in place as `dest` (mode 0755): a host build's
/// binary is copied as it is (it is never zipped; `code_sha256` is its own
/// digest), a zip's `bootstrap` is extracted. Returns the hex sha256 of what
/// was installed, for drift checks.
fn install_bootstrap(source: &Path, code_sha256: &str, dest: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let mut magic = [0u8; 4];
    std::fs::File::open(source)?.read_exact(&mut magic)?;
    if magic == *b"PK\x03\x04" {
        let code = extract_bootstrap(source)?;
        crate::build::write_atomic(dest, &code)?;
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o755))?;
        return Ok(sha256_hex(&code));
    }
    // Copied, never linked: cargo may rewrite the binary while this one runs.
    let tmp = dest.with_extension("new");
    std::fs::copy(source, &tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, dest)?;
    use base64::Engine;
    let digest = base64::engine::general_purpose::STANDARD.decode(code_sha256).map_err(std::io::Error::other)?;
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
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

