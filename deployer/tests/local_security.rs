//! The local cloud as a security boundary, attacked with the real binaries: a
//! hostile function (tests/fixtures/hostile) tries every way out of its grant
//! from inside; from outside, anonymous 200 MB bodies, idle and half-sent
//! connections, file-descriptor exhaustion, a stuck server. Every attempt must
//! be refused, and nothing on disk outside the function's grant may change.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod support;
use support::local::Project;

const HOSTILE_STACK: &str = "stack: hostile
buckets:
  data: {}
  other: {}
functions:
  tenant:
    crate: deployer/tests/fixtures/hostile
    binary: hostile
    timeout: 120
    permissions:
      buckets: [{ bucket: data, access: read-write, prefix: results/ }]
  victim:
    crate: functions/paraphrase
api:
  routes:
    /paraphrase:
      methods:
        POST: { function: victim }
";

/// Every file under `root`, with a digest of its content.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.insert(p.strip_prefix(root).unwrap().join(""), "dir".into());
                walk(&p, root, out);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), format!("{}:{:x}", bytes.len(), bytes.iter().fold(0u64, |h, b| h.wrapping_mul(1_099_511_628_211).wrapping_add(u64::from(*b)))));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The one directory of `dir` (a stage's bucket or function by logical name).
fn physical(dir: &Path, logical: &str) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.contains(&format!("-{logical}")) && !n.starts_with('.'))
        .unwrap_or_else(|| panic!("no {logical} under {}", dir.display()))
}

fn b64url_decode(s: &str) -> Option<String> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = alphabet.iter().position(|a| *a == c)? as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether a changed path is inside the tenant's grant: an object under
/// `buckets/{data}/results/`, or s3s-fs's bookkeeping file for such an object.
fn in_grant(path: &Path, data: &str) -> bool {
    let p = path.to_string_lossy();
    // Its grant, the server's log, and its own log group (what it printed).
    if p.starts_with(&format!("buckets/{data}/results/")) || p == format!("buckets/{data}/results") || p == "server.log" || p == "logs/hostile-attack-tenant/events.jsonl" {
        return true;
    }
    let Some(name) = p.strip_prefix("buckets/.bucket-") else { return false };
    let Some((bucket, rest)) = name.split_once(".object-") else { return false };
    let key = rest.split('.').next().unwrap_or_default();
    b64url_decode(bucket).as_deref() == Some(data) && b64url_decode(key).is_some_and(|k| k.starts_with("results/") && !k.split('/').any(|s| s == ".." || s == "."))
}

