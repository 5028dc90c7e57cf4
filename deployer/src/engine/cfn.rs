//! `stackctl synth`: the desired graph as a CloudFormation template describing
//! exactly what the SDK engine creates (same physical names, policies, tags).
//! Function code comes from an artifact bucket under content-addressed keys, so a
//! changed function changes only its own key; the deployment's logical id carries
//! the API hash, so a changed API gets a new deployment resource.

use serde_json::{json, Map, Value};

use crate::naming::{source_arn_path, tags};
use super::desired::{Context, Desired, MethodIntegration, Spec};

/// The bucket CloudFormation reads function code from, per account and region.
pub fn artifact_bucket(ctx: &Context) -> String {
    format!("stackctl-artifacts-{}-{}", ctx.account, ctx.region)
}

/// The template as YAML.
pub fn to_yaml(template: &Value) -> String {
    serde_saphyr::to_string(template).unwrap_or_else(|e| format!("# cannot render the template as YAML: {e}\n"))
}

/// `{stack}/{function}/{sha256}.zip`.
pub fn artifact_key(stack: &str, function: &str, sha256_hex: &str) -> String {
    format!("{stack}/{function}/{sha256_hex}.zip")
}

/// `role/search-start` → `RoleSearchStart`, `method/GET /search` → `MethodGETSearch`.
pub fn logical_id(node_id: &str) -> String {
    let mut out = String::new();
    let mut upper = true;
    for c in node_id.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        } else if c == '{' || c == '}' || c == '+' {
            // `{id}` → `Id`, `{proxy+}` → `ProxyGreedy`
            if c == '+' {
                out.push_str("Greedy");
            }
            upper = true;
        } else {
            upper = true;
        }
    }
    if node_id == "api" { "RestApi".into() } else { out }
}

fn tag_list(stack: &str, stage: &str) -> Value {
    Value::Array(tags(stack, stage).into_iter().map(|(k, v)| json!({ "Key": k, "Value": v })).collect())
}

fn resource_id_of(path: &str) -> Value {
    if path == "/" {
        json!({ "Fn::GetAtt": ["RestApi", "RootResourceId"] })
    } else {
        json!({ "Ref": logical_id(&format!("resource{path}")) })
    }
}

fn lambda_uri(function_node: &str) -> Value {
    json!({ "Fn::Sub": format!(
        "arn:aws:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/${{{}.Arn}}/invocations",
        logical_id(function_node)
    ) })
}

