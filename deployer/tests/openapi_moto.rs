//! The REST API as one document: `PutRestApi` (`mode=overwrite`) of
//! `stackctl openapi`'s document builds, on moto, exactly the resources,
//! methods, integrations, templates and responses the per-call deploy built
//! for each example stack, both read back with the SDK's own calls.
//!
//! moto's importer takes resources, methods, integrations (type, URI, method,
//! request templates, passthrough), integration responses (pattern, status,
//! header mappings, templates) and method response codes; it leaves out
//! method request parameters, models, validators, method response headers
//! and gateway responses, which are then compared with the document itself.

mod moto;
mod support;

use std::collections::BTreeMap;

use aws_sdk_apigateway::primitives::Blob;
use aws_sdk_apigateway::types::PutMode;
use serde_json::{json, Value};
use stackctl::aws::deploy::{self, Options};
use stackctl::aws::Clients;
use support::{fake_artifacts, load_stack};

const REGION: &str = "eu-central-1";
const ACCOUNT: &str = "123456789012";

/// Everything moto's importer sets, by `METHOD /path`; the rest of the tree
/// (resources without methods) as paths with an empty method set.
async fn shape(c: &Clients, api_id: &str) -> BTreeMap<String, Value> {
    let a = &c.apigateway;
    let mut out = BTreeMap::new();
    let resources = a.get_resources().rest_api_id(api_id).limit(500).send().await.unwrap();
    for r in resources.items() {
        let path = r.path().unwrap().to_owned();
        let methods: Vec<String> = r.resource_methods().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        out.insert(format!("resource {path}"), json!(methods.iter().collect::<std::collections::BTreeSet<_>>()));
        for m in methods {
            let method = a.get_method().rest_api_id(api_id).resource_id(r.id().unwrap()).http_method(&m).send().await.unwrap();
            let integration = method.method_integration().expect("an integration");
            let mut integration_responses = BTreeMap::new();
            for (status, _) in integration.integration_responses().cloned().unwrap_or_default() {
                let ir = a.get_integration_response().rest_api_id(api_id).resource_id(r.id().unwrap()).http_method(&m).status_code(&status).send().await.unwrap();
                let pattern = ir.selection_pattern().filter(|p| !p.is_empty()).map(str::to_owned);
                integration_responses.insert(
                    status,
                    json!({
                        "pattern": pattern,
                        "parameters": ir.response_parameters().cloned().unwrap_or_default().into_iter().collect::<BTreeMap<_, _>>(),
                        "templates": ir.response_templates().cloned().unwrap_or_default().into_iter().collect::<BTreeMap<_, _>>(),
                    }),
                );
            }
            let method_responses: Vec<String> = method.method_responses().map(|m| m.keys().cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect()).unwrap_or_default();
            out.insert(
                format!("{m} {path}"),
                json!({
                    // The case API Gateway answers with (moto keeps what it was given).
                    "type": integration.r#type().map(|t| t.as_str().to_uppercase()),
                    "httpMethod": integration.http_method().filter(|m| !m.is_empty()),
                    "uri": integration.uri().filter(|u| !u.is_empty()),
                    "requestTemplates": integration.request_templates().cloned().unwrap_or_default().into_iter().collect::<BTreeMap<_, _>>(),
                    "passthrough": integration.passthrough_behavior().map(str::to_uppercase),
                    "integrationResponses": integration_responses,
                    "methodResponses": method_responses,
                }),
            );
        }
    }
    out
}

/// moto's importer calls its `put_integration` with `uri` and `httpMethod`
/// always, which a MOCK integration has not (API Gateway's own exports leave
/// them out): empty ones for moto only, read back as absent by `shape`.
fn for_moto(mut doc: Value) -> Value {
    for path in doc["paths"].as_object_mut().unwrap().values_mut() {
        for op in path.as_object_mut().unwrap().values_mut() {
            let integration = op["x-amazon-apigateway-integration"].as_object_mut().unwrap();
            for key in ["uri", "httpMethod"] {
                integration.entry(key).or_insert(json!(""));
            }
        }
    }
    doc
}

