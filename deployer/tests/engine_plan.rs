//! The planner on the real stacks, without network: a first deploy creates
//! everything in dependency order, a second plans nothing, and each kind of
//! change plans exactly the steps it needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stackctl::build::Artifact;
use stackctl::engine::desired::{self, Context, Desired, Spec};
use stackctl::engine::plan::{self, Action, Live, Plan};
use stackctl::engine::state::{Recorded, State};
use stackctl::stack::{self, model::Architecture, Stack};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn load(name: &str) -> Stack {
    stack::load(&workspace().join(format!("stacks/{name}.yaml")), "production").unwrap()
}

fn artifacts(stack: &Stack, code: &str) -> Vec<Artifact> {
    stack
        .functions
        .iter()
        .map(|f| Artifact {
            stack: stack.name.clone(),
            function: f.name.clone(),
            architecture: Architecture::X86_64,
            zip: PathBuf::from(format!("/tmp/{}.zip", f.name)),
            sha256: format!("{code}{}", f.name),
            code_sha256: format!("{code}-{}", f.name),
            size: 1,
            binary_size: 1,
            glibc: Some("2.34".into()),
        })
        .collect()
}

fn ctx() -> Context {
    let mut parameters = BTreeMap::new();
    parameters.insert("paraphrase_api_url".into(), String::new());
    parameters.insert("paraphrase_api_key".into(), "sk-very-secret".into());
    parameters.insert("search_token_key".into(), "signing-key-123".into());
    Context { stage: "production".into(), account: "123456789012".into(), region: "eu-central-1".into(), parameters }
}

/// What the executor records after applying every step of `plan`.
fn applied(d: &Desired, plan: &Plan, before: Option<&State>) -> State {
    let mut s = before.cloned().unwrap_or_else(|| State::empty(&d.stack, &d.stage, "aws"));
    for step in &plan.steps {
        match step.action {
            Action::Delete => {
                s.resources.remove(&step.id);
            }
            _ => {
                let n = d.get(&step.id).unwrap();
                let physical = match &n.spec {
                    Spec::Role { name, .. } | Spec::Bucket { name, .. } | Spec::Function { name, .. } | Spec::LogGroup { name, .. } => name.clone(),
                    _ => format!("id-{}", step.id),
                };
                s.resources.insert(
                    step.id.clone(),
                    Recorded { kind: step.kind, physical_id: physical, arn: None, hash: n.hash.clone(), depends_on: n.depends_on.clone(), outputs: BTreeMap::new() },
                );
            }
        }
    }
    s
}

fn assert_ordered(plan: &Plan) {
    for (i, s) in plan.steps.iter().enumerate() {
        for dep in &s.after {
            if let Some(j) = plan.steps.iter().position(|o| &o.id == dep) {
                assert!(j < i, "{} runs before its dependency {dep}", s.id);
                assert!(plan.steps[j].action == Action::NoOp || plan.steps[j].level < s.level, "{} level", s.id);
            }
        }
    }
}

#[test]
fn first_deploy_creates_everything_in_order_then_nothing() {
    for name in ["paraphrase", "car-search"] {
        let s = load(name);
        let d = desired::desired(&s, &artifacts(&s, "v1"), &ctx()).unwrap();
        let p = plan::plan(&d, None, &BTreeMap::new());
        assert_eq!(p.count(Action::Create), d.nodes.len(), "{name}");
        assert_ordered(&p);
        // role → function → method → deployment is the longest chain.
        assert!(p.depth() >= 4 && p.depth() <= 6, "{name}: depth {}", p.depth());
        let state = applied(&d, &p, None);
        let again = plan::plan(&d, Some(&state), &BTreeMap::new());
        assert!(again.is_empty(), "{name}: {}", plan::render(&again));
        assert_eq!(again.depth(), 0);
    }
}

