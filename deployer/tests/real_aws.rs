//! End to end on real AWS (`cargo test -p stackctl --features real-aws --test
//! real_aws -- --nocapture`): what a maintainer with an account runs before a
//! release, since moto is lenient where AWS is not (IAM propagation, quotas,
//! EDGE endpoints). It builds both example stacks for Lambda, deploys them to a
//! unique stage, calls them over HTTPS (paraphrase; search 202 then 200),
//! checks that a redeploy changes nothing, and destroys the stage in a guard
//! that also runs when the test fails or is interrupted (Ctrl-C).
//!
//! Needs AWS credentials in the environment (profile, SSO, or keys) allowed to
//! manage IAM roles, Lambda, API Gateway, S3 and STS; `AWS_REGION` picks the
//! region (default eu-central-1).
#![cfg(feature = "real-aws")]

mod support;

use std::time::{Duration, Instant};

use stackctl::aws::deploy::{self, Options};
use stackctl::aws::Clients;
use stackctl::build::{build_stack, BuildOptions};
use stackctl::stack::Stack;

const STACKS: [&str; 2] = ["paraphrase", "car-search"];

/// Destroys the stage of every stack when dropped: on success, on a failed
/// assertion (unwinding), and from the Ctrl-C handler.
struct Guard {
    clients: Clients,
    stage: String,
    project: std::path::PathBuf,
}

impl Guard {
    fn destroy(clients: &Clients, stage: &str, project: &std::path::Path) {
        let (clients, stage, project) = (clients.clone(), stage.to_owned(), project.to_owned());
        // A runtime of its own: this may run while the test's runtime unwinds.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            rt.block_on(async {
                for name in STACKS {
                    let stack = support::load_stack(name, &stage);
                    if let Err(e) = deploy::destroy(&clients, &stack, &stage, &project, &Options { progress: true, ..Default::default() }).await {
                        eprintln!("destroy of {name} stage {stage} failed: {e}\n  run: stackctl destroy --discover --stage {stage} --yes");
                    }
                }
            })
        })
        .join()
        .ok();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        Guard::destroy(&self.clients, &self.stage, &self.project);
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into()
}

/// (status, JSON body) of a call; retried while a new API answers 403/5xx (EDGE
/// endpoints take a while to reach every location).
fn call(method: &str, url: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let a = agent();
        let r = match body {
            Some(b) => a.post(url).header("content-type", "application/json").send(b.as_bytes()),
            None if method == "GET" => a.get(url).call(),
            None => a.post(url).send_empty(),
        };
        let (status, text) = match r {
            Ok(mut r) => (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        };
        let settling = status == 0 || status == 403 || status >= 500;
        if !settling || Instant::now() > deadline {
            return (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)));
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

fn url(out: &deploy::Outcome) -> String {
    out.state.outputs().get("url").cloned().expect("the stage has a URL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_example_stacks_deploy_answer_redeploy_as_no_ops_and_destroy_on_aws() {
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "eu-central-1".into());
    let clients = Clients::from_env(Some(&region)).await;
    assert!(clients.endpoint.is_none(), "AWS_ENDPOINT_URL is set: this test is for real AWS");
    clients.account().await.expect("AWS credentials");
    let stage = format!("e2e{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let project = tempfile::tempdir().unwrap();
    let guard = Guard { clients: clients.clone(), stage: stage.clone(), project: project.path().to_owned() };
    {
        let (clients, stage, project) = (clients.clone(), stage.clone(), project.path().to_owned());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: destroying stage {stage}");
                tokio::task::spawn_blocking(move || Guard::destroy(&clients, &stage, &project)).await.ok();
                std::process::exit(130);
            }
        });
    }
    let stacks: Vec<Stack> = STACKS.iter().map(|n| support::load_stack(n, &stage)).collect();
    let opts = BuildOptions { host: false, release: true, allow_zigbuild: true, verbose: false, progress: true };
    let mut outcomes = Vec::new();
    for stack in &stacks {
        let artifacts = tokio::task::block_in_place(|| build_stack(stack, &opts)).expect("build for Lambda (cargo-zigbuild or a Linux target toolchain)");
        let out = deploy::deploy(&clients, stack, &stage, &artifacts, project.path(), &Options { progress: true, ..Default::default() }).await.unwrap();
        assert!(!out.plan.is_empty());
        outcomes.push((stack, artifacts, out));
    }
    let paraphrase = url(&outcomes[0].2);
    let search = url(&outcomes[1].2);
    assert!(paraphrase.starts_with("https://") && paraphrase.contains(".execute-api."), "{paraphrase}");

    let (status, body) = tokio::task::block_in_place(|| call("POST", &format!("{paraphrase}/paraphrase"), Some(r#"{"sourceText":"The quick brown fox jumps over the lazy dog."}"#)));
    assert_eq!(status, 200, "{body}");
    assert!(body["newText"].as_str().is_some_and(|t| !t.is_empty()), "{body}");

    let (status, body) = tokio::task::block_in_place(|| call("POST", &format!("{search}/search"), Some(r#"{"location":"New York","pickupDate":"2026-12-04","returnDate":"2026-12-07","carSize":"compact","driverAge":30}"#)));
    assert_eq!(status, 202, "{body}");
    let token = body["token"].as_str().expect("a token").to_owned();
    let get = format!("{search}/search?token={token}&User=e2e&CarSize=compact");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, body) = tokio::task::block_in_place(|| call("GET", &get, None));
        if status == 200 {
            assert!(body["offers"].as_array().is_some_and(|o| !o.is_empty()), "{body}");
            break;
        }
        assert_eq!(status, 202, "{body}");
        assert!(Instant::now() < deadline, "no search result after 90 s");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    for (stack, artifacts, _) in &outcomes {
        let again = deploy::deploy(&clients, stack, &stage, artifacts, project.path(), &Options::default()).await.unwrap();
        assert!(again.plan.is_empty(), "{}: {}", stack.name, stackctl::engine::plan::render(&again.plan));
    }
    drop(guard);
    for stack in &stacks {
        assert!(stackctl::aws::discover::find(&clients, &stack.name, &stage).await.unwrap().is_empty(), "{}: resources left", stack.name);
    }
}
