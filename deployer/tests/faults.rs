//! Resilience against the real emulator behind a fault-injecting proxy
//! (`tests/support/faultproxy.rs`): throttling and 500s (some after the call took
//! effect) during deploy and destroy, and a CLI deploy killed with SIGKILL at
//! random points. Every case must converge, and destroy must leave nothing in
//! any service.

mod moto;
mod support;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use moto::Moto;
use stackctl::aws::Clients;
use stackctl::aws::deploy::{self, Options};
#[path = "support/faultproxy.rs"]
mod faultproxy;
use faultproxy::{Proxy, ProxyConfig};
use support::{fake_artifacts, load_stack, nothing_of_stage_remains};

const REGION: &str = "eu-central-1";

async fn proxy(moto: &Moto, delay_ms: u64, throttle_share: f64, error_share: f64, seed: u64) -> Proxy {
    let upstream = moto.url.trim_start_matches("http://").parse().unwrap();
    Proxy::start(ProxyConfig { upstream, delay: Duration::from_millis(delay_ms), throttle_share, error_share, seed, deny: None, quotas: false }).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_and_destroy_converge_through_throttling_and_500s() {
    let moto = Moto::start();
    let seed = std::env::var("STACKCTL_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(42);
    let faulty = proxy(&moto, 0, 0.15, 0.10, seed).await;
    let through_faults = Clients::for_endpoint(&faulty.url, REGION).await;
    let direct = Clients::for_endpoint(&moto.url, REGION).await;
    let project = tempfile::tempdir().unwrap();
    let zips = tempfile::tempdir().unwrap();
    for name in ["car-search", "paraphrase"] {
        let stack = load_stack(name, "faulty");
        let arts = fake_artifacts(&stack, zips.path(), "v1");
        let out = deploy::deploy(&through_faults, &stack, "faulty", &arts, project.path(), &Options::default()).await;
        let out = out.unwrap_or_else(|e| panic!("{name}: the deploy did not absorb the faults: {e}"));
        assert!(!out.plan.is_empty());
        // Nothing lost, nothing made twice: read back without faults, the stage
        // is exactly what was planned.
        let again = deploy::deploy(&direct, &stack, "faulty", &arts, project.path(), &Options::default()).await.unwrap();
        assert!(again.plan.is_empty(), "{name}: {}", stackctl::engine::plan::render(&again.plan));
        let apis = direct.apigateway.get_rest_apis().send().await.unwrap();
        assert_eq!(apis.items().iter().filter(|a| a.name() == Some(&format!("{name}-faulty"))).count(), 1, "{name}: one API");
    }
    let (throttled, failed) = faulty.injected();
    assert!(throttled > 0 && failed > 0, "faults were injected: {throttled} throttled, {failed} failed");
    for name in ["car-search", "paraphrase"] {
        let stack = load_stack(name, "faulty");
        deploy::destroy(&through_faults, &stack, "faulty", project.path(), &Options::default()).await.unwrap_or_else(|e| panic!("{name}: destroy: {e}"));
    }
    nothing_of_stage_remains(&direct, "faulty").await;
}

fn stackctl(project: &std::path::Path, target: &std::path::Path, endpoint: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackctl"));
    cmd.args(args)
        .current_dir(project)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("CARGO_TARGET_DIR", target)
        .env("NO_COLOR", "1")
        .env_remove("STACKCTL_TARGET")
        .env_remove("AWS_PROFILE");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_killed_at_random_points_converges_and_destroy_leaves_nothing() {
    let moto = Moto::start();
    // 20 ms per request: the deploy lasts long enough to be cut in the middle.
    let slow = proxy(&moto, 20, 0.0, 0.0, 1).await;
    let direct = Clients::for_endpoint(&moto.url, REGION).await;
    let project = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    support::copy_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/build-ws"), project.path());
    // Every wait on a CLI process below blocks this thread: `block_in_place`
    // hands this worker's queued tasks to another thread first. Without it a
    // proxy task parked on this worker (a killed deploy's CreateRestApi,
    // still sleeping its delay) stays stranded until the next deploy has
    // finished, and then reaches moto: a second API no deploy can know of.
    let ok = |args: &[&str]| {
        let out = tokio::task::block_in_place(|| stackctl(project.path(), target.path(), &slow.url, args).output().unwrap());
        assert!(out.status.success(), "{args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["build"]);
    // Kill points spread over the deploy (a fixed pseudo-random sequence).
    let mut seed = std::env::var("STACKCTL_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x9e37_79b9_u64);
    let mut cut = 0;
    for round in 0..5 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis(50 + (seed >> 33) % 600);
        let finished = tokio::task::block_in_place(|| {
            let mut child = stackctl(project.path(), target.path(), &slow.url, &["deploy", "--stage", "kill"]).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
            // Wait until it applies, then SIGKILL it after `delay`.
            let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
            let mut line = String::new();
            while stderr.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("deploying stack") {
                line.clear();
            }
            std::thread::sleep(delay);
            let finished = child.try_wait().unwrap().is_some();
            child.kill().unwrap();
            child.wait().unwrap();
            finished
        });
        // A request the killed deploy had sent may still be unread in the
        // proxy's socket or in its delay: it reaches moto before the next
        // deploy starts, as a request that reached AWS takes effect while its
        // client is dead. Without this wait it could land in the middle of the
        // next deploy (seen, moto's recorder in hand: the CreateRestApi of a
        // deploy killed at 95 ms reached moto after the next deploy had looked
        // for the API by name, and that deploy made a second one). No deploy
        // can see a create that has not happened yet: a later deploy sweeps
        // such an API (aws_engine::a_late_created_api_of_the_stage_is_swept_by_the_next_deploy);
        // this test checks that a cut deploy itself orphans nothing.
        tokio::time::sleep(Duration::from_millis(300)).await;
        slow.settled().await;
        if !finished {
            cut += 1;
        }
        eprintln!("round {round}: killed after {delay:?} ({})", if finished { "it had finished" } else { "mid-deploy" });
    }
    assert!(cut > 0, "at least one deploy was cut mid-way");
    let out = ok(&["deploy", "--stage", "kill"]);
    assert!(out.contains("invoke URL"), "{out}");
    let out = ok(&["deploy", "--stage", "kill"]);
    assert!(out.contains("nothing to do"), "converged: {out}");
    let apis = direct.apigateway.get_rest_apis().send().await.unwrap();
    assert_eq!(apis.items().iter().filter(|a| a.name() == Some("hello-kill")).count(), 1, "one API, however many deploys were cut");
    ok(&["destroy", "--stage", "kill", "--yes"]);
    nothing_of_stage_remains(&direct, "kill").await;
}

/// A generated secret (car-search's token key) is read back from the deployed
/// functions on every deploy. When that read fails (here: denied), the deploy
/// fails naming the call, and the secret is never rotated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_of_a_generated_secret_fails_the_deploy_and_keeps_the_secret() {
    let moto = Moto::start();
    let direct = Clients::for_endpoint(&moto.url, REGION).await;
    let upstream = moto.url.trim_start_matches("http://").parse().unwrap();
    let denying = Proxy::start(ProxyConfig { upstream, delay: Duration::ZERO, throttle_share: 0.0, error_share: 0.0, seed: 1, deny: Some("/configuration".into()), quotas: false }).await.unwrap();
    let through = Clients::for_endpoint(&denying.url, REGION).await;
    let project = tempfile::tempdir().unwrap();
    let zips = tempfile::tempdir().unwrap();
    let stack = load_stack("car-search", "secret");
    let token_key = |c: aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput| {
        c.environment().and_then(|e| e.variables()).and_then(|v| v.get("SEARCH_TOKEN_KEY")).cloned().expect("SEARCH_TOKEN_KEY is set")
    };
    let first = fake_artifacts(&stack, zips.path(), "v1");
    deploy::deploy(&direct, &stack, "secret", &first, project.path(), &Options::default()).await.unwrap();
    let before = token_key(direct.lambda.get_function_configuration().function_name("car-search-secret-search-start").send().await.unwrap());

    // A code change, deployed through credentials that may not read the configuration.
    let second = fake_artifacts(&stack, zips.path(), "v2");
    let err = deploy::deploy(&through, &stack, "secret", &second, project.path(), &Options::default()).await.unwrap_err().to_string();
    assert!(err.contains("lambda:GetFunctionConfiguration") && err.contains("AccessDenied"), "{err}");
    let after = token_key(direct.lambda.get_function_configuration().function_name("car-search-secret-search-start").send().await.unwrap());
    assert_eq!(before, after, "the secret was not rotated");

    // With the read allowed again, the same deploy keeps the secret.
    deploy::deploy(&direct, &stack, "secret", &second, project.path(), &Options::default()).await.unwrap();
    let kept = token_key(direct.lambda.get_function_configuration().function_name("car-search-secret-search-start").send().await.unwrap());
    assert_eq!(before, kept);
}