/// The template. `code_keys` maps function node ids to their artifact keys.
pub fn synth(desired: &Desired, ctx: &Context, code_keys: &std::collections::BTreeMap<String, String>) -> Value {
    let (stack, stage) = (desired.stack.as_str(), desired.stage.as_str());
    let mut resources = Map::new();
    let mut outputs = Map::new();
    let mut parameters = Map::new();
    let mut methods = Vec::new();
    let mut cors_origin = None;
    for node in &desired.nodes {
        let id = logical_id(&node.id);
        let resource = match &node.spec {
            Spec::Role { name, path, trust, policy_name, policy } => json!({
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": name, "Path": path, "AssumeRolePolicyDocument": trust,
                    "Policies": [{ "PolicyName": policy_name, "PolicyDocument": policy }],
                    "Tags": tag_list(stack, stage),
                }
            }),
            Spec::Bucket { name, lifecycle } => {
                let mut props = json!({
                    "BucketName": name,
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true
                    },
                    "BucketEncryption": { "ServerSideEncryptionConfiguration": [{ "ServerSideEncryptionByDefault": { "SSEAlgorithm": "AES256" } }] },
                    "Tags": tag_list(stack, stage),
                });
                if !lifecycle.is_empty() {
                    props["LifecycleConfiguration"] = json!({ "Rules": lifecycle.iter().map(|r| json!({
                        "Id": r.id, "Status": "Enabled", "Prefix": r.prefix, "ExpirationInDays": r.expiration_days
                    })).collect::<Vec<_>>() });
                }
                outputs.insert(format!("{id}Name"), json!({ "Value": { "Ref": id } }));
                json!({ "Type": "AWS::S3::Bucket", "Properties": props })
            }
            Spec::Function { name, role, memory, timeout, architecture, environment, hashed_environment, reserved_concurrency, .. } => {
                outputs.insert(format!("{id}Name"), json!({ "Value": { "Ref": id } }));
                // Secret values never appear in the template: they become NoEcho
                // parameters, given at deploy time.
                let environment: Map<String, Value> = environment
                    .iter()
                    .map(|(k, v)| {
                        if hashed_environment.get(k) != Some(v) {
                            let param = format!("Secret{}", logical_id(&k.to_ascii_lowercase()));
                            parameters.insert(param.clone(), json!({ "Type": "String", "NoEcho": true, "Description": format!("secret value of {k}") }));
                            (k.clone(), json!({ "Ref": param }))
                        } else {
                            (k.clone(), json!(v))
                        }
                    })
                    .collect();
                let mut function = json!({
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "FunctionName": name,
                        "Runtime": "provided.al2023",
                        "Handler": "bootstrap",
                        "Role": { "Fn::GetAtt": [logical_id(role), "Arn"] },
                        "MemorySize": memory,
                        "Timeout": timeout,
                        "Architectures": [architecture],
                        "Environment": { "Variables": environment },
                        "Code": { "S3Bucket": artifact_bucket(ctx), "S3Key": code_keys.get(&node.id).cloned().unwrap_or_default() },
                        "Tags": tag_list(stack, stage),
                    },
                    "DependsOn": node.depends_on.iter().filter(|d| d.starts_with("bucket/") || d.starts_with("log_group/")).map(|d| logical_id(d)).collect::<Vec<_>>(),
                });
                if let Some(n) = reserved_concurrency {
                    function["Properties"]["ReservedConcurrentExecutions"] = json!(n);
                }
                function
            }
            Spec::Schedule { rule, expression, function, statement_id, .. } => {
                // The function's permission for this rule, beside the rule.
                resources.insert(format!("{id}Permission"), json!({
                    "Type": "AWS::Lambda::Permission",
                    "Properties": {
                        "FunctionName": { "Ref": logical_id(function) },
                        "Action": "lambda:InvokeFunction",
                        "Principal": "events.amazonaws.com",
                        "SourceArn": { "Fn::GetAtt": [id.clone(), "Arn"] },
                    },
                    "Metadata": { "stackctl": { "statement_id": statement_id } },
                }));
                json!({
                    "Type": "AWS::Events::Rule",
                    "Properties": {
                        "Name": rule,
                        "ScheduleExpression": expression,
                        "State": "ENABLED",
                        "Targets": [{ "Id": "function", "Arn": { "Fn::GetAtt": [logical_id(function), "Arn"] } }],
                    }
                })
            }
            Spec::LogGroup { name, retention_days } => json!({
                "Type": "AWS::Logs::LogGroup",
                "Properties": { "LogGroupName": name, "RetentionInDays": retention_days, "Tags": tag_list(stack, stage) }
            }),
            Spec::RestApi { name, endpoint } => json!({
                "Type": "AWS::ApiGateway::RestApi",
                "Properties": { "Name": name, "EndpointConfiguration": { "Types": [endpoint] }, "Tags": tag_list(stack, stage) }
            }),
            Spec::ApiResource { path, parent } => json!({
                "Type": "AWS::ApiGateway::Resource",
                "Properties": {
                    "RestApiId": { "Ref": "RestApi" },
                    "ParentId": match parent { Some(p) => json!({ "Ref": logical_id(p) }), None => json!({ "Fn::GetAtt": ["RestApi", "RootResourceId"] }) },
                    "PathPart": path.rsplit('/').next().unwrap_or_default(),
                }
            }),
            Spec::Method { path, http_method, integration, request } => {
                methods.push(id.clone());
                let (integration, responses) = method_integration(integration, desired.cors_origin());
                let method_id = logical_id(&node.id);
                let mut models = Map::new();
                for (i, (content_type, schema)) in request.models.iter().enumerate() {
                    let model = format!("{method_id}Model{i}");
                    resources.insert(model.clone(), json!({
                        "Type": "AWS::ApiGateway::Model",
                        "Properties": { "RestApiId": { "Ref": "RestApi" }, "ContentType": content_type, "Schema": schema },
                    }));
                    models.insert(content_type.clone(), json!({ "Ref": model }));
                }
                let validator = request.validator().map(|(name, body, params)| {
                    let logical = logical_id(&format!("validator/{name}"));
                    resources.insert(logical.clone(), json!({
                        "Type": "AWS::ApiGateway::RequestValidator",
                        "Properties": { "RestApiId": { "Ref": "RestApi" }, "Name": name, "ValidateRequestBody": body, "ValidateRequestParameters": params },
                    }));
                    logical
                });
                let mut method = json!({
                    "Type": "AWS::ApiGateway::Method",
                    // Justified exception, read by checkov: the tutorials' endpoints are public by design.
                    "Metadata": { "checkov": { "skip": [{
                        "id": "CKV_AWS_59",
                        "comment": "public endpoint by design (the tutorial's open API); the stack file has no authorizer"
                    }] } },
                    "Properties": {
                        "RestApiId": { "Ref": "RestApi" }, "ResourceId": resource_id_of(path), "HttpMethod": http_method,
                        "AuthorizationType": "NONE", "Integration": integration, "MethodResponses": responses,
                    }
                });
                if !request.parameters.is_empty() {
                    let parameters: Map<String, Value> = request.parameters.iter().map(|(k, v)| (format!("method.request.{k}"), json!(v))).collect();
                    method["Properties"]["RequestParameters"] = Value::Object(parameters);
                }
                if !models.is_empty() {
                    method["Properties"]["RequestModels"] = Value::Object(models);
                }
                if let Some(v) = validator {
                    method["Properties"]["RequestValidatorId"] = json!({ "Ref": v });
                }
                method
            }
            Spec::Permission { function, http_method, path, .. } => {
                let method = if http_method == "ANY" { "*" } else { http_method.as_str() };
                json!({
                    "Type": "AWS::Lambda::Permission",
                    "Properties": {
                        "FunctionName": { "Ref": logical_id(function) },
                        "Action": "lambda:InvokeFunction",
                        "Principal": "apigateway.amazonaws.com",
                        "SourceArn": { "Fn::Sub": format!("arn:aws:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{RestApi}}/*/{method}{}", source_arn_path(path)) },
                    }
                })
            }
            Spec::GatewayResponses { allow_origin } => {
                cors_origin = Some(allow_origin.clone());
                for (suffix, kind) in [("4xx", "DEFAULT_4XX"), ("5xx", "DEFAULT_5XX")] {
                    resources.insert(format!("GatewayResponse{suffix}"), json!({
                        "Type": "AWS::ApiGateway::GatewayResponse",
                        "Properties": {
                            "RestApiId": { "Ref": "RestApi" }, "ResponseType": kind,
                            "ResponseParameters": {
                                "gatewayresponse.header.Access-Control-Allow-Origin": format!("'{allow_origin}'"),
                                "gatewayresponse.header.Access-Control-Allow-Headers": "'*'",
                            }
                        }
                    }));
                }
                continue;
            }
            Spec::Deployment { stage: stage_name, variables, .. } => {
                let deployment = format!("Deployment{}", &node.hash[..12]);
                let mut depends: Vec<String> = methods.clone();
                if cors_origin.is_some() {
                    depends.extend(["GatewayResponse4xx".to_string(), "GatewayResponse5xx".to_string()]);
                }
                resources.insert(deployment.clone(), json!({
                    "Type": "AWS::ApiGateway::Deployment",
                    "Properties": { "RestApiId": { "Ref": "RestApi" }, "Description": format!("stackctl {}", &node.hash[..12]) },
                    "DependsOn": depends,
                }));
                let mut stage_resource = json!({
                    "Type": "AWS::ApiGateway::Stage",
                    "Properties": { "RestApiId": { "Ref": "RestApi" }, "StageName": stage_name, "DeploymentId": { "Ref": deployment }, "Tags": tag_list(stack, stage) }
                });
                if !variables.is_empty() {
                    stage_resource["Properties"]["Variables"] = json!(variables);
                }
                resources.insert("Stage".into(), stage_resource);
                outputs.insert("InvokeUrl".into(), json!({ "Value": { "Fn::Sub": format!("https://${{RestApi}}.execute-api.${{AWS::Region}}.amazonaws.com/{stage_name}") } }));
                continue;
            }
        };
        resources.insert(id, resource);
    }
    // `DependsOn: []` is noise; drop it.
    for r in resources.values_mut() {
        if r.get("DependsOn").and_then(Value::as_array).is_some_and(Vec::is_empty) {
            r.as_object_mut().map(|o| o.remove("DependsOn"));
        }
    }
    let mut template = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("stackctl stack {stack}, stage {stage}"),
        "Resources": resources,
        "Outputs": outputs,
    });
    if !parameters.is_empty() {
        template["Parameters"] = Value::Object(parameters);
    }
    template
}

