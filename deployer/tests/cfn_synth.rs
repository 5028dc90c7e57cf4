//! `synth`: the CloudFormation template of each stack passes cfn-lint with zero
//! errors, matches the SDK engine's names and policies, and is kept stable by a
//! snapshot (set STACKCTL_UPDATE_SNAPSHOTS=1 to rewrite it after a deliberate change).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use stackctl::build::Artifact;
use stackctl::engine::cfn;
use stackctl::engine::desired::{self, Context};
use stackctl::stack::{self, model::Architecture, Stack};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn ctx() -> Context {
    let mut parameters = BTreeMap::new();
    parameters.insert("paraphrase_api_url".into(), String::new());
    parameters.insert("paraphrase_api_key".into(), String::new());
    parameters.insert("search_token_key".into(), "0123456789abcdef".into());
    Context { stage: "production".into(), account: "123456789012".into(), region: "eu-central-1".into(), parameters }
}

fn template(name: &str, code: &str) -> (Stack, serde_json::Value) {
    let file = if name.contains('/') { workspace().join(format!("{name}.yaml")) } else { workspace().join(format!("stacks/{name}.yaml")) };
    let s = stack::load(&file, "production").unwrap();
    let arts: Vec<Artifact> = s
        .functions
        .iter()
        .map(|f| Artifact {
            stack: s.name.clone(),
            function: f.name.clone(),
            architecture: Architecture::X86_64,
            zip: PathBuf::from("/dev/null"),
            sha256: format!("{code}{}", f.name.len()),
            code_sha256: code.into(),
            size: 0,
            binary_size: 0,
            glibc: None,
        })
        .collect();
    let d = desired::desired(&s, &arts, &ctx()).unwrap();
    let keys = arts.iter().map(|a| (format!("function/{}", a.function), cfn::artifact_key(&s.name, &a.function, &a.sha256))).collect();
    let t = cfn::synth(&d, &ctx(), &keys);
    (s, t)
}

/// Request validation and integration responses (tests/fixtures/api-fidelity.yaml).
const FIDELITY: &str = "deployer/tests/fixtures/api-fidelity";

