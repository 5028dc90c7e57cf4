//! Lambda semantics on this machine: each function runs as a native process
//! behind an emulated Lambda Runtime API (the real `lambda_runtime` client in the
//! handler talks to it unchanged). Warm processes are reused, concurrent
//! invocations get more processes, and an invocation that outlives the function's
//! timeout kills its process and is reported like Lambda reports it.
//!
//! Every process gets a runtime endpoint of its own (`AWS_LAMBDA_RUNTIME_API` is
//! `127.0.0.1:{port}`, as every runtime client expects), and that port serves
//! only connections opened by that very process (`connected_from`): no other
//! process on the machine can take its invocations or answer them. A process
//! may answer only the invocation it was handed, and when it exits that one
//! invocation fails at once (`Runtime.ExitError`), whatever the other processes
//! of the function are doing.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode};
use tokio::sync::{oneshot, Notify};

/// How to run one function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub name: String,
    pub executable: PathBuf,
    pub memory: u32,
    pub timeout: Duration,
    pub environment: BTreeMap<String, String>,
    /// Delays before the two retries of a failed `Event` call; `None`: Lambda's
    /// (see [`event_retry_delays`]).
    pub event_retry_delays: Option<[Duration; 2]>,
    /// The log group's events file the function's lines are appended to
    /// (besides the server's log); `None`: it has no log group.
    pub log: Option<PathBuf>,
    /// At most this many invocations at once, the others throttled; `None`: no reservation.
    pub reserved_concurrency: Option<u32>,
}

enum Wait {
    Answer(Outcome),
    Exited,
    TimedOut,
}

/// The outcome of one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The handler's result (JSON bytes).
    Ok(Vec<u8>),
    /// The handler reported an error: `{"errorType", "errorMessage"}`.
    FunctionError(Vec<u8>),
    /// Killed after the timeout, or the process died: Lambda's own error payload.
    Failed(Vec<u8>),
    /// Refused before running: the function's reserved concurrency is in use
    /// (Lambda's 429 TooManyRequestsException).
    Throttled,
}

