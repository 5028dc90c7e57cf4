//! API Gateway (REST, v1): the API, its resources, methods with their
//! integrations and mapping templates, CORS gateway responses, and the
//! deployment with its stage.

use std::collections::BTreeMap;

use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, GatewayResponseType, IntegrationType, Op, PatchOperation};

use super::client::Clients;
use super::error::{gone, retrying, AwsError, ErrorKind};
use super::target::AwsTarget;
use crate::engine::desired::{MethodIntegration, Node, Spec};
use crate::stack::model::{IntegrationResponse, MethodRequest};
use crate::engine::error::EngineError;
use crate::engine::kind::Kind;
use crate::engine::run::Run;
use crate::engine::state::Recorded;

/// The stage URL: AWS's execute-api host, or the emulator's path when
/// `AWS_ENDPOINT_URL` is set.
pub fn invoke_url(clients: &Clients, api_id: &str, region: &str, stage: &str) -> String {
    match &clients.endpoint {
        Some(endpoint) => format!("{}/restapis/{api_id}/{stage}/_user_request_", endpoint.trim_end_matches('/')),
        None => format!("https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"),
    }
}

fn lambda_uri(run: &Run<'_>, function_name: &str) -> String {
    crate::engine::desired::lambda_integration_uri(run.ctx, function_name)
}

impl AwsTarget {
    pub(super) async fn apply_rest_api(&self, run: &Run<'_>, node: &Node, update: bool) -> Result<Recorded, EngineError> {
        let Spec::RestApi { name, endpoint } = &node.spec else { unreachable!("dispatched on the kind") };
        let c = &self.clients;
        let id = node.id.as_str();
        let tags = self.tags(run);
        let endpoint_type = EndpointType::from(endpoint.as_str());
        // A marker left by a cut deploy has no id yet: that is a create.
        if update && run.recorded(id).is_some_and(|r| !r.physical_id.is_empty()) {
            let api_id = run.output(id, "id")?;
            let current = run.output(id, "endpoint").unwrap_or_default();
            let mut ops = vec![PatchOperation::builder().op(Op::Replace).path("/name").value(name).build()];
            if !current.is_empty() && current != *endpoint {
                ops.push(PatchOperation::builder().op(Op::Replace).path(format!("/endpointConfiguration/types/{current}")).value(endpoint).build());
            }
            retrying(|| async {
                c.apigateway
                    .update_rest_api()
                    .rest_api_id(&api_id)
                    .set_patch_operations(Some(ops.clone()))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(id, "apigateway:UpdateRestApi", e))
            })
            .await?;
            let mut r = run.recorded(id).ok_or_else(|| EngineError::Operation(format!("{id} not recorded")))?;
            r.hash = node.hash.clone();
            r.outputs.insert("endpoint".into(), endpoint.clone());
            if !r.outputs.contains_key("root_id") {
                r.outputs.insert("root_id".into(), self.root_resource(id, &api_id).await?);
            }
            return Ok(r);
        }
        // CreateRestApi is not idempotent (two calls, two APIs). Before calling
        // it, a marker is recorded; a deploy that finds a marker (or any record)
        // was cut around the create, and first adopts an API of this stage by
        // name and tags. A retry within this deploy (its answer may have been
        // lost) does the same, and the SDK's own retries are off for the create.
        let orphan_possible = run.recorded(id).is_some();
        if !orphan_possible {
            let mut marker = Run::recorded_for(node, String::new(), None, BTreeMap::new());
            marker.hash = String::new();
            run.record(id, Some(marker)).await?;
        }
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let (api_id, root) = retrying(|| async {
            if (orphan_possible || attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0)
                && let Some(existing) = self.find_rest_api(run, id, name).await?
            {
                return Ok(existing);
            }
            let mut req = c
                .apigateway
                .create_rest_api()
                .name(name)
                .endpoint_configuration(EndpointConfiguration::builder().types(endpoint_type.clone()).build());
            for (k, v) in &tags {
                req = req.tags(k, v);
            }
            let out = req
                .customize()
                .config_override(aws_sdk_apigateway::config::Builder::default().retry_config(aws_sdk_apigateway::config::retry::RetryConfig::disabled()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(id, "apigateway:CreateRestApi", e))?;
            let api_id = out.id.clone().ok_or_else(|| AwsError::new(id, "apigateway:CreateRestApi", "no id in the answer"))?;
            Ok((api_id, out.root_resource_id().map(str::to_owned)))
        })
        .await?;
        let mut outputs = BTreeMap::new();
        outputs.insert("endpoint".into(), endpoint.clone());
        let root = match root {
            Some(r) => r,
            None => {
                // Record at once: a crash before the root lookup must not orphan
                // the API. Marked incomplete (no hash): the next deploy updates
                // it, which looks the root up.
                let mut partial = Run::recorded_for(node, api_id.clone(), None, outputs.clone());
                partial.hash = String::new();
                run.record(id, Some(partial)).await?;
                self.root_resource(id, &api_id).await?
            }
        };
        outputs.insert("root_id".into(), root);
        let arn = format!("arn:aws:apigateway:{}::/restapis/{api_id}", run.ctx.region);
        Ok(Run::recorded_for(node, api_id, Some(arn), outputs))
    }

