//! Deploy speed against moto server behind a loopback latency proxy that adds a
//! delay to every request (default 50 ms, standing for AWS's control-plane round
//! trip), compared in the same run with the tutorials' console steps scripted as
//! sequential awscli calls (`benches/console-steps.sh`) on the same proxy.
//!
//!     cargo bench -p stackctl --bench control_plane
//!     STACKCTL_BENCH_DELAY_MS=100 AWSCLI=/path/to/aws cargo bench -p stackctl --bench control_plane
//!
//! Prints, per stack: the first deploy's wall time, requests, the plan's critical
//! path (the longest chain of dependent round trips) and the ratio wall / (critical
//! path × delay); the no-op redeploy (build check included) with its requests and
//! mutating requests; a one-function code change; destroy; the first deploy
//! again under API Gateway's documented control-plane quotas (token buckets per
//! operation and 10/s burst 40 overall, answered 429). Asserts nothing about
//! speed. The functions are built for Lambda first (release; minutes the first time).

#[path = "../tests/moto/mod.rs"]
mod moto;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stackctl::aws::Clients;
use stackctl::build::{build_stack, package, Artifact, BuildOptions};
use stackctl::aws::deploy::{self, Options};
#[path = "../tests/support/faultproxy.rs"]
mod faultproxy;
use faultproxy::{Proxy, ProxyConfig};

