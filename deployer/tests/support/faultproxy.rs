#![allow(dead_code)] // each user (fault tests, benchmarks) uses part of it

//! A loopback HTTP proxy in front of an AWS emulator, for benchmarks and fault
//! tests: it adds a fixed delay to every request (standing for AWS's control-plane
//! round trip), counts requests (all, and those that change something), and can
//! answer a share of them with throttling or a 500 — before forwarding (nothing
//! happened) or after (the call took effect, its answer is lost). Errors are
//! shaped per protocol (query XML, REST-JSON, S3 XML), so SDK clients read them as
//! they read AWS's.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub upstream: SocketAddr,
    /// Added to every request.
    pub delay: Duration,
    /// Share of requests answered with throttling (0.0..1.0), before forwarding.
    pub throttle_share: f64,
    /// Share answered with a 500: half before forwarding, half after.
    pub error_share: f64,
    /// Seed of the fault choices (a run is reproducible).
    pub seed: u64,
    /// Requests whose `METHOD path` contains this text are refused with
    /// AccessDenied (403), as AWS answers a call the credentials may not make.
    pub deny: Option<String>,
    /// Enforce API Gateway's control-plane quotas (`Quotas`): a call over
    /// them is answered 429 TooManyRequestsException, as AWS answers it.
    pub quotas: bool,
}

/// API Gateway's fixed quotas for creating, deploying and managing an API
/// (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html,
/// "API Gateway quotas for creating, deploying and managing an API"), as
/// token buckets per account: each operation's own, and 10 requests per
/// second with a burst of 40 over all of them. Lambda's and IAM's control
/// planes are not modelled (IAM publishes no per-operation rates).
#[derive(Debug)]
pub struct Quotas {
    buckets: Mutex<std::collections::HashMap<&'static str, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: std::time::Instant,
}

impl Bucket {
    fn new(capacity: f64, per_second: f64) -> Bucket {
        Bucket { capacity, per_second, tokens: capacity, at: std::time::Instant::now() }
    }

    fn refill(&mut self) {
        let now = std::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.per_second).min(self.capacity);
        self.at = now;
    }
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas { buckets: Mutex::new(std::collections::HashMap::new()) }
    }
}

impl Quotas {
    /// The operation's own quota (capacity, requests per second), if it has one.
    fn operation(method: &str, path: &str, body: &[u8]) -> Option<(&'static str, f64, f64)> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        Some(match (method, parts.as_slice()) {
            ("POST", ["restapis"]) => {
                // Edge-optimised is the default endpoint type.
                let text = String::from_utf8_lossy(body);
                if text.contains("REGIONAL") || text.contains("PRIVATE") { ("CreateRestApi (regional)", 1.0, 1.0 / 3.0) } else { ("CreateRestApi (edge)", 1.0, 1.0 / 30.0) }
            }
            ("POST", ["restapis", _, "deployments"]) => ("CreateDeployment", 1.0, 1.0 / 5.0),
            ("POST", ["restapis", _, "resources", _]) => ("CreateResource", 5.0, 5.0),
            ("DELETE", ["restapis", _, "resources", _]) => ("DeleteResource", 5.0, 5.0),
            ("DELETE", ["restapis", _]) => ("DeleteRestApi", 1.0, 1.0 / 30.0),
            ("GET", ["restapis", _, "resources"]) => ("GetResources", 5.0, 2.5),
            ("PUT", ["restapis", _]) => ("PutRestApi", 1.0, 1.0),
            _ => return None,
        })
    }

    /// Whether an API Gateway call may go now; takes its tokens when it may.
    pub fn admit(&self, method: &str, path: &str, body: &[u8]) -> bool {
        if !path.starts_with("/restapis") {
            return true;
        }
        let mut buckets = self.buckets.lock().expect("quotas");
        let own = Self::operation(method, path, body);
        let mut wanted = vec![("all API Gateway management calls", 40.0, 10.0)];
        wanted.extend(own);
        for (name, capacity, rate) in &wanted {
            let b = buckets.entry(name).or_insert_with(|| Bucket::new(*capacity, *rate));
            b.refill();
            if b.tokens < 1.0 {
                return false;
            }
        }
        for (name, _, _) in &wanted {
            if let Some(b) = buckets.get_mut(name) {
                b.tokens -= 1.0;
            }
        }
        true
    }
}