#[test]
fn a_hostile_function_is_refused_everywhere_and_changes_nothing_outside_its_grant() {
    let p = Project::new("hostile", "attack", &[("hostile.yaml", Some(HOSTILE_STACK))]);
    let deploy: Value = serde_json::from_str(&p.ok(&["deploy", "--target", "local", "-o", "json"])).unwrap();
    let url = deploy[0]["url"].as_str().unwrap().to_owned();
    let stage = p.stage_dir("hostile");
    let data = physical(&stage.join("buckets"), "data");
    let other = physical(&stage.join("buckets"), "other");
    let victim = physical(&stage.join("functions"), "victim");
    std::fs::write(stage.join("buckets").join(&data).join("outside.txt"), "not yours").unwrap();
    std::fs::write(stage.join("buckets").join(&other).join("outside.txt"), "not yours either").unwrap();
    let _ = std::fs::remove_file("/tmp/escaped-absolute");
    let before = tree(&p.dir.join(".stackctl"));

    let event = json!({ "api": url, "victim": victim, "data_bucket": data, "other_bucket": other, "outside_key": "outside.txt" });
    let out = p.ok(&["invoke", "tenant", "--target", "local", "--data", &event.to_string()]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    if std::env::var_os("STACKCTL_SHOW_ATTACKS").is_some() {
        eprintln!("{report:#}");
    }

    // Its signing is right: the genuine calls inside its grant succeed.
    assert_eq!(report["controls"]["put"], 200, "{report:#}");
    assert_eq!(report["controls"]["get"], 200, "{report:#}");
    assert!(report["controls"]["get_body"].as_str().unwrap().contains("{\"ok\":true}"), "{report:#}");

    // Every attack is refused with a 4xx: never served, never a 5xx.
    let server = p.server("hostile");
    let attacks = report["attacks"].as_array().unwrap();
    assert!(attacks.len() >= 30, "{report:#}");
    for a in attacks {
        let status = a["status"].as_u64().unwrap();
        assert!((400..500).contains(&status), "not refused with a 4xx: {a:#}");
        let body = a["body"].as_str().unwrap();
        assert!(!body.contains(&server["pid"].to_string()) && !body.contains(stage.to_str().unwrap()) && !body.contains(server["token"].as_str().unwrap()), "discloses the server: {a:#}");
    }
    // Each was refused for what it tried, not for a signing mistake of the fixture.
    for a in attacks.iter().filter(|a| !a["attack"].as_str().unwrap().contains("forged") && !a["attack"].as_str().unwrap().contains("Signature=")) {
        assert!(!a["body"].as_str().unwrap().contains("SignatureDoesNotMatch") && !a["body"].as_str().unwrap().contains("InvalidSignature"), "refused on its signature: {a:#}");
    }
    let status_of = |prefix: &str| attacks.iter().filter(|a| a["attack"].as_str().unwrap().starts_with(prefix)).map(|a| a["status"].as_u64().unwrap()).collect::<Vec<_>>();
    // The specific answers AWS gives.
    assert_eq!(status_of("invoke victim, genuine signature"), [403], "AccessDenied after a verified signature");
    assert!(status_of("invoke victim, forged").iter().chain(&status_of("invoke victim, Signature=0000")).all(|s| *s == 403));
    assert!(attacks.iter().any(|a| a["attack"].as_str().unwrap().contains("escaped-nul") && a["body"].as_str().unwrap().contains("InvalidArgument")), "{report:#}");
    assert!(attacks.iter().any(|a| a["attack"].as_str().unwrap().contains("aaaaaaaa") && a["body"].as_str().unwrap().contains("KeyTooLongError")), "{report:#}");
    assert!(status_of("control").iter().all(|s| *s == 403), "{report:#}");

    // Another process (this test) cannot use the tenant's runtime API: the
    // connection is closed before a byte is read.
    let tenant_exe = std::fs::canonicalize(stage.join("functions").join(physical(&stage.join("functions"), "tenant")).join("bootstrap")).unwrap();
    let runtime = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path().join("exe")).is_ok_and(|x| x == tenant_exe))
        .find_map(|e| {
            let env = std::fs::read(e.path().join("environ")).ok()?;
            env.split(|b| *b == 0).find_map(|v| v.strip_prefix(b"AWS_LAMBDA_RUNTIME_API=").map(|v| String::from_utf8_lossy(v).into_owned()))
        })
        .expect("the tenant's process is warm");
    let mut s = TcpStream::connect(&runtime).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: x\r\n\r\n");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(answer.is_empty(), "another process was served by the tenant's runtime API: {}", String::from_utf8_lossy(&answer));

    // Nothing outside the grant changed: same files, same contents.
    let after = tree(&p.dir.join(".stackctl"));
    let changed: Vec<&PathBuf> = before.keys().chain(after.keys()).filter(|k| before.get(*k) != after.get(*k)).collect();
    let outside: Vec<&&PathBuf> = changed.iter().filter(|k| !in_grant(k.strip_prefix(Path::new("local/hostile/attack")).unwrap_or(k), &data)).collect();
    assert!(outside.is_empty(), "changed outside the grant: {outside:?}");
    assert!(changed.iter().any(|k| k.ends_with("results/control.json")), "the control write is seen: {changed:?}");
    assert!(!Path::new("/tmp/escaped-absolute").exists());
    // The victim never ran: its server log has no invocation of it.
    let log = std::fs::read_to_string(stage.join("server.log")).unwrap();
    assert!(!log.contains(&format!("invoke {victim}")), "{log}");
}

