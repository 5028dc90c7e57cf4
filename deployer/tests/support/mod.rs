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
}
