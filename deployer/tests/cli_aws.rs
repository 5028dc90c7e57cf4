//! The CLI end to end on the `aws` target, against moto server through
//! AWS_ENDPOINT_URL: deploy (build included), plan, status, destroy.

mod moto;
mod support;

use support::copy_dir;

use std::path::Path;
use std::process::{Command, Output};

fn stackctl(moto: &moto::Moto, project: &Path, target_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stackctl"))
        .args(args)
        .current_dir(project)
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-central-1")
        .env("CARGO_TARGET_DIR", target_dir)
        .env("NO_COLOR", "1")
        .env_remove("STACKCTL_TARGET")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn deploy_plan_status_destroy_from_the_cli() {
    let moto = moto::Moto::start();
    // A copy of the fixture workspace: its stack, its crate, and its own `.stackctl/`.
    let project = tempfile::tempdir().unwrap();
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/build-ws"), project.path());
    let target = tempfile::tempdir().unwrap();

    let out = stackctl(&moto, project.path(), target.path(), &["deploy", "--stage", "e2e"]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("target: aws (AWS credentials found (AWS_ACCESS_KEY_ID))"), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("+ function/hello"), "{}", text(&out));
    assert!(stdout.contains("invoke URL: http://127.0.0.1:"), "{}", text(&out));
    assert!(stdout.contains("/restapis/") && stdout.contains("/e2e/_user_request_"), "{}", text(&out));

    let out = stackctl(&moto, project.path(), target.path(), &["plan", "--stage", "e2e", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["plan"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v[0]["applied"], false);

    let out = stackctl(&moto, project.path(), target.path(), &["status", "--stage", "e2e", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["deployed"], true);
    assert_eq!(v[0]["outputs"]["function/hello"], "hello-e2e-hello");

    let out = stackctl(&moto, project.path(), target.path(), &["destroy", "--stage", "e2e"]);
    assert_eq!(out.status.code(), Some(2), "destroy without --yes and no terminal is refused: {}", text(&out));
    let out = stackctl(&moto, project.path(), target.path(), &["destroy", "--stage", "e2e", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = stackctl(&moto, project.path(), target.path(), &["status", "--stage", "e2e"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("not deployed"), "{}", text(&out));

    // `--target local` wins over configured credentials: the same stack on the
    // local cloud. Its "function" is not a Lambda handler (it prints and exits):
    // the gateway answers 502 at once, as API Gateway does for a crashed runtime.
    let out = stackctl(&moto, project.path(), target.path(), &["deploy", "--stage", "e2e", "--target", "local"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("target: local (from --target)"), "{}", text(&out));
    let out = stackctl(&moto, project.path(), target.path(), &["invoke", "--stage", "e2e", "--target", "local", "--http", "GET", "/hello"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 502"), "{}", text(&out));
    let log = std::fs::read_to_string(project.path().join(".stackctl/local/hello/e2e/server.log")).unwrap();
    assert!(log.contains("Runtime.ExitError"), "reported as the runtime's exit, not a timeout:\n{log}");
    let out = stackctl(&moto, project.path(), target.path(), &["destroy", "--stage", "e2e", "--target", "local"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!project.path().join(".stackctl/local").exists());
}
