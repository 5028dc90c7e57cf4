//! The emulated Lambda runtime API with the real handlers: the `lambda_runtime`
//! client inside `paraphrase` talks to it unchanged; warm processes are reused,
//! concurrent calls get more processes (never more than the cap), a timeout kills
//! and is reported like Lambda, a crashed process fails its own call at once, and
//! a failed asynchronous call is retried twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use stackctl::local::lambda::{FunctionSpec, LocalFunction, Outcome};

/// Build the handler (debug) and return its executable.
fn handler(package: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(env!("CARGO")).args(["build", "-q", "-p", package, "--message-format=json"]).current_dir(root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| (v["target"]["name"] == package).then(|| v["executable"].as_str().map(PathBuf::from)).flatten())
        .expect("cargo reports the executable")
}

fn spec(exe: PathBuf, timeout: Duration) -> FunctionSpec {
    let mut environment = BTreeMap::new();
    environment.insert("RUST_LOG".into(), "off".into());
    FunctionSpec { name: "paraphrase-local".into(), executable: exe, memory: 128, timeout, environment, event_retry_delays: None, reserved_concurrency: None, log: None }
}

fn event() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/paraphrase/test-request-event.json")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_real_handler_answers_through_the_emulated_runtime_api() {
    let f = LocalFunction::start(spec(handler("paraphrase"), Duration::from_secs(10))).await.unwrap();
    let Outcome::Ok(body) = f.invoke(event()).await.unwrap() else { panic!("not ok") };
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["statusCode"], 200);
    let inner: serde_json::Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert!(inner["newText"].as_str().unwrap().contains("sujet de désaccord"));
    assert_eq!(f.process_count(), 1);
    // Warm: the same process answers the next calls.
    for _ in 0..5 {
        assert!(matches!(f.invoke(event()).await.unwrap(), Outcome::Ok(_)));
    }
    assert_eq!(f.process_count(), 1);
    // Concurrent calls get more processes.
    let calls = (0..4).map(|_| f.invoke(event()));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Outcome::Ok(_)))));
    assert!(f.process_count() >= 2, "concurrent invocations scale out to more processes");
    f.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_longer_than_the_timeout_is_killed_and_reported() {
    // search-worker's async duty sleeps SEARCH_DELAY_MS before writing: longer than a 1 s timeout.
    let mut s = spec(handler("search-worker"), Duration::from_secs(1));
    s.environment.insert("RESULTS_BUCKET".into(), "b".into());
    s.environment.insert("SEARCH_DELAY_MS".into(), "5000".into());
    s.environment.insert("SEARCH_TOKEN_KEY".into(), "k".into());
    s.environment.insert("AWS_REGION".into(), "eu-central-1".into());
    let token = stackctl_token("k");
    let f = LocalFunction::start(s).await.unwrap();
    let payload = serde_json::json!({ "token": token, "request": { "location": "Paris", "pickupDate": "2026-12-01", "returnDate": "2026-12-02" } });
    let started = std::time::Instant::now();
    let out = f.invoke(payload.to_string().into_bytes()).await.unwrap();
    let Outcome::Failed(body) = out else { panic!("expected a timeout, got {out:?}") };
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["errorType"], "Sandbox.Timedout");
    assert_eq!(v["errorMessage"], "Task timed out after 1.00 seconds");
    assert!(started.elapsed() < Duration::from_secs(4));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(f.process_count(), 0, "the stuck process is killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handler_error_is_a_function_error() {
    let mut s = spec(handler("search-worker"), Duration::from_secs(10));
    s.environment.insert("RESULTS_BUCKET".into(), "b".into());
    s.environment.insert("SEARCH_TOKEN_KEY".into(), "k".into());
    s.environment.insert("AWS_REGION".into(), "eu-central-1".into());
    let f = LocalFunction::start(s).await.unwrap();
    let out = f.invoke(br#"{"token": "invented", "id": "", "size": "", "rating": "", "upgrade": ""}"#.to_vec()).await.unwrap();
    let Outcome::FunctionError(body) = out else { panic!("expected a function error, got {out:?}") };
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["errorType"], "NotFound");
    assert!(v["errorMessage"].as_str().unwrap().contains("\"status\":404"));
}

/// A token search-start would issue with `key`.
fn stackctl_token(key: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    stackctl_shared::token::issue(key.as_bytes(), now).text
}

