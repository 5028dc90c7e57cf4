//! The stack file format: the shipped stacks are valid and modelled as the
//! tutorials describe, and every file of the broken corpus is rejected with the
//! location and message written in its own `# expect:` line.

use std::path::{Path, PathBuf};
use std::process::Command;

use stackctl::stack::{self, model};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn stackctl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackctl"));
    cmd.env("NO_COLOR", "1").env_remove("STACKCTL_TARGET").env_remove("STACKCTL_STAGE");
    cmd
}

struct Expectation {
    line: u32,
    column: u32,
    message: String,
    hint: Option<String>,
}

fn expectation(src: &str, file: &Path) -> Expectation {
    let line = src
        .lines()
        .find_map(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{} has no `# expect:` line", file.display()));
    let (loc, message) = line.split_once(' ').unwrap();
    let (l, c) = loc.split_once(':').unwrap();
    Expectation {
        line: l.parse().unwrap(),
        column: c.parse().unwrap(),
        message: message.to_owned(),
        hint: src.lines().find_map(|l| l.strip_prefix("# hint: ")).map(str::to_owned),
    }
}

fn broken_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn the_corpus_is_large_enough() {
    assert!(broken_files().len() >= 25, "the issue asks for at least 25 broken files");
}

#[test]
fn every_broken_file_is_rejected_at_its_location_with_a_fix() {
    let mut failures = Vec::new();
    for file in broken_files() {
        let src = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        let want = expectation(&src, &file);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let diags = match stack::load(&file, "dev") {
            Ok(_) => {
                failures.push(format!("{name}: accepted"));
                continue;
            }
            Err(d) => d.0,
        };
        let first = &diags[0];
        if (first.line, first.column) != (want.line, want.column) {
            failures.push(format!("{name}: at {}:{}, expected {}:{}", first.line, first.column, want.line, want.column));
        }
        if !first.message.contains(&want.message) {
            failures.push(format!("{name}: message {:?} does not contain {:?}", first.message, want.message));
        }
        let Some(hint) = &first.hint else {
            failures.push(format!("{name}: no hint on how to fix it"));
            continue;
        };
        if let Some(want_hint) = want.hint.as_deref().filter(|w| !hint.contains(w)) {
            failures.push(format!("{name}: hint {hint:?} does not contain {want_hint:?}"));
        }
        let rendered = first.to_string();
        let prefix = format!("{}:{}:{}: ", file.display(), want.line, want.column);
        if !rendered.starts_with(&prefix) {
            failures.push(format!("{name}: rendered as {rendered:?}, not starting with {prefix:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_cli_exits_2_and_names_file_line_and_column() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/unknown-function-key.yaml");
    let out = stackctl().arg("validate").arg("-f").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:5:5: unknown key `memmory`", file.display())), "{stderr}");
    assert!(stderr.contains("did you mean `memory`?"), "{stderr}");
    assert!(out.stdout.is_empty(), "stdout is for data only");
}

#[test]
fn the_cli_reports_diagnostics_as_json() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/route-unknown-function.yaml");
    let out = stackctl().args(["validate", "--output", "json", "-f"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["diagnostics"][0]["line"], 9);
    assert_eq!(v["diagnostics"][0]["column"], 27);
    assert_eq!(v["diagnostics"][0]["hint"], "did you mean `paraphrase`?");
}

#[test]
fn shipped_stacks_validate_from_the_cli() {
    let out = stackctl().arg("validate").current_dir(workspace()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ok  stacks/car-search.yaml"), "{stdout}");
    assert!(stdout.contains("ok  stacks/paraphrase.yaml"), "{stdout}");
}

#[test]
fn stage_names_are_checked_against_every_physical_name() {
    let file = workspace().join("stacks/car-search.yaml");
    // The longest stage we allow still fits every physical name of the stack.
    stack::load(&file, &"p".repeat(stackctl::naming::STAGE_NAME_MAX)).unwrap();
    let text = stack::load(&file, &"p".repeat(stackctl::naming::STAGE_NAME_MAX + 1)).unwrap_err().to_string();
    assert!(text.contains("at most 32 allowed"), "{text}");
    let text = stack::load(&file, "Production").unwrap_err().to_string();
    assert!(text.contains("invalid stage name `Production`"), "{text}");
    // A long stack and function name: the stage pushes the function name over 64.
    let long = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/physical-name-too-long.yaml");
    let text = stack::load(&long, "production").unwrap_err().to_string();
    assert!(text.contains("with stage `production` the physical name of function"), "{text}");
}

#[test]
fn paraphrase_stack_is_the_first_tutorial() {
    let s = stack::load(&workspace().join("stacks/paraphrase.yaml"), "production").unwrap();
    assert_eq!(s.name, "paraphrase");
    let api = s.api.as_ref().unwrap();
    assert_eq!(api.endpoint, model::EndpointType::Edge);
    assert_eq!(api.routes.len(), 1);
    let route = &api.routes[0];
    assert_eq!(route.path, "/paraphrase");
    assert!(route.cors);
    assert_eq!(route.methods[0].http_method, "POST");
    assert_eq!(route.methods[0].function, "paraphrase");
    assert_eq!(route.methods[0].integration, model::Integration::Proxy);
    let f = s.function("paraphrase").unwrap();
    assert_eq!(f.package, "paraphrase");
    assert!(s.parameter("paraphrase_api_key").unwrap().secret);
    assert_eq!(f.environment["PARAPHRASE_API_KEY"], model::EnvValue::Parameter("paraphrase_api_key".into()));
}

#[test]
fn car_search_stack_is_the_second_tutorial() {
    let s = stack::load(&workspace().join("stacks/car-search.yaml"), "production").unwrap();
    let bucket = s.bucket("results").unwrap();
    assert_eq!(bucket.lifecycle, vec![model::LifecycleRule { id: "expire-results".into(), prefix: "results/".into(), expiration_days: 1 }]);

    let start = s.function("search-start").unwrap();
    assert_eq!(start.permissions.invoke, vec!["search-worker".to_string()]);
    assert!(start.permissions.buckets.is_empty());
    assert_eq!(start.environment["WORKER_FUNCTION"], model::EnvValue::Function("search-worker".into()));

    let worker = s.function("search-worker").unwrap();
    assert!(worker.permissions.invoke.is_empty());
    assert_eq!(worker.permissions.buckets, vec![model::BucketGrant { bucket: "results".into(), access: vec![model::Access::Read, model::Access::Write], prefix: "results/".into() }]);
    assert_eq!(worker.environment["RESULTS_BUCKET"], model::EnvValue::Bucket("results".into()));

    let route = &s.api.as_ref().unwrap().routes[0];
    assert_eq!(route.path, "/search");
    let get = route.methods.iter().find(|m| m.http_method == "GET").unwrap();
    assert_eq!(get.function, "search-worker");
    let model::Integration::Aws { request_templates, .. } = &get.integration else { panic!("GET /search is not a proxy integration") };
    let template = &request_templates["application/json"];
    for (field, param) in [("token", "token"), ("id", "User"), ("size", "CarSize"), ("rating", "SupplierRating"), ("upgrade", "UpgradeClass")] {
        assert!(template.contains(&format!("\"{field}\": \"$util.escapeJavaScript($input.params('{param}'))\"")), "{field} in {template}");
    }
    let post = route.methods.iter().find(|m| m.http_method == "POST").unwrap();
    assert_eq!((post.function.as_str(), &post.integration), ("search-start", &model::Integration::Proxy));
}

#[test]
fn schema_is_json_schema_and_names_every_top_level_key() {
    let out = stackctl().arg("schema").output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["$schema"].as_str().unwrap().contains("json-schema.org"));
    let props = v["properties"].as_object().unwrap();
    for key in ["stack", "parameters", "buckets", "functions", "api", "state"] {
        assert!(props.contains_key(key), "{key}");
    }
    assert_eq!(v["additionalProperties"], false);
}

#[test]
fn an_unknown_stack_name_suggests_the_closest() {
    let out = stackctl().args(["validate", "--stack", "car-serch"]).current_dir(workspace()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `car-search`?"));
}

#[test]
fn the_target_is_named_first_and_the_local_target_refuses_a_state_bucket() {
    let out = stackctl().args(["plan", "--target", "local", "--state-bucket", "team-state"]).current_dir(workspace()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("target: local (from --target)"), "{stderr}");
    assert!(stderr.contains("`--state-bucket` applies to the aws target"), "{stderr}");
}

#[test]
fn commands_find_the_project_from_a_subdirectory() {
    let sub = workspace().join("functions/paraphrase/src");
    let out = stackctl().arg("validate").current_dir(&sub).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stack `paraphrase`") && stdout.contains("stack `car-search`"), "{stdout}");
    // Where no ancestor holds stacks, the error says where they were looked for.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = stackctl().arg("validate").current_dir(elsewhere.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn plan_and_synth_check_credentials_before_building() {
    // Credentials that cannot be checked (nothing listens on the endpoint): the
    // command fails on the STS call, and nothing was built (a release build of
    // the functions would take minutes and fill this target directory).
    let target = tempfile::tempdir().unwrap();
    for args in [&["plan", "--target", "aws"][..], &["synth"][..]] {
        let out = stackctl()
            .args(args)
            .current_dir(workspace())
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "not-a-secret")
            .env("AWS_REGION", "eu-central-1")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("CARGO_TARGET_DIR", target.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("sts:GetCallerIdentity"), "{args:?}: {stderr}");
        assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0, "{args:?}: something was built");
    }
}
