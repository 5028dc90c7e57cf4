//! `cargo install --path deployer` as the README documents it gives a working
//! `stackctl` on the PATH (debug profile here, to reuse the test build; the
//! README's command builds release).

use std::path::Path;
use std::process::Command;

#[test]
fn cargo_install_gives_a_working_stackctl() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let root = tempfile::tempdir().unwrap();
    // The workspace's own target directory: the dependencies are already built.
    let target = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| repo.join("target"));
    let out = Command::new(env!("CARGO"))
        .args(["install", "--locked", "--debug", "--path", "deployer", "--root"])
        .arg(root.path())
        .current_dir(repo)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo install failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let exe = root.path().join("bin").join("stackctl");
    assert!(exe.is_file(), "installed at {}", exe.display());

    let version = Command::new(&exe).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("stackctl {}", env!("CARGO_PKG_VERSION")));
    // Installed, it works from anywhere: a new project, validated.
    let home = tempfile::tempdir().unwrap();
    let init = Command::new(&exe).args(["init", "my-api"]).current_dir(home.path()).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let validate = Command::new(&exe).args(["validate"]).current_dir(home.path().join("my-api/functions")).output().unwrap();
    assert!(validate.status.success(), "{}", String::from_utf8_lossy(&validate.stderr));
    assert!(String::from_utf8_lossy(&validate.stdout).contains("my-api"), "{}", String::from_utf8_lossy(&validate.stdout));
}
