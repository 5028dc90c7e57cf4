//! What a stage's server serves (its "world": API, functions, permissions, S3,
//! lifecycle rules), loaded from the stage's files and replaced as a whole on
//! reload; functions whose code and configuration did not change stay warm.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::super::cloud::{self, FunctionFile, LifecycleFile, MethodFile, PermissionFile, RoleFile, ScheduleFile, ServerFile, StageFile};
use super::super::iam::{Iam, Principal};
use super::super::invoke_api::InvokeApi;
use super::super::lambda::{FunctionSpec, LocalFunction};
use crate::engine::desired::MethodIntegration;
use crate::stack::model::{Api, Cors, EndpointType, Integration, Method, Route};

/// What the server serves; replaced as a whole on reload.
pub struct World {
    pub(super) stage: Option<StageFile>,
    pub(super) api: Option<Api>,
    /// Physical name → (fingerprint of code + configuration, the function).
    pub(super) functions: BTreeMap<String, (String, Arc<LocalFunction>)>,
    /// (function, method, path) API Gateway may invoke.
    pub(super) permissions: BTreeSet<(String, String, String)>,
    pub(super) invoke: Arc<InvokeApi>,
    pub(super) s3: s3s::service::S3Service,
    pub(super) lifecycle: Vec<LifecycleFile>,
    /// EventBridge rules firing functions.
    pub(super) schedules: Vec<ScheduleFile>,
}

pub struct Server {
    pub(super) dir: PathBuf,
    pub(super) port: u16,
    pub(super) services: SocketAddr,
    pub(super) admin: (String, String),
    /// The control token (`/__stackctl/` requests), written to the 0600 server file.
    pub(super) token: String,
    pub(super) world: RwLock<Arc<World>>,
    pub(super) reloading: tokio::sync::Mutex<()>,
}

/// Rebuild the API model the gateway routes with from the deployed methods.
fn api_model(name: &str, methods: &[MethodFile]) -> Api {
    let mut routes: Vec<Route> = Vec::new();
    let mut cors = Cors::default();
    for m in methods {
        let idx = match routes.iter().position(|r| r.path == m.path) {
            Some(i) => i,
            None => {
                routes.push(Route { path: m.path.clone(), cors: false, methods: Vec::new() });
                routes.len() - 1
            }
        };
        let route = &mut routes[idx];
        match &m.integration {
            MethodIntegration::CorsPreflight { allow_origin, allow_headers, max_age, .. } => {
                route.cors = true;
                cors = Cors { allow_origin: allow_origin.clone(), allow_headers: allow_headers.split(',').map(str::to_owned).collect(), max_age: *max_age };
            }
            MethodIntegration::Proxy { function } => route.methods.push(Method {
                http_method: m.http_method.clone(),
                function: function.clone(),
                integration: Integration::Proxy,
                request: m.request.clone(),
            }),
            MethodIntegration::Aws { function, request_templates, responses } => route.methods.push(Method {
                http_method: m.http_method.clone(),
                function: function.clone(),
                integration: Integration::Aws { request_templates: request_templates.clone(), responses: responses.clone() },
                request: m.request.clone(),
            }),
        }
    }
    Api { name: name.into(), endpoint: EndpointType::Edge, cors, routes, stage_variables: Default::default() }
}

