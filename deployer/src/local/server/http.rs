//! The server's HTTP side: the REST API (routing, integrations, mapping
//! templates, CORS, API Gateway's errors), the functions' services endpoint
//! (Invoke API and S3), and the token-guarded `/__stackctl/` control endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};

use super::super::cloud::{self, StageFile};
use super::super::gateway::{self, HttpRequest, HttpResponse, Routed};
use super::super::iam::Iam;
use super::super::invoke_api::InvokeApi;
use super::super::lambda::Outcome;
use super::world::{Server, World};
use crate::stack::model::{Integration, Route};

/// API Gateway's integration timeout.
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);
/// API Gateway's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;

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
        s3: super::super::s3::service(&dir.join("buckets"), Arc::new(Iam::default()))?,
        lifecycle: Vec::new(),
        schedules: Vec::new(),
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
    super::super::spawn_server(services_listener, super::super::Limits::public(), hyper::service::service_fn(move |req| serve_services(s.clone(), req)));
    let s = server.clone();
    super::super::spawn_server(api_listener, super::super::Limits::public(), hyper::service::service_fn(move |req| api(s.clone(), req)));
    let s = server.clone();
    tokio::spawn(async move { super::lifecycle::run(s).await });
    let s = server.clone();
    tokio::spawn(async move { super::schedule::run(s).await });
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
                    eprintln!("{summary}");
                    json_response(200, serde_json::json!({ "status": "ok", "summary": summary }))
                }
                Err(e) => {
                    eprintln!("reload failed: {e}");
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
    eprintln!("{method} {path} {} {:.2}ms {request_id}", resp.status, started.elapsed().as_secs_f64() * 1000.0);
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
    let Ok(payload) = Limited::new(req.into_body(), super::super::invoke_api::MAX_SYNC_PAYLOAD).collect().await.map(|b| b.to_bytes().to_vec()) else {
        return to_hyper(json_response(413, serde_json::json!({ "message": "the payload is larger than Lambda's 6 MB" })), "");
    };
    let (status, error, body) = match function.invoke(payload).await {
        Ok(Outcome::Ok(b)) => (200, None, b),
        Ok(Outcome::FunctionError(b) | Outcome::Failed(b)) => (200, Some("Unhandled"), b),
        Ok(Outcome::Throttled) => (429, None, super::super::lambda::throttled_body().into_bytes()),
        Err(e) => (500, None, serde_json::json!({ "message": e.to_string() }).to_string().into_bytes()),
    };
    eprintln!("invoke {name} {status}{}", error.map(|e| format!(" function error ({e})")).unwrap_or_default());
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
        headers: gateway::forwarded_headers(parts.headers.iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))),
        body,
        source_ip: "127.0.0.1".into(),
    };
    let (route, method, path_params) = match gateway::route(api, &stage.stage, &request) {
        Routed::Gateway(r) => return r,
        Routed::Preflight { route } => return gateway::preflight(api, route),
        Routed::Method { route, method, path_params } => (route, method, path_params),
    };
    if let Some(refused) = gateway::validate_request(method, &request, &path_params, cors) {
        eprintln!("{request_id} Request validation failed: {}", String::from_utf8_lossy(&refused.body));
        return refused;
    }
    let Some((_, function)) = world.functions.get(&method.function) else {
        eprintln!("{request_id} Execution failed: function {} does not exist", method.function);
        return gateway::server_error(500, "Internal server error", cors);
    };
    if !world.permissions.contains(&(method.function.clone(), method.http_method.clone(), route.path.clone())) {
        eprintln!("{request_id} Execution failed due to configuration error: Invalid permissions on Lambda function {}", method.function);
        return gateway::server_error(500, "Internal server error", cors);
    }
    match &method.integration {
        Integration::Proxy => {
            let mut event = gateway::proxy_event(&request, &stage.stage, route, &path_params, &stage.variables, &stage.api_id, request_id);
            event["requestContext"]["deploymentId"] = serde_json::json!(stage.deployment_id);
            match tokio::time::timeout(INTEGRATION_TIMEOUT, function.invoke(event.to_string().into_bytes())).await {
                Err(_) => gateway::server_error(504, "Endpoint request timed out", cors),
                Ok(Ok(Outcome::Ok(body))) => match serde_json::from_slice(&body) {
                    Ok(v) => {
                        let response = gateway::proxy_response(&v);
                        // API Gateway passes a proxy response on as it is: without the
                        // function's own header, a browser on another origin refuses it.
                        if route.cors && !response.headers.iter().any(|(k, _)| k == "access-control-allow-origin") {
                            eprintln!("{request_id} warning: {} {} has `cors: true` but {}'s response has no Access-Control-Allow-Origin header: browsers on other origins will refuse it, here and on AWS (a proxy integration's function sets it)", request.method, route.path, method.function);
                        }
                        response
                    }
                    Err(_) => {
                        eprintln!("{request_id} Execution failed due to configuration error: Malformed Lambda proxy response");
                        gateway::server_error(502, "Internal server error", cors)
                    }
                },
                Ok(Ok(Outcome::FunctionError(body) | Outcome::Failed(body))) => {
                    eprintln!("{request_id} Lambda execution failed with status 200 due to customer function error: {}", String::from_utf8_lossy(&body));
                    gateway::server_error(502, "Internal server error", cors)
                }
                Ok(Ok(Outcome::Throttled)) => throttled(request_id, &method.function, cors),
                Ok(Err(e)) => {
                    eprintln!("{request_id} Execution failed: {e}");
                    gateway::server_error(500, "Internal server error", cors)
                }
            }
        }
        Integration::Aws { responses, .. } => {
            let vreq = template_request(&request, &path_params, stage, route, request_id);
            let payload = match gateway::request_template(method, &request) {
                Err(gateway::UnsupportedMediaType) => {
                    eprintln!("{request_id} Execution failed: no request template for the content type, and passthrough is WHEN_NO_TEMPLATES");
                    return gateway::server_error(415, "Unsupported Media Type", cors);
                }
                Ok(Some(t)) => match crate::vtl::render(t, &vreq) {
                    Ok(p) => p.into_bytes(),
                    Err(e) if e.bad_payload => {
                        eprintln!("{request_id} Execution failed: {e}");
                        return gateway::client_error(400, &e.message, cors);
                    }
                    Err(e) => {
                        eprintln!("{request_id} Execution failed due to configuration error: {e}");
                        return gateway::server_error(500, "Internal server error", cors);
                    }
                },
                Ok(None) => request.body.clone(),
            };
            // Lambda takes JSON only: its InvalidRequestContentException is the client's 400.
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&payload).or_else(|e| if payload.iter().all(u8::is_ascii_whitespace) { Ok(serde_json::Value::Null) } else { Err(e) }) {
                eprintln!("{request_id} Execution failed: the integration request is not JSON: {e}");
                return gateway::client_error(400, &format!("Could not parse request body into json: {e}"), cors);
            }
            let accept = request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("accept")).map(|(_, v)| v.as_str());
            let answer = |payload: &[u8], function_error: bool| {
                let lambda = gateway::LambdaAnswer { payload, function_error, request_id };
                gateway::integration_response(&lambda, responses, cors, &vreq, accept)
            };
            match tokio::time::timeout(INTEGRATION_TIMEOUT, function.invoke(payload)).await {
                Err(_) => gateway::server_error(504, "Endpoint request timed out", cors),
                Ok(Ok(Outcome::Ok(body))) => answer(&body, false),
                Ok(Ok(Outcome::FunctionError(body) | Outcome::Failed(body))) => answer(&body, true),
                Ok(Ok(Outcome::Throttled)) => throttled(request_id, &method.function, cors),
                Ok(Err(e)) => {
                    eprintln!("{request_id} Execution failed: {e}");
                    gateway::server_error(500, "Internal server error", cors)
                }
            }
        }
    }
}

/// What a mapping template sees of a request.
fn template_request(r: &HttpRequest, path_params: &BTreeMap<String, String>, stage: &StageFile, route: &Route, request_id: &str) -> crate::vtl::Request {
    crate::vtl::Request {
        body: String::from_utf8_lossy(&r.body).into_owned(),
        path: path_params.clone(),
        querystring: r.query.iter().cloned().collect(),
        header: r.headers.iter().cloned().collect(),
        context: {
            let mut context = gateway::request_context(r, &stage.stage, &route.path, &stage.api_id, request_id);
            context["deploymentId"] = serde_json::json!(stage.deployment_id);
            context
        },
        stage_variables: stage.variables.clone(),
    }
}

/// API Gateway's answer when Lambda throttles the integration: 500, as on AWS
/// (a proxy integration cannot pass Lambda's 429 on).
fn throttled(request_id: &str, function: &str, cors: Option<&str>) -> HttpResponse {
    eprintln!("{request_id} Execution failed: Lambda throttled {function} (reserved concurrency in use): 429 TooManyRequestsException");
    gateway::server_error(500, "Internal server error", cors)
}