    pub(super) async fn apply_resource(&self, run: &Run<'_>, node: &Node) -> Result<Recorded, EngineError> {
        let Spec::ApiResource { path, parent } = &node.spec else { unreachable!("dispatched on the kind") };
        let c = &self.clients;
        let id = node.id.as_str();
        let api_id = run.output("api", "id")?;
        let parent_id = match parent {
            Some(p) => run.output(p, "id")?,
            None => run.output("api", "root_id")?,
        };
        let part = path.rsplit('/').next().unwrap_or_default();
        let created = retrying(|| async {
            match c.apigateway.create_resource().rest_api_id(&api_id).parent_id(&parent_id).path_part(part).send().await {
                Ok(out) => Ok(out.id),
                Err(e) => {
                    let err = AwsError::from_sdk(id, "apigateway:CreateResource", e);
                    if err.kind == ErrorKind::AlreadyExists || err.code == "ConflictException" { Ok(None) } else { Err(err) }
                }
            }
        })
        .await?;
        let resource_id = match created {
            Some(r) => r,
            None => {
                // Created before a crash: adopt it.
                let all = c.apigateway.get_resources().rest_api_id(&api_id).limit(500).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:GetResources", e))?;
                all.items()
                    .iter()
                    .find(|r| r.path() == Some(path.as_str()))
                    .and_then(|r| r.id.clone())
                    .ok_or_else(|| EngineError::Operation(format!("{id}: resource exists but cannot be found")))?
            }
        };
        Ok(Run::recorded_for(node, resource_id, None, BTreeMap::new()))
    }

    pub(super) async fn apply_method(&self, run: &Run<'_>, node: &Node, update: bool) -> Result<Recorded, EngineError> {
        let Spec::Method { path, http_method, integration, request } = &node.spec else { unreachable!("dispatched on the kind") };
        let id = node.id.as_str();
        let api_id = run.output("api", "id")?;
        let resource_id = if path == "/" { run.output("api", "root_id")? } else { run.output(&format!("resource{path}"), "id")? };
        let models = self.put_models(id, &api_id, request).await?;
        let validator = match request.validator() {
            Some((name, body, params)) => Some(self.request_validator(id, &api_id, name, body, params).await?),
            None => None,
        };
        self.put_method(run, id, &api_id, &resource_id, http_method, integration, request, &models, validator.as_deref(), update).await?;
        // The method now names only this schema's models: older ones go.
        self.delete_models(id, &api_id, &models.values().cloned().collect::<Vec<_>>()).await?;
        Ok(Run::recorded_for(node, format!("{resource_id}/{http_method}"), None, BTreeMap::new()))
    }