#[derive(Debug, Default)]
struct Stats {
    /// The buckets, used when the config asks for quotas.
    quotas: Quotas,
    /// Requests received and not yet answered (or dropped).
    in_flight: AtomicU64,
    total: AtomicU64,
    mutating: AtomicU64,
    throttled: AtomicU64,
    failed: AtomicU64,
}

pub struct Proxy {
    pub url: String,
    stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listen on a free loopback port.
    pub async fn start(config: ProxyConfig) -> std::io::Result<Proxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let stats = Arc::new(Stats::default());
        let rng = Arc::new(Mutex::new(config.seed | 1));
        let shared = (Arc::new(config), stats.clone(), rng);
        let task = stackctl::local::spawn_server(
            listener,
            stackctl::local::Limits::public(),
            hyper::service::service_fn(move |req| {
                let (c, s, r) = shared.clone();
                handle(c, s, r, req)
            }),
        );
        Ok(Proxy { url, stats, task })
    }

    /// Requests since the last reset.
    pub fn requests(&self) -> u64 {
        self.stats.total.load(Ordering::SeqCst)
    }
    /// Requests that change something (not Get/List/Describe, not GET/HEAD).
    pub fn mutating(&self) -> u64 {
        self.stats.mutating.load(Ordering::SeqCst)
    }
    /// Faults injected: (throttled, 500).
    pub fn injected(&self) -> (u64, u64) {
        (self.stats.throttled.load(Ordering::SeqCst), self.stats.failed.load(Ordering::SeqCst))
    }
    /// Wait until no request is in flight: one a killed client sent goes on
    /// to the service (after the proxy's delay) or is dropped, and either way
    /// has happened before this returns.
    pub async fn settled(&self) {
        while self.stats.in_flight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Full buckets again, as for an account that made no call for a while.
    pub fn refill_quotas(&self) {
        self.stats.quotas.buckets.lock().expect("quotas").clear();
    }

    pub fn reset(&self) {
        for c in [&self.stats.total, &self.stats.mutating, &self.stats.throttled, &self.stats.failed] {
            c.store(0, Ordering::SeqCst);
        }
    }
}

/// xorshift64*: a uniform number in [0, 1).
fn next(rng: &Mutex<u64>) -> f64 {
    let mut x = rng.lock().expect("rng");
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Query,
    /// awsJson1.1 (CloudWatch Logs): the action in `X-Amz-Target`.
    Json,
    RestJson,
    S3,
}

fn protocol(path: &str, body: &[u8], target: Option<&str>) -> Protocol {
    if target.is_some() {
        Protocol::Json
    } else if body.starts_with(b"Action=") || String::from_utf8_lossy(body).contains("&Action=") {
        Protocol::Query
    } else if path.starts_with("/20") || path.starts_with("/restapis") || path.starts_with("/tags") {
        Protocol::RestJson
    } else {
        Protocol::S3
    }
}

/// Whether a request changes something.
pub fn is_mutating(method: &str, uri: &str, body: &[u8], target: Option<&str>) -> bool {
    let text = String::from_utf8_lossy(body);
    let action = target
        .and_then(|t| t.rsplit('.').next().map(str::to_owned))
        .or_else(|| [uri, text.as_ref()].iter().find_map(|s| s.split(['?', '&']).find_map(|kv| kv.strip_prefix("Action=")).map(str::to_owned)));
    match action {
        Some(a) => !(a.starts_with("Get") || a.starts_with("List") || a.starts_with("Describe") || a.starts_with("Filter")),
        None => !matches!(method, "GET" | "HEAD"),
    }
}

