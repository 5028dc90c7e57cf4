//! The local cloud's server: one per deployed stack and stage, serving what the
//! local engine wrote under `.stackctl/local/{stack}/{stage}/`:
//!
//! - the REST API on `127.0.0.1:{port}/{stage}/...` (routing, proxy and
//!   non-proxy integrations with mapping templates, CORS, API Gateway's errors);
//! - one services endpoint for the functions' SDK clients (`AWS_ENDPOINT_URL`):
//!   the Lambda Invoke API and S3, both checking the caller's role policy;
//! - the functions, as native processes behind the Runtime API;
//! - the buckets' lifecycle rules, applied every minute.
//!
//! `stackctl deploy --target local` starts it in the background (its own process
//! group, log in `server.log`), health-checks it, and asks it to reload after each
//! change; `destroy` stops it; `stackctl serve` runs it in the foreground.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};

use super::cloud::{self, FunctionFile, LifecycleFile, MethodFile, PermissionFile, RoleFile, ServerFile, StageFile};
use super::gateway::{self, HttpRequest, HttpResponse, Routed};
use super::iam::{Iam, Principal};
use super::invoke_api::InvokeApi;
use super::lambda::{FunctionSpec, LocalFunction, Outcome};
use crate::engine::desired::MethodIntegration;
use crate::stack::model::{Api, Cors, EndpointType, Integration, Method, Route};

/// API Gateway's integration timeout.
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);
/// API Gateway's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// What the server serves; replaced as a whole on reload.
struct World {
    stage: Option<StageFile>,
    api: Option<Api>,
    /// Physical name → (fingerprint of code + configuration, the function).
    functions: BTreeMap<String, (String, Arc<LocalFunction>)>,
    /// (function, method, path) API Gateway may invoke.
    permissions: BTreeSet<(String, String, String)>,
    invoke: Arc<InvokeApi>,
    s3: s3s::service::S3Service,
    lifecycle: Vec<LifecycleFile>,
}

pub struct Server {
    dir: PathBuf,
    port: u16,
    services: SocketAddr,
    admin: (String, String),
    /// The control token (`/__stackctl/` requests), written to the 0600 server file.
    token: String,
    world: RwLock<Arc<World>>,
    reloading: tokio::sync::Mutex<()>,
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
            MethodIntegration::Proxy { function } => {
                route.methods.push(Method { http_method: m.http_method.clone(), function: function.clone(), integration: Integration::Proxy })
            }
            MethodIntegration::Aws { function, request_templates } => route.methods.push(Method {
                http_method: m.http_method.clone(),
                function: function.clone(),
                integration: Integration::Aws { request_templates: request_templates.clone() },
            }),
        }
    }
    Api { name: name.into(), endpoint: EndpointType::Edge, cors, routes }
}

impl Server {
    /// Read the stage directory into a new world, reusing every function whose
    /// code and configuration did not change (it stays warm).
    async fn load(&self, previous: Option<&World>) -> Result<World, String> {
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
            let code = super::engine::stamp(&meta);
            let fingerprint = crate::build::package::sha256_hex(&[bytes.as_slice(), code.as_bytes(), role.access_key.as_bytes(), role.secret_key.as_bytes()].concat());
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
            let spec = FunctionSpec { name: config.name.clone(), executable: bootstrap, memory: config.memory, timeout: Duration::from_secs(config.timeout.into()), environment, event_retry_delays: None };
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
        let s3 = super::s3::service(&dir.join("buckets"), iam).map_err(err)?;
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
        Ok(World { stage, api, functions, permissions, invoke, s3, lifecycle })
    }

