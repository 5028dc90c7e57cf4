//! Cold start and warm latency of the packaged handlers, measured locally.
//!
//!     cargo bench -p stackctl --bench cold_start
//!
//! Builds the functions (release, host), then for each one: spawns `bootstrap`
//! against a minimal Lambda Runtime API on loopback and times process start →
//! first response (cold start, 20 runs), then 1,000 sequential invocations on the
//! warm process. Prints medians; asserts nothing about speed (machines are noisy).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stackctl::build::{build_stack, BuildOptions};

/// A minimal Lambda Runtime API on loopback: hands out `event` on every
/// `/invocation/next` and reports the instant of every response. The runtime
/// client may use several connections, so each gets its own thread.
struct RuntimeApi {
    port: u16,
    responses: std::sync::mpsc::Receiver<Instant>,
}

impl RuntimeApi {
    fn start(event: Vec<u8>) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, responses) = std::sync::mpsc::channel();
        let event = std::sync::Arc::new(event);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (tx, event) = (tx.clone(), event.clone());
                std::thread::spawn(move || connection(stream, &event, &tx));
            }
        });
        RuntimeApi { port, responses }
    }

    fn next_response(&self) -> Instant {
        self.responses.recv_timeout(Duration::from_secs(30)).expect("the function answered")
    }
}

fn connection(stream: std::net::TcpStream, event: &[u8], tx: &std::sync::mpsc::Sender<Instant>) {
    stream.set_nodelay(true).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut id = 0u64;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if h == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let ok = if line.starts_with("GET") && line.contains("/invocation/next") {
            id += 1;
            let deadline = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 30_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: req-{id}\r\nlambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:eu-central-1:000000000000:function:bench\r\nlambda-runtime-trace-id: Root=1-0-0\r\ncontent-length: {}\r\n\r\n",
                event.len()
            );
            writer.write_all(head.as_bytes()).and_then(|_| writer.write_all(event))
        } else {
            let _ = tx.send(Instant::now());
            writer.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}")
        };
        if ok.is_err() {
            return;
        }
    }
}

fn spawn(exe: &Path, port: u16, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(exe);
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "eu-central-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("RUST_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("bootstrap starts")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Stack, function, event, extra environment.
type Case = (&'static str, &'static str, Vec<u8>, Vec<(&'static str, &'static str)>);

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let paraphrase_event = std::fs::read(root.join("examples/paraphrase/test-request-event.json")).unwrap();
    let start_event = std::fs::read(root.join("functions/search-start/tests/events/invalid-fields.json")).unwrap();
    let worker_event = br#"{"token":"v1.00000000000000000000000000000000.1.00000000000000000000000000000000","id":"","size":"","rating":"","upgrade":""}"#.to_vec();
    let cases: Vec<Case> = vec![
        ("paraphrase", "paraphrase", paraphrase_event, vec![]),
        ("car-search", "search-start", start_event, vec![("WORKER_FUNCTION", "w"), ("SEARCH_TOKEN_KEY", "k")]),
        ("car-search", "search-worker", worker_event, vec![("RESULTS_BUCKET", "b"), ("SEARCH_TOKEN_KEY", "k")]),
    ];
    let opts = BuildOptions { host: true, progress: false, ..Default::default() };
    println!("{:<16} {:>10} {:>12} {:>14} {:>16}", "function", "zip bytes", "cold median", "cold min/max", "warm median (1000)");
    for (stack_name, function, event, env) in cases {
        let stack = stackctl::stack::load(&root.join(format!("stacks/{stack_name}.yaml")), "bench").unwrap();
        let artifacts = build_stack(&stack, &opts).unwrap();
        let artifact = artifacts.iter().find(|a| a.function == function).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&artifact.zip).unwrap()).unwrap();
        archive.extract(dir.path()).unwrap();
        let exe = dir.path().join("bootstrap");

        let mut cold = Vec::new();
        for _ in 0..20 {
            let api = RuntimeApi::start(event.clone());
            let started = Instant::now();
            let mut child = spawn(&exe, api.port, &env);
            cold.push(api.next_response() - started);
            child.kill().ok();
            child.wait().ok();
        }
        let api = RuntimeApi::start(event.clone());
        let mut child = spawn(&exe, api.port, &env);
        let mut prev = api.next_response(); // warm up
        let mut warm = Vec::new();
        for _ in 0..1000 {
            let t = api.next_response();
            warm.push(t - prev);
            prev = t;
        }
        child.kill().ok();
        child.wait().ok();
        let (min, max) = (*cold.iter().min().unwrap(), *cold.iter().max().unwrap());
        println!(
            "{:<16} {:>10} {:>10.2}ms {:>6.2}/{:<6.2}ms {:>14.3}ms",
            function,
            artifact.size,
            median(cold).as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            median(warm).as_secs_f64() * 1e3
        );
    }
}