fn method_integration(integration: &MethodIntegration, cors: Option<String>) -> (Value, Value) {
    match integration {
        MethodIntegration::Proxy { function } => {
            (json!({ "Type": "AWS_PROXY", "IntegrationHttpMethod": "POST", "Uri": lambda_uri(function) }), json!([]))
        }
        MethodIntegration::Aws { function, request_templates, responses } => {
            let headers = |r: &crate::stack::model::IntegrationResponse| r.headers_with_cors(cors.as_deref());
            let integration_responses: Vec<Value> = responses
                .iter()
                .map(|r| {
                    let mut out = json!({ "StatusCode": r.status.to_string() });
                    if let Some(p) = &r.pattern {
                        out["SelectionPattern"] = json!(p);
                    }
                    if !r.templates.is_empty() {
                        out["ResponseTemplates"] = json!(r.templates);
                    }
                    let parameters: Map<String, Value> = headers(r).into_iter().map(|(h, v)| (format!("method.response.header.{h}"), json!(v))).collect();
                    if !parameters.is_empty() {
                        out["ResponseParameters"] = Value::Object(parameters);
                    }
                    out
                })
                .collect();
            let method_responses: Vec<Value> = responses
                .iter()
                .map(|r| {
                    let mut out = json!({ "StatusCode": r.status.to_string() });
                    let declared: Map<String, Value> = headers(r).into_iter().map(|(h, _)| (format!("method.response.header.{h}"), json!(false))).collect();
                    if !declared.is_empty() {
                        out["ResponseParameters"] = Value::Object(declared);
                    }
                    out
                })
                .collect();
            (
                json!({
                    "Type": "AWS", "IntegrationHttpMethod": "POST", "Uri": lambda_uri(function),
                    "RequestTemplates": request_templates, "PassthroughBehavior": "WHEN_NO_TEMPLATES",
                    "IntegrationResponses": integration_responses,
                }),
                Value::Array(method_responses),
            )
        }
        MethodIntegration::CorsPreflight { .. } => {
            let headers = integration.preflight_headers();
            let values: Map<String, Value> = headers.iter().map(|(h, v)| (format!("method.response.header.{h}"), json!(format!("'{v}'")))).collect();
            let declared: Map<String, Value> = headers.iter().map(|(h, _)| (format!("method.response.header.{h}"), json!(false))).collect();
            (
                json!({
                    "Type": "MOCK",
                    "RequestTemplates": { "application/json": "{\"statusCode\": 200}" },
                    "IntegrationResponses": [{ "StatusCode": "200", "ResponseParameters": values }],
                }),
                json!([{ "StatusCode": "200", "ResponseParameters": declared }]),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_are_alphanumeric_and_stable() {
        assert_eq!(logical_id("role/search-start"), "RoleSearchStart");
        assert_eq!(logical_id("method/GET /search"), "MethodGETSearch");
        assert_eq!(logical_id("resource/cars/{id}"), "ResourceCarsId");
        assert_eq!(logical_id("resource/files/{path+}"), "ResourceFilesPathGreedy");
        assert_eq!(logical_id("api"), "RestApi");
    }
}