#[test]
fn the_graph_has_what_the_tutorials_click_together() {
    let s = load("car-search");
    let d = desired::desired(&s, &artifacts(&s, "v1"), &ctx()).unwrap();
    let ids: Vec<&str> = d.nodes.iter().map(|n| n.id.as_str()).collect();
    for id in [
        "bucket/results", "role/search-start", "role/search-worker", "function/search-start", "function/search-worker",
        "api", "resource/search", "method/POST /search", "method/GET /search", "method/OPTIONS /search",
        "permission/POST /search", "permission/GET /search", "gateway-responses", "deployment",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let Some(Spec::Function { name, environment, .. }) = d.get("function/search-start").map(|n| &n.spec) else { panic!() };
    assert_eq!(name, "car-search-production-search-start");
    assert_eq!(environment["WORKER_FUNCTION"], "car-search-production-search-worker");
    let Some(Spec::Function { environment, .. }) = d.get("function/search-worker").map(|n| &n.spec) else { panic!() };
    assert!(environment["RESULTS_BUCKET"].starts_with("car-search-production-results-"));
}

#[test]
fn role_policies_are_scoped_and_never_wildcards() {
    let s = load("car-search");
    let policy = desired::role_policy(&s, "search-start", &ctx());
    let text = policy.to_string();
    assert!(text.contains("\"lambda:InvokeFunction\""));
    assert!(text.contains("arn:aws:lambda:eu-central-1:123456789012:function:car-search-production-search-worker"));
    assert!(!text.contains("s3:"), "search-start has no bucket access");
    let worker = desired::role_policy(&s, "search-worker", &ctx());
    let wtext = worker.to_string();
    assert!(!wtext.contains("lambda:InvokeFunction"));
    assert!(wtext.contains("\"s3:GetObject\"") && wtext.contains("\"s3:PutObject\""));
    for p in [&policy, &worker] {
        for st in p["Statement"].as_array().unwrap() {
            for a in st["Action"].as_array().unwrap() {
                assert!(!a.as_str().unwrap().contains('*'), "wildcard action {a}");
            }
            for r in st["Resource"].as_array().unwrap() {
                let r = r.as_str().unwrap();
                assert_ne!(r, "*");
                assert!(r.contains("car-search-production-"), "resource {r} is not scoped to the stage");
            }
        }
    }
    let bucket_resource = worker["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == "Bucket0Objects").unwrap()["Resource"][0].as_str().unwrap().to_owned();
    assert!(bucket_resource.starts_with("arn:aws:s3:::car-search-production-results-") && bucket_resource.ends_with("/results/*"), "{bucket_resource}");
}

#[test]
fn secrets_reach_the_function_but_not_the_recorded_hash_input() {
    let s = load("paraphrase");
    let d = desired::desired(&s, &artifacts(&s, "v1"), &ctx()).unwrap();
    let n = d.get("function/paraphrase").unwrap();
    let Spec::Function { environment, hashed_environment, .. } = &n.spec else { panic!() };
    assert_eq!(environment["PARAPHRASE_API_KEY"], "sk-very-secret");
    assert!(hashed_environment["PARAPHRASE_API_KEY"].starts_with("sha256:"));
    let serialized = serde_json::to_string(&d.nodes.iter().map(|n| &n.spec).collect::<Vec<_>>()).unwrap();
    assert!(!serialized.contains("sk-very-secret"));
    // Changing the secret still changes the function (it must be redeployed).
    let mut c = ctx();
    c.parameters.insert("paraphrase_api_key".into(), "rotated".into());
    let d2 = desired::desired(&s, &artifacts(&s, "v1"), &c).unwrap();
    assert_ne!(d2.get("function/paraphrase").unwrap().hash, n.hash);
}

#[test]
fn a_code_change_updates_only_that_function() {
    let s = load("car-search");
    let d1 = desired::desired(&s, &artifacts(&s, "v1"), &ctx()).unwrap();
    let state = applied(&d1, &plan::plan(&d1, None, &BTreeMap::new()), None);
    let mut arts = artifacts(&s, "v1");
    arts.iter_mut().find(|a| a.function == "search-worker").unwrap().code_sha256 = "v2".into();
    let d2 = desired::desired(&s, &arts, &ctx()).unwrap();
    let p = plan::plan(&d2, Some(&state), &BTreeMap::new());
    let changes: Vec<(&str, Action)> = p.changes().map(|s| (s.id.as_str(), s.action)).collect();
    assert_eq!(changes, vec![("function/search-worker", Action::Update)]);
    assert_eq!(p.depth(), 1);
}

#[test]
fn an_api_change_updates_the_method_and_makes_a_new_deployment() {
    let s = load("car-search");
    let d1 = desired::desired(&s, &artifacts(&s, "v1"), &ctx()).unwrap();
    let state = applied(&d1, &plan::plan(&d1, None, &BTreeMap::new()), None);
    let mut s2 = s.clone();
    let route = &mut s2.api.as_mut().unwrap().routes[0];
    let get = route.methods.iter_mut().find(|m| m.http_method == "GET").unwrap();
    if let stackctl::stack::model::Integration::Aws { request_templates, .. } = &mut get.integration {
        request_templates.insert("application/json".into(), "{\"token\": \"$input.params('t')\"}".into());
    }
    let d2 = desired::desired(&s2, &artifacts(&s2, "v1"), &ctx()).unwrap();
    let p = plan::plan(&d2, Some(&state), &BTreeMap::new());
    let changes: Vec<(&str, Action)> = p.changes().map(|s| (s.id.as_str(), s.action)).collect();
    assert_eq!(changes, vec![("method/GET /search", Action::Update), ("deployment", Action::Update)]);
    assert_ordered(&p);
}

#[test]
fn a_removed_route_is_deleted_before_the_new_deployment() {
    let s = load("car-search");
    let d1 = desired::desired(&s, &artifacts(&s, "v1"), &ctx()).unwrap();
    let state = applied(&d1, &plan::plan(&d1, None, &BTreeMap::new()), None);
    let mut s2 = s.clone();
    s2.api.as_mut().unwrap().routes[0].methods.retain(|m| m.http_method != "GET");
    let d2 = desired::desired(&s2, &artifacts(&s2, "v1"), &ctx()).unwrap();
    let p = plan::plan(&d2, Some(&state), &BTreeMap::new());
    let ids: Vec<(&str, Action)> = p.changes().map(|s| (s.id.as_str(), s.action)).collect();
    assert!(ids.contains(&("method/GET /search", Action::Delete)), "{ids:?}");
    assert!(ids.contains(&("permission/GET /search", Action::Delete)), "{ids:?}");
    assert_eq!(ids.last(), Some(&("deployment", Action::Update)), "{ids:?}");
    let deployment = p.steps.iter().find(|s| s.id == "deployment").unwrap();
    assert!(deployment.after.contains(&"method/GET /search".to_string()));
}

#[test]
fn destroy_is_an_empty_desired_stack_deleted_in_reverse_order() {
    let s = load("car-search");
    let d1 = desired::desired(&s, &artifacts(&s, "v1"), &ctx()).unwrap();
    let state = applied(&d1, &plan::plan(&d1, None, &BTreeMap::new()), None);
    let empty = Desired { stack: d1.stack.clone(), stage: d1.stage.clone(), nodes: vec![] };
    let p = plan::plan(&empty, Some(&state), &BTreeMap::new());
    assert_eq!(p.count(Action::Delete), d1.nodes.len());
    let pos = |id: &str| p.steps.iter().position(|s| s.id == id).unwrap();
    // The stage stops serving a function before the function goes.
    assert!(pos("deployment") < pos("function/search-worker"));
    assert!(pos("permission/GET /search") < pos("function/search-worker"));
    assert!(pos("method/GET /search") < pos("resource/search"));
    assert!(pos("function/search-worker") < pos("role/search-worker"));
    assert!(pos("function/search-worker") < pos("bucket/results"));
    assert!(pos("resource/search") < pos("api"));
    assert!(pos("deployment") < pos("api"));
}

#[test]
fn drift_is_repaired() {
    let s = load("paraphrase");
    let d = desired::desired(&s, &artifacts(&s, "v1"), &ctx()).unwrap();
    let state = applied(&d, &plan::plan(&d, None, &BTreeMap::new()), None);
    let mut live = BTreeMap::new();
    live.insert("function/paraphrase".to_string(), Live::Missing);
    live.insert("role/paraphrase".to_string(), Live::Drifted("inline policy differs".into()));
    let p = plan::plan(&d, Some(&state), &live);
    let changes: Vec<(&str, Action, &str)> = p.changes().map(|s| (s.id.as_str(), s.action, s.reason.as_str())).collect();
    assert!(changes.contains(&("function/paraphrase", Action::Create, "deleted outside stackctl: recreating")), "{changes:?}");
    assert!(changes.iter().any(|c| c.0 == "role/paraphrase" && c.1 == Action::Update), "{changes:?}");
    assert!(changes.iter().any(|c| c.0 == "permission/POST /paraphrase" && c.1 == Action::Create), "{changes:?}");
}