    fn world(&self) -> Arc<World> {
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

/// Start the server for `dir`: the API on `127.0.0.1:port`, the services endpoint
/// on a free port. Returns once both listen.
pub async fn start(dir: PathBuf, port: u16) -> std::io::Result<Arc<Server>> {
    let api_listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let services_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let services = services_listener.local_addr()?;
    // The admin key exists only in this process: it lists and expires objects.
    let admin = (format!("LSIA{}", cloud::random_id(16, true)), cloud::random_id(40, false));
    let placeholder = World {
        stage: None,
        api: None,
        functions: BTreeMap::new(),
        permissions: BTreeSet::new(),
        invoke: Arc::new(InvokeApi { functions: BTreeMap::new(), iam: Arc::new(Iam::default()), account: cloud::ACCOUNT.into(), region: cloud::DEFAULT_REGION.into() }),
        s3: super::s3::service(&dir.join("buckets"), Arc::new(Iam::default()))?,
        lifecycle: Vec::new(),
    };
    let server = Arc::new(Server {
        dir,
        port: api_listener.local_addr()?.port(),
        services,
        admin,
        token: cloud::random_id(40, false),
        world: RwLock::new(Arc::new(placeholder)),
        reloading: tokio::sync::Mutex::new(()),
    });
    server.reload().await.map_err(std::io::Error::other)?;
    let s = server.clone();
    super::spawn_server(services_listener, super::Limits::public(), hyper::service::service_fn(move |req| serve_services(s.clone(), req)));
    let s = server.clone();
    super::spawn_server(api_listener, super::Limits::public(), hyper::service::service_fn(move |req| api(s.clone(), req)));
    let s = server.clone();
    tokio::spawn(async move { lifecycle_loop(s).await });
    Ok(server)
}

type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// The functions' endpoint: Lambda's Invoke API, else S3.
async fn serve_services(server: Arc<Server>, req: Request<hyper::body::Incoming>) -> Result<Response<Body>, Infallible> {
    let world = server.world();
    if req.uri().path().starts_with("/2015-03-31/functions/") {
        let r = world.invoke.clone().handle(req).await.unwrap_or_else(|never| match never {});
        return Ok(r.map(|b| b.map_err(|never| match never {}).boxed()));
    }
    match hyper::service::Service::call(&world.s3, req).await {
        Ok(r) => Ok(r.map(|b| b.map_err(Into::into).boxed())),
        Err(e) => {
            let mut r = Response::new(full(format!("<Error><Code>InternalError</Code><Message>{e:?}</Message></Error>")));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            Ok(r)
        }
    }
}

fn to_hyper(resp: HttpResponse, request_id: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(resp.body)));
    *r.status_mut() = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (k, v) in resp.headers {
        if let (Ok(k), Ok(v)) = (hyper::header::HeaderName::from_bytes(k.as_bytes()), hyper::header::HeaderValue::from_str(&v)) {
            r.headers_mut().append(k, v);
        }
    }
    if let Ok(v) = hyper::header::HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    r
}

fn json_response(status: u16, body: serde_json::Value) -> HttpResponse {
    HttpResponse { status, headers: vec![("content-type".into(), "application/json".into())], body: body.to_string().into_bytes() }
}

/// Split a query string into decoded pairs (`+` is kept, as API Gateway does).
fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let d = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            (d(k), d(v))
        })
        .collect()
}

/// The REST API (and the server's own `/__stackctl/` endpoints).
async fn api(server: Arc<Server>, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = std::time::Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    if path.starts_with("/__stackctl/") && control_allowed(&server, &req) {
        if path == "/__stackctl/health" {
            let body = serde_json::json!({ "status": "ok", "pid": std::process::id(), "dir": server.dir, "port": server.port });
            return Ok(to_hyper(json_response(200, body), &request_id));
        }
        if path == "/__stackctl/reload" && method == "POST" {
            let r = match server.reload().await {
                Ok(summary) => {
                    println!("{summary}");
                    json_response(200, serde_json::json!({ "status": "ok", "summary": summary }))
                }
                Err(e) => {
                    println!("reload failed: {e}");
                    json_response(500, serde_json::json!({ "status": "error", "message": e }))
                }
            };
            return Ok(to_hyper(r, &request_id));
        }
        if let Some(name) = path.strip_prefix("/__stackctl/invoke/").filter(|_| method == "POST") {
            return Ok(admin_invoke(&server, name, req).await);
        }
    }
    // Anyone else sees a path the API does not have (403 Missing Authentication
    // Token, as API Gateway answers): nothing says a control endpoint exists.
    let resp = serve_api(&server, req, &request_id).await;
    println!("{method} {path} {} {:.2}ms {request_id}", resp.status, started.elapsed().as_secs_f64() * 1000.0);
    Ok(to_hyper(resp, &request_id))
}