/// RSS of a process, in bytes.
fn rss(pid: u64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 1024
}

/// Stream `total` bytes as the body of a request; the status if one came back.
fn stream_body(addr: &str, head: &str, total: usize) -> Option<u16> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(format!("{head}content-length: {total}\r\nconnection: close\r\n\r\n").as_bytes()).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        if s.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n]).split(' ').nth(1)?.parse().ok()
}

fn lambda_client(endpoint: &str, key: &str, secret: &str) -> aws_sdk_lambda::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring))
        .build_https();
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(key, secret, None, None, "test"))
        .http_client(http)
        .build();
    aws_sdk_lambda::Client::from_conf(conf)
}

#[test]
fn the_server_holds_under_large_bodies_slow_clients_and_descriptor_exhaustion() {
    let p = Project::new("robust", "robust", &[("paraphrase.yaml", None), ("car-search.yaml", None)]);
    let deploy: Value = serde_json::from_str(&p.ok(&["deploy", "--target", "local", "-o", "json", "-s", "car-search"])).unwrap();
    let url = deploy[0]["url"].as_str().unwrap().to_owned();
    let server = p.server("car-search");
    let pid = server["pid"].as_u64().unwrap();
    let api = format!("127.0.0.1:{}", server["port"]);
    let services = format!("127.0.0.1:{}", server["services"]);

    // Anonymous 200 MB bodies: refused before they are read; RSS stays put.
    let start = rss(pid);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(start));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                peak.fetch_max(rss(pid), std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let big = 200 * 1024 * 1024;
    let senders: Vec<_> = [
        (services.clone(), format!("POST /2015-03-31/functions/x/invocations HTTP/1.1\r\nhost: {services}\r\n")),
        (services.clone(), format!("POST /2015-03-31/functions/x/invocations HTTP/1.1\r\nhost: {services}\r\nx-amz-invocation-type: Event\r\n")),
        (services.clone(), format!("POST /2015-03-31/functions/x/invocations HTTP/1.1\r\nhost: {services}\r\n")),
        (services.clone(), format!("PUT /bucket/results/big HTTP/1.1\r\nhost: {services}\r\n")),
        (api.clone(), format!("POST /robust/search HTTP/1.1\r\nhost: {api}\r\n")),
    ]
    .into_iter()
    .map(|(addr, head)| std::thread::spawn(move || stream_body(&addr, &head, big)))
    .collect();
    let statuses: Vec<Option<u16>> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    poller.join().unwrap();
    let grew = peak.load(std::sync::atomic::Ordering::SeqCst).saturating_sub(start);
    eprintln!("server RSS {} MB at start, peak +{} KB under five concurrent 200 MB bodies; answers {statuses:?}", start / 1024 / 1024, grew / 1024);
    assert!(grew < 50 * 1024 * 1024, "RSS grew by {} MB under 1 GB of anonymous bodies", grew / 1024 / 1024);
    assert!(statuses.iter().flatten().all(|s| *s == 403 || *s == 413), "{statuses:?}");

    // A function's genuine key: payloads past Lambda's limits are 413, streamed.
    let role: Value = serde_json::from_slice(&std::fs::read(std::fs::read_dir(p.stage_dir("car-search").join("roles")).unwrap().flatten().find(|e| e.file_name().to_string_lossy().contains("search-start")).unwrap().path()).unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = lambda_client(&format!("http://{services}"), role["access_key"].as_str().unwrap(), role["secret_key"].as_str().unwrap());
    let worker = std::fs::read_dir(p.stage_dir("car-search").join("functions")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).find(|n| n.ends_with("search-worker")).unwrap();
    let too_big = rt.block_on(client.invoke().function_name(&worker).payload(aws_sdk_lambda::primitives::Blob::new(vec![b' '; 6 * 1024 * 1024 + 1])).send()).unwrap_err();
    assert_eq!(aws_sdk_lambda::error::ProvideErrorMetadata::code(&too_big), Some("RequestEntityTooLargeException"), "{too_big:?}");
    let event_too_big = rt
        .block_on(client.invoke().function_name(&worker).invocation_type(aws_sdk_lambda::types::InvocationType::Event).payload(aws_sdk_lambda::primitives::Blob::new(vec![b' '; 256 * 1024 + 1])).send())
        .unwrap_err();
    assert_eq!(aws_sdk_lambda::error::ProvideErrorMetadata::code(&event_too_big), Some("RequestEntityTooLargeException"));
    let dry = rt.block_on(client.invoke().function_name(&worker).invocation_type(aws_sdk_lambda::types::InvocationType::DryRun).send()).unwrap();
    assert_eq!(dry.status_code(), 204, "the genuine key is accepted");

    // A client that sends half a header, and an idle keep-alive connection, are cut.
    let started = Instant::now();
    let mut half = TcpStream::connect(&api).unwrap();
    half.write_all(b"GET /robust/search HTTP/1.1\r\nhost: x\r\n").unwrap();
    let mut idle = TcpStream::connect(&api).unwrap();
    idle.write_all(format!("GET /robust/nope HTTP/1.1\r\nhost: {api}\r\n\r\n").as_bytes()).unwrap();
    for (name, mut s) in [("half-sent header", half), ("idle keep-alive", idle)] {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut sink = Vec::new();
        let r = s.read_to_end(&mut sink);
        assert!(r.is_ok() || started.elapsed() < Duration::from_secs(25), "{name}: {r:?}");
        assert!(started.elapsed() < Duration::from_secs(20), "{name} still connected after {:?}", started.elapsed());
        eprintln!("{name}: closed by the server after {:.1} s", started.elapsed().as_secs_f64());
    }

    // Out of file descriptors: accept() fails, the server keeps listening and
    // serves again once descriptors free up.
    let status = std::process::Command::new("prlimit").args(["--pid", &pid.to_string(), "--nofile=160:160"]).status().unwrap();
    assert!(status.success());
    let hogs: Vec<TcpStream> = (0..300).filter_map(|_| TcpStream::connect(&api).ok()).collect();
    std::thread::sleep(Duration::from_millis(1500));
    drop(hogs);
    let deadline = Instant::now() + Duration::from_secs(30);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(5))).build().into();
    loop {
        if let Ok(r) = agent.get(&format!("{url}/search?token=v1.x.1.00&User=a")).call() {
            assert_eq!(r.status(), 404);
            break;
        }
        assert!(Instant::now() < deadline, "the server stopped serving after running out of descriptors");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("serving again {:.1} s after the descriptor hogs closed", (Instant::now() + Duration::from_secs(30) - deadline).as_secs_f64());
    let log = std::fs::read_to_string(p.stage_dir("car-search").join("server.log")).unwrap();
    assert!(log.contains("Too many open files"), "the test did exhaust the descriptors:\n{log}");

    // A stuck server: the next deploy stops it (it is ours) and starts another;
    // destroy then leaves no process.
    // SAFETY: signals to the server this test started.
    unsafe {
        libc::kill(pid as i32, libc::SIGSTOP);
    }
    let redeploy = p.ok(&["deploy", "--target", "local", "-s", "car-search"]);
    let new_pid = p.server("car-search")["pid"].as_u64().unwrap();
    assert_eq!(p.server("car-search")["port"], server["port"], "the stage keeps its port:\n{redeploy}\n{}", std::fs::read_to_string("/proc/net/tcp").unwrap_or_default().lines().filter(|l| l.contains(&format!(":{:04X} ", server["port"].as_u64().unwrap()))).collect::<Vec<_>>().join("\n"));
    assert_ne!(new_pid, pid);
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z"), "the stuck server is stopped");
    let r = agent.get(&format!("{url}/search?token=v1.x.1.00&User=a")).call().unwrap();
    assert_eq!(r.status(), 404, "the new server serves the same URL");
    p.ok(&["destroy", "--target", "local", "--yes"]);
    assert!(p.processes().is_empty(), "{:?}", p.processes());
}
