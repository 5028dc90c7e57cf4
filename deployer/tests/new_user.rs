//! A new user's walk, through the real binary, in a directory outside this
//! repository: `init`, the crate's own tests, `deploy --target local`, a request,
//! a one-line change picked up by `deploy` and by `serve --watch`, `logs`,
//! `destroy`; then the same project on moto: deploy, a code change that plans
//! exactly one update, destroy (log groups included).

mod moto;
mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Walk {
    dir: PathBuf,
    /// Shared by the runs of this test (and by `cargo test` in the project):
    /// the same build cache a user's project has.
    target: PathBuf,
    env: Vec<(String, String)>,
}

impl Walk {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_stackctl"));
        c.args(args).current_dir(&self.dir).env("CARGO_TARGET_DIR", &self.target).env("NO_COLOR", "1");
        for k in ["STACKCTL_TARGET", "STACKCTL_STAGE", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            c.env_remove(k);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "stackctl {args:?} failed:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn edit(&self, from: &str, to: &str) {
        let path = self.dir.join("functions/api/src/main.rs");
        let code = std::fs::read_to_string(&path).unwrap();
        assert!(code.contains(from), "the template has `{from}`");
        std::fs::write(&path, code.replacen(from, to, 1)).unwrap();
    }
}

fn text(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into();
    match agent.get(url).call() {
        Ok(mut r) => (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn plan_changes(deploy_json: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(deploy_json).unwrap_or_else(|e| panic!("not JSON ({e}): {deploy_json}"));
    v[0]["plan"].as_array().unwrap().iter().map(|s| (s["action"].as_str().unwrap().to_owned(), s["id"].as_str().unwrap().to_owned())).collect()
}

#[test]
fn a_new_user_goes_from_init_to_destroy_locally_and_on_moto() {
    let home = tempfile::tempdir().unwrap();
    assert!(!home.path().starts_with(support::local::repo()), "outside the repository");
    let target = support::local::repo().join("target").join("new-user");
    let mut walk = Walk { dir: home.path().to_path_buf(), target, env: Vec::new() };

    // init: a workspace whose crate compiles and passes its tests.
    walk.ok(&["init", "notes", "--template", "api"]);
    let again = walk.run(&["init", "notes"]);
    assert_eq!(again.status.code(), Some(2), "init refuses to overwrite: {}", text(&again));
    walk.dir = home.path().join("notes");
    for f in ["Cargo.toml", ".gitignore", "stacks/notes.yaml", "functions/api/Cargo.toml", "functions/api/src/main.rs"] {
        assert!(walk.dir.join(f).is_file(), "init wrote {f}");
    }
    let tests = Command::new(env!("CARGO")).args(["test", "--quiet"]).current_dir(&walk.dir).env("CARGO_TARGET_DIR", &walk.target).output().unwrap();
    assert!(tests.status.success(), "the generated crate's tests:\n{}", text(&tests));
    assert!(String::from_utf8_lossy(&tests.stdout).contains("3 passed"), "{}", text(&tests));
    walk.ok(&["validate"]);

    // deploy locally, from a subdirectory (the project is found upward), and call it.
    let mut sub = walk.command(&["deploy", "--target", "local"]);
    sub.current_dir(walk.dir.join("functions/api/src"));
    let out = sub.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let status: Value = serde_json::from_str(&walk.ok(&["status", "--target", "local", "-o", "json"])).unwrap();
    let url = status[0]["outputs"]["url"].as_str().unwrap().to_owned();
    assert_eq!(get(&format!("{url}/hello?name=Ada")), (200, r#"{"message":"Hello, Ada!"}"#.into()));
    let (code, body) = get(&format!("{url}/nowhere"));
    assert!(code == 403 || code == 404, "{code} {body}");

    // A one-line change, picked up by deploy: exactly the function is updated.
    walk.edit("Hello, {name}!", "Howdy, {name}!");
    let changes = plan_changes(&walk.ok(&["deploy", "--target", "local", "-o", "json"]));
    assert_eq!(changes, [("update".to_string(), "function/api".to_string())]);
    assert_eq!(get(&format!("{url}/hello?name=Ada")).1, r#"{"message":"Howdy, Ada!"}"#);

    // logs: the handler's line for that request.
    let logs = walk.ok(&["logs", "api", "--target", "local", "--since", "10m"]);
    assert!(logs.lines().any(|l| l.contains("handled request") && l.contains("/hello")), "{logs}");
    let filtered = walk.ok(&["logs", "api", "--target", "local", "--filter", "no such text"]);
    assert!(filtered.trim().is_empty(), "{filtered}");

    // serve --watch: a save is served without any command.
    let port = free_port();
    let serve = walk.command(&["serve", "--watch", "--port", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let serve = Killed(serve);
    let served = format!("http://127.0.0.1:{port}/dev/hello?name=Ada");
    let until = |want: &str, limit: Duration| {
        let start = Instant::now();
        loop {
            let (code, body) = get(&served);
            if code == 200 && body.contains(want) {
                return;
            }
            assert!(start.elapsed() < limit, "`serve --watch` never served `{want}`: last {code} {body}");
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    until("Howdy, Ada!", Duration::from_secs(120));
    walk.edit("Howdy, {name}!", "Hi there, {name}!");
    until("Hi there, Ada!", Duration::from_secs(180));
    drop(serve);

    // destroy: nothing of the stage is left.
    walk.ok(&["destroy", "--target", "local", "-y"]);
    assert!(!walk.dir.join(".stackctl/local/notes").exists(), "the stage's files are gone");
    let status: Value = serde_json::from_str(&walk.ok(&["status", "--target", "local", "-o", "json"])).unwrap();
    assert_eq!(status[0]["deployed"], false, "{status}");

    // The same project on AWS (moto).
    let moto = moto::Moto::start();
    walk.env = [("AWS_ENDPOINT_URL", moto.url.as_str()), ("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_REGION", "eu-central-1")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let first = plan_changes(&walk.ok(&["deploy", "--target", "aws", "--stage", "e2e", "-o", "json"]));
    assert!(first.iter().any(|(a, id)| a == "create" && id == "log_group/api"), "{first:?}");
    walk.edit("Hi there, {name}!", "Greetings, {name}!");
    let plan = plan_changes(&walk.ok(&["plan", "--target", "aws", "--stage", "e2e", "-o", "json"]));
    assert_eq!(plan, [("update".to_string(), "function/api".to_string())], "a code change plans exactly one update");
    let applied = plan_changes(&walk.ok(&["deploy", "--target", "aws", "--stage", "e2e", "-o", "json"]));
    assert_eq!(applied, plan);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let clients = rt.block_on(stackctl::aws::Clients::for_endpoint(&moto.url, "eu-central-1"));
    let group = rt.block_on(clients.logs.describe_log_groups().log_group_name_prefix("/aws/lambda/notes-e2e-").send()).unwrap();
    assert_eq!(group.log_groups().iter().map(|g| (g.log_group_name().unwrap(), g.retention_in_days())).collect::<Vec<_>>(), [("/aws/lambda/notes-e2e-api", Some(14))]);
    // What Lambda would have written, read back by `logs` (moto runs no function).
    rt.block_on(clients.logs.create_log_stream().log_group_name("/aws/lambda/notes-e2e-api").log_stream_name("2026/11/25/[$LATEST]abc").send()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let event = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(now).message(r#"{"message":"handled request","path":"/hello"}"#).build().unwrap();
    rt.block_on(clients.logs.put_log_events().log_group_name("/aws/lambda/notes-e2e-api").log_stream_name("2026/11/25/[$LATEST]abc").log_events(event).send()).unwrap();
    let logs = walk.ok(&["logs", "api", "--target", "aws", "--stage", "e2e"]);
    assert!(logs.contains("handled request"), "{logs}");

    walk.ok(&["destroy", "--target", "aws", "--stage", "e2e", "-y"]);
    rt.block_on(support::nothing_of_stage_remains(&clients, "e2e"));
}