const REGION: &str = "eu-central-1";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The same function with different code: the zip of its binary plus one byte.
fn changed(a: &Artifact, dir: &Path) -> Artifact {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&a.zip).unwrap()).unwrap();
    let mut binary = Vec::new();
    archive.by_name("bootstrap").unwrap().read_to_end(&mut binary).unwrap();
    binary.push(0);
    let zip = package::zip_bootstrap(&binary).unwrap();
    let path = dir.join(format!("{}-changed.zip", a.function));
    std::fs::write(&path, &zip).unwrap();
    Artifact { zip: path, sha256: package::sha256_hex(&zip), code_sha256: package::code_sha256(&zip), size: zip.len() as u64, ..a.clone() }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let delay_ms: u64 = std::env::var("STACKCTL_BENCH_DELAY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let delay = Duration::from_millis(delay_ms);
    let moto = moto::Moto::start();
    let upstream = moto.url.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(ProxyConfig { upstream, delay, throttle_share: 0.0, error_share: 0.0, seed: 1, deny: None, quotas: false }).await.unwrap();
    let clients = Clients::for_endpoint(&proxy.url, REGION).await;
    // The same delay, and API Gateway's control-plane quotas (faultproxy::Quotas).
    let quota_proxy = Proxy::start(ProxyConfig { upstream, delay, throttle_share: 0.0, error_share: 0.0, seed: 1, deny: None, quotas: true }).await.unwrap();
    let quota_clients = Clients::for_endpoint(&quota_proxy.url, REGION).await;
    // moto builds each service's backend on its first request (IAM loads its
    // managed policies: ~0.3 s); that is the emulator's start, not a deploy's.
    let direct = Clients::for_endpoint(&moto.url, REGION).await;
    direct.iam.list_roles().send().await.unwrap();
    direct.apigateway.get_rest_apis().send().await.unwrap();
    direct.lambda.list_functions().send().await.unwrap();
    direct.s3.list_buckets().send().await.unwrap();
    direct.sts.get_caller_identity().send().await.unwrap();
    let project = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let opts = BuildOptions { progress: false, ..Default::default() };
    println!("moto server behind a proxy adding {delay_ms} ms per request");

    let mut total_first = Duration::ZERO;
    for name in ["paraphrase", "car-search"] {
        let stack = stackctl::stack::load(&repo().join(format!("stacks/{name}.yaml")), "bench").unwrap();
        let artifacts = build_stack(&stack, &opts).unwrap();

        proxy.reset();
        let t = Instant::now();
        let first = deploy::deploy(&clients, &stack, "bench", &artifacts, project.path(), &Options::default()).await.unwrap();
        let wall = t.elapsed();
        total_first += wall;
        let path = first.plan.critical_path();
        let bound = delay * path as u32;
        println!(
            "{name}: first deploy {:.2} s, {} requests ({} mutating), {} steps in {} levels, critical path {path} round trips (bound {:.2} s), wall / bound {:.2}",
            secs(wall),
            proxy.requests(),
            proxy.mutating(),
            first.plan.changes().count(),
            first.plan.depth(),
            secs(bound),
            secs(wall) / secs(bound)
        );

        proxy.reset();
        let t = Instant::now();
        let artifacts = build_stack(&stack, &opts).unwrap();
        let build_check = t.elapsed();
        let again = deploy::deploy(&clients, &stack, "bench", &artifacts, project.path(), &Options::default()).await.unwrap();
        assert!(again.plan.is_empty());
        println!(
            "{name}: no-op redeploy {:.2} s including the build check ({:.2} s), {} requests, {} mutating",
            secs(t.elapsed()),
            secs(build_check),
            proxy.requests(),
            proxy.mutating()
        );

        let function = &stack.functions[stack.functions.len() - 1].name;
        let modified: Vec<Artifact> = artifacts.iter().map(|a| if &a.function == function { changed(a, scratch.path()) } else { a.clone() }).collect();
        proxy.reset();
        let t = Instant::now();
        let out = deploy::deploy(&clients, &stack, "bench", &modified, project.path(), &Options::default()).await.unwrap();
        println!(
            "{name}: code change of {function}: {:.2} s, {} requests, {} mutating ({} step)",
            secs(t.elapsed()),
            proxy.requests(),
            proxy.mutating(),
            out.plan.changes().count()
        );

        proxy.reset();
        let t = Instant::now();
        deploy::destroy(&clients, &stack, "bench", project.path(), &Options::default()).await.unwrap();
        println!("{name}: destroy {:.2} s, {} requests", secs(t.elapsed()), proxy.requests());

        // The same deploy with placeholder code (a few bytes per function): what
        // is left is orchestration; the difference is the service receiving the
        // 2-4 MB zips.
        let tiny = stackctl::stack::load(&repo().join(format!("stacks/{name}.yaml")), "tiny").unwrap();
        let placeholders: Vec<Artifact> = artifacts
            .iter()
            .map(|a| {
                let zip = package::zip_bootstrap(format!("#!{}", a.function).as_bytes()).unwrap();
                let path = scratch.path().join(format!("{}-tiny.zip", a.function));
                std::fs::write(&path, &zip).unwrap();
                Artifact { zip: path, sha256: package::sha256_hex(&zip), code_sha256: package::code_sha256(&zip), size: zip.len() as u64, ..a.clone() }
            })
            .collect();
        proxy.reset();
        let t = Instant::now();
        let out = deploy::deploy(&clients, &tiny, "tiny", &placeholders, project.path(), &Options::default()).await.unwrap();
        let wall = t.elapsed();
        let bound = delay * out.plan.critical_path() as u32;
        println!("{name}: first deploy with placeholder code {:.2} s, {} requests, wall / bound {:.2}", secs(wall), proxy.requests(), secs(wall) / secs(bound));
        deploy::destroy(&clients, &tiny, "tiny", project.path(), &Options::default()).await.unwrap();

        // Under API Gateway's quotas, as a real account answers (full buckets:
        // an account that made no API Gateway call for a minute).
        let quota_stack = stackctl::stack::load(&repo().join(format!("stacks/{name}.yaml")), "quota").unwrap();
        quota_proxy.refill_quotas();
        quota_proxy.reset();
        let t = Instant::now();
        let out = deploy::deploy(&quota_clients, &quota_stack, "quota", &artifacts, project.path(), &Options::default()).await.unwrap();
        let wall = t.elapsed();
        let bound = delay * out.plan.critical_path() as u32;
        println!(
            "{name}: first deploy under API Gateway's control-plane quotas {:.2} s, {} requests, {} answered 429 TooManyRequests, wall / bound {:.2}",
            secs(wall),
            quota_proxy.requests(),
            quota_proxy.injected().0,
            secs(wall) / secs(bound)
        );
        deploy::destroy(&clients, &quota_stack, "quota", project.path(), &Options::default()).await.unwrap();
    }

    // The console steps, scripted as sequential awscli calls, on the same proxy.
    let aws = std::env::var("AWSCLI").unwrap_or_else(|_| "aws".into());
    let works = std::process::Command::new(&aws).arg("--version").output().is_ok_and(|o| o.status.success());
    if !works {
        println!("awscli comparison skipped: `{aws} --version` fails (set AWSCLI to a working aws)");
        return;
    }
    let zips: Vec<String> = ["paraphrase/paraphrase", "car-search/search-start", "car-search/search-worker"]
        .iter()
        .map(|p| repo().join("target/lambda").join(p).join("bootstrap.zip").display().to_string())
        .collect();
    proxy.reset();
    let t = Instant::now();
    let out = std::process::Command::new("bash")
        .arg(repo().join("deployer/benches/console-steps.sh"))
        .args(&zips)
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS", &aws)
        .output()
        .unwrap();
    let wall = t.elapsed();
    assert!(out.status.success(), "console-steps.sh failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!(
        "console steps as sequential awscli calls (both stacks): {:.2} s, {} requests; stackctl's first deploys of both stacks: {:.2} s, {:.1}x faster",
        secs(wall),
        proxy.requests(),
        secs(total_first),
        secs(wall) / secs(total_first)
    );
}
