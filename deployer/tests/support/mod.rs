#![allow(dead_code)] // each test binary uses part of the helpers

//! Helpers shared by the integration tests.

use std::path::Path;

/// Copy a fixture workspace, leaving out build output and state.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == "Cargo.lock" || name == ".stackctl" {
            continue;
        }
        let dest = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A stack of the workspace, validated for `stage`.
pub fn load_stack(name: &str, stage: &str) -> stackctl::stack::Stack {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    stackctl::stack::load(&root.join(format!("stacks/{name}.yaml")), stage).unwrap()
}

/// Small zips standing in for the built functions (emulators store code, never run it).
pub fn fake_artifacts(stack: &stackctl::stack::Stack, dir: &Path, version: &str) -> Vec<stackctl::build::Artifact> {
    use stackctl::build::package;
    stack
        .functions
        .iter()
        .map(|f| {
            let zip = package::zip_bootstrap(format!("#!{} {version}", f.name).as_bytes()).unwrap();
            let path = dir.join(format!("{}-{}-{version}.zip", stack.name, f.name));
            std::fs::write(&path, &zip).unwrap();
            stackctl::build::Artifact {
                stack: stack.name.clone(),
                function: f.name.clone(),
                architecture: stackctl::stack::model::Architecture::X86_64,
                zip: path,
                sha256: package::sha256_hex(&zip),
                code_sha256: package::code_sha256(&zip),
                size: zip.len() as u64,
                binary_size: 10,
                glibc: None,
            }
        })
        .collect()
}

/// Every service is listed: no role, function, bucket or REST API of `stage` is left.
pub async fn nothing_of_stage_remains(c: &stackctl::aws::Clients, stage: &str) {
    let roles = c.iam.list_roles().path_prefix("/stackctl/").send().await.unwrap();
    assert!(roles.roles().iter().all(|r| !r.role_name().contains(&format!("-{stage}-"))), "roles left");
    let functions = c.lambda.list_functions().send().await.unwrap();
    assert!(functions.functions().iter().all(|f| !f.function_name().unwrap_or_default().contains(&format!("-{stage}-"))), "functions left");
    let buckets = c.s3.list_buckets().send().await.unwrap();
    assert!(buckets.buckets().iter().all(|b| !b.name().unwrap_or_default().contains(&format!("-{stage}-"))), "buckets left");
    let apis = c.apigateway.get_rest_apis().send().await.unwrap();
    assert!(apis.items().iter().all(|a| !a.name().unwrap_or_default().ends_with(&format!("-{stage}"))), "APIs left: {:?}", apis.items().iter().map(|a| a.name()).collect::<Vec<_>>());
    let groups = c.logs.describe_log_groups().log_group_name_prefix("/aws/lambda/").send().await.unwrap();
    let left: Vec<&str> = groups.log_groups().iter().filter_map(|g| g.log_group_name()).filter(|n| n.contains(&format!("-{stage}-"))).collect();
    assert!(left.is_empty(), "log groups left: {left:?}");
    let rules = c.events.list_rules().send().await.unwrap();
    let left: Vec<&str> = rules.rules().iter().filter_map(|r| r.name()).filter(|n| n.contains(&format!("-{stage}-"))).collect();
    assert!(left.is_empty(), "EventBridge rules left: {left:?}");
}

/// A project on the local cloud, driven through the real `stackctl` binary.
pub mod local {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    pub fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
    }

    /// A project directory inside the workspace (so the stack files' crate paths
    /// resolve to the real function crates) with its own `.stackctl/`.
    pub struct Project {
        pub dir: PathBuf,
        pub stage: String,
        pub env: Vec<(String, String)>,
    }

    impl Project {
        /// `stacks`: file names, each with its text, or `None` to copy the repo's stack.
        pub fn new(tag: &str, stage: &str, stacks: &[(&str, Option<&str>)]) -> Project {
            let dir = repo().join("target").join(format!("local-cloud-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("stacks")).unwrap();
            for (name, text) in stacks {
                match text {
                    Some(t) => std::fs::write(dir.join("stacks").join(name), t).unwrap(),
                    None => {
                        std::fs::copy(repo().join("stacks").join(name), dir.join("stacks").join(name)).unwrap();
                    }
                }
            }
            Project { dir, stage: stage.into(), env: Vec::new() }
        }

        /// Run stackctl; (exit code, stdout, stderr).
        pub fn run(&self, args: &[&str]) -> (i32, String, String) {
            let out = Command::new(env!("CARGO_BIN_EXE_stackctl"))
                .arg("-C")
                .arg(&self.dir)
                .args(args)
                .args(["--stage", &self.stage])
                // `cargo test` holds the workspace's build lock: the functions are
                // built in a target directory of their own.
                .env("CARGO_TARGET_DIR", repo().join("target").join("local-cloud-e2e"))
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_PROFILE")
                .env_remove("STACKCTL_TARGET")
                .env("STACKCTL_LOCAL_LIFECYCLE_INTERVAL_SECONDS", "1")
                .env("STACKCTL_LOCAL_DAY_SECONDS", "4")
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .output()
                .unwrap();
            (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
        }

        pub fn ok(&self, args: &[&str]) -> String {
            let (code, out, err) = self.run(args);
            assert_eq!(code, 0, "stackctl {args:?} failed:\n{out}\n{err}");
            out
        }

        /// The stage directory of `stack`.
        pub fn stage_dir(&self, stack: &str) -> PathBuf {
            self.dir.join(".stackctl/local").join(stack).join(&self.stage)
        }

        /// The server file of `stack`'s stage.
        pub fn server(&self, stack: &str) -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(self.stage_dir(stack).join("server.json")).unwrap()).unwrap()
        }

        /// Every process whose command line mentions this project.
        pub fn processes(&self) -> Vec<String> {
            let needle = self.dir.to_string_lossy().into_owned();
            let mut found = Vec::new();
            for e in std::fs::read_dir("/proc").unwrap().flatten() {
                if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
                    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                    if cmd.contains(&needle) {
                        found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
                    }
                }
            }
            found
        }
    }

    impl Drop for Project {
        fn drop(&mut self) {
            // A failed assertion must not leave servers behind.
            let _ = self.run(&["destroy", "--target", "local", "--yes"]);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
