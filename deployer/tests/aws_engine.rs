//! The AWS engine against moto server (a real AWS emulator started per test):
//! every resource is read back with the SDK's own calls.

mod moto;
mod support;


use moto::Moto;
use support::{fake_artifacts as artifacts, load_stack as load, nothing_of_stage_remains};
use stackctl::aws::Clients;
use stackctl::build::package;
use stackctl::aws::deploy::{self, Options};
use stackctl::engine::plan::Action;
use stackctl::stack::{self, Stack};

const REGION: &str = "eu-central-1";

struct Env {
    moto: Moto,
    clients: Clients,
    project: tempfile::TempDir,
    zips: tempfile::TempDir,
}

async fn env() -> Env {
    let moto = Moto::start();
    let clients = Clients::for_endpoint(&moto.url, REGION).await;
    Env { moto, clients, project: tempfile::tempdir().unwrap(), zips: tempfile::tempdir().unwrap() }
}

async fn deploy(e: &Env, stack: &Stack, stage: &str, version: &str) -> deploy::Outcome {
    let arts = artifacts(stack, e.zips.path(), version);
    deploy::deploy(&e.clients, stack, stage, &arts, e.project.path(), &Options::default()).await.unwrap()
}

fn decode(policy: &str) -> serde_json::Value {
    let text = percent_encoding::percent_decode_str(policy).decode_utf8().unwrap().into_owned();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("policy is not JSON: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn car_search_deploys_exactly_the_tutorials_resources() {
    let e = env().await;
    let s = load("car-search", "production");
    let out = deploy(&e, &s, "production", "v1").await;
    assert!(out.plan.count(Action::Create) >= 14);
    let c = &e.clients;

    // Roles: path, trust, one inline policy scoped as declared.
    let role = c.iam.get_role().role_name("car-search-production-search-start").send().await.unwrap().role.unwrap();
    assert_eq!(role.path, "/stackctl/");
    let trust = decode(role.assume_role_policy_document.as_deref().unwrap());
    assert_eq!(trust["Statement"][0]["Principal"]["Service"], "lambda.amazonaws.com");
    let p = c.iam.get_role_policy().role_name("car-search-production-search-start").policy_name("stackctl-function").send().await.unwrap();
    let policy = decode(&p.policy_document);
    let invoke = policy["Statement"].as_array().unwrap().iter().find(|s| s["Action"][0] == "lambda:InvokeFunction").unwrap();
    assert_eq!(invoke["Resource"], serde_json::json!(["arn:aws:lambda:eu-central-1:123456789012:function:car-search-production-search-worker"]));
    let p = c.iam.get_role_policy().role_name("car-search-production-search-worker").policy_name("stackctl-function").send().await.unwrap();
    let policy = decode(&p.policy_document);
    let objects = policy["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "Bucket0Objects").unwrap();
    assert_eq!(objects["Action"], serde_json::json!(["s3:GetObject", "s3:PutObject"]));
    let bucket = out.state.resources["bucket/results"].physical_id.clone();
    assert_eq!(objects["Resource"], serde_json::json!([format!("arn:aws:s3:::{bucket}/results/*")]));

    // Logs: the role writes streams of its own group only, and cannot create
    // groups (the deploy made them, with a retention and the stage's tags).
    let logs = policy["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "OwnLogStreams").unwrap();
    assert_eq!(logs["Action"], serde_json::json!(["logs:CreateLogStream", "logs:PutLogEvents"]));
    assert_eq!(logs["Resource"], serde_json::json!(["arn:aws:logs:eu-central-1:123456789012:log-group:/aws/lambda/car-search-production-search-worker:log-stream:*"]));
    assert!(!policy.to_string().contains("logs:CreateLogGroup"), "{policy}");
    let groups = c.logs.describe_log_groups().log_group_name_prefix("/aws/lambda/car-search-production-").send().await.unwrap();
    let retention: Vec<(&str, Option<i32>)> = groups.log_groups().iter().map(|g| (g.log_group_name().unwrap(), g.retention_in_days())).collect();
    assert_eq!(retention, [("/aws/lambda/car-search-production-search-start", Some(14)), ("/aws/lambda/car-search-production-search-worker", Some(14))]);
    let arn = "arn:aws:logs:eu-central-1:123456789012:log-group:/aws/lambda/car-search-production-search-worker";
    let tags = c.logs.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
    assert_eq!(tags.tags().unwrap().get("stackctl:stage").map(String::as_str), Some("production"));

    // Bucket: lifecycle, public access block, encryption, tags.
    let lc = c.s3.get_bucket_lifecycle_configuration().bucket(&bucket).send().await.unwrap();
    let rule = &lc.rules()[0];
    assert_eq!(rule.id(), Some("expire-results"));
    assert_eq!(rule.expiration().and_then(|x| x.days()), Some(1));
    let pab = c.s3.get_public_access_block().bucket(&bucket).send().await.unwrap().public_access_block_configuration.unwrap();
    assert_eq!((pab.block_public_acls, pab.block_public_policy, pab.ignore_public_acls, pab.restrict_public_buckets), (Some(true), Some(true), Some(true), Some(true)));
    let enc = c.s3.get_bucket_encryption().bucket(&bucket).send().await.unwrap();
    let algo = enc.server_side_encryption_configuration.unwrap().rules()[0].apply_server_side_encryption_by_default().unwrap().sse_algorithm().clone();
    assert_eq!(algo, aws_sdk_s3::types::ServerSideEncryption::Aes256);
    let tags = c.s3.get_bucket_tagging().bucket(&bucket).send().await.unwrap();
    assert!(tags.tag_set().iter().any(|t| t.key() == "stackctl:stage" && t.value() == "production"));

    // Functions: runtime, handler, memory, timeout, environment, exact code hash.
    let arts = artifacts(&s, e.zips.path(), "v1");
    let cfg = c.lambda.get_function_configuration().function_name("car-search-production-search-worker").send().await.unwrap();
    assert_eq!(cfg.runtime().map(|r| r.as_str()), Some("provided.al2023"));
    assert_eq!(cfg.handler(), Some("bootstrap"));
    assert_eq!((cfg.memory_size(), cfg.timeout()), (Some(256), Some(60)));
    assert_eq!(cfg.code_sha256(), Some(arts.iter().find(|a| a.function == "search-worker").unwrap().code_sha256.as_str()));
    let vars = cfg.environment().unwrap().variables().unwrap();
    assert_eq!(vars["RESULTS_BUCKET"], bucket);
    assert_eq!(vars["SEARCH_TOKEN_KEY"].len(), 64, "a generated signing key");
    let start = c.lambda.get_function_configuration().function_name("car-search-production-search-start").send().await.unwrap();
    let svars = start.environment().unwrap().variables().unwrap();
    assert_eq!(svars["WORKER_FUNCTION"], "car-search-production-search-worker");
    assert_eq!(svars["SEARCH_TOKEN_KEY"], vars["SEARCH_TOKEN_KEY"], "both functions share the key");
    assert!(!std::fs::read_to_string(stackctl::engine::state::path(e.project.path(), "car-search", "production")).unwrap().contains(&vars["SEARCH_TOKEN_KEY"]), "no secret in state");

    // API: endpoint type, paths, methods, integrations, templates byte for byte, stage.
    let api_id = out.state.resources["api"].physical_id.clone();
    let api = c.apigateway.get_rest_api().rest_api_id(&api_id).send().await.unwrap();
    assert_eq!(api.name(), Some("car-search-production"));
    assert_eq!(api.endpoint_configuration().unwrap().types()[0].as_str(), "EDGE");
    let resources = c.apigateway.get_resources().rest_api_id(&api_id).send().await.unwrap();
    let search = resources.items().iter().find(|r| r.path() == Some("/search")).unwrap();
    let mut methods: Vec<&str> = search.resource_methods().unwrap().keys().map(String::as_str).collect();
    methods.sort();
    assert_eq!(methods, ["GET", "OPTIONS", "POST"]);
    let get = c.apigateway.get_integration().rest_api_id(&api_id).resource_id(search.id().unwrap()).http_method("GET").send().await.unwrap();
    assert_eq!(get.r#type().map(|t| t.as_str()), Some("AWS"));
    assert_eq!(
        get.uri(),
        Some("arn:aws:apigateway:eu-central-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-central-1:123456789012:function:car-search-production-search-worker/invocations")
    );
    let stack::model::Integration::Aws { request_templates, .. } = &s.api.as_ref().unwrap().routes[0].methods.iter().find(|m| m.http_method == "GET").unwrap().integration else { panic!() };
    assert_eq!(get.request_templates().unwrap()["application/json"], request_templates["application/json"]);
    let post = c.apigateway.get_integration().rest_api_id(&api_id).resource_id(search.id().unwrap()).http_method("POST").send().await.unwrap();
    assert_eq!(post.r#type().map(|t| t.as_str()), Some("AWS_PROXY"));
    let options = c.apigateway.get_integration().rest_api_id(&api_id).resource_id(search.id().unwrap()).http_method("OPTIONS").send().await.unwrap();
    assert_eq!(options.r#type().map(|t| t.as_str()), Some("MOCK"));
    let stage = c.apigateway.get_stage().rest_api_id(&api_id).stage_name("production").send().await.unwrap();
    assert_eq!(stage.deployment_id(), Some(out.state.resources["deployment"].physical_id.as_str()));

    // Permissions scoped by SourceArn to this API, method and path.
    let policy = c.lambda.get_policy().function_name("car-search-production-search-worker").send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let arn = policy["Statement"][0]["Condition"]["ArnLike"]["AWS:SourceArn"].as_str().unwrap();
    assert_eq!(arn, format!("arn:aws:execute-api:eu-central-1:123456789012:{api_id}/*/GET/search"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_deploy_sends_no_mutating_request_and_a_code_change_only_its_update() {
    let e = env().await;
    let s = load("paraphrase", "production");
    deploy(&e, &s, "production", "v1").await;
    e.moto.start_recording();
    let again = deploy(&e, &s, "production", "v1").await;
    assert!(again.plan.is_empty());
    let mutating = e.moto.mutating();
    assert!(mutating.is_empty(), "a no-op deploy changed things: {mutating:?}");

    e.moto.start_recording();
    let changed = deploy(&e, &s, "production", "v2").await;
    let steps: Vec<(&str, Action)> = changed.plan.changes().map(|s| (s.id.as_str(), s.action)).collect();
    assert_eq!(steps, vec![("function/paraphrase", Action::Update)]);
    let mutating = e.moto.mutating();
    assert_eq!(mutating.len(), 1, "{mutating:?}");
    assert!(mutating[0].starts_with("PUT ") && mutating[0].ends_with("/functions/paraphrase-production-paraphrase/code"), "{mutating:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_leaves_nothing_and_spares_the_other_stage() {
    let e = env().await;
    let s = load("car-search", "production");
    let dev = load("car-search", "dev");
    deploy(&e, &s, "production", "v1").await;
    let dev_out = deploy(&e, &dev, "dev", "v1").await;
    // Put an object in the production bucket: destroy must empty it first.
    let prod_state = stackctl::engine::state::load(&stackctl::engine::state::path(e.project.path(), "car-search", "production"), "car-search", "production", "aws").unwrap().unwrap();
    let bucket = prod_state.resources["bucket/results"].physical_id.clone();
    e.clients.s3.put_object().bucket(&bucket).key("results/x.json").body(b"{}".to_vec().into()).send().await.unwrap();

    let out = deploy::destroy(&e.clients, &s, "production", e.project.path(), &Options::default()).await.unwrap();
    assert!(out.state.resources.is_empty());
    assert!(!stackctl::engine::state::path(e.project.path(), "car-search", "production").exists());
    nothing_of_stage_remains(&e.clients, "production").await;

    // dev is intact: its functions, bucket and API still answer.
    for (id, r) in &dev_out.state.resources {
        match r.kind.as_str() {
            "function" => assert!(e.clients.lambda.get_function().function_name(&r.physical_id).send().await.is_ok(), "{id}"),
            "bucket" => assert!(e.clients.s3.head_bucket().bucket(&r.physical_id).send().await.is_ok(), "{id}"),
            "rest_api" => assert!(e.clients.apigateway.get_rest_api().rest_api_id(&r.physical_id).send().await.is_ok(), "{id}"),
            "role" => assert!(e.clients.iam.get_role().role_name(&r.physical_id).send().await.is_ok(), "{id}"),
            _ => {}
        }
    }
    let again = deploy(&e, &dev, "dev", "v1").await;
    assert!(again.plan.is_empty(), "dev unchanged by the other stage's destroy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_deploy_converges_when_run_again() {
    let e = env().await;
    let s = load("car-search", "production");
    let arts = artifacts(&s, e.zips.path(), "v1");
    for n in [1usize, 4, 9, 13] {
        let stage = format!("cut{n}");
        let stack = load("car-search", &stage);
        let opts = Options { fail_after: Some(n), ..Default::default() };
        let err = deploy::deploy(&e.clients, &stack, &stage, &arts, e.project.path(), &opts).await.unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
        let recorded = stackctl::engine::state::load(&stackctl::engine::state::path(e.project.path(), "car-search", &stage), "car-search", &stage, "aws").unwrap().unwrap();
        assert!(recorded.resources.len() >= n, "cut after {n}: {} recorded", recorded.resources.len());
        let done = deploy::deploy(&e.clients, &stack, &stage, &arts, e.project.path(), &Options::default()).await.unwrap();
        assert_eq!(done.state.resources.len(), 16, "cut after {n}");
        let again = deploy::deploy(&e.clients, &stack, &stage, &arts, e.project.path(), &Options::default()).await.unwrap();
        assert!(again.plan.is_empty(), "cut after {n}: {}", stackctl::engine::plan::render(&again.plan));
        // Exactly one API of that name: nothing was created twice.
        let apis = e.clients.apigateway.get_rest_apis().send().await.unwrap();
        assert_eq!(apis.items().iter().filter(|a| a.name() == Some(&format!("car-search-{stage}"))).count(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_deleted_by_hand_are_recreated() {
    let e = env().await;
    let s = load("paraphrase", "production");
    deploy(&e, &s, "production", "v1").await;
    e.clients.lambda.delete_function().function_name("paraphrase-production-paraphrase").send().await.unwrap();
    let out = deploy(&e, &s, "production", "v1").await;
    let changes: Vec<&str> = out.plan.changes().map(|s| s.id.as_str()).collect();
    assert!(changes.contains(&"function/paraphrase") && changes.contains(&"permission/POST /paraphrase"), "{changes:?}");
    let cfg = e.clients.lambda.get_function_configuration().function_name("paraphrase-production-paraphrase").send().await.unwrap();
    assert_eq!(cfg.handler(), Some("bootstrap"));
    assert!(e.clients.lambda.get_policy().function_name("paraphrase-production-paraphrase").send().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_discover_finds_the_stage_by_tags_without_state() {
    let e = env().await;
    let s = load("car-search", "production");
    let other = load("car-search", "staging");
    deploy(&e, &s, "production", "v1").await;
    deploy(&e, &other, "staging", "v1").await;
    // The state file is lost.
    std::fs::remove_file(stackctl::engine::state::path(e.project.path(), "car-search", "production")).unwrap();
    let found = stackctl::aws::discover::find(&e.clients, "car-search", "production").await.unwrap();
    let kinds: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "function").count(), 2, "{found:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "role").count(), 2, "{found:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "log_group").count(), 2, "{found:?}");
    assert!(kinds.contains(&"bucket") && kinds.contains(&"rest_api"), "{found:?}");
    let deleted = stackctl::aws::discover::destroy_by_tags(&e.clients, "car-search", "production", false).await.unwrap();
    assert_eq!(deleted, 8);
    nothing_of_stage_remains(&e.clients, "production").await;
    // The other stage is untouched.
    assert_eq!(stackctl::aws::discover::find(&e.clients, "car-search", "staging").await.unwrap().len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_backend_keeps_state_in_the_bucket_and_locks_the_stage() {
    let e = env().await;
    e.clients
        .s3
        .create_bucket()
        .bucket("team-state")
        .create_bucket_configuration(aws_sdk_s3::types::CreateBucketConfiguration::builder().location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuCentral1).build())
        .send()
        .await
        .unwrap();
    let mut s = load("paraphrase", "production");
    s.state = stack::model::StateConfig { backend: stack::model::StateBackend::S3, bucket: Some("team-state".into()), prefix: "stackctl/".into() };
    deploy(&e, &s, "production", "v1").await;
    let obj = e.clients.s3.get_object().bucket("team-state").key("stackctl/paraphrase/production.json").send().await.unwrap();
    let body = obj.body.collect().await.unwrap().into_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert!(v["resources"]["function/paraphrase"].is_object());

    // Another machine (a fresh project directory, no local state) sees the same state.
    let other = tempfile::tempdir().unwrap();
    let arts = artifacts(&s, e.zips.path(), "v1");
    let again = deploy::deploy(&e.clients, &s, "production", &arts, other.path(), &Options::default()).await.unwrap();
    assert!(again.plan.is_empty(), "{}", stackctl::engine::plan::render(&again.plan));

    // While one deploy holds the lock, a second fails at once naming the holder.
    let store = stackctl::engine::Target::store(&stackctl::aws::target::AwsTarget::new(e.clients.clone(), other.path()), &s, "production");
    let lock = stackctl::engine::lock::Lock::acquire(
        stackctl::engine::lock::Backend::Remote(store.remote.as_ref().unwrap().lock()),
        "paraphrase",
        "production",
        "alice@laptop pid 42 (deploy, since unix time 1)",
    )
    .await
    .unwrap();
    let err = deploy::deploy(&e.clients, &s, "production", &arts, other.path(), &Options::default()).await.unwrap_err().to_string();
    assert!(err.contains("locked by another deploy: alice@laptop pid 42"), "{err}");
    assert!(err.contains("s3://team-state/stackctl/paraphrase/production.lock"), "{err}");
    lock.release().await;
    let out = deploy::destroy(&e.clients, &s, "production", other.path(), &Options::default()).await.unwrap();
    assert!(out.state.resources.is_empty());
    assert!(e.clients.s3.get_object().bucket("team-state").key("stackctl/paraphrase/production.json").send().await.is_err());
    nothing_of_stage_remains(&e.clients, "production").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_deploys_of_one_stage_exactly_one_proceeds() {
    let e = env().await;
    let s = load("paraphrase", "production");
    let arts = artifacts(&s, e.zips.path(), "v1");
    let opts = Options::default();
    let (a, b) = tokio::join!(
        deploy::deploy(&e.clients, &s, "production", &arts, e.project.path(), &opts),
        deploy::deploy(&e.clients, &s, "production", &arts, e.project.path(), &opts),
    );
    let (ok, err) = match (a, b) {
        (Ok(o), Err(e)) | (Err(e), Ok(o)) => (o, e),
        (a, b) => panic!("exactly one must proceed: {:?} / {:?}", a.map(|o| o.plan.steps.len()), b.map(|o| o.plan.steps.len())),
    };
    assert!(ok.state.resources.len() >= 8);
    assert!(err.to_string().contains("locked by another deploy"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_uploaded_by_hand_is_drift_and_is_replaced() {
    let e = env().await;
    let s = load("paraphrase", "production");
    deploy(&e, &s, "production", "v1").await;
    let other = package::zip_bootstrap(b"hand-made").unwrap();
    e.clients
        .lambda
        .update_function_code()
        .function_name("paraphrase-production-paraphrase")
        .zip_file(aws_sdk_lambda::primitives::Blob::new(other))
        .send()
        .await
        .unwrap();
    let out = deploy(&e, &s, "production", "v1").await;
    let changes: Vec<(&str, &str)> = out.plan.changes().map(|s| (s.id.as_str(), s.reason.as_str())).collect();
    assert_eq!(changes, vec![("function/paraphrase", "changed outside stackctl (its code was replaced)")]);
    let arts = artifacts(&s, e.zips.path(), "v1");
    let cfg = e.clients.lambda.get_function_configuration().function_name("paraphrase-production-paraphrase").send().await.unwrap();
    assert_eq!(cfg.code_sha256(), Some(arts[0].code_sha256.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edited_policy_or_memory_is_drift_and_is_repaired() {
    let e = env().await;
    let s = load("car-search", "production");
    deploy(&e, &s, "production", "v1").await;
    let role = "car-search-production-search-start";
    let wide = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"}]}"#;
    e.clients.iam.put_role_policy().role_name(role).policy_name("stackctl-function").policy_document(wide).send().await.unwrap();
    e.clients.lambda.update_function_configuration().function_name("car-search-production-search-worker").memory_size(1024).send().await.unwrap();

    let out = deploy(&e, &s, "production", "v1").await;
    let changes: Vec<(&str, &str)> = out.plan.changes().map(|s| (s.id.as_str(), s.reason.as_str())).collect();
    assert!(changes.contains(&("role/search-start", "changed outside stackctl (its inline policy was edited)")), "{changes:?}");
    assert!(changes.contains(&("function/search-worker", "changed outside stackctl (its memory or timeout was changed)")), "{changes:?}");
    assert_eq!(changes.len(), 2, "{changes:?}");

    let p = e.clients.iam.get_role_policy().role_name(role).policy_name("stackctl-function").send().await.unwrap();
    assert!(!decode(&p.policy_document).to_string().contains("lambda:*"));
    let cfg = e.clients.lambda.get_function_configuration().function_name("car-search-production-search-worker").send().await.unwrap();
    assert_eq!(cfg.memory_size(), Some(256));
    assert!(deploy(&e, &s, "production", "v1").await.plan.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_groups_are_adopted_kept_at_their_retention_and_destroyed() {
    let e = env().await;
    let c = &e.clients;
    // A stage deployed before log groups were managed: Lambda made the group
    // implicitly, with no retention and no tags.
    c.logs.create_log_group().log_group_name("/aws/lambda/paraphrase-production-paraphrase").send().await.unwrap();
    let s = load("paraphrase", "production");
    let out = deploy(&e, &s, "production", "v1").await;
    assert!(out.plan.changes().any(|s| s.id == "log_group/paraphrase" && s.action == Action::Create));
    let group = |name: &'static str| async move {
        let out = c.logs.describe_log_groups().log_group_name_prefix(name).send().await.unwrap();
        out.log_groups().iter().find(|g| g.log_group_name() == Some(name)).cloned()
    };
    let g = group("/aws/lambda/paraphrase-production-paraphrase").await.expect("adopted");
    assert_eq!(g.retention_in_days(), Some(14));
    let tags = c.logs.list_tags_for_resource().resource_arn("arn:aws:logs:eu-central-1:123456789012:log-group:/aws/lambda/paraphrase-production-paraphrase").send().await.unwrap();
    assert_eq!(tags.tags().unwrap().get("stackctl:stack").map(String::as_str), Some("paraphrase"));

    // A retention changed by hand is drift, set back by the next deploy.
    c.logs.put_retention_policy().log_group_name("/aws/lambda/paraphrase-production-paraphrase").retention_in_days(3653).send().await.unwrap();
    let out = deploy(&e, &s, "production", "v1").await;
    let changes: Vec<(&str, &str)> = out.plan.changes().map(|s| (s.id.as_str(), s.reason.as_str())).collect();
    assert_eq!(changes, [("log_group/paraphrase", "changed outside stackctl (its retention is 3653 days, not 14)")]);
    assert_eq!(group("/aws/lambda/paraphrase-production-paraphrase").await.unwrap().retention_in_days(), Some(14));

    // Deleted by hand: made again.
    c.logs.delete_log_group().log_group_name("/aws/lambda/paraphrase-production-paraphrase").send().await.unwrap();
    let out = deploy(&e, &s, "production", "v1").await;
    assert_eq!(out.plan.changes().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["log_group/paraphrase"]);
    assert!(group("/aws/lambda/paraphrase-production-paraphrase").await.is_some());

    // Destroy removes it.
    deploy::destroy(&e.clients, &s, "production", e.project.path(), &Options::default()).await.unwrap();
    assert!(group("/aws/lambda/paraphrase-production-paraphrase").await.is_none());
    nothing_of_stage_remains(c, "production").await;
}

/// The notes API deploys from its stack file alone, and its role's policy reads
/// back exactly as its access levels intend: object actions under the prefix,
/// ListBucket on the bucket conditioned on the prefix, nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notes_api_deploys_with_exactly_its_intended_policy() {
    let e = env().await;
    let s = load("notes", "production");
    let out = deploy(&e, &s, "production", "v1").await;
    let c = &e.clients;
    let bucket = out.state.resources["bucket/data"].physical_id.clone();
    let p = c.iam.get_role_policy().role_name("notes-production-notes").policy_name("stackctl-function").send().await.unwrap();
    assert_eq!(decode(p.policy_document()), serde_json::json!({ "Version": "2012-10-17", "Statement": [
        { "Sid": "OwnLogStreams", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": ["arn:aws:logs:eu-central-1:123456789012:log-group:/aws/lambda/notes-production-notes:log-stream:*"] },
        { "Sid": "Bucket0Objects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": [format!("arn:aws:s3:::{bucket}/notes/*")] },
        { "Sid": "Bucket0List", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [format!("arn:aws:s3:::{bucket}")], "Condition": { "StringLike": { "s3:prefix": ["notes/*"] } } },
    ]}));
    let cfg = c.lambda.get_function_configuration().function_name("notes-production-notes").send().await.unwrap();
    let vars = cfg.environment().unwrap().variables().unwrap();
    assert_eq!(vars["NOTES_BUCKET"], bucket);
    assert_eq!(vars["NOTES_PREFIX"], "notes/");
    // Every route and method, each with its invoke permission.
    let api_id = out.state.resources["api"].physical_id.clone();
    let resources = c.apigateway.get_resources().rest_api_id(&api_id).embed("methods").send().await.unwrap();
    let mut methods: Vec<String> = resources
        .items()
        .iter()
        .flat_map(|r| r.resource_methods().map(|m| m.keys().map(|k| format!("{k} {}", r.path().unwrap_or_default())).collect::<Vec<_>>()).unwrap_or_default())
        .collect();
    methods.sort();
    assert_eq!(methods, ["DELETE /notes/{id}", "GET /notes", "GET /notes/{id}", "OPTIONS /notes", "OPTIONS /notes/{id}", "PUT /notes/{id}"]);
    let policy = decode(c.lambda.get_policy().function_name("notes-production-notes").send().await.unwrap().policy().unwrap());
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 5, "one invoke permission per method, one for the schedule: {policy:#}");
    // The schedule: an EventBridge rule, the function its one target, allowed to invoke it.
    let rule = c.events.describe_rule().name("notes-production-notes").send().await.unwrap();
    assert_eq!(rule.schedule_expression(), Some("cron(0 6 * * ? *)"));
    assert_eq!(rule.state(), Some(&aws_sdk_eventbridge::types::RuleState::Enabled));
    let targets = c.events.list_targets_by_rule().rule("notes-production-notes").send().await.unwrap();
    assert_eq!(targets.targets().iter().map(|t| t.arn()).collect::<Vec<_>>(), ["arn:aws:lambda:eu-central-1:123456789012:function:notes-production-notes"]);
    let events = statements.iter().find(|s| s["Principal"]["Service"] == "events.amazonaws.com").unwrap_or_else(|| panic!("{policy:#}"));
    assert_eq!(events["Condition"]["ArnLike"]["AWS:SourceArn"], rule.arn().unwrap());
    let tags = c.events.list_tags_for_resource().resource_arn(rule.arn().unwrap()).send().await.unwrap();
    assert!(tags.tags().iter().any(|t| t.key() == "stackctl:stage" && t.value() == "production"));
    let concurrency = c.lambda.get_function_concurrency().function_name("notes-production-notes").send().await.unwrap();
    assert_eq!(concurrency.reserved_concurrent_executions(), Some(10));
    // Changed by hand: both are drift, set back by the next deploy.
    c.events.put_rule().name("notes-production-notes").schedule_expression("rate(1 minute)").send().await.unwrap();
    c.lambda.put_function_concurrency().function_name("notes-production-notes").reserved_concurrent_executions(99).send().await.unwrap();
    let repaired = deploy(&e, &s, "production", "v1").await;
    let changed: Vec<&str> = repaired.plan.changes().map(|st| st.id.as_str()).collect();
    assert!(changed.contains(&"schedule/notes") && changed.contains(&"function/notes"), "{changed:?}");
    assert_eq!(c.events.describe_rule().name("notes-production-notes").send().await.unwrap().schedule_expression(), Some("cron(0 6 * * ? *)"));
    assert_eq!(c.lambda.get_function_concurrency().function_name("notes-production-notes").send().await.unwrap().reserved_concurrent_executions(), Some(10));
    let again = deploy(&e, &s, "production", "v1").await;
    assert!(again.plan.is_empty(), "{:?}", again.plan);

    // Stage variables: set on the stage, changed, and one removed.
    let mut s = s;
    let api = s.api.as_mut().unwrap();
    api.stage_variables.insert("production".into(), [("backend".to_string(), "https://a.example.com".to_string()), ("mode".to_string(), "fast".to_string())].into());
    api.stage_variables.insert("default".into(), [("backend".to_string(), "https://staging.example.com".to_string())].into());
    deploy(&e, &s, "production", "v1").await;
    let variables = |stage: aws_sdk_apigateway::operation::get_stage::GetStageOutput| stage.variables().cloned().unwrap_or_default().into_iter().collect::<std::collections::BTreeMap<_, _>>();
    let live = variables(c.apigateway.get_stage().rest_api_id(&api_id).stage_name("production").send().await.unwrap());
    assert_eq!(live, [("backend".to_string(), "https://a.example.com".to_string()), ("mode".to_string(), "fast".to_string())].into());
    s.api.as_mut().unwrap().stage_variables.insert("production".into(), [("backend".to_string(), "https://b.example.com".to_string())].into());
    let changed = deploy(&e, &s, "production", "v1").await;
    assert_eq!(changed.plan.changes().map(|st| st.id.as_str()).collect::<Vec<_>>(), ["deployment"]);
    let live = variables(c.apigateway.get_stage().rest_api_id(&api_id).stage_name("production").send().await.unwrap());
    assert_eq!(live, [("backend".to_string(), "https://b.example.com".to_string())].into(), "mode removed, backend changed");

    deploy::destroy(&e.clients, &s, "production", e.project.path(), &Options::default()).await.unwrap();
    nothing_of_stage_remains(&e.clients, "production").await;
    assert!(c.events.list_rules().name_prefix("notes-production-").send().await.unwrap().rules().is_empty(), "the rule is gone");
}

/// Request validation and integration responses, read back with API Gateway's
/// own calls: required parameters and the request validator each method gets,
/// body models (a changed schema replaces its model, a removed method takes
/// its models along), integration responses with patterns, templates and
/// header mappings, their method responses declaring each header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_models_and_integration_responses_are_deployed_as_declared() {
    let e = env().await;
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/api-fidelity.yaml");
    let s = stack::load(&file, "production").unwrap();
    let out = deploy(&e, &s, "production", "v1").await;
    let c = &e.clients;
    let api_id = out.state.resources["api"].physical_id.clone();
    let resources = c.apigateway.get_resources().rest_api_id(&api_id).send().await.unwrap();
    let resource = |path: &str| resources.items().iter().find(|r| r.path() == Some(path)).and_then(|r| r.id()).unwrap().to_owned();
    let (search, note) = (resource("/search"), resource("/notes/{id}"));
    let validators = c.apigateway.get_request_validators().rest_api_id(&api_id).send().await.unwrap();
    let validator = |id: Option<&str>| validators.items().iter().find(|v| v.id() == id).map(|v| (v.name().unwrap().to_owned(), v.validate_request_body(), v.validate_request_parameters()));
    assert_eq!(validators.items().len(), 2, "one per combination in use: {validators:?}");

    let get = c.apigateway.get_method().rest_api_id(&api_id).resource_id(&search).http_method("GET").send().await.unwrap();
    let params: std::collections::BTreeMap<_, _> = get.request_parameters().unwrap().clone().into_iter().collect();
    assert_eq!(params, [("method.request.header.X-User".to_string(), false), ("method.request.querystring.token".to_string(), true)].into());
    assert_eq!(validator(get.request_validator_id()), Some(("stackctl-params".into(), false, true)));
    assert!(get.request_models().is_none_or(|m| m.is_empty()));
    let post = c.apigateway.get_method().rest_api_id(&api_id).resource_id(&search).http_method("POST").send().await.unwrap();
    assert_eq!(post.request_validator_id(), None, "nothing to validate, no validator");

    let put = c.apigateway.get_method().rest_api_id(&api_id).resource_id(&note).http_method("PUT").send().await.unwrap();
    assert_eq!(validator(put.request_validator_id()), Some(("stackctl-body-params".into(), true, true)));
    let model_name = put.request_models().unwrap()["application/json"].clone();
    let model = c.apigateway.get_model().rest_api_id(&api_id).model_name(&model_name).send().await.unwrap();
    assert_eq!(model.content_type(), Some("application/json"));
    let schema: serde_json::Value = serde_json::from_str(model.schema().unwrap()).unwrap();
    assert_eq!(schema["required"], serde_json::json!(["title"]));
    assert_eq!(schema["properties"]["title"]["minLength"], 1);

    // Integration responses and the method responses they fill.
    let response = |status: &'static str| {
        let (c, api_id, search) = (c.clone(), api_id.clone(), search.clone());
        async move { c.apigateway.get_integration_response().rest_api_id(api_id).resource_id(search).http_method("GET").status_code(status).send().await.unwrap() }
    };
    let ok = response("200").await;
    assert_eq!(ok.selection_pattern(), None);
    let mapped: std::collections::BTreeMap<_, _> = ok.response_parameters().unwrap().clone().into_iter().collect();
    assert_eq!(mapped, [
        ("method.response.header.Access-Control-Allow-Origin".to_string(), "'*'".to_string()),
        ("method.response.header.Cache-Control".to_string(), "'no-store'".to_string()),
        ("method.response.header.X-Offer-Count".to_string(), "integration.response.body.count".to_string()),
        ("method.response.header.X-Tier".to_string(), "stageVariables.tier".to_string()),
    ].into());
    assert!(ok.response_templates().unwrap()["application/json"].contains("$input.path('$.count')"));
    let not_found = response("404").await;
    assert_eq!(not_found.selection_pattern(), Some(r#".*"status":404.*"#));
    assert!(not_found.response_templates().unwrap()["application/json"].contains("$util.parseJson"));
    let declared = c.apigateway.get_method_response().rest_api_id(&api_id).resource_id(&search).http_method("GET").status_code("202").send().await.unwrap();
    let declared: Vec<&String> = declared.response_parameters().unwrap().keys().collect();
    assert!(declared.contains(&&"method.response.header.Retry-After".to_string()) && declared.contains(&&"method.response.header.Access-Control-Allow-Origin".to_string()), "{declared:?}");
    let mut statuses: Vec<&String> = get.method_responses().unwrap().keys().collect();
    statuses.sort();
    assert_eq!(statuses, ["200", "202", "404", "500"]);

    assert!(deploy(&e, &s, "production", "v1").await.plan.is_empty(), "a second deploy changes nothing");

    // A changed schema: a new model, the old one gone.
    let mut s = s;
    let route = s.api.as_mut().unwrap().routes.iter_mut().find(|r| r.path == "/notes/{id}").unwrap();
    route.methods[0].request.models.get_mut("application/json").unwrap()["required"] = serde_json::json!(["title", "tags"]);
    deploy(&e, &s, "production", "v1").await;
    let models = c.apigateway.get_models().rest_api_id(&api_id).send().await.unwrap();
    let names: Vec<&str> = models.items().iter().filter_map(|m| m.name()).filter(|n| n.starts_with("PutNotesId")).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_ne!(names[0], model_name);
    let put = c.apigateway.get_method().rest_api_id(&api_id).resource_id(&note).http_method("PUT").send().await.unwrap();
    assert_eq!(put.request_models().unwrap()["application/json"], names[0]);

    // The method removed: its model goes with it.
    s.api.as_mut().unwrap().routes.retain(|r| r.path != "/notes/{id}");
    deploy(&e, &s, "production", "v1").await;
    let models = c.apigateway.get_models().rest_api_id(&api_id).send().await.unwrap();
    assert!(models.items().iter().filter_map(|m| m.name()).all(|n| !n.starts_with("PutNotesId")), "{models:?}");
}

/// A `CreateRestApi` of a killed deploy that reaches API Gateway after the next
/// deploy has looked for the API leaves a second API with the stage's name and
/// tags. The next deploy plans its deletion (the plan names why), after which
/// the stage has one API and a further deploy plans nothing; an API of
/// another stage, or one without our tags, is never touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_created_api_of_the_stage_is_swept_by_the_next_deploy() {
    let e = env().await;
    let s = load("paraphrase", "sweep");
    let first = deploy(&e, &s, "sweep", "v1").await;
    let ours = first.state.resources["api"].physical_id.clone();
    let c = &e.clients.apigateway;
    let tagged = |stage: &str| {
        c.create_rest_api().name(format!("paraphrase-{stage}")).tags("stackctl:stack", "paraphrase").tags("stackctl:stage", stage)
    };
    let late = tagged("sweep").name("paraphrase-sweep").send().await.unwrap().id.unwrap();
    let untagged = c.create_rest_api().name("paraphrase-sweep").send().await.unwrap().id.unwrap();
    let other_stage = tagged("other").send().await.unwrap().id.unwrap();

    let out = deploy(&e, &s, "sweep", "v1").await;
    let changes: Vec<(&str, &str)> = out.plan.changes().map(|s| (s.id.as_str(), s.reason.as_str())).collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].0, format!("api-orphan/{late}"));
    assert!(changes[0].1.contains("killed around its create"), "{changes:?}");
    assert!(!out.state.resources.contains_key(&format!("api-orphan/{late}")), "the orphan leaves the state with its delete");
    let apis = c.get_rest_apis().send().await.unwrap();
    let ids: std::collections::BTreeSet<&str> = apis.items().iter().filter_map(|a| a.id()).collect();
    assert_eq!(ids, [ours.as_str(), untagged.as_str(), other_stage.as_str()].into_iter().collect(), "only the late API went");

    let again = deploy(&e, &s, "sweep", "v1").await;
    assert!(again.plan.changes().next().is_none(), "nothing left to do: {:?}", again.plan.steps);
}