impl Server {
    /// Read the stage directory into a new world, reusing every function whose
    /// code and configuration did not change (it stays warm).
    pub(super) async fn load(&self, previous: Option<&World>) -> Result<World, String> {
        let dir = &self.dir;
        let err = |e: std::io::Error| e.to_string();
        let roles: Vec<RoleFile> = cloud::read_all(&dir.join("roles")).map_err(err)?;
        let mut iam = Iam { admin_key: self.admin.0.clone(), admin_secret: self.admin.1.clone(), principals: BTreeMap::new() };
        let mut configs = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir.join("functions")) {
            for e in entries.flatten() {
                let config_path = e.path().join("config.json");
                let bytes = std::fs::read(&config_path).map_err(|e| format!("{}: {e}", config_path.display()))?;
                let config: FunctionFile = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", config_path.display()))?;
                configs.push((config, bytes, e.path().join("bootstrap")));
            }
        }
        let mut region = cloud::DEFAULT_REGION.to_string();
        let mut functions = BTreeMap::new();
        for (config, bytes, bootstrap) in configs {
            region = config.arn.split(':').nth(3).unwrap_or(cloud::DEFAULT_REGION).to_owned();
            let role = roles.iter().find(|r| r.name == config.role).ok_or_else(|| format!("function {} has no role {}", config.name, config.role))?;
            iam.principals.insert(
                role.access_key.clone(),
                Principal {
                    access_key: role.access_key.clone(),
                    secret_key: role.secret_key.clone(),
                    arn: format!("arn:aws:sts::{}:assumed-role/{}/{}", cloud::ACCOUNT, role.name, config.name),
                    policy: role.policy.clone(),
                },
            );
            let meta = std::fs::metadata(&bootstrap).map_err(|e| format!("{}: {e}", bootstrap.display()))?;
            let code = cloud::stamp(&meta);
            let log = super::super::logs::sink(dir, &config.name);
            let logged = log.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            let fingerprint = crate::digest::sha256_hex(&[bytes.as_slice(), code.as_bytes(), role.access_key.as_bytes(), role.secret_key.as_bytes(), logged.as_bytes()].concat());
            if let Some((fp, f)) = previous.and_then(|w| w.functions.get(&config.name))
                && *fp == fingerprint
            {
                functions.insert(config.name.clone(), (fingerprint, f.clone()));
                continue;
            }
            let mut environment = config.environment.clone();
            for (k, v) in [
                ("AWS_ACCESS_KEY_ID", role.access_key.clone()),
                ("AWS_SECRET_ACCESS_KEY", role.secret_key.clone()),
                ("AWS_REGION", region.clone()),
                ("AWS_DEFAULT_REGION", region.clone()),
                ("AWS_ENDPOINT_URL", format!("http://{}", self.services)),
                ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
                ("AWS_LAMBDA_FUNCTION_TIMEOUT", config.timeout.to_string()),
                ("TZ", ":UTC".into()),
            ] {
                environment.insert(k.into(), v);
            }
            let spec = FunctionSpec { name: config.name.clone(), executable: bootstrap, memory: config.memory, timeout: Duration::from_secs(config.timeout.into()), environment, event_retry_delays: None, log, reserved_concurrency: config.reserved_concurrency };
            let f = LocalFunction::start(spec).await.map_err(|e| format!("function {}: {e}", config.name))?;
            functions.insert(config.name.clone(), (fingerprint, f));
        }
        let iam = Arc::new(iam);
        let invoke = Arc::new(InvokeApi {
            functions: functions.iter().map(|(k, (_, f))| (k.clone(), f.clone())).collect(),
            iam: iam.clone(),
            account: cloud::ACCOUNT.into(),
            region,
        });
        let s3 = super::super::s3::service(&dir.join("buckets"), iam).map_err(err)?;
        let stage: Option<StageFile> = match cloud::read_json(&dir.join("api").join("stage.json")) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.to_string()),
        };
        let api_name = cloud::read_json::<cloud::ApiFile>(&dir.join("api").join("api.json")).map(|a| a.name).unwrap_or_default();
        let api = stage.as_ref().map(|s| api_model(&api_name, &s.methods));
        let permissions = cloud::read_all::<PermissionFile>(&dir.join("api").join("permissions"))
            .map_err(err)?
            .into_iter()
            .map(|p| (p.function, p.http_method, p.path))
            .collect();
        let lifecycle = cloud::read_all(&dir.join("lifecycle")).map_err(err)?;
        let schedules = cloud::read_all(&dir.join("schedules")).map_err(err)?;
        Ok(World { stage, api, functions, permissions, invoke, s3, lifecycle, schedules })
    }

    pub(super) fn world(&self) -> Arc<World> {
        self.world.read().expect("world lock").clone()
    }

    /// Re-read the stage directory and switch to it; returns a summary.
    pub async fn reload(&self) -> Result<String, String> {
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.world();
        let new = self.load(Some(&old)).await?;
        let reused = new.functions.iter().filter(|(k, (fp, _))| old.functions.get(*k).is_some_and(|(ofp, _)| ofp == fp)).count();
        let summary = format!("reloaded: {} function(s), {} kept warm, {} route(s)", new.functions.len(), reused, new.api.as_ref().map(|a| a.routes.len()).unwrap_or(0));
        *self.world.write().expect("world lock") = Arc::new(new);
        // Replaced functions stop when their last in-flight invocation ends (Drop).
        Ok(summary)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server file records of this server.
    pub fn file(&self) -> ServerFile {
        ServerFile { pid: std::process::id(), port: self.port, token: self.token.clone(), services: self.services.port() }
    }

    /// Stop every function process now.
    pub fn shutdown(&self) {
        for (_, f) in self.world().functions.values() {
            f.stop();
        }
    }
}
