//! `deploy --engine cloudformation` against moto's CloudFormation: change sets
//! as plans, empty change sets as no-ops, one function's code change as the only
//! change, and the two engines refusing each other's stages.

mod moto;

use std::path::{Path, PathBuf};

use stackctl::aws::Clients;
use stackctl::build::{package, Artifact};
use stackctl::engine::cfn_deploy::{self, CfnOptions};
use stackctl::engine::deploy;

/// What moto's CloudFormation creates; the rest (methods, deployment, stage,
/// gateway responses, permissions) is asserted on the template (tests/cfn_synth.rs).
fn moto_supported() -> CfnOptions {
    let types = ["AWS::IAM::Role", "AWS::S3::Bucket", "AWS::Lambda::Function", "AWS::ApiGateway::RestApi", "AWS::ApiGateway::Resource"];
    CfnOptions { only_types: Some(types.map(String::from).to_vec()), ..Default::default() }
}
use stackctl::stack::{self, model::Architecture, Stack};

fn load(name: &str, stage: &str) -> Stack {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    stack::load(&root.join(format!("stacks/{name}.yaml")), stage).unwrap()
}

fn artifacts(stack: &Stack, dir: &Path, version: &str) -> Vec<Artifact> {
    stack
        .functions
        .iter()
        .map(|f| {
            let zip = package::zip_bootstrap(format!("#!{} {version}", f.name).as_bytes()).unwrap();
            let path: PathBuf = dir.join(format!("{}-{version}.zip", f.name));
            std::fs::write(&path, &zip).unwrap();
            Artifact {
                stack: stack.name.clone(),
                function: f.name.clone(),
                architecture: Architecture::X86_64,
                zip: path,
                sha256: package::sha256_hex(&zip),
                code_sha256: package::code_sha256(&zip),
                size: zip.len() as u64,
                binary_size: 1,
                glibc: None,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudformation_engine_deploys_updates_one_function_and_destroys() {
    let m = moto::Moto::start();
    let c = Clients::for_endpoint(&m.url, "eu-central-1").await;
    let project = tempfile::tempdir().unwrap();
    let zips = tempfile::tempdir().unwrap();
    let s = load("paraphrase", "production");

    let first = cfn_deploy::deploy(&c, &s, "production", &artifacts(&s, zips.path(), "v1"), project.path(), &moto_supported()).await.unwrap();
    assert!(matches!(first.status.as_str(), "CREATE_COMPLETE"), "{first:?}");
    assert!(first.changes.iter().any(|ch| ch.logical_id == "FunctionParaphrase" && ch.action == "Add"), "{:?}", first.changes);
    let cfg = c.lambda.get_function_configuration().function_name("paraphrase-production-paraphrase").send().await.unwrap();
    assert_eq!(cfg.handler(), Some("bootstrap"));
    let role = c.iam.get_role().role_name("paraphrase-production-paraphrase").send().await.unwrap();
    assert_eq!(role.role.unwrap().path, "/stackctl/");

    // Nothing changed: an empty change set, which is not an error.
    let again = cfn_deploy::deploy(&c, &s, "production", &artifacts(&s, zips.path(), "v1"), project.path(), &moto_supported()).await.unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);

    // One function's code: the change set holds that function only.
    let plan = cfn_deploy::deploy(&c, &s, "production", &artifacts(&s, zips.path(), "v2"), project.path(), &CfnOptions { dry_run: true, ..moto_supported() }).await.unwrap();
    let changed: Vec<(&str, &str)> = plan.changes.iter().map(|ch| (ch.logical_id.as_str(), ch.action.as_str())).collect();
    assert_eq!(changed, vec![("FunctionParaphrase", "Modify")]);

    // The SDK engine refuses a stage CloudFormation owns.
    let err = deploy::deploy(&c, &s, "production", &artifacts(&s, zips.path(), "v1"), project.path(), &deploy::Options::default()).await.unwrap_err().to_string();
    assert!(err.contains("deployed with the `cloudformation` engine"), "{err}");

    let status = cfn_deploy::destroy(&c, &s, "production", project.path(), false).await.unwrap();
    assert_eq!(status, "DELETE_COMPLETE");
    assert!(c.lambda.get_function().function_name("paraphrase-production-paraphrase").send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloudformation_engine_refuses_a_stage_the_sdk_engine_owns() {
    let m = moto::Moto::start();
    let c = Clients::for_endpoint(&m.url, "eu-central-1").await;
    let project = tempfile::tempdir().unwrap();
    let zips = tempfile::tempdir().unwrap();
    let s = load("paraphrase", "dev");
    deploy::deploy(&c, &s, "dev", &artifacts(&s, zips.path(), "v1"), project.path(), &deploy::Options::default()).await.unwrap();
    let err = cfn_deploy::deploy(&c, &s, "dev", &artifacts(&s, zips.path(), "v1"), project.path(), &moto_supported()).await.unwrap_err().to_string();
    assert!(err.contains("deployed with the `sdk` engine"), "{err}");
}