async fn same_api_from_one_document(stack_name: &str) {
    let moto = moto::Moto::start();
    let clients = Clients::for_endpoint(&moto.url, REGION).await;
    let project = tempfile::tempdir().unwrap();
    let zips = tempfile::tempdir().unwrap();
    let stack = load_stack(stack_name, "doc");
    let artifacts = fake_artifacts(&stack, zips.path(), "v1");
    let outcome = deploy::deploy(&clients, &stack, "doc", &artifacts, project.path(), &Options::default()).await.unwrap();
    let per_call_id = outcome.state.resources["api"].physical_id.clone();
    let per_call = shape(&clients, &per_call_id).await;

    let document = stackctl::engine::openapi::of_stack(&stack, "doc", ACCOUNT, REGION).unwrap().expect("the stack has an API");
    let body = serde_json::to_vec(&for_moto(serde_json::to_value(&document).unwrap())).unwrap();
    let imported = clients.apigateway.create_rest_api().name("from-document").send().await.unwrap();
    let imported_id = imported.id().unwrap();
    clients.apigateway.put_rest_api().rest_api_id(imported_id).mode(PutMode::Overwrite).body(Blob::new(body.clone())).send().await.unwrap();
    let from_document = shape(&clients, imported_id).await;
    assert_eq!(per_call, from_document, "{stack_name}: the per-call API (left) and the imported document (right) differ");
    assert!(per_call.len() > 2, "{stack_name}: the API has methods: {per_call:#?}");

    // Overwrite is a replacement, not a merge: importing it again changes nothing.
    clients.apigateway.put_rest_api().rest_api_id(imported_id).mode(PutMode::Overwrite).body(Blob::new(body)).send().await.unwrap();
    assert_eq!(shape(&clients, imported_id).await, from_document, "{stack_name}: a second overwrite is the same API");

    // What moto's importer leaves out, read from the document: the CORS
    // gateway responses the per-call path puts, and the method response headers.
    let doc: Value = serde_json::to_value(&document).unwrap();
    for kind in ["DEFAULT_4XX", "DEFAULT_5XX"] {
        let put = clients.apigateway.get_gateway_response().rest_api_id(&per_call_id).response_type(kind.parse().unwrap()).send().await.unwrap();
        let put: BTreeMap<String, String> = put.response_parameters().cloned().unwrap_or_default().into_iter().collect();
        let in_doc: BTreeMap<String, String> = serde_json::from_value(doc["x-amazon-apigateway-gateway-responses"][kind]["responseParameters"].clone()).unwrap();
        assert_eq!(put, in_doc, "{stack_name}: gateway response {kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paraphrase_from_one_document_is_the_per_call_api() {
    same_api_from_one_document("paraphrase").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn car_search_from_one_document_is_the_per_call_api() {
    same_api_from_one_document("car-search").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_from_one_document_is_the_per_call_api() {
    same_api_from_one_document("notes").await;
}

/// The fidelity stack's request side, which moto does not import: each
/// method's parameters, models and validator in the document are what the
/// per-call path put (read back with GetMethod, GetModel, GetRequestValidator).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_carries_parameters_models_and_validators_as_put() {
    let moto = moto::Moto::start();
    let clients = Clients::for_endpoint(&moto.url, REGION).await;
    let project = tempfile::tempdir().unwrap();
    let stack = stackctl::stack::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/api-fidelity.yaml"), "doc").unwrap();
    let zips = tempfile::tempdir().unwrap();
    let artifacts = fake_artifacts(&stack, zips.path(), "v1");
    let outcome = deploy::deploy(&clients, &stack, "doc", &artifacts, project.path(), &Options::default()).await.unwrap();
    let api_id = outcome.state.resources["api"].physical_id.clone();
    let doc = serde_json::to_value(stackctl::engine::openapi::of_stack(&stack, "doc", ACCOUNT, REGION).unwrap().unwrap()).unwrap();
    let a = &clients.apigateway;
    let resources = a.get_resources().rest_api_id(&api_id).limit(500).send().await.unwrap();
    let validators = a.get_request_validators().rest_api_id(&api_id).send().await.unwrap();
    let mut checked = 0;
    for r in resources.items() {
        for m in r.resource_methods().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            let method = a.get_method().rest_api_id(&api_id).resource_id(r.id().unwrap()).http_method(&m).send().await.unwrap();
            let op = &doc["paths"][r.path().unwrap()][m.to_lowercase()];
            let put: BTreeMap<String, bool> = method.request_parameters().cloned().unwrap_or_default().into_iter().collect();
            let in_doc: BTreeMap<String, bool> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let place = match p["in"].as_str().unwrap() {
                                "query" => "querystring",
                                other => other,
                            };
                            (format!("method.request.{place}.{}", p["name"].as_str().unwrap()), p["required"].as_bool().unwrap())
                        })
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(put, in_doc, "{m} {}: request parameters", r.path().unwrap());
            let models: BTreeMap<String, String> = method.request_models().cloned().unwrap_or_default().into_iter().collect();
            for (content_type, name) in &models {
                let reference = op["requestBody"]["content"][content_type]["schema"]["$ref"].as_str().unwrap();
                assert_eq!(reference, format!("#/components/schemas/{name}"));
                let model = a.get_model().rest_api_id(&api_id).model_name(name).send().await.unwrap();
                let schema: Value = serde_json::from_str(model.schema().unwrap()).unwrap();
                assert_eq!(schema, doc["components"]["schemas"][name], "{name}");
                checked += 1;
            }
            let validator = method.request_validator_id().and_then(|id| validators.items().iter().find(|v| v.id() == Some(id)));
            match validator {
                Some(v) => {
                    let name = v.name().unwrap();
                    assert_eq!(op["x-amazon-apigateway-request-validator"], json!(name));
                    let in_doc = &doc["x-amazon-apigateway-request-validators"][name];
                    assert_eq!(in_doc["validateRequestBody"], json!(v.validate_request_body()));
                    assert_eq!(in_doc["validateRequestParameters"], json!(v.validate_request_parameters()));
                    checked += 1;
                }
                None => assert!(op.get("x-amazon-apigateway-request-validator").is_none(), "{m} {}", r.path().unwrap()),
            }
        }
    }
    assert!(checked >= 3, "the fidelity stack has models and validators: {checked} checked");
}

/// `stackctl openapi` prints the same document, as JSON or YAML, without a
/// build and without credentials when account and region are given.
#[test]
fn the_cli_prints_the_document() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stackctl"))
            .args(["openapi", "-s", "paraphrase", "--stage", "doc", "--account", ACCOUNT, "--region", REGION])
            .args(extra)
            .current_dir(root)
            .env_remove("AWS_PROFILE")
            .env("AWS_ACCESS_KEY_ID", "")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let json: Value = serde_json::from_str(&run(&["-o", "json"])).unwrap();
    let stack = load_stack("paraphrase", "doc");
    assert_eq!(json, serde_json::to_value(stackctl::engine::openapi::of_stack(&stack, "doc", ACCOUNT, REGION).unwrap().unwrap()).unwrap());
    assert_eq!(json["paths"]["/paraphrase"]["post"]["x-amazon-apigateway-integration"]["type"], "AWS_PROXY");
    assert_eq!(json["info"]["title"], "paraphrase-doc");
    let yaml: Value = serde_saphyr::from_str(&run(&[])).unwrap();
    assert_eq!(yaml, json, "the YAML says the same as the JSON");
}