/// Control traffic comes from stackctl itself: it carries the server's token,
/// names this server by its loopback address (a foreign `Host` is a DNS-rebinding
/// page), and no browser sent it (any `Origin`, even `null`, is refused).
fn control_allowed(server: &Server, req: &Request<hyper::body::Incoming>) -> bool {
    use subtle::ConstantTimeEq;
    let h = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if req.headers().contains_key("origin") || req.headers().get_all("host").iter().count() != 1 {
        return false;
    }
    let host_ok = h("host").is_some_and(|host| host == format!("127.0.0.1:{}", server.port) || host == format!("localhost:{}", server.port));
    let given = h("authorization").and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
    let token_ok = !server.token.is_empty() && bool::from(given.as_bytes().ct_eq(server.token.as_bytes()));
    host_ok && token_ok
}

/// `stackctl invoke FUNCTION`: the deployer's own synchronous invoke.
async fn admin_invoke(server: &Server, name: &str, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let world = server.world();
    let Some((_, function)) = world.functions.get(name) else {
        return to_hyper(json_response(404, serde_json::json!({ "message": format!("Function not found: {name}") })), "");
    };
    let Ok(payload) = Limited::new(req.into_body(), super::invoke_api::MAX_SYNC_PAYLOAD).collect().await.map(|b| b.to_bytes().to_vec()) else {
        return to_hyper(json_response(413, serde_json::json!({ "message": "the payload is larger than Lambda's 6 MB" })), "");
    };
    let (status, error, body) = match function.invoke(payload).await {
        Ok(Outcome::Ok(b)) => (200, None, b),
        Ok(Outcome::FunctionError(b) | Outcome::Failed(b)) => (200, Some("Unhandled"), b),
        Err(e) => (500, None, serde_json::json!({ "message": e.to_string() }).to_string().into_bytes()),
    };
    println!("invoke {name} {status}{}", error.map(|e| format!(" function error ({e})")).unwrap_or_default());
    let mut r = to_hyper(HttpResponse { status, headers: vec![("content-type".into(), "application/json".into())], body }, "");
    if let Some(e) = error {
        r.headers_mut().insert("x-amz-function-error", hyper::header::HeaderValue::from_static(e));
    }
    r
}