fn fault(p: Protocol, throttle: bool) -> Response<Full<Bytes>> {
    let (status, kind, body) = match (p, throttle) {
        (Protocol::Query, true) => (400, None, "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"),
        (Protocol::Query, false) => (500, None, "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>injected failure</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"),
        (Protocol::Json, true) => (400, Some("ThrottlingException"), r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
        (Protocol::Json, false) => (500, Some("ServiceUnavailableException"), r#"{"__type":"ServiceUnavailableException","message":"injected failure"}"#),
        (Protocol::RestJson, true) => (429, Some("TooManyRequestsException"), r#"{"message":"Rate exceeded"}"#),
        (Protocol::RestJson, false) => (500, Some("ServiceException"), r#"{"message":"injected failure"}"#),
        (Protocol::S3, true) => (503, None, "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"),
        (Protocol::S3, false) => (500, None, "<Error><Code>InternalError</Code><Message>injected failure</Message></Error>"),
    };
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let ctype = match p {
        Protocol::RestJson => "application/json",
        Protocol::Json => "application/x-amz-json-1.1",
        Protocol::Query | Protocol::S3 => "text/xml",
    };
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static(ctype));
    if let Some(k) = kind {
        r.headers_mut().insert("x-amzn-errortype", hyper::header::HeaderValue::from_static(k));
    }
    r
}

async fn forward(upstream: SocketAddr, parts: hyper::http::request::Parts, body: Bytes) -> Result<Response<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(upstream).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = Request::from_parts(parts, Full::new(body));
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// Counts a request in flight until its handler ends (answered or dropped).
struct InFlight(Arc<Stats>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(config: Arc<ProxyConfig>, stats: Arc<Stats>, rng: Arc<Mutex<u64>>, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    stats.in_flight.fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight(stats.clone());
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let uri = parts.uri.to_string();
    let target = parts.headers.get("x-amz-target").and_then(|t| t.to_str().ok()).map(str::to_owned);
    stats.total.fetch_add(1, Ordering::SeqCst);
    if is_mutating(parts.method.as_str(), &uri, &body, target.as_deref()) {
        stats.mutating.fetch_add(1, Ordering::SeqCst);
    }
    tokio::time::sleep(config.delay).await;
    let p = protocol(parts.uri.path(), &body, target.as_deref());
    if config.deny.as_ref().is_some_and(|d| format!("{} {}", parts.method, parts.uri.path()).contains(d.as_str())) {
        let mut r = Response::new(Full::new(Bytes::from_static(br#"{"message":"User is not authorized to perform this action"}"#)));
        *r.status_mut() = StatusCode::FORBIDDEN;
        r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
        r.headers_mut().insert("x-amzn-errortype", hyper::header::HeaderValue::from_static("AccessDeniedException"));
        return Ok(r);
    }
    if config.quotas
        && !stats.quotas.admit(parts.method.as_str(), parts.uri.path(), &body)
    {
        stats.throttled.fetch_add(1, Ordering::SeqCst);
        return Ok(fault(p, true));
    }
    let roll = next(&rng);
    if roll < config.throttle_share {
        stats.throttled.fetch_add(1, Ordering::SeqCst);
        return Ok(fault(p, true));
    }
    let error_roll = roll - config.throttle_share;
    if error_roll < config.error_share / 2.0 {
        stats.failed.fetch_add(1, Ordering::SeqCst);
        return Ok(fault(p, false));
    }
    let answer = forward(config.upstream, parts, body).await;
    if error_roll < config.error_share {
        // The call reached the service; its answer is lost.
        stats.failed.fetch_add(1, Ordering::SeqCst);
        return Ok(fault(p, false));
    }
    Ok(answer.unwrap_or_else(|e| {
        let mut r = Response::new(Full::new(Bytes::from(format!("proxy: upstream unreachable: {e}"))));
        *r.status_mut() = StatusCode::BAD_GATEWAY;
        r
    }))
}