/// Lambda's answer to a throttled invocation (with HTTP 429, `TooManyRequestsException`).
pub fn throttled_body() -> String {
    serde_json::json!({ "Type": "User", "message": "Rate Exceeded.", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded" }).to_string()
}

struct Pending {
    id: String,
    payload: Vec<u8>,
    deadline_ms: u128,
}

/// One running process of a function, as the runtime API knows it.
struct Process {
    pid: u32,
    /// The invocation this process was handed and has not answered yet.
    current: Mutex<Option<String>>,
    /// Dropping (or sending on) it kills the process.
    kill: Mutex<Option<oneshot::Sender<()>>>,
}

impl Process {
    fn kill(&self) {
        if let Some(tx) = self.kill.lock().expect("lock").take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Pending>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    ready: Notify,
    /// Live processes by runtime token. Spawning is decided under this lock, so
    /// the count never passes [`MAX_PROCESSES`], however many calls race.
    processes: Mutex<HashMap<String, Arc<Process>>>,
    /// Invocations started and not yet answered.
    in_flight: AtomicUsize,
}

impl Shared {
    /// A process exited (or was killed): forget it and fail the invocation it held.
    fn exited(&self, token: &str) {
        let Some(p) = self.processes.lock().expect("lock").remove(token) else { return };
        if let Some(id) = p.current.lock().expect("lock").take()
            && let Some(tx) = self.waiting.lock().expect("lock").remove(&id)
        {
            let _ = tx.send(Outcome::Failed(exit_error()));
        }
    }
}

/// A function with its runtime API endpoint and its pool of processes.
pub struct LocalFunction {
    spec: FunctionSpec,
    shared: Arc<Shared>,
    counter: AtomicU64,
    /// Asynchronous (`Event`) invocations run at most this many at a time; the
    /// rest wait in the function's event queue, as on Lambda.
    event_slots: Arc<tokio::sync::Semaphore>,
    /// Lambda's delays before the two retries of a failed asynchronous call.
    event_retry_delays: [Duration; 2],
    /// The function's reserved concurrency, as permits.
    reserved: Option<Arc<tokio::sync::Semaphore>>,
}

/// At most this many processes per function (Lambda's concurrency limit, scaled
/// to one machine); further calls wait for a warm process.
pub const MAX_PROCESSES: usize = 64;
const EVENT_CONCURRENCY: usize = 16;
/// A runtime posts at most Lambda's 6 MB response (and a little framing).
const MAX_RUNTIME_POST: usize = 6 * 1024 * 1024 + 64 * 1024;

/// Lambda waits one minute, then two, before retrying a failed asynchronous call;
/// `STACKCTL_LOCAL_EVENT_RETRY_SECONDS=a,b` shortens them to watch it happen.
pub fn event_retry_delays() -> [Duration; 2] {
    let parsed: Option<Vec<u64>> = std::env::var("STACKCTL_LOCAL_EVENT_RETRY_SECONDS").ok().and_then(|v| v.split(',').map(|s| s.trim().parse().ok()).collect());
    match parsed.as_deref() {
        Some([a, b]) => [Duration::from_secs(*a), Duration::from_secs(*b)],
        _ => [Duration::from_secs(60), Duration::from_secs(120)],
    }
}

impl LocalFunction {
    /// A function whose processes start on demand.
    pub async fn start(spec: FunctionSpec) -> std::io::Result<Arc<LocalFunction>> {
        Ok(Arc::new(LocalFunction {
            shared: Arc::new(Shared::default()),
            counter: 0.into(),
            event_slots: Arc::new(tokio::sync::Semaphore::new(EVENT_CONCURRENCY)),
            event_retry_delays: spec.event_retry_delays.unwrap_or_else(event_retry_delays),
            reserved: spec.reserved_concurrency.map(|n| Arc::new(tokio::sync::Semaphore::new(n as usize))),
            spec,
        }))
    }

    /// Start one more process if fewer run than invocations are in flight (and
    /// the cap allows); decided and recorded under one lock.
    fn scale(&self) -> std::io::Result<()> {
        let mut processes = self.shared.processes.lock().expect("lock");
        let in_flight = self.shared.in_flight.load(Ordering::SeqCst);
        if processes.len() >= in_flight || processes.len() >= MAX_PROCESSES {
            return Ok(());
        }
        let token = super::cloud::random_id(32, false);
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let child = self.spawn_process(addr)?;
        let pid = child.id().unwrap_or_default();
        // The runtime keeps its connection while the handler works: idle for up to
        // the function's timeout, never cut before.
        let limits = super::Limits { max_connections: 8, header_timeout: self.spec.timeout + Duration::from_secs(60) };
        let runtime_api = super::spawn_server_admitting(listener, limits, move |stream| super::connected_from(stream, pid), hyper::service::service_fn({
            let (shared, token) = (self.shared.clone(), token.clone());
            move |req| runtime_api(shared.clone(), token.clone(), req)
        }));
        let (kill_tx, kill_rx) = oneshot::channel();
        let process = Arc::new(Process { pid, current: Mutex::new(None), kill: Mutex::new(Some(kill_tx)) });
        processes.insert(token.clone(), process);
        drop(processes);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut child = child;
            tokio::select! {
                _ = child.wait() => {}
                _ = kill_rx => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                }
            }
            runtime_api.abort();
            shared.exited(&token);
        });
        Ok(())
    }

    fn spawn_process(&self, runtime_api: std::net::SocketAddr) -> std::io::Result<tokio::process::Child> {
        let mut cmd = tokio::process::Command::new(&self.spec.executable);
        cmd.env_clear()
            .envs(&self.spec.environment)
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.spec.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", self.spec.memory.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", self.spec.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe; the function dies with its server,
        // even when the server is killed with SIGKILL.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        // The function's output goes to the server's log, one prefixed line at a
        // time, and to its log group (one stream per process, as on Lambda).
        let stream_name = super::logs::stream_name();
        for stream in [child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>), child.stderr.take().map(|s| Box::new(s) as _)]
            .into_iter()
            .flatten()
        {
            let name = self.spec.name.clone();
            let mut group = self.spec.log.as_ref().and_then(|path| match super::logs::Appender::open(path, stream_name.clone()) {
                Ok(a) => Some(a),
                Err(e) => {
                    eprintln!("[{name}] cannot open the log group's file {}: {e}", path.display());
                    None
                }
            });
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln!("[{name}] {line}");
                    if let Some(g) = &mut group
                        && g.line(&line).is_err()
                    {
                        group = None;
                    }
                }
            });
        }
        Ok(child)
    }

    /// Invoke synchronously: the handler's answer, or Lambda's timeout error.
    pub async fn invoke(&self, payload: Vec<u8>) -> std::io::Result<Outcome> {
        // Lambda hands a function `{}` for an empty payload (an Invoke
        // without one, or a mapping template that rendered nothing).
        let payload = if payload.iter().all(u8::is_ascii_whitespace) { b"{}".to_vec() } else { payload };
        let _reserved = match &self.reserved {
            Some(slots) => match slots.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return Ok(Outcome::Throttled),
            },
            None => None,
        };
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:08x}-{}-local-{n}", std::process::id(), super::cloud::random_id(8, false));
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().expect("lock").insert(id.clone(), tx);
        let deadline_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default()
            + self.spec.timeout.as_millis();
        self.shared.queue.lock().expect("lock").push_back(Pending { id: id.clone(), payload, deadline_ms });
        // One process per concurrent invocation, as Lambda does: a warm process
        // (even one still posting its previous answer) takes the next call.
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let scaled = self.scale();
        self.shared.ready.notify_one();
        let result = match scaled {
            Ok(()) => self.wait(&id, rx).await,
            Err(e) => {
                self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                self.forget(&id);
                return Err(e);
            }
        };
        self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        match result {
            Wait::Answer(outcome) => Ok(outcome),
            Wait::Exited => {
                self.forget(&id);
                Ok(Outcome::Failed(exit_error()))
            }
            Wait::TimedOut => {
                self.forget(&id);
                // The process running it is stuck: Lambda discards that sandbox.
                let holder = self.shared.processes.lock().expect("lock").values().find(|p| p.current.lock().expect("lock").as_deref() == Some(id.as_str())).cloned();
                if let Some(p) = holder {
                    p.current.lock().expect("lock").take();
                    p.kill();
                }
                let secs = self.spec.timeout.as_secs_f64();
                Ok(Outcome::Failed(lambda_error("Sandbox.Timedout", &format!("Task timed out after {secs:.2} seconds"))))
            }
        }
    }

    /// Queue an asynchronous (`Event`) invocation; it runs when a slot is free.
    /// A failed attempt (function error, timeout, crash) is retried twice, after
    /// Lambda's delays, as Lambda does for asynchronous calls.
    pub fn invoke_event(self: &Arc<Self>, payload: Vec<u8>) {
        let f = self.clone();
        tokio::spawn(async move {
            for attempt in 0..=f.event_retry_delays.len() {
                if attempt > 0 {
                    tokio::time::sleep(f.event_retry_delays[attempt - 1]).await;
                }
                let mut throttled = 0;
                let outcome = loop {
                    let outcome = {
                        let Ok(_slot) = f.event_slots.clone().acquire_owned().await else { return };
                        f.invoke(payload.clone()).await
                    };
                    // Throttled events wait in the queue (Lambda keeps them for
                    // up to 6 hours; the local cloud, 10 minutes), not counted as attempts.
                    if matches!(outcome, Ok(Outcome::Throttled)) && throttled < 600 {
                        throttled += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    break outcome;
                };
                let failure = match outcome {
                    Ok(Outcome::Ok(_)) => return,
                    Ok(Outcome::Throttled) => {
                        eprintln!("[{}] async invocation throttled for 10 minutes (reserved concurrency in use): the event is dropped", f.spec.name);
                        return;
                    }
                    Ok(Outcome::FunctionError(b) | Outcome::Failed(b)) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => e.to_string(),
                };
                let next = if attempt < f.event_retry_delays.len() { format!("; retrying in {} s", f.event_retry_delays[attempt].as_secs()) } else { "; no retry left, the event is dropped".into() };
                eprintln!("[{}] async invocation failed (attempt {} of 3): {failure}{next}", f.spec.name, attempt + 1);
            }
        });
    }

    /// Wait for the answer, the timeout, or every process of the function exiting
    /// before one took the call.
    async fn wait(&self, id: &str, mut rx: oneshot::Receiver<Outcome>) -> Wait {
        let deadline = tokio::time::Instant::now() + self.spec.timeout;
        loop {
            tokio::select! {
                answer = &mut rx => return match answer {
                    Ok(outcome) => Wait::Answer(outcome),
                    Err(_) => Wait::Exited,
                },
                _ = tokio::time::sleep_until(deadline) => return Wait::TimedOut,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    let queued = self.shared.queue.lock().expect("lock").iter().any(|p| p.id == id);
                    if queued && self.process_count() == 0 {
                        return Wait::Exited;
                    }
                }
            }
        }
    }

    fn forget(&self, id: &str) {
        self.shared.waiting.lock().expect("lock").remove(id);
        self.shared.queue.lock().expect("lock").retain(|p| p.id != id);
    }

    /// Kill every process of the function.
    pub fn stop(&self) {
        let processes: Vec<Arc<Process>> = self.shared.processes.lock().expect("lock").values().cloned().collect();
        for p in processes {
            p.kill();
        }
    }

    /// Live processes (started, not yet exited).
    pub fn process_count(&self) -> usize {
        self.shared.processes.lock().expect("lock").len()
    }

    /// The pids of the live processes.
    pub fn pids(&self) -> Vec<u32> {
        self.shared.processes.lock().expect("lock").values().map(|p| p.pid).collect()
    }
}

