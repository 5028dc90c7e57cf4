//! `deploy --engine cloudformation` against moto's CloudFormation: change sets
//! as plans, empty change sets as no-ops, one function's code change as the only
//! change, and the two engines refusing each other's stages.

mod moto;
mod support;


use stackctl::aws::Clients;
use support::{fake_artifacts as artifacts, load_stack as load};
use stackctl::aws::cloudformation::{self as cfn_deploy, CfnOptions};
use stackctl::aws::deploy;

/// What moto's CloudFormation creates; the rest (methods, deployment, stage,
/// gateway responses, permissions) is asserted on the template (tests/cfn_synth.rs).
fn moto_supported() -> CfnOptions {
    let types = ["AWS::IAM::Role", "AWS::S3::Bucket", "AWS::Lambda::Function", "AWS::ApiGateway::RestApi", "AWS::ApiGateway::Resource"];
    CfnOptions { only_types: Some(types.map(String::from).to_vec()), ..Default::default() }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn car_search_deploys_through_cloudformation_and_reads_back() {
    let m = moto::Moto::start();
    let c = Clients::for_endpoint(&m.url, "eu-central-1").await;
    let project = tempfile::tempdir().unwrap();
    let zips = tempfile::tempdir().unwrap();
    let s = load("car-search", "production");
    let out = cfn_deploy::deploy(&c, &s, "production", &artifacts(&s, zips.path(), "v1"), project.path(), &moto_supported()).await.unwrap();
    assert_eq!(out.status, "CREATE_COMPLETE");
    let bucket = stackctl::naming::bucket_name("car-search", "production", "results", "123456789012", "eu-central-1");
    assert!(c.s3.head_bucket().bucket(&bucket).send().await.is_ok());
    let worker = c.lambda.get_function_configuration().function_name("car-search-production-search-worker").send().await.unwrap();
    assert_eq!(worker.environment().unwrap().variables().unwrap()["RESULTS_BUCKET"], bucket);
    assert_eq!(worker.memory_size(), Some(256));
    let policy = c.iam.get_role_policy().role_name("car-search-production-search-start").policy_name("stackctl-function").send().await.unwrap();
    let doc = percent_encoding::percent_decode_str(&policy.policy_document).decode_utf8().unwrap().into_owned();
    assert!(doc.contains("car-search-production-search-worker") && !doc.contains("s3:"), "{doc}");
    let apis = c.apigateway.get_rest_apis().send().await.unwrap();
    let api = apis.items().iter().find(|a| a.name() == Some("car-search-production")).unwrap();
    let resources = c.apigateway.get_resources().rest_api_id(api.id().unwrap()).send().await.unwrap();
    assert!(resources.items().iter().any(|r| r.path() == Some("/search")));
    // `status` and `invoke` read the stage's state whatever the engine.
    let st = stackctl::engine::state::load(&stackctl::engine::state::path(project.path(), "car-search", "production"), "car-search", "production", "aws").unwrap().unwrap();
    assert_eq!(st.engine, "cloudformation");
    assert_eq!(deploy::function_physical(&st, "search-worker").as_deref(), Some("car-search-production-search-worker"));
    cfn_deploy::destroy(&c, &s, "production", project.path(), false).await.unwrap();
    assert!(c.s3.head_bucket().bucket(&bucket).send().await.is_err());
}

/// A generated secret (car-search's token key) keeps its deployed value on a
/// CloudFormation redeploy: the change set is empty, and issued tokens stay valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloudformation_redeploy_keeps_generated_secrets() {
    let m = moto::Moto::start();
    let c = Clients::for_endpoint(&m.url, "eu-central-1").await;
    let project = tempfile::tempdir().unwrap();
    let zips = tempfile::tempdir().unwrap();
    let s = load("car-search", "production");
    let key = |c: aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput| {
        c.environment().and_then(|e| e.variables()).and_then(|v| v.get("SEARCH_TOKEN_KEY")).cloned().expect("SEARCH_TOKEN_KEY is set")
    };
    cfn_deploy::deploy(&c, &s, "production", &artifacts(&s, zips.path(), "v1"), project.path(), &moto_supported()).await.unwrap();
    let before = key(c.lambda.get_function_configuration().function_name("car-search-production-search-start").send().await.unwrap());
    let again = cfn_deploy::deploy(&c, &s, "production", &artifacts(&s, zips.path(), "v1"), project.path(), &moto_supported()).await.unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    let after = key(c.lambda.get_function_configuration().function_name("car-search-production-search-start").send().await.unwrap());
    assert_eq!(before, after);
    cfn_deploy::destroy(&c, &s, "production", project.path(), false).await.unwrap();
}
