//! Lambda semantics on this machine: each function runs as a native process
//! behind an emulated Lambda Runtime API (the real `lambda_runtime` client in the
//! handler talks to it unchanged). Warm processes are reused, concurrent
//! invocations get more processes, and an invocation that outlives the function's
//! timeout kills its process and is reported like Lambda reports it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
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
}

struct Pending {
    id: String,
    payload: Vec<u8>,
    deadline_ms: u128,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Pending>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    ready: Notify,
    /// Processes currently waiting on `/next`.
    idle: Mutex<usize>,
    /// Invocations started and not yet answered.
    in_flight: std::sync::atomic::AtomicUsize,
}

/// A function with its runtime API endpoint and its pool of processes.
pub struct LocalFunction {
    spec: FunctionSpec,
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    processes: Mutex<Vec<tokio::process::Child>>,
    counter: std::sync::atomic::AtomicU64,
    runtime_api: tokio::task::AbortHandle,
    /// Asynchronous (`Event`) invocations run at most this many at a time; the
    /// rest wait in the function's event queue, as on Lambda.
    event_slots: Arc<tokio::sync::Semaphore>,
}

/// At most this many processes per function (Lambda's concurrency limit, scaled
/// to one machine); further calls wait for a warm process.
pub const MAX_PROCESSES: usize = 64;
const EVENT_CONCURRENCY: usize = 16;

impl LocalFunction {
    /// Start the function's runtime API on a loopback port (processes start on demand).
    pub async fn start(spec: FunctionSpec) -> std::io::Result<Arc<LocalFunction>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let server = super::spawn_server(listener, hyper::service::service_fn({
            let shared = shared.clone();
            move |req| runtime_api(shared.clone(), req)
        }));
        Ok(Arc::new(LocalFunction { spec, shared, addr, processes: Mutex::new(Vec::new()), counter: 0.into(), runtime_api: server.abort_handle(), event_slots: Arc::new(tokio::sync::Semaphore::new(EVENT_CONCURRENCY)) }))
    }

    fn spawn_process(&self) -> std::io::Result<()> {
        let mut cmd = tokio::process::Command::new(&self.spec.executable);
        cmd.env_clear()
            .envs(&self.spec.environment)
            .env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
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
        // The function's output goes to the server's log, one prefixed line at a time.
        for stream in [child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>), child.stderr.take().map(|s| Box::new(s) as _)]
            .into_iter()
            .flatten()
        {
            let name = self.spec.name.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    println!("[{name}] {line}");
                }
            });
        }
        self.processes.lock().expect("lock").push(child);
        Ok(())
    }

    /// Invoke synchronously: the handler's answer, or Lambda's timeout error.
    pub async fn invoke(&self, payload: Vec<u8>) -> std::io::Result<Outcome> {
        let n = self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{:08x}-local-{n}", std::process::id());
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().expect("lock").insert(id.clone(), tx);
        let deadline_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default()
            + self.spec.timeout.as_millis();
        self.shared.queue.lock().expect("lock").push_back(Pending { id: id.clone(), payload, deadline_ms });
        // One process per concurrent invocation, as Lambda does: a warm process
        // (even one still posting its previous answer) takes the next call.
        let in_flight = self.shared.in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let running = self.process_count();
        if running < in_flight && running < MAX_PROCESSES {
            self.spawn_process()?;
        }
        self.shared.ready.notify_one();
        let result = self.wait(&id, rx).await;
        self.shared.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        match result {
            Wait::Answer(outcome) => Ok(outcome),
            Wait::Exited => {
                self.forget(&id);
                Ok(Outcome::Failed(lambda_error("Runtime.ExitError", "Runtime exited without providing a reason")))
            }
            Wait::TimedOut => {
                self.forget(&id);
                // The process running it is stuck. Which one is not known here, so the
                // pool restarts (Lambda, too, discards the sandbox of a timed-out call).
                self.stop();
                let secs = self.spec.timeout.as_secs_f64();
                Ok(Outcome::Failed(lambda_error("Sandbox.Timedout", &format!("Task timed out after {secs:.2} seconds"))))
            }
        }
    }

    /// Queue an asynchronous (`Event`) invocation; it runs when a slot is free.
    pub fn invoke_event(self: &Arc<Self>, payload: Vec<u8>) {
        let f = self.clone();
        tokio::spawn(async move {
            let Ok(_slot) = f.event_slots.clone().acquire_owned().await else { return };
            match f.invoke(payload).await {
                Ok(Outcome::Ok(_)) => {}
                Ok(Outcome::FunctionError(b) | Outcome::Failed(b)) => println!("[{}] async invocation failed: {}", f.spec.name, String::from_utf8_lossy(&b)),
                Err(e) => println!("[{}] async invocation failed: {e}", f.spec.name),
            }
        });
    }

    /// Wait for the answer, the timeout, or every process of the function exiting.
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
                    if self.process_count() == 0 && self.shared.waiting.lock().expect("lock").contains_key(id) {
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
        for mut child in self.processes.lock().expect("lock").drain(..) {
            let _ = child.start_kill();
        }
        *self.shared.idle.lock().expect("lock") = 0;
    }

    pub fn process_count(&self) -> usize {
        let mut procs = self.processes.lock().expect("lock");
        procs.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        procs.len()
    }
}

impl Drop for LocalFunction {
    fn drop(&mut self) {
        self.stop();
        self.runtime_api.abort();
    }
}

fn lambda_error(kind: &str, message: &str) -> Vec<u8> {
    serde_json::json!({ "errorType": kind, "errorMessage": message }).to_string().into_bytes()
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// The Runtime API: `GET /next` (long poll), `POST /{id}/response`, `POST /{id}/error`.
async fn runtime_api(shared: Arc<Shared>, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if method == hyper::Method::GET && path == "/2018-06-01/runtime/invocation/next" {
        *shared.idle.lock().expect("lock") += 1;
        let next = loop {
            let notified = shared.ready.notified();
            if let Some(p) = shared.queue.lock().expect("lock").pop_front() {
                break p;
            }
            notified.await;
        };
        {
            let mut idle = shared.idle.lock().expect("lock");
            *idle = idle.saturating_sub(1);
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
    let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    let rest = path.strip_prefix("/2018-06-01/runtime/invocation/").unwrap_or("");
    if method == hyper::Method::POST {
        if let Some(id) = rest.strip_suffix("/response") {
            if let Some(tx) = shared.waiting.lock().expect("lock").remove(id) {
                let _ = tx.send(Outcome::Ok(body));
            }
            return Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"));
        }
        if let Some(id) = rest.strip_suffix("/error") {
            if let Some(tx) = shared.waiting.lock().expect("lock").remove(id) {
                let _ = tx.send(Outcome::FunctionError(body));
            }
            return Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"));
        }
        if path == "/2018-06-01/runtime/init/error" {
            return Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}"));
        }
    }
    Ok(reply(StatusCode::NOT_FOUND, "{\"errorMessage\":\"unknown runtime API route\"}"))
}