impl Drop for LocalFunction {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lambda_error(kind: &str, message: &str) -> Vec<u8> {
    serde_json::json!({ "errorType": kind, "errorMessage": message }).to_string().into_bytes()
}

/// Lambda's error for a call whose process died.
fn exit_error() -> Vec<u8> {
    lambda_error("Runtime.ExitError", "Runtime exited without providing a reason")
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// The Runtime API of the process `token`: `GET /next` (long poll),
/// `POST /{id}/response`, `POST /{id}/error`, `POST /init/error`.
async fn runtime_api(shared: Arc<Shared>, token: String, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let rest = req.uri().path().to_owned();
    let method = req.method().clone();
    let token = token.as_str();
    let Some(process) = shared.processes.lock().expect("lock").get(token).cloned() else {
        return Ok(reply(StatusCode::FORBIDDEN, "{\"errorMessage\":\"unknown runtime\"}"));
    };
    if method == hyper::Method::GET && rest == "/2018-06-01/runtime/invocation/next" {
        let next = loop {
            let notified = shared.ready.notified();
            if let Some(p) = shared.queue.lock().expect("lock").pop_front() {
                break p;
            }
            notified.await;
        };
        // Handed to this process from now on: if it exits, this call fails at once.
        {
            let processes = shared.processes.lock().expect("lock");
            if !processes.contains_key(token) {
                // It exited while this poll was waiting: the call goes to another process.
                drop(processes);
                shared.queue.lock().expect("lock").push_front(next);
                shared.ready.notify_one();
                return Ok(reply(StatusCode::GONE, "{\"errorMessage\":\"runtime exited\"}"));
            }
            *process.current.lock().expect("lock") = Some(next.id.clone());
        }
        let mut r = reply(StatusCode::OK, next.payload);
        let h = r.headers_mut();
        let ins = |h: &mut hyper::HeaderMap, k: &'static str, v: String| {
            if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
                h.insert(k, v);
            }
        };
        ins(h, "lambda-runtime-aws-request-id", next.id.clone());
        ins(h, "lambda-runtime-deadline-ms", next.deadline_ms.to_string());
        ins(h, "lambda-runtime-invoked-function-arn", "arn:aws:lambda:local:000000000000:function:local".into());
        ins(h, "lambda-runtime-trace-id", format!("Root=1-local-{}", next.id));
        ins(h, "content-type", "application/json".into());
        return Ok(r);
    }
    let Ok(body) = Limited::new(req.into_body(), MAX_RUNTIME_POST).collect().await.map(|b| b.to_bytes().to_vec()) else {
        return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE, "{\"errorMessage\":\"response payload too large\",\"errorType\":\"RequestEntityTooLarge\"}"));
    };
    let rest = rest.strip_prefix("/2018-06-01/runtime/invocation/").unwrap_or("");
    if method == hyper::Method::POST {
        for (suffix, error) in [("/response", false), ("/error", true)] {
            let Some(id) = rest.strip_suffix(suffix) else { continue };
            // A process answers only the invocation it holds.
            let mut current = process.current.lock().expect("lock");
            if current.as_deref() != Some(id) {
                return Ok(reply(StatusCode::BAD_REQUEST, "{\"errorMessage\":\"this runtime does not hold that invocation\",\"errorType\":\"InvalidRequestID\"}"));
            }
            current.take();
            drop(current);
            if let Some(tx) = shared.waiting.lock().expect("lock").remove(id) {
                let _ = tx.send(if error { Outcome::FunctionError(body) } else { Outcome::Ok(body) });
            }
            return Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"));
        }
        if rest == "init/error" {
            return Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"));
        }
    }
    Ok(reply(StatusCode::NOT_FOUND, "{\"errorMessage\":\"unknown runtime API route\"}"))
}