async fn serve_api(server: &Server, req: Request<hyper::body::Incoming>, request_id: &str) -> HttpResponse {
    let world = server.world();
    let (Some(api), Some(stage)) = (world.api.as_ref(), world.stage.as_ref()) else {
        return json_response(403, serde_json::json!({ "message": "Forbidden" }));
    };
    let cors = stage.cors_origin.as_deref().filter(|_| api.routes.iter().any(|r| r.cors));
    let declared = req.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return gateway::server_error(413, "Request Too Long", cors);
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => return gateway::server_error(413, "Request Too Long", cors),
    };
    let request = HttpRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(parse_query).unwrap_or_default(),
        headers: parts.headers.iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect(),
        body,
        source_ip: "127.0.0.1".into(),
    };
    let (route, method, path_params) = match gateway::route(api, &stage.stage, &request) {
        Routed::Gateway(r) => return r,
        Routed::Preflight { route } => return gateway::preflight(api, route),
        Routed::Method { route, method, path_params } => (route, method, path_params),
    };
    let Some((_, function)) = world.functions.get(&method.function) else {
        println!("{request_id} Execution failed: function {} does not exist", method.function);
        return gateway::server_error(500, "Internal server error", cors);
    };
    if !world.permissions.contains(&(method.function.clone(), method.http_method.clone(), route.path.clone())) {
        println!("{request_id} Execution failed due to configuration error: Invalid permissions on Lambda function {}", method.function);
        return gateway::server_error(500, "Internal server error", cors);
    }
    match &method.integration {
        Integration::Proxy => {
            let event = gateway::proxy_event(&request, &stage.stage, route, &path_params, &stage.api_id, request_id);
            match tokio::time::timeout(INTEGRATION_TIMEOUT, function.invoke(event.to_string().into_bytes())).await {
                Err(_) => gateway::server_error(504, "Endpoint request timed out", cors),
                Ok(Ok(Outcome::Ok(body))) => match serde_json::from_slice(&body) {
                    Ok(v) => gateway::proxy_response(&v),
                    Err(_) => {
                        println!("{request_id} Execution failed due to configuration error: Malformed Lambda proxy response");
                        gateway::server_error(502, "Internal server error", cors)
                    }
                },
                Ok(Ok(Outcome::FunctionError(body) | Outcome::Failed(body))) => {
                    println!("{request_id} Lambda execution failed with status 200 due to customer function error: {}", String::from_utf8_lossy(&body));
                    gateway::server_error(502, "Internal server error", cors)
                }
                Ok(Err(e)) => {
                    println!("{request_id} Execution failed: {e}");
                    gateway::server_error(500, "Internal server error", cors)
                }
            }
        }
        Integration::Aws { .. } => {
            let vreq = template_request(&request, &path_params, stage, route, request_id);
            let payload = match gateway::request_template(method, &request) {
                Some(t) => match super::vtl::render(t, &vreq) {
                    Ok(p) => p.into_bytes(),
                    Err(e) => {
                        println!("{request_id} Execution failed due to configuration error: {e}");
                        return gateway::server_error(500, "Internal server error", cors);
                    }
                },
                None => request.body.clone(),
            };
            match tokio::time::timeout(INTEGRATION_TIMEOUT, function.invoke(payload)).await {
                Err(_) => gateway::server_error(504, "Endpoint request timed out", cors),
                Ok(Ok(Outcome::Ok(body))) => gateway::integration_response(&body, false, cors, &vreq),
                Ok(Ok(Outcome::FunctionError(body) | Outcome::Failed(body))) => gateway::integration_response(&body, true, cors, &vreq),
                Ok(Err(e)) => {
                    println!("{request_id} Execution failed: {e}");
                    gateway::server_error(500, "Internal server error", cors)
                }
            }
        }
    }
}

/// What a mapping template sees of a request.
fn template_request(r: &HttpRequest, path_params: &BTreeMap<String, String>, stage: &StageFile, route: &Route, request_id: &str) -> super::vtl::Request {
    super::vtl::Request {
        body: String::from_utf8_lossy(&r.body).into_owned(),
        path: path_params.clone(),
        querystring: r.query.iter().cloned().collect(),
        header: r.headers.iter().cloned().collect(),
        context: serde_json::json!({
            "requestId": request_id,
            "extendedRequestId": request_id,
            "stage": stage.stage,
            "apiId": stage.api_id,
            "deploymentId": stage.deployment_id,
            "resourcePath": route.path,
            "httpMethod": r.method.to_ascii_uppercase(),
            "path": r.path,
            "protocol": "HTTP/1.1",
            "accountId": cloud::ACCOUNT,
            "identity": { "sourceIp": r.source_ip, "userAgent": r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("user-agent")).map(|(_, v)| v.clone()) },
        }),
        stage_variables: BTreeMap::new(),
    }
}