/// The local Invoke API with the real aws-sdk-lambda client: a function's own
/// credentials may invoke only what its policy grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_invoke_api_enforces_grants_for_the_sdk_client() {
    use stackctl::local::iam::{Iam, Principal};
    use stackctl::local::invoke_api::InvokeApi;
    let f = LocalFunction::start(spec(handler("paraphrase"), Duration::from_secs(10))).await.unwrap();
    let mut functions = BTreeMap::new();
    functions.insert("paraphrase-local".to_string(), f.clone());
    let policy = serde_json::json!({ "Version": "2012-10-17", "Statement": [
        { "Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": ["arn:aws:lambda:eu-central-1:000000000000:function:paraphrase-local"] },
    ]});
    let principal = |key: &str, policy: serde_json::Value| Principal { access_key: key.into(), secret_key: "secret".into(), arn: format!("arn:aws:sts::000000000000:assumed-role/r/{key}"), policy };
    let iam = Iam {
        admin_key: String::new(),
        admin_secret: String::new(),
        principals: [
            ("LOCALALLOWED".to_string(), principal("LOCALALLOWED", policy)),
            ("LOCALOTHER".to_string(), principal("LOCALOTHER", serde_json::json!({ "Statement": [] }))),
        ]
        .into(),
    };
    let api = std::sync::Arc::new(InvokeApi { functions, iam: std::sync::Arc::new(iam), account: "000000000000".into(), region: "eu-central-1".into() });
    let addr = api.serve().await.unwrap();

    let client = |key: &str| {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        let conf = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("eu-central-1"))
            .endpoint_url(format!("http://{addr}"))
            .credentials_provider(aws_sdk_lambda::config::Credentials::new(key, "secret", None, None, "local"))
            .http_client(http)
            .build();
        aws_sdk_lambda::Client::from_conf(conf)
    };
    let ok = client("LOCALALLOWED").invoke().function_name("paraphrase-local").payload(aws_sdk_lambda::primitives::Blob::new(event())).send().await.unwrap();
    assert_eq!(ok.status_code(), 200);
    assert!(ok.function_error().is_none());
    let body: serde_json::Value = serde_json::from_slice(ok.payload().unwrap().as_ref()).unwrap();
    assert_eq!(body["statusCode"], 200);

    let event_call = client("LOCALALLOWED")
        .invoke()
        .function_name("arn:aws:lambda:eu-central-1:000000000000:function:paraphrase-local")
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(aws_sdk_lambda::primitives::Blob::new(event()))
        .send()
        .await
        .unwrap();
    assert_eq!(event_call.status_code(), 202);

    let denied = client("LOCALOTHER").invoke().function_name("paraphrase-local").send().await.unwrap_err();
    use aws_sdk_lambda::error::ProvideErrorMetadata;
    assert_eq!(denied.code(), Some("AccessDeniedException"));
    assert!(denied.message().unwrap_or_default().contains("not authorized to perform: lambda:InvokeFunction"), "{denied:?}");
    f.stop();
}

/// The child processes of this test process running `exe`.
fn children_running(exe: &Path) -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).unwrap_or("");
            ppid == me && std::fs::read_link(e.path().join("exe")).is_ok_and(|x| x == exe)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_1000_calls_never_runs_more_processes_than_the_cap() {
    let exe = handler("paraphrase");
    let f = LocalFunction::start(spec(exe.clone(), Duration::from_secs(30))).await.unwrap();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling, exe) = (peak.clone(), sampling.clone(), exe.clone());
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::SeqCst) {
                peak.fetch_max(children_running(&exe), std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let calls: Vec<_> = (0..1000).map(|_| { let f = f.clone(); tokio::spawn(async move { f.invoke(event()).await }) }).collect();
    let mut ok = 0;
    for c in calls {
        if matches!(c.await.unwrap(), Ok(Outcome::Ok(_))) {
            ok += 1;
        }
        assert!(f.process_count() <= stackctl::local::lambda::MAX_PROCESSES);
    }
    sampling.store(false, std::sync::atomic::Ordering::SeqCst);
    sampler.join().unwrap();
    assert_eq!(ok, 1000);
    let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
    assert!(peak <= stackctl::local::lambda::MAX_PROCESSES, "{peak} processes ran at once");
    assert!(peak > 1, "the burst did scale out ({peak})");
    f.stop();
}

/// search-worker's asynchronous duty against a stand-in S3 that refuses every
/// write (403: the SDK does not retry it) and counts them.
async fn refusing_s3() -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let puts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = puts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let counter = counter.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 65536];
                let n = s.read(&mut buf).await.unwrap_or(0);
                if buf[..n].starts_with(b"PUT ") {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                let body = "<Error><Code>AccessDenied</Code><Message>no</Message></Error>";
                let _ = s.write_all(format!("HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).as_bytes()).await;
            });
        }
    });
    (addr, puts)
}

