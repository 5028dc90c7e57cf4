//! `stackctl build` end to end on a tiny fixture workspace: reproducible zips,
//! recorded sha256 and size, and the glibc guard.

mod support;

use std::io::Read;
use support::copy_dir;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/build-ws")
}

fn build(target_dir: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_stackctl"))
        .args(["build", "--output", "json", "--no-zigbuild"])
        .current_dir(fixture())
        .env("CARGO_TARGET_DIR", target_dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn two_clean_builds_give_byte_identical_zips() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = build(a.path());
    let second = build(b.path());
    let (fa, fb) = (&first["artifacts"][0], &second["artifacts"][0]);
    assert_eq!(fa["function"], "hello");
    let zip_a = std::fs::read(fa["zip"].as_str().unwrap()).unwrap();
    let zip_b = std::fs::read(fb["zip"].as_str().unwrap()).unwrap();
    assert!(fa["zip"].as_str().unwrap().ends_with("lambda/hello/hello/bootstrap.zip"));
    assert_eq!(zip_a, zip_b, "two builds from scratch must give the same bytes");
    assert_eq!(fa["sha256"], fb["sha256"]);
    assert_eq!(fa["size"].as_u64().unwrap(), zip_a.len() as u64);

    // The recorded digest is the zip's, and the zip holds exactly an executable `bootstrap`.
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(&zip_a).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(fa["sha256"], hex);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_a)).unwrap();
    assert_eq!(archive.len(), 1);
    let mut entry = archive.by_name("bootstrap").unwrap();
    assert_eq!(entry.unix_mode().unwrap() & 0o777, 0o755);
    let mut binary = Vec::new();
    entry.read_to_end(&mut binary).unwrap();
    assert_eq!(&binary[..4], b"\x7fELF");
    assert_eq!(fa["binary_size"].as_u64().unwrap(), binary.len() as u64);

    // A rebuild in place (nothing changed) keeps the same bytes too.
    let again = build(a.path());
    assert_eq!(again["artifacts"][0]["sha256"], fa["sha256"]);

    // The packaged binary runs.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("bootstrap");
    std::fs::write(&exe, &binary).unwrap();
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = Command::new(&exe).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hello from a packaged function\n");
}

/// A build with no file of the workspace changed does not run cargo (it costs
/// 0.2–0.4 s even with nothing to compile) and gives the same artifacts; a
/// changed file, or `STACKCTL_ALWAYS_CHECK_BUILD=1`, goes through cargo again.
#[test]
fn an_unchanged_workspace_is_not_rebuilt_and_a_changed_file_is() {
    let ws = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), ws.path());
    let target = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_stackctl"))
            .args(["build", "--output", "json", "--no-zigbuild"])
            .current_dir(ws.path())
            .env("CARGO_TARGET_DIR", target.path())
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (String::from_utf8_lossy(&out.stderr).into_owned(), json["artifacts"][0]["sha256"].as_str().unwrap().to_owned())
    };
    let (first, sha) = run(&[]);
    assert!(first.contains("built hello"), "{first}");
    let (second, again) = run(&[]);
    assert!(second.contains("fresh hello") && !second.contains("building"), "cargo not run:\n{second}");
    assert_eq!(again, sha);
    let (forced, _) = run(&[("STACKCTL_ALWAYS_CHECK_BUILD", "1")]);
    assert!(forced.contains("built hello (") && forced.contains("(0 crates compiled)"), "{forced}");
    // A changed source (its modification time, as cargo judges it) is built again.
    let main = ws.path().join("functions/hello/src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, text.replace("hello from a packaged function", "hello from a changed function")).unwrap();
    let (third, changed) = run(&[]);
    assert!(third.contains("built hello") && third.contains("(1 crates compiled)"), "{third}");
    assert_ne!(changed, sha, "the new code is packaged");
}

#[test]
fn a_compile_error_shows_cargos_output_and_fails() {
    let ws = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), ws.path());
    std::fs::write(ws.path().join("functions/hello/src/main.rs"), "fn main() { let x: u32 = \"no\"; }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stackctl"))
        .args(["build", "--no-zigbuild"])
        .current_dir(ws.path())
        .env("CARGO_TARGET_DIR", ws.path().join("target"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cargo failed building hello"), "{stderr}");
    assert!(stderr.contains("mismatched types"), "cargo's diagnostics are shown: {stderr}");
    assert!(!stderr.lines().any(|l| l.trim_start().starts_with("Compiling")), "cargo's status lines are not: {stderr}");
    assert!(!ws.path().join("target/lambda/hello/hello/bootstrap.zip").exists());
}