/// How long a lifecycle "day" is, and how often rules are applied (both can be
/// shortened through the environment to watch expiry happen).
fn lifecycle_timing() -> (Duration, Duration) {
    let secs = |var: &str, default: u64| std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    (Duration::from_secs(secs("STACKCTL_LOCAL_DAY_SECONDS", 86_400)), Duration::from_secs(secs("STACKCTL_LOCAL_LIFECYCLE_INTERVAL_SECONDS", 60).max(1)))
}

/// Apply every bucket's lifecycle rules through the S3 API (as the admin).
async fn lifecycle_loop(server: Arc<Server>) {
    let (day, interval) = lifecycle_timing();
    let clients = crate::aws::Clients::with_credentials(&format!("http://{}", server.services), cloud::DEFAULT_REGION, &server.admin.0, &server.admin.1).await;
    loop {
        tokio::time::sleep(interval).await;
        let world = server.world();
        for file in &world.lifecycle {
            for rule in &file.rules {
                let max_age = day * rule.expiration_days;
                match expire(&clients.s3, &file.bucket, &rule.prefix, max_age).await {
                    Ok(0) => {}
                    Ok(n) => println!("lifecycle {}: {n} object(s) under {}/{} expired (rule {})", file.bucket, file.bucket, rule.prefix, rule.id),
                    Err(e) => println!("lifecycle {}: {e}", file.bucket),
                }
            }
        }
    }
}

async fn expire(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str, max_age: Duration) -> Result<usize, String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default();
    let mut token = None;
    let mut n = 0;
    loop {
        let page = s3.list_objects_v2().bucket(bucket).prefix(prefix).set_continuation_token(token.clone()).send().await.map_err(|e| format!("ListObjectsV2: {e:?}"))?;
        for o in page.contents() {
            let (Some(key), Some(modified)) = (o.key(), o.last_modified()) else { continue };
            let age = now - modified.as_secs_f64();
            if age >= max_age.as_secs_f64() {
                s3.delete_object().bucket(bucket).key(key).send().await.map_err(|e| format!("DeleteObject {key}: {e:?}"))?;
                n += 1;
            }
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return Ok(n);
        }
    }
}

// ---- the background server, seen from the deployer ----

fn server_file(dir: &Path) -> PathBuf {
    dir.join("server.json")
}

pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("server.log")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(10))).build().into()
}

/// A request to the stage's server's control endpoint, with its token.
pub fn control(s: &ServerFile, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
    let url = format!("http://127.0.0.1:{}{path}", s.port);
    agent().post(&url).header("authorization", format!("Bearer {}", s.token))
}

/// The stage's server when it runs and answers its health check.
pub fn running(dir: &Path) -> Option<ServerFile> {
    let s: ServerFile = cloud::read_json(&server_file(dir)).ok()?;
    if !cloud::alive(s.pid) {
        return None;
    }
    let mut r = agent()
        .get(&format!("http://127.0.0.1:{}/__stackctl/health", s.port))
        .header("authorization", format!("Bearer {}", s.token))
        .config()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .call()
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().ok()?).ok()?;
    (v["pid"].as_u64() == Some(u64::from(s.pid))).then_some(s)
}

fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(log_path(dir)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Make sure the stage's server runs on `port` and serves the latest files. A
/// server of the stage that does not answer (stuck, or one an older stackctl
/// left behind) is stopped before another starts.
pub fn ensure(dir: &Path, port: u16, changed: bool) -> Result<(), String> {
    if let Some(s) = running(dir) {
        if s.port == port {
            if !changed {
                return Ok(());
            }
            let mut r = control(&s, "/__stackctl/reload")
                .send_empty()
                .map_err(|e| format!("the local server (pid {}) did not answer the reload: {e}\n  hint: see {}", s.pid, log_path(dir).display()))?;
            let body = r.body_mut().read_to_string().unwrap_or_default();
            if r.status() != 200 {
                return Err(format!("the local server could not load the new version: {body}\n  hint: see {}", log_path(dir).display()));
            }
            return Ok(());
        }
    }
    stop(dir)?;
    start_background(dir, port)
}

/// Start the server as a background process (its own process group), its output
/// appended to `server.log`, and wait until its health check answers.
fn start_background(dir: &Path, port: u16) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the stackctl executable: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log_path(dir)).map_err(|e| format!("{}: {e}", log_path(dir).display()))?;
    let err_log = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .arg("local-server")
        .arg("--dir")
        .arg(dir)
        .arg("--port")
        .arg(port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the local server: {e}"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the local server exited ({status}) at start:\n{}\n  hint: see {}", log_tail(dir), log_path(dir).display()));
        }
        if running(dir).is_some_and(|s| s.pid == child.id()) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("the local server did not answer its health check within 20 s:\n{}", log_tail(dir)));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The stackctl server processes serving `dir`: background servers
/// (`stackctl local-server --dir DIR`, found by their command line, so even one
/// the server file no longer names), and the foreground `serve` the server file
/// names. A pid is trusted only when its command line says it is ours: a reused
/// pid is never signalled.
fn servers_of(dir: &Path) -> Vec<(u32, bool)> {
    let mut found = Vec::new();
    let want = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if !args.contains(&b"local-server".as_slice()) {
            continue;
        }
        let Some(i) = args.iter().position(|a| *a == b"--dir") else { continue };
        let Some(arg) = args.get(i + 1) else { continue };
        let arg = Path::new(std::ffi::OsStr::from_bytes(arg));
        // A relative --dir is relative to that process's working directory.
        let arg = if arg.is_relative() { std::fs::read_link(e.path().join("cwd")).map(|c| c.join(arg)).unwrap_or_else(|_| arg.to_path_buf()) } else { arg.to_path_buf() };
        if std::fs::canonicalize(&arg).unwrap_or(arg) == want && cloud::alive(pid) {
            found.push((pid, true));
        }
    }
    if let Ok(s) = cloud::read_json::<ServerFile>(&server_file(dir))
        && cloud::alive(s.pid)
        && !found.iter().any(|(p, _)| *p == s.pid)
    {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", s.pid)).unwrap_or_default();
        if cmdline.split(|b| *b == 0).any(|a| a == b"serve") {
            found.push((s.pid, false));
        }
    }
    found
}

/// Stop every server of the stage and every function process they started (a
/// background server's process group): SIGTERM, then SIGKILL after 3 s.
/// Returns how many servers were stopped.
pub fn stop(dir: &Path) -> Result<usize, String> {
    let servers = servers_of(dir);
    for &(pid, background) in &servers {
        // A background server leads its own process group (its functions with it);
        // a foreground `serve` is signalled alone (its functions die with it).
        let target = if background { -(pid as libc::pid_t) } else { pid as libc::pid_t };
        // SAFETY: plain signal sends to the server (and its process group).
        unsafe {
            libc::kill(target, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while cloud::alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above; whatever is left of the group goes.
        unsafe {
            libc::kill(target, libc::SIGKILL);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while cloud::alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if cloud::alive(pid) {
            return Err(format!("the local server (pid {pid}) did not stop"));
        }
    }
    let _ = std::fs::remove_file(server_file(dir));
    Ok(servers.len())
}

/// `stackctl local-server`: the background server's process.
pub async fn run_background(dir: PathBuf, port: u16) -> std::io::Result<()> {
    let server = start(dir.clone(), port).await?;
    cloud::write_json(&server_file(&dir), &server.file(), true)?;
    println!("local server pid {} serving {} on http://127.0.0.1:{}", std::process::id(), dir.display(), server.port());
    std::future::pending::<()>().await;
    Ok(())
}

/// Record a foreground server (so `deploy` and `destroy` see it).
pub fn record_foreground(dir: &Path, server: &Server) -> std::io::Result<()> {
    cloud::write_json(&server_file(dir), &server.file(), true)
}