#[test]
fn templates_pass_cfn_lint() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["paraphrase", "car-search", "notes", FIDELITY] {
        let (_, t) = template(name, "v1");
        let file = dir.path().join(format!("{}.yaml", name.rsplit('/').next().unwrap()));
        std::fs::write(&file, cfn::to_yaml(&t)).unwrap();
        let out = Command::new("cfn-lint")
            .arg(&file)
            .output()
            .expect("cfn-lint must be installed (pip install cfn-lint); .ci/run installs it");
        // cfn-lint's exit code is a bit mask: 2 = errors, 4 = warnings, 8 = informational.
        let code = out.status.code().unwrap_or(2);
        assert_eq!(code & 2, 0, "{name}: cfn-lint found errors:\n{}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn templates_use_the_sdk_engines_names_and_policies() {
    let (s, t) = template("car-search", "v1");
    let r = &t["Resources"];
    assert_eq!(r["FunctionSearchWorker"]["Properties"]["FunctionName"], "car-search-production-search-worker");
    assert_eq!(r["RoleSearchStart"]["Properties"]["Path"], "/stackctl/");
    assert_eq!(r["RoleSearchStart"]["Properties"]["Policies"][0]["PolicyDocument"], desired::role_policy(&s, "search-start", &ctx()));
    let bucket = r["BucketResults"]["Properties"]["BucketName"].as_str().unwrap();
    assert_eq!(bucket, stackctl::naming::bucket_name("car-search", "production", "results", "123456789012", "eu-central-1"));
    assert_eq!(r["BucketResults"]["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"], 1);
    assert_eq!(r["Stage"]["Properties"]["StageName"], "production");
    assert_eq!(r["FunctionSearchWorker"]["Properties"]["Architectures"][0], "x86_64");
    assert_eq!(r["FunctionSearchWorker"]["Properties"]["Runtime"], "provided.al2023");
    assert_eq!(r["RestApi"]["Properties"]["EndpointConfiguration"]["Types"][0], "EDGE");
    let get = &r["MethodGETSearch"]["Properties"]["Integration"];
    assert_eq!(get["Type"], "AWS");
    let stack::model::Integration::Aws { request_templates, .. } = &s.api.as_ref().unwrap().routes[0].methods.iter().find(|m| m.http_method == "GET").unwrap().integration else { panic!() };
    assert_eq!(get["RequestTemplates"]["application/json"], request_templates["application/json"].as_str());
    assert_eq!(
        r["PermissionGETSearch"]["Properties"]["SourceArn"]["Fn::Sub"],
        "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${RestApi}/*/GET/search"
    );
    // The signing key is a secret: a NoEcho parameter, never its value.
    assert!(!t.to_string().contains("0123456789abcdef"));
    assert_eq!(r["FunctionSearchWorker"]["Properties"]["Environment"]["Variables"]["SEARCH_TOKEN_KEY"]["Ref"], "SecretSearchTokenKey");
    assert_eq!(t["Parameters"]["SecretSearchTokenKey"]["NoEcho"], true);
    // No IAM wildcard, no public bucket.
    let text = t.to_string();
    assert!(!text.contains("\"Action\":\"*\"") && !text.contains("\"Resource\":\"*\"") && !text.contains("\"Resource\":[\"*\"]"));
    assert_eq!(r["BucketResults"]["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"], true);
}

#[test]
fn a_code_change_changes_only_the_functions_not_the_deployment() {
    let (_, a) = template("car-search", "v1");
    let (_, b) = template("car-search", "v2");
    let (ra, rb) = (a["Resources"].as_object().unwrap(), b["Resources"].as_object().unwrap());
    let changed: Vec<&String> = ra.keys().filter(|k| ra.get(*k) != rb.get(*k)).collect();
    assert_eq!(changed, ["FunctionSearchStart", "FunctionSearchWorker"], "only the functions whose code changed");
    let deployments = |r: &serde_json::Map<String, serde_json::Value>| r.keys().filter(|k| k.starts_with("Deployment")).cloned().collect::<Vec<_>>();
    assert_eq!(deployments(ra), deployments(rb), "code changes do not redeploy the API");
}

#[test]
fn templates_match_their_snapshots() {
    for name in ["paraphrase", "car-search"] {
        let (_, t) = template(name, "v1");
        let yaml = cfn::to_yaml(&t);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/snapshots/{name}.template.yaml"));
        if std::env::var_os("STACKCTL_UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &yaml).unwrap();
        }
        assert_eq!(yaml, std::fs::read_to_string(&path).unwrap(), "{name}: the template changed; review and rerun with STACKCTL_UPDATE_SNAPSHOTS=1");
    }
}

#[test]
fn validators_models_and_integration_responses_are_synthesised() {
    let (_, t) = template(FIDELITY, "v1");
    let r = &t["Resources"];
    assert_eq!(r["ValidatorStackctlParams"]["Properties"], serde_json::json!({ "RestApiId": { "Ref": "RestApi" }, "Name": "stackctl-params", "ValidateRequestBody": false, "ValidateRequestParameters": true }));
    assert_eq!(r["ValidatorStackctlBodyParams"]["Properties"]["ValidateRequestBody"], true);
    let get = &r["MethodGETSearch"]["Properties"];
    assert_eq!(get["RequestParameters"], serde_json::json!({ "method.request.header.X-User": false, "method.request.querystring.token": true }));
    assert_eq!(get["RequestValidatorId"], serde_json::json!({ "Ref": "ValidatorStackctlParams" }));
    let put = &r["MethodPUTNotesId"]["Properties"];
    assert_eq!(put["RequestModels"]["application/json"], serde_json::json!({ "Ref": "MethodPUTNotesIdModel0" }));
    assert_eq!(r["MethodPUTNotesIdModel0"]["Properties"]["Schema"]["required"], serde_json::json!(["title"]));
    let responses = get["Integration"]["IntegrationResponses"].as_array().unwrap();
    let ok = responses.iter().find(|x| x["StatusCode"] == "200").unwrap();
    assert_eq!(ok.get("SelectionPattern"), None);
    assert_eq!(ok["ResponseParameters"]["method.response.header.X-Offer-Count"], "integration.response.body.count");
    assert_eq!(ok["ResponseParameters"]["method.response.header.Access-Control-Allow-Origin"], "'*'");
    let overridden = responses.iter().find(|x| x["StatusCode"] == "500").unwrap();
    assert!(overridden["ResponseTemplates"]["application/json"].as_str().unwrap().contains("responseOverride.status = 503"));
    let declared = get["MethodResponses"].as_array().unwrap().iter().find(|x| x["StatusCode"] == "202").unwrap();
    assert_eq!(declared["ResponseParameters"]["method.response.header.Retry-After"], false);
}