fn worker_spec(timeout: Duration, delay_ms: u64, s3: std::net::SocketAddr) -> FunctionSpec {
    let mut s = spec(handler("search-worker"), timeout);
    for (k, v) in [
        ("RESULTS_BUCKET", "b".to_string()),
        ("SEARCH_DELAY_MS", delay_ms.to_string()),
        ("SEARCH_TOKEN_KEY", "k".into()),
        ("AWS_REGION", "eu-central-1".into()),
        ("AWS_ACCESS_KEY_ID", "K".into()),
        ("AWS_SECRET_ACCESS_KEY", "S".into()),
        ("AWS_ENDPOINT_URL", format!("http://{s3}")),
    ] {
        s.environment.insert(k.into(), v);
    }
    s
}

fn search_event() -> Vec<u8> {
    serde_json::json!({ "token": stackctl_token("k"), "request": { "location": "Paris", "pickupDate": "2026-12-01", "returnDate": "2026-12-02" } }).to_string().into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_process_fails_its_own_call_at_once_while_others_run_on() {
    let (s3, _) = refusing_s3().await;
    let f = LocalFunction::start(worker_spec(Duration::from_secs(60), 3000, s3)).await.unwrap();
    let (a, b) = (f.clone(), f.clone());
    let first = tokio::spawn(async move { a.invoke(search_event()).await });
    let second = tokio::spawn(async move { b.invoke(search_event()).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while f.process_count() < 2 {
        assert!(std::time::Instant::now() < deadline, "two processes never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let victim = f.pids()[0];
    let killed_at = std::time::Instant::now();
    // SAFETY: a signal to a process this test started.
    unsafe {
        libc::kill(victim as i32, libc::SIGKILL);
    }
    let (first, second) = (first.await.unwrap().unwrap(), second.await.unwrap().unwrap());
    let crashed: Vec<&Outcome> = [&first, &second].into_iter().filter(|o| matches!(o, Outcome::Failed(b) if String::from_utf8_lossy(b).contains("Runtime.ExitError"))).collect();
    assert_eq!(crashed.len(), 1, "exactly the killed process's call fails as Runtime.ExitError: {first:?} {second:?}");
    assert!(
        [&first, &second].iter().any(|o| matches!(o, Outcome::FunctionError(b) if String::from_utf8_lossy(b).contains("AccessDenied") || !b.is_empty())),
        "the other call ran to its end: {first:?} {second:?}"
    );
    assert!(killed_at.elapsed() < Duration::from_secs(10), "nothing waited for the 60 s timeout");
    f.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_event_is_retried_twice_like_lambda() {
    let (s3, puts) = refusing_s3().await;
    let mut s = worker_spec(Duration::from_secs(10), 0, s3);
    s.event_retry_delays = Some([Duration::from_millis(300), Duration::from_millis(300)]);
    let f = LocalFunction::start(s).await.unwrap();
    f.invoke_event(search_event());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while puts.load(std::sync::atomic::Ordering::SeqCst) < 3 {
        assert!(std::time::Instant::now() < deadline, "{} attempt(s) in 20 s", puts.load(std::sync::atomic::Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(puts.load(std::sync::atomic::Ordering::SeqCst), 3, "one call and two retries, no more");
    f.stop();
}

/// Reserved concurrency is a ceiling: with 1 reserved, a call arriving while one
/// runs is throttled at once (Lambda's 429), and the next one after it runs; 0
/// stops the function.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserved_concurrency_throttles_calls_beyond_it() {
    let (s3, _) = refusing_s3().await;
    let mut s = worker_spec(Duration::from_secs(10), 1500, s3);
    s.reserved_concurrency = Some(1);
    let f = LocalFunction::start(s).await.unwrap();
    let slow = {
        let f = f.clone();
        tokio::spawn(async move { f.invoke(search_event()).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    assert_eq!(f.invoke(search_event()).await.unwrap(), Outcome::Throttled, "a second call while one runs");
    assert!(started.elapsed() < Duration::from_millis(500), "throttled at once, not queued");
    assert!(!matches!(slow.await.unwrap().unwrap(), Outcome::Throttled));
    assert!(!matches!(f.invoke(search_event()).await.unwrap(), Outcome::Throttled), "the slot is free again");
    f.stop();

    let mut s = spec(handler("paraphrase"), Duration::from_secs(10));
    s.reserved_concurrency = Some(0);
    let stopped = LocalFunction::start(s).await.unwrap();
    assert_eq!(stopped.invoke(event()).await.unwrap(), Outcome::Throttled);
    assert_eq!(stopped.process_count(), 0, "never started");
}