    /// Create a method's request models (named by method and schema, so an
    /// existing one with the name is this very schema); content type → name.
    async fn put_models(&self, id: &str, api_id: &str, request: &MethodRequest) -> Result<BTreeMap<String, String>, EngineError> {
        let mut names = BTreeMap::new();
        for (content_type, schema) in &request.models {
            let name = crate::engine::openapi::model_name(id, content_type, schema);
            let text = serde_json::to_string(schema).unwrap_or_default();
            let created = retrying(|| async {
                match self.clients.apigateway.create_model().rest_api_id(api_id).name(&name).content_type(content_type).schema(&text).send().await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let err = AwsError::from_sdk(id, "apigateway:CreateModel", e);
                        if matches!(err.kind, ErrorKind::AlreadyExists | ErrorKind::Conflict) { Ok(()) } else { Err(err) }
                    }
                }
            });
            created.await?;
            names.insert(content_type.clone(), name);
        }
        Ok(names)
    }

    /// Delete the models of method `id` other than `keep`.
    async fn delete_models(&self, id: &str, api_id: &str, keep: &[String]) -> Result<(), EngineError> {
        let prefix = crate::engine::openapi::model_prefix(id);
        let models = retrying(|| async {
            self.clients.apigateway.get_models().rest_api_id(api_id).limit(500).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:GetModels", e))
        })
        .await?;
        for name in models.items().iter().filter_map(|m| m.name()).filter(|n| n.starts_with(&prefix) && !keep.iter().any(|k| k == n)) {
            gone(|| async { self.clients.apigateway.delete_model().rest_api_id(api_id).model_name(name).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:DeleteModel", e)) }).await?;
        }
        Ok(())
    }

    /// The id of the API's request validator `name`, created when missing.
    async fn request_validator(&self, id: &str, api_id: &str, name: &str, body: bool, params: bool) -> Result<String, EngineError> {
        let mut known = self.validators.lock().await;
        let key = (api_id.to_owned(), name.to_owned());
        if let Some(v) = known.get(&key) {
            return Ok(v.clone());
        }
        let c = &self.clients.apigateway;
        let existing = retrying(|| async { c.get_request_validators().rest_api_id(api_id).limit(500).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:GetRequestValidators", e)) }).await?;
        let found = existing.items().iter().find(|v| v.name() == Some(name)).and_then(|v| v.id().map(str::to_owned));
        let validator_id = match found {
            Some(v) => v,
            None => retrying(|| async {
                c.create_request_validator()
                    .rest_api_id(api_id)
                    .name(name)
                    .validate_request_body(body)
                    .validate_request_parameters(params)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(id, "apigateway:CreateRequestValidator", e))
            })
            .await?
            .id
            .ok_or_else(|| EngineError::Operation(format!("{id}: CreateRequestValidator answered no id")))?,
        };
        known.insert(key, validator_id.clone());
        Ok(validator_id)
    }

    pub(super) async fn apply_gateway_responses(&self, run: &Run<'_>, node: &Node) -> Result<Recorded, EngineError> {
        let Spec::GatewayResponses { allow_origin } = &node.spec else { unreachable!("dispatched on the kind") };
        let c = &self.clients;
        let id = node.id.as_str();
        let api_id = run.output("api", "id")?;
        let puts = [GatewayResponseType::Default4Xx, GatewayResponseType::Default5Xx].map(|kind| {
            let api_id = &api_id;
            retrying(move || {
                let kind = kind.clone();
                async move {
                    c.apigateway
                        .put_gateway_response()
                        .rest_api_id(api_id)
                        .response_type(kind)
                        .response_parameters("gatewayresponse.header.Access-Control-Allow-Origin", format!("'{allow_origin}'"))
                        .response_parameters("gatewayresponse.header.Access-Control-Allow-Headers", "'*'")
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "apigateway:PutGatewayResponse", e))
                }
            })
        });
        for r in futures::future::join_all(puts).await {
            r?;
        }
        Ok(Run::recorded_for(node, api_id, None, BTreeMap::new()))
    }

    pub(super) async fn apply_deployment(&self, run: &Run<'_>, node: &Node, update: bool) -> Result<Recorded, EngineError> {
        let Spec::Deployment { stage, variables, .. } = &node.spec else { unreachable!("dispatched on the kind") };
        let c = &self.clients;
        let id = node.id.as_str();
        let tags = self.tags(run);
        let api_id = run.output("api", "id")?;
        let previous_variables: std::collections::BTreeMap<String, String> = run
            .recorded(&node.id)
            .and_then(|r| r.outputs.get("variables").and_then(|v| serde_json::from_str(v).ok()))
            .unwrap_or_default();
        let deployment = retrying(|| async {
            c.apigateway
                .create_deployment()
                .rest_api_id(&api_id)
                .description(format!("stackctl {}", &node.hash[..12]))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(id, "apigateway:CreateDeployment", e))
        })
        .await?;
        let deployment_id = deployment.id.ok_or_else(|| EngineError::Operation(format!("{id}: no deployment id")))?;
        // A first deployment creates the stage, a later one points it at the
        // new deployment; either falls back to the other when the stage is (or
        // is not) there after all.
        let point = || async {
            retrying(|| async {
                let mut req = c
                    .apigateway
                    .update_stage()
                    .rest_api_id(&api_id)
                    .stage_name(stage)
                    .patch_operations(PatchOperation::builder().op(Op::Replace).path("/deploymentId").value(&deployment_id).build());
                // Stage variables: set the wanted ones, remove those recorded before.
                for (k, v) in variables {
                    req = req.patch_operations(PatchOperation::builder().op(Op::Replace).path(format!("/variables/{k}")).value(v).build());
                }
                for gone in previous_variables.keys().filter(|k| !variables.contains_key(*k)) {
                    req = req.patch_operations(PatchOperation::builder().op(Op::Remove).path(format!("/variables/{gone}")).build());
                }
                req.send()
                    .await
                    .map_err(|e| AwsError::from_sdk(id, "apigateway:UpdateStage", e))
            })
            .await
        };
        let create = || async {
            retrying(|| async {
                let mut req = c.apigateway.create_stage().rest_api_id(&api_id).stage_name(stage).deployment_id(&deployment_id);
                if !variables.is_empty() {
                    req = req.set_variables(Some(variables.clone().into_iter().collect()));
                }
                for (k, v) in &tags {
                    req = req.tags(k, v);
                }
                req.send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:CreateStage", e))
            })
            .await
        };
        if update {
            match point().await {
                Err(e) if e.kind == ErrorKind::NotFound => {
                    create().await?;
                }
                other => {
                    other?;
                }
            }
        } else {
            match create().await {
                Err(e) if matches!(e.kind, ErrorKind::AlreadyExists | ErrorKind::Conflict) => {
                    point().await?;
                }
                other => {
                    other?;
                }
            }
        }
        let mut outputs = BTreeMap::new();
        outputs.insert("stage".into(), stage.clone());
        outputs.insert("url".into(), invoke_url(&self.clients, &api_id, &run.ctx.region, stage));
        if !variables.is_empty() {
            outputs.insert("variables".into(), serde_json::to_string(variables).unwrap_or_default());
        }
        Ok(Run::recorded_for(node, deployment_id, None, outputs))
    }

    pub(super) async fn observe_rest_api(&self, id: &str, r: &Recorded) -> Result<Option<String>, AwsError> {
        self.clients.apigateway.get_rest_api().rest_api_id(&r.physical_id).send().await.map(|_| None).map_err(|e| AwsError::from_sdk(id, "apigateway:GetRestApi", e))
    }

    pub(super) async fn delete_rest_api(&self, run: &Run<'_>, id: &str, name: &str) -> Result<(), EngineError> {
        let c = &self.clients;
        if name.is_empty() {
            // Only the marker of a create that was cut: the API may exist.
            let api_name = crate::naming::api_name(&run.desired.stack, &run.ctx.stage);
            if let Some((api_id, _)) = self.find_rest_api(run, id, &api_name).await? {
                gone(|| async { c.apigateway.delete_rest_api().rest_api_id(&api_id).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:DeleteRestApi", e)) }).await?;
            }
            return Ok(());
        }
        // An attempt whose answer was lost may have deleted it already, and some
        // services (moto) answer a later delete with a bare 500: each attempt
        // first checks that the API still exists.
        gone(|| async {
            c.apigateway.get_rest_api().rest_api_id(name).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:GetRestApi", e))?;
            c.apigateway.delete_rest_api().rest_api_id(name).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:DeleteRestApi", e))
        })
        .await?;
        Ok(())
    }

    /// Resources and methods are deleted one by one while the API stays;
    /// gateway responses and deployments are replaced, never deleted alone.
    pub(super) async fn delete_inside_api(&self, run: &Run<'_>, id: &str, r: &Recorded) -> Result<(), EngineError> {
        let c = &self.clients;
        let Ok(api_id) = run.output("api", "id") else { return Ok(()) };
        if run.desired.get("api").is_none() {
            return Ok(());
        }
        let (api_id, name) = (api_id.as_str(), r.physical_id.as_str());
        match r.kind {
            Kind::ApiResource => {
                gone(|| async { c.apigateway.delete_resource().rest_api_id(api_id).resource_id(name).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:DeleteResource", e)) }).await?
            }
            Kind::Method => {
                let (resource_id, method) = name.split_once('/').unwrap_or_default();
                gone(|| async {
                    c.apigateway.delete_method().rest_api_id(api_id).resource_id(resource_id).http_method(method).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:DeleteMethod", e))
                })
                .await?;
                self.delete_models(id, api_id, &[]).await?
            }
            Kind::GatewayResponses | Kind::Deployment => {}
            Kind::Role | Kind::Bucket | Kind::Function | Kind::RestApi | Kind::Permission | Kind::LogGroup | Kind::Schedule | Kind::CloudformationStack => {
                return Err(EngineError::Operation(format!("{id}: a {} does not live inside the API", r.kind)));
            }
        }
        Ok(())
    }

    /// The id of an API's root resource (`/`).
    async fn root_resource(&self, id: &str, api_id: &str) -> Result<String, EngineError> {
        let resources = retrying(|| async {
            self.clients.apigateway.get_resources().rest_api_id(api_id).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:GetResources", e))
        })
        .await?;
        resources
            .items()
            .iter()
            .find(|r| r.path() == Some("/"))
            .and_then(|r| r.id.clone())
            .ok_or_else(|| EngineError::Operation(format!("{id}: the API has no root resource")))
    }

    /// The REST API of this stack and stage named `name`, if one exists.
    async fn find_rest_api(&self, run: &Run<'_>, id: &str, name: &str) -> Result<Option<(String, Option<String>)>, AwsError> {
        Ok(self.rest_apis_of(id, name, &self.tags(run)).await?.into_iter().next())
    }

    /// Every REST API named `name` that carries all of `ours` tags: (id, root resource id).
    pub(super) async fn rest_apis_of(&self, id: &str, name: &str, ours: &[(String, String)]) -> Result<Vec<(String, Option<String>)>, AwsError> {
        let mut found = Vec::new();
        let mut position = None;
        loop {
            let page = self
                .clients
                .apigateway
                .get_rest_apis()
                .limit(500)
                .set_position(position.clone())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(id, "apigateway:GetRestApis", e))?;
            for api in page.items().iter().filter(|a| {
                a.name() == Some(name) && ours.iter().all(|(k, v)| a.tags().and_then(|t| t.get(k)).is_some_and(|x| x == v))
            }) {
                if let Some(api_id) = api.id() {
                    found.push((api_id.to_owned(), api.root_resource_id().map(str::to_owned)));
                }
            }
            position = page.position().map(str::to_owned);
            if position.is_none() {
                return Ok(found);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn put_method(
        &self,
        run: &Run<'_>,
        id: &str,
        api_id: &str,
        resource_id: &str,
        http_method: &str,
        integration: &MethodIntegration,
        request: &MethodRequest,
        models: &BTreeMap<String, String>,
        validator: Option<&str>,
        update: bool,
    ) -> Result<(), EngineError> {
        let c = &self.clients.apigateway;
        let cors_origin = run.desired.cors_origin();
        // PutMethod refuses an existing method (moto and AWS alike): an update
        // deletes it first, which also makes the put a full replacement; a create
        // does so only when it finds one (left by a deploy that was cut).
        let delete = || async {
            let _ = c.delete_method().rest_api_id(api_id).resource_id(resource_id).http_method(http_method).send().await;
        };
        if update {
            delete().await;
        }
        let put = || async {
            c.put_method()
                .rest_api_id(api_id)
                .resource_id(resource_id)
                .http_method(http_method)
                .authorization_type("NONE")
                .set_request_parameters((!request.parameters.is_empty()).then(|| request.parameters.iter().map(|(k, v)| (format!("method.request.{k}"), *v)).collect()))
                .set_request_models((!models.is_empty()).then(|| models.clone().into_iter().collect()))
                .set_request_validator_id(validator.map(str::to_owned))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(id, "apigateway:PutMethod", e))
        };
        match retrying(put).await {
            Err(e) if matches!(e.kind, ErrorKind::AlreadyExists | ErrorKind::Conflict) => {
                delete().await;
                retrying(put).await?;
            }
            other => {
                other?;
            }
        }
        match integration {
            MethodIntegration::Proxy { function } => {
                let uri = lambda_uri(run, &run.function_name(function)?);
                retrying(|| async {
                    c.put_integration()
                        .rest_api_id(api_id)
                        .resource_id(resource_id)
                        .http_method(http_method)
                        .r#type(IntegrationType::AwsProxy)
                        .integration_http_method("POST")
                        .uri(&uri)
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "apigateway:PutIntegration", e))
                })
                .await?;
            }
            MethodIntegration::Aws { function, request_templates, responses } => {
                let uri = lambda_uri(run, &run.function_name(function)?);
                let put_integration = retrying(|| async {
                    c.put_integration()
                        .rest_api_id(api_id)
                        .resource_id(resource_id)
                        .http_method(http_method)
                        .r#type(IntegrationType::Aws)
                        .integration_http_method("POST")
                        .uri(&uri)
                        .set_request_templates(Some(request_templates.clone().into_iter().collect()))
                        .passthrough_behavior("WHEN_NO_TEMPLATES")
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "apigateway:PutIntegration", e))
                });
                // Method responses need only the method: they go with the
                // integration; the integration responses need both, and go after.
                let method_responses = futures::future::join_all(responses.iter().map(|r| self.put_method_response(id, api_id, resource_id, http_method, r, cors_origin.as_deref())));
                let (integrated, responded) = futures::join!(put_integration, method_responses);
                integrated?;
                for r in responded {
                    r?;
                }
                let integration_responses = responses.iter().map(|r| self.put_integration_response(id, api_id, resource_id, http_method, r, cors_origin.as_deref()));
                for r in futures::future::join_all(integration_responses).await {
                    r?;
                }
            }
            MethodIntegration::CorsPreflight { .. } => {
                let headers = integration.preflight_headers();
                let put_integration = retrying(|| async {
                    c.put_integration()
                        .rest_api_id(api_id)
                        .resource_id(resource_id)
                        .http_method(http_method)
                        .r#type(IntegrationType::Mock)
                        .request_templates("application/json", "{\"statusCode\": 200}")
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "apigateway:PutIntegration", e))
                });
                let method_response = retrying(|| async {
                    let mut req = c.put_method_response().rest_api_id(api_id).resource_id(resource_id).http_method(http_method).status_code("200");
                    for (h, _) in &headers {
                        req = req.response_parameters(format!("method.response.header.{h}"), false);
                    }
                    req.send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:PutMethodResponse", e))
                });
                futures::try_join!(put_integration, method_response)?;
                retrying(|| async {
                    let mut req = c.put_integration_response().rest_api_id(api_id).resource_id(resource_id).http_method(http_method).status_code("200");
                    for (h, v) in &headers {
                        req = req.response_parameters(format!("method.response.header.{h}"), format!("'{v}'"));
                    }
                    req.send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:PutIntegrationResponse", e))
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn put_method_response(&self, id: &str, api_id: &str, resource_id: &str, http_method: &str, response: &IntegrationResponse, cors_origin: Option<&str>) -> Result<(), AwsError> {
        let c = &self.clients.apigateway;
        retrying(|| async {
            let mut req = c.put_method_response().rest_api_id(api_id).resource_id(resource_id).http_method(http_method).status_code(response.status.to_string());
            for (header, _) in response.headers_with_cors(cors_origin) {
                req = req.response_parameters(format!("method.response.header.{header}"), false);
            }
            req.send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:PutMethodResponse", e))
        })
        .await
        .map(|_| ())
    }

    async fn put_integration_response(&self, id: &str, api_id: &str, resource_id: &str, http_method: &str, response: &IntegrationResponse, cors_origin: Option<&str>) -> Result<(), AwsError> {
        let c = &self.clients.apigateway;
        retrying(|| async {
            let mut req = c
                .put_integration_response()
                .rest_api_id(api_id)
                .resource_id(resource_id)
                .http_method(http_method)
                .status_code(response.status.to_string())
                .set_selection_pattern(response.pattern.clone());
            for (header, source) in response.headers_with_cors(cors_origin) {
                req = req.response_parameters(format!("method.response.header.{header}"), source);
            }
            for (content_type, template) in &response.templates {
                req = req.response_templates(content_type, template);
            }
            req.send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:PutIntegrationResponse", e))
        })
        .await
        .map(|_| ())
    }
}
