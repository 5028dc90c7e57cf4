//! The REST API of a stage as one OpenAPI 3 document with API Gateway's
//! `x-amazon-apigateway-*` extensions: what `PutRestApi` (`mode=overwrite`)
//! imports and `stackctl openapi` prints. Generated from the desired graph
//! (its api, resource, method and gateway-responses nodes) through the typed
//! model below, so it says exactly what the per-call path creates: the same
//! methods and integrations, request templates, integration and method
//! responses, method request parameters, models and validators; pure.
//!
//! The endpoint type is not part of a document (`PutRestApi` keeps the API's);
//! binary media types are not used by stackctl's stacks.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::desired::{lambda_integration_uri, Context, Desired, MethodIntegration, Spec};
use crate::stack::model::{IntegrationResponse, MethodRequest};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    pub openapi: &'static str,
    pub info: Info,
    /// Path → HTTP method (lower case, as OpenAPI writes it) → operation.
    pub paths: BTreeMap<String, BTreeMap<String, Operation>>,
    #[serde(skip_serializing_if = "Components::is_empty")]
    pub components: Components,
    #[serde(rename = "x-amazon-apigateway-request-validators", skip_serializing_if = "BTreeMap::is_empty")]
    pub request_validators: BTreeMap<String, RequestValidator>,
    #[serde(rename = "x-amazon-apigateway-gateway-responses", skip_serializing_if = "BTreeMap::is_empty")]
    pub gateway_responses: BTreeMap<String, GatewayResponse>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Info {
    pub title: String,
    /// The stage: one document per stage, as the API is.
    pub version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Components {
    /// Model name → JSON Schema (draft 4), as `CreateModel` takes it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub schemas: BTreeMap<String, Value>,
}

impl Components {
    fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestValidator {
    pub validate_request_body: bool,
    pub validate_request_parameters: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayResponse {
    /// `gatewayresponse.header.NAME` → `'value'`.
    pub response_parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<RequestBody>,
    /// Status → method response.
    pub responses: BTreeMap<String, MethodResponse>,
    #[serde(rename = "x-amazon-apigateway-request-validator", skip_serializing_if = "Option::is_none")]
    pub request_validator: Option<String>,
    #[serde(rename = "x-amazon-apigateway-integration")]
    pub integration: Integration,
}

/// A method request parameter (`method.request.{in}.{name}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameter {
    pub name: String,
    /// `path`, `query` or `header`.
    #[serde(rename = "in")]
    pub location: &'static str,
    pub required: bool,
    pub schema: TypeSchema,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeSchema {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestBody {
    /// Content type → the model its body must match.
    pub content: BTreeMap<String, MediaType>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaType {
    pub schema: SchemaRef,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaRef {
    #[serde(rename = "$ref")]
    pub reference: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodResponse {
    pub description: String,
    /// Header → its (string) schema: `method.response.header.NAME`, not required.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, HeaderSchema>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeaderSchema {
    pub schema: TypeSchema,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Integration {
    /// `AWS_PROXY`, `AWS` or `MOCK` (API Gateway reads either case; the
    /// upper case is what it answers `GetIntegration` with).
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub request_templates: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough_behavior: Option<&'static str>,
    /// Selection pattern (`default` for none) → integration response.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub responses: BTreeMap<String, IntegrationResponseDoc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationResponseDoc {
    pub status_code: String,
    /// `method.response.header.NAME` → its source.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub response_parameters: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub response_templates: BTreeMap<String, String>,
}

/// The document of `stack`'s API on `stage`, straight from the stack file: an
/// API does not depend on the functions' code nor on parameter values, so
/// nothing is built and no parameter resolved.
pub fn of_stack(stack: &crate::stack::Stack, stage: &str, account: &str, region: &str) -> Result<Option<Document>, String> {
    let artifacts: Vec<crate::build::Artifact> = stack.functions.iter().map(|f| crate::build::Artifact::unbuilt(&stack.name, f)).collect();
    let parameters = stack.parameters.iter().map(|p| (p.name.clone(), String::new())).collect();
    let ctx = Context { stage: stage.into(), account: account.into(), region: region.into(), parameters };
    let desired = super::desired::desired(stack, &artifacts, &ctx)?;
    document(&desired, &ctx)
}

/// The OpenAPI document of `desired`'s REST API; `None` for a stack without one.
pub fn document(desired: &Desired, ctx: &Context) -> Result<Option<Document>, String> {
    let Some(Spec::RestApi { name, .. }) = desired.get("api").map(|n| &n.spec) else { return Ok(None) };
    let cors_origin = desired.cors_origin();
    let mut doc = Document {
        openapi: "3.0.1",
        info: Info { title: name.clone(), version: ctx.stage.clone() },
        paths: BTreeMap::new(),
        components: Components::default(),
        request_validators: BTreeMap::new(),
        gateway_responses: BTreeMap::new(),
    };
    for node in &desired.nodes {
        match &node.spec {
            Spec::Method { path, http_method, integration, request } => {
                let function_uri = |function: &str| -> Result<String, String> {
                    match desired.get(function).map(|n| &n.spec) {
                        Some(Spec::Function { name, .. }) => Ok(lambda_integration_uri(ctx, name)),
                        _ => Err(format!("{}: function `{function}` is not in the stack", node.id)),
                    }
                };
                let (integration, responses) = match integration {
                    MethodIntegration::Proxy { function } => (
                        Integration {
                            kind: "AWS_PROXY",
                            http_method: Some("POST"),
                            uri: Some(function_uri(function)?),
                            request_templates: BTreeMap::new(),
                            passthrough_behavior: None,
                            responses: BTreeMap::new(),
                        },
                        BTreeMap::new(),
                    ),
                    MethodIntegration::Aws { function, request_templates, responses } => (
                        Integration {
                            kind: "AWS",
                            http_method: Some("POST"),
                            uri: Some(function_uri(function)?),
                            request_templates: request_templates.clone(),
                            passthrough_behavior: Some("WHEN_NO_TEMPLATES"),
                            responses: responses.iter().map(|r| (r.pattern.clone().unwrap_or_else(|| "default".into()), integration_response(r, cors_origin.as_deref()))).collect(),
                        },
                        responses.iter().map(|r| (r.status.to_string(), method_response(r.status, r.headers_with_cors(cors_origin.as_deref()).into_iter().map(|(h, _)| h)))).collect(),
                    ),
                    MethodIntegration::CorsPreflight { .. } => {
                        let headers = integration.preflight_headers();
                        let parameters = headers.iter().map(|(h, v)| (format!("method.response.header.{h}"), format!("'{v}'"))).collect();
                        (
                            Integration {
                                kind: "MOCK",
                                http_method: None,
                                uri: None,
                                request_templates: BTreeMap::from([("application/json".to_owned(), "{\"statusCode\": 200}".to_owned())]),
                                passthrough_behavior: None,
                                responses: BTreeMap::from([(
                                    "default".to_owned(),
                                    IntegrationResponseDoc { status_code: "200".into(), response_parameters: parameters, response_templates: BTreeMap::new() },
                                )]),
                            },
                            BTreeMap::from([("200".to_owned(), method_response(200, headers.iter().map(|(h, _)| h.to_string())))]),
                        )
                    }
                };
                let mut op = Operation {
                    parameters: parameters(request),
                    request_body: None,
                    responses,
                    request_validator: None,
                    integration,
                };
                if !request.models.is_empty() {
                    let mut content = BTreeMap::new();
                    for (content_type, schema) in &request.models {
                        let model = model_name(&node.id, content_type, schema);
                        content.insert(content_type.clone(), MediaType { schema: SchemaRef { reference: format!("#/components/schemas/{model}") } });
                        doc.components.schemas.insert(model, schema.clone());
                    }
                    op.request_body = Some(RequestBody { content });
                }
                if let Some((validator, body, params)) = request.validator() {
                    doc.request_validators.insert(validator.into(), RequestValidator { validate_request_body: body, validate_request_parameters: params });
                    op.request_validator = Some(validator.into());
                }
                doc.paths.entry(path.clone()).or_default().insert(http_method.to_lowercase(), op);
            }
            Spec::GatewayResponses { allow_origin } => {
                for kind in ["DEFAULT_4XX", "DEFAULT_5XX"] {
                    let response_parameters = BTreeMap::from([
                        ("gatewayresponse.header.Access-Control-Allow-Origin".to_owned(), format!("'{allow_origin}'")),
                        ("gatewayresponse.header.Access-Control-Allow-Headers".to_owned(), "'*'".to_owned()),
                    ]);
                    doc.gateway_responses.insert(kind.into(), GatewayResponse { response_parameters });
                }
            }
            Spec::ApiResource { path, .. } => {
                // A resource without methods of its own is still a path of the tree.
                doc.paths.entry(path.clone()).or_default();
            }
            _ => {}
        }
    }
    Ok(Some(doc))
}

fn parameters(request: &MethodRequest) -> Vec<Parameter> {
    request
        .parameters
        .iter()
        .filter_map(|(key, required)| {
            let (place, name) = key.split_once('.')?;
            let location = match place {
                "path" => "path",
                "querystring" => "query",
                "header" => "header",
                _ => return None,
            };
            Some(Parameter { name: name.to_owned(), location, required: *required, schema: TypeSchema { kind: "string" } })
        })
        .collect()
}

fn method_response(status: u16, headers: impl IntoIterator<Item = String>) -> MethodResponse {
    MethodResponse {
        description: format!("{status} response"),
        headers: headers.into_iter().map(|h| (h, HeaderSchema { schema: TypeSchema { kind: "string" } })).collect(),
    }
}

fn integration_response(r: &IntegrationResponse, cors_origin: Option<&str>) -> IntegrationResponseDoc {
    IntegrationResponseDoc {
        status_code: r.status.to_string(),
        response_parameters: r.headers_with_cors(cors_origin).into_iter().map(|(h, source)| (format!("method.response.header.{h}"), source)).collect(),
        response_templates: r.templates.clone(),
    }
}

/// The name prefix of method `id`'s request models: letters and digits from
/// the method and path, and a digest of the id (two paths can spell alike).
pub fn model_prefix(id: &str) -> String {
    let readable: String = id
        .trim_start_matches("method/")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            let mut cs = lower.chars();
            cs.next().map(|f| f.to_ascii_uppercase().to_string() + cs.as_str()).unwrap_or_default()
        })
        .collect();
    let readable: String = readable.chars().take(40).collect();
    format!("{readable}{}", &crate::digest::sha256_hex(id.as_bytes())[..8])
}

/// A request model's name: the method's prefix, then a digest of its content
/// type and schema (a changed schema is a new model, the old one deleted after).
pub fn model_name(id: &str, content_type: &str, schema: &Value) -> String {
    let text = format!("{content_type}\n{}", serde_json::to_string(schema).unwrap_or_default());
    format!("{}M{}", model_prefix(id), &crate::digest::sha256_hex(text.as_bytes())[..8])
}
