//! The README flow on the local cloud, end to end, with the real binaries: the
//! stackctl CLI deploys both stacks (handlers built for this machine, a
//! background server per stage), an HTTP client calls the APIs, a function
//! stripped of its S3 grant gets AccessDenied, and `destroy` leaves no process
//! and no file.

use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::local::{repo, Project};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into()
}

fn call(method: &str, url: &str, body: Option<&str>) -> (u16, Value, Vec<(String, String)>) {
    let a = agent();
    let resp = match (method, body) {
        ("GET", _) => a.get(url).call(),
        ("OPTIONS", _) => a.options(url).call(),
        ("POST", Some(b)) => a.post(url).header("content-type", "application/json").send(b.as_bytes()),
        _ => panic!("{method}"),
    };
    let mut resp = resp.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
    let text = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), headers)
}

fn urls(deploy_json: &str) -> (String, String) {
    let reports: Value = serde_json::from_str(deploy_json).unwrap();
    let url = |stack: &str| reports.as_array().unwrap().iter().find(|r| r["stack"] == stack).unwrap()["url"].as_str().unwrap().to_owned();
    (url("paraphrase"), url("car-search"))
}

#[test]
fn the_readme_flow_on_the_local_cloud() {
    let p = Project::new("e2e", "production", &[("paraphrase.yaml", None), ("car-search.yaml", None)]);

    // Deploy both stacks: the plan creates everything, the URLs answer.
    let (paraphrase, search) = urls(&p.ok(&["deploy", "--target", "local", "-o", "json"]));
    assert!(paraphrase.starts_with("http://127.0.0.1:") && paraphrase.ends_with("/production"), "{paraphrase}");

    // POST /production/paraphrase gives a paraphrase.
    let (status, body, headers) = call("POST", &format!("{paraphrase}/paraphrase"), Some(r#"{"sourceText":"The quick brown fox jumps over the lazy dog. I think this is a good idea."}"#));
    assert_eq!(status, 200, "{body}");
    let new_text = body["newText"].as_str().unwrap();
    assert!(!new_text.is_empty() && new_text != "The quick brown fox jumps over the lazy dog. I think this is a good idea.", "{new_text}");
    assert!(headers.iter().any(|(k, v)| k == "access-control-allow-origin" && v == "*"));
    // A bad request is the handler's 4xx JSON, unknown routes are API Gateway's 403.
    let (status, body, _) = call("POST", &format!("{paraphrase}/paraphrase"), Some("{}"));
    assert_eq!(status, 400, "{body}");
    let (status, body, _) = call("GET", &format!("{paraphrase}/nope"), None);
    assert_eq!((status, body["message"].as_str()), (403, Some("Missing Authentication Token")));
    let (status, _, headers) = call("OPTIONS", &format!("{paraphrase}/paraphrase"), None);
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, v)| k == "access-control-allow-methods" && v.contains("POST")));

    // POST /search gives a token; GET gives 202, then 200 with filtered offers.
    let (status, body, _) = call("POST", &format!("{search}/search"), Some(r#"{"location":"New York","pickupDate":"2026-12-04","returnDate":"2026-12-07","carSize":"compact","driverAge":30}"#));
    assert_eq!(status, 202, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let get = format!("{search}/search?token={token}&User=alice&CarSize=compact");
    let (status, body, _) = call("GET", &get, None);
    assert_eq!(status, 202, "the worker sleeps 3 s before it stores the result: {body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let offers = loop {
        let (status, body, _) = call("GET", &get, None);
        if status == 200 {
            break body["offers"].as_array().unwrap().clone();
        }
        assert_eq!(status, 202, "{body}");
        assert!(Instant::now() < deadline, "no result after 30 s");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(!offers.is_empty());
    assert!(offers.iter().all(|o| o["carClass"] == "compact"), "filtered by CarSize: {offers:?}");
    let (status, _, _) = call("GET", &format!("{search}/search?token=v1.invented.1.00&User=alice"), None);
    assert_eq!(status, 404);

    // The lifecycle rule (1 day, a "day" shortened to 4 s here) expires the result.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, _) = call("GET", &get, None);
        if status != 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the lifecycle rule did not expire results/ within 30 s");
        std::thread::sleep(Duration::from_millis(500));
    }

    // A no-op redeploy changes nothing and keeps the URLs.
    let again = p.ok(&["deploy", "--target", "local", "-o", "json"]);
    let reports: Value = serde_json::from_str(&again).unwrap();
    assert!(reports.as_array().unwrap().iter().all(|r| r["plan"].as_array().unwrap().is_empty()), "{again}");
    assert_eq!(urls(&again), (paraphrase.clone(), search.clone()));

    // `invoke` runs one invocation.
    let out = p.ok(&["invoke", "paraphrase", "--target", "local", "--event", repo().join("examples/paraphrase/test-request-event.json").to_str().unwrap()]);
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["statusCode"], 200, "{out}");

    // Strip search-worker's S3 grant: its role's policy changes, and its calls to
    // the bucket are denied locally.
    let file = p.dir.join("stacks/car-search.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let grant = "    permissions:\n      buckets:\n        - bucket: results\n          access: read-write\n          prefix: results/\n";
    assert!(text.contains(grant));
    std::fs::write(&file, text.replace(grant, "")).unwrap();
    let out = p.ok(&["deploy", "--target", "local", "-s", "car-search"]);
    assert!(out.contains("~ role/search-worker"), "{out}");
    let event = serde_json::json!({ "token": token, "request": { "location": "Paris", "pickupDate": "2026-12-04", "returnDate": "2026-12-07", "carSize": "compact" } });
    let (code, out, err) = p.run(&["invoke", "search-worker", "--target", "local", "-s", "car-search", "--data", &event.to_string()]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("AccessDenied") && out.contains("s3:PutObject"), "{out}\n{err}");

    // destroy: no process, no file of the stage is left.
    assert!(!p.processes().is_empty(), "the servers and functions run until destroy");
    let out = p.ok(&["destroy", "--target", "local"]);
    assert!(out.contains("server stopped"), "{out}");
    let left = p.processes();
    assert!(left.is_empty(), "processes left: {left:?}");
    assert!(!p.dir.join(".stackctl").exists(), "files left under {}", p.dir.join(".stackctl").display());
    assert!(agent().get(&format!("{paraphrase}/paraphrase")).call().is_err(), "the URL no longer answers");
}

/// Under `cargo run -p stackctl`, stackctl's environment carries the variables
/// cargo sets for a package (`CARGO_PKG_*`, `CARGO_MANIFEST_DIR`, …), which some
/// build scripts (ring's) track. The nested build of the functions must not see
/// them: a deploy under `cargo run` and one by the installed binary share one
/// up-to-date build instead of rebuilding each other's crates every time.
#[test]
fn builds_under_cargo_run_and_from_the_installed_binary_share_one_build() {
    let mut p = Project::new("cargo-run-env", "envcheck", &[("paraphrase.yaml", None)]);
    let compiled = |err: &str| -> usize {
        let line = err.lines().find(|l| l.starts_with("built paraphrase")).unwrap_or_else(|| panic!("no build line:\n{err}"));
        line.split('(').nth(2).and_then(|s| s.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line}"))
    };
    let under_cargo_run = [
        ("CARGO_PKG_NAME", "stackctl"),
        ("CARGO_PKG_VERSION", "0.1.0"),
        ("CARGO_MANIFEST_DIR", repo().join("deployer").to_str().unwrap()),
        ("CARGO_CRATE_NAME", "stackctl"),
        ("CARGO_PRIMARY_PACKAGE", "1"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    // Cargo must run every time to show what it would rebuild: stackctl's own
    // freshness check would skip it when no file changed.
    let always_cargo = ("STACKCTL_ALWAYS_CHECK_BUILD".to_string(), "1".to_string());
    p.env = vec![always_cargo.clone()];
    let (code, _, _) = p.run(&["deploy", "--target", "local"]);
    assert_eq!(code, 0);
    p.env = under_cargo_run.to_vec();
    p.env.push(always_cargo.clone());
    let (code, _, err) = p.run(&["deploy", "--target", "local"]);
    assert_eq!((code, compiled(&err)), (0, 0), "under cargo run, nothing to rebuild:\n{err}");
    p.env = vec![always_cargo];
    let (code, _, err) = p.run(&["deploy", "--target", "local"]);
    assert_eq!((code, compiled(&err)), (0, 0), "from the installed binary, nothing to rebuild:\n{err}");
}
