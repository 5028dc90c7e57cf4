//! The desired resource graph of one stage: one node per AWS object, each with a
//! content hash of everything that, when changed, must change the object. Built
//! from the validated stack, the build artifacts and the deploy context; pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use super::kind::Kind;
use crate::build::Artifact;
use crate::digest::sha256_hex;
use crate::naming;
use crate::stack::model::{sid, substitute, Access, ArnRef, EnvValue, Integration, IntegrationResponse, MethodRequest, Stack};

/// Where a stage is deployed.
#[derive(Debug, Clone)]
pub struct Context {
    pub stage: String,
    pub account: String,
    pub region: String,
    /// Resolved parameter values (secrets included; they only ever leave this
    /// process towards the function's configuration, never to state or output).
    pub parameters: BTreeMap<String, String>,
}

/// Stable logical id of a node: `kind/name`, e.g. `function/search-worker`,
/// `method/GET /search`.
pub type NodeId = String;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Spec {
    Role { name: String, path: String, trust: Value, policy_name: String, policy: Value },
    Bucket { name: String, lifecycle: Vec<LifecycleRule> },
    /// `/aws/lambda/{function}`: where Lambda writes the function's logs.
    LogGroup { name: String, retention_days: u32 },
    /// An EventBridge rule named `rule` firing `function` on `expression`.
    Schedule {
        rule: String,
        expression: String,
        function: NodeId,
        /// The function's ARN, known in advance.
        function_arn: String,
        /// Of the function's resource policy statement allowing EventBridge.
        statement_id: String,
    },
    Function {
        name: String,
        role: NodeId,
        /// The role's ARN, known in advance (account, path and name).
        #[serde(skip)]
        role_arn: String,
        memory: u32,
        timeout: u32,
        /// Concurrent executions reserved (and the ceiling); `None`: the account's pool.
        #[serde(skip_serializing_if = "Option::is_none")]
        reserved_concurrency: Option<u32>,
        architecture: String,
        /// Environment with references resolved; secret values replaced by their
        /// hash in `hashed_environment` for hashing and state.
        #[serde(skip)]
        environment: BTreeMap<String, String>,
        hashed_environment: BTreeMap<String, String>,
        code_sha256: String,
        #[serde(skip)]
        zip: std::path::PathBuf,
    },
    RestApi { name: String, endpoint: String },
    ApiResource { path: String, parent: Option<NodeId> },
    Method {
        path: String,
        http_method: String,
        integration: MethodIntegration,
        /// Required parameters and body models (left out of the hash when none).
        #[serde(default, skip_serializing_if = "MethodRequest::is_empty")]
        request: MethodRequest,
    },
    Permission { function: NodeId, statement_id: String, http_method: String, path: String },
    GatewayResponses { allow_origin: String },
    Deployment {
        stage: String,
        api_hash: String,
        /// The stage's variables (left out of the hash when there are none).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        variables: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleRule {
    pub id: String,
    pub prefix: String,
    pub expiration_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MethodIntegration {
    /// AWS_PROXY to a function.
    Proxy { function: NodeId },
    /// AWS (non-proxy) to a function, with request templates and integration responses.
    Aws {
        function: NodeId,
        request_templates: BTreeMap<String, String>,
        #[serde(default = "crate::stack::model::default_responses")]
        responses: Vec<IntegrationResponse>,
    },
    /// MOCK answering a CORS preflight.
    CorsPreflight { allow_origin: String, allow_headers: String, allow_methods: String, max_age: Option<u32> },
}

impl MethodIntegration {
    /// The headers a CORS preflight answers with (name, value).
    pub fn preflight_headers(&self) -> Vec<(&'static str, String)> {
        let MethodIntegration::CorsPreflight { allow_origin, allow_headers, allow_methods, max_age } = self else { return Vec::new() };
        let mut headers = vec![
            ("Access-Control-Allow-Origin", allow_origin.clone()),
            ("Access-Control-Allow-Headers", allow_headers.clone()),
            ("Access-Control-Allow-Methods", allow_methods.clone()),
        ];
        if let Some(age) = max_age {
            headers.push(("Access-Control-Max-Age", age.to_string()));
        }
        headers
    }
}


#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub id: NodeId,
    pub spec: Spec,
    pub depends_on: Vec<NodeId>,
    /// sha256 of the spec (secrets hashed), hex.
    pub hash: String,
}

#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub stack: String,
    pub stage: String,
    /// In dependency order: every node after the nodes it depends on.
    pub nodes: Vec<Node>,
}

impl Desired {
    pub fn get(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The CORS origin of the API, when any route has `cors: true`.
    pub fn cors_origin(&self) -> Option<String> {
        self.nodes.iter().find_map(|n| match &n.spec {
            Spec::GatewayResponses { allow_origin } => Some(allow_origin.clone()),
            _ => None,
        })
    }
}

impl Spec {
    pub fn kind(&self) -> Kind {
        match self {
            Spec::Role { .. } => Kind::Role,
            Spec::Bucket { .. } => Kind::Bucket,
            Spec::LogGroup { .. } => Kind::LogGroup,
            Spec::Schedule { .. } => Kind::Schedule,
            Spec::Function { .. } => Kind::Function,
            Spec::RestApi { .. } => Kind::RestApi,
            Spec::ApiResource { .. } => Kind::ApiResource,
            Spec::Method { .. } => Kind::Method,
            Spec::Permission { .. } => Kind::Permission,
            Spec::GatewayResponses { .. } => Kind::GatewayResponses,
            Spec::Deployment { .. } => Kind::Deployment,
        }
    }

    /// A function's configuration (role, memory, timeout, architecture,
    /// environment with secrets hashed) as one digest: recorded, it tells the
    /// planner whether an update touches the configuration.
    pub fn function_config_digest(&self) -> Option<String> {
        let Spec::Function { role_arn, memory, timeout, architecture, hashed_environment, reserved_concurrency, .. } = self else { return None };
        // Written only when set, so that stages deployed before it keep their digest.
        let mut parts = json!([role_arn, memory, timeout, architecture, hashed_environment]);
        if let (Some(n), Some(a)) = (reserved_concurrency, parts.as_array_mut()) {
            a.push(json!({ "reserved_concurrency": n }));
        }
        Some(sha256_hex(parts.to_string().as_bytes()))
    }
}

fn hash_of(spec: &Spec) -> String {
    sha256_hex(&serde_json::to_vec(spec).unwrap_or_default())
}

fn node(id: impl Into<String>, spec: Spec, depends_on: Vec<NodeId>) -> Node {
    let hash = hash_of(&spec);
    Node { id: id.into(), spec, depends_on, hash }
}

/// A function's ARN (`name`: its physical name), in the stage's account and region.
pub fn function_arn(ctx: &Context, name: &str) -> String {
    format!("arn:aws:lambda:{}:{}:function:{name}", ctx.region, ctx.account)
}

/// The URI by which API Gateway's Lambda integrations name a function.
pub fn lambda_integration_uri(ctx: &Context, name: &str) -> String {
    format!("arn:aws:apigateway:{}:lambda:path/2015-03-31/functions/{}/invocations", ctx.region, function_arn(ctx, name))
}

/// IAM's limit on the inline policies of one role, whitespace not counted.
pub const ROLE_POLICY_MAX: usize = 10_240;

/// The log group Lambda writes a function's output to.
pub fn log_group_name(function_name: &str) -> String {
    format!("/aws/lambda/{function_name}")
}

/// A log group's ARN (`group`: its name), in the stage's account and region.
pub fn log_group_arn(ctx: &Context, group: &str) -> String {
    format!("arn:aws:logs:{}:{}:log-group:{group}", ctx.region, ctx.account)
}

/// The least-privilege inline policy of a function's role: streams and events
/// in its own log group, plus exactly what the stack grants. Never a `*` action
/// or resource. The deploy creates the group, so the role cannot: a function
/// still running while its stage is destroyed cannot bring its group back.
pub fn role_policy(stack: &Stack, function: &str, ctx: &Context) -> Value {
    let f = stack.function(function).expect("validated");
    let physical = naming::function_name(&stack.name, &ctx.stage, function);
    // The function's own group: the only logs its role may write.
    let log_group = log_group_arn(ctx, &log_group_name(&physical));
    let mut statements = vec![
        json!({ "Sid": sid::OWN_LOGS, "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": [format!("{log_group}:log-stream:*")] }),
    ];
    let targets: Vec<String> = f
        .permissions
        .invoke
        .iter()
        .map(|t| function_arn(ctx, &naming::function_name(&stack.name, &ctx.stage, t)))
        .collect();
    if !targets.is_empty() {
        statements.push(json!({ "Sid": sid::INVOKE, "Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": targets }));
    }
    for (i, grant) in f.permissions.buckets.iter().enumerate() {
        let bucket = naming::bucket_name(&stack.name, &ctx.stage, &grant.bucket, &ctx.account, &ctx.region);
        let actions: Vec<&str> = grant
            .access
            .iter()
            .filter_map(|a| match a {
                Access::Read => Some("s3:GetObject"),
                Access::Write => Some("s3:PutObject"),
                Access::Delete => Some("s3:DeleteObject"),
                Access::List | Access::ReadWrite => None,
            })
            .collect();
        if !actions.is_empty() {
            statements.push(json!({
                "Sid": sid::bucket_objects(i),
                "Effect": "Allow",
                "Action": actions,
                "Resource": [format!("arn:aws:s3:::{bucket}/{}*", grant.prefix)],
            }));
        }
        if grant.access.contains(&Access::List) {
            // Listing is a bucket action: scoped to the prefix by a condition.
            let mut list = json!({ "Sid": sid::bucket_list(i), "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [format!("arn:aws:s3:::{bucket}")] });
            if !grant.prefix.is_empty() {
                list["Condition"] = json!({ "StringLike": { "s3:prefix": [format!("{}*", grant.prefix)] } });
            }
            statements.push(list);
        }
    }
    for st in &f.permissions.statements {
        let resolve = |r: ArnRef<'_>| -> Result<String, String> { Ok(r.value(&stack.name, &ctx.stage, &ctx.account, &ctx.region)) };
        // Validated: every reference resolves.
        let resources: Vec<String> = st.resources.iter().map(|r| substitute(r, resolve).unwrap_or_else(|_| r.clone())).collect();
        let mut statement = json!({ "Sid": st.sid, "Effect": "Allow", "Action": st.actions, "Resource": resources });
        if let Some(condition) = &st.condition {
            statement["Condition"] = condition.clone();
        }
        statements.push(statement);
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

fn lambda_trust() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Principal": { "Service": "lambda.amazonaws.com" }, "Action": "sts:AssumeRole" }]
    })
}

/// A short, stable hash for secrets kept in state and plans.
pub fn secret_digest(value: &str) -> String {
    format!("sha256:{}", &sha256_hex(value.as_bytes())[..16])
}

/// Build the desired graph. `artifacts` must hold one artifact per function.
pub fn desired(stack: &Stack, artifacts: &[Artifact], ctx: &Context) -> Result<Desired, String> {
    let mut nodes = Vec::new();
    let fname = |f: &str| naming::function_name(&stack.name, &ctx.stage, f);

    for b in &stack.buckets {
        let name = naming::bucket_name(&stack.name, &ctx.stage, &b.name, &ctx.account, &ctx.region);
        let lifecycle = b.lifecycle.iter().map(|r| LifecycleRule { id: r.id.clone(), prefix: r.prefix.clone(), expiration_days: r.expiration_days }).collect();
        nodes.push(node(format!("bucket/{}", b.name), Spec::Bucket { name, lifecycle }, vec![]));
    }
    for f in &stack.functions {
        let role_id = format!("role/{}", f.name);
        let policy = role_policy(stack, &f.name, ctx);
        // IAM counts a role's inline policies without whitespace, up to 10,240 characters.
        let size = policy.to_string().chars().filter(|c| !c.is_whitespace()).count();
        if size > ROLE_POLICY_MAX {
            return Err(format!(
                "the IAM policy of function `{}` is {size} characters; IAM allows {ROLE_POLICY_MAX} for a role's inline policies\n  hint: merge statements, or grant a prefix rather than many keys",
                f.name
            ));
        }
        nodes.push(node(
            role_id.clone(),
            Spec::Role {
                name: naming::role_name(&stack.name, &ctx.stage, &f.name),
                path: "/stackctl/".into(),
                trust: lambda_trust(),
                policy_name: "stackctl-function".into(),
                policy,
            },
            vec![],
        ));
    }
    for f in &stack.functions {
        let artifact = artifacts
            .iter()
            .find(|a| a.function == f.name)
            .ok_or_else(|| format!("no build artifact for function `{}`", f.name))?;
        let mut environment = BTreeMap::new();
        let mut hashed = BTreeMap::new();
        // The role's ARN is known in advance: the function is created alongside
        // its role (Lambda's "cannot be assumed" answer is retried until IAM has
        // it, as after any new role); the stage waits for both.
        let log_group = format!("log_group/{}", f.name);
        nodes.push(node(log_group.clone(), Spec::LogGroup { name: log_group_name(&fname(&f.name)), retention_days: f.log_retention_days }, vec![]));
        let mut deps = vec![log_group];
        for (k, v) in &f.environment {
            let (value, shown) = match v {
                EnvValue::Literal(s) => (s.clone(), s.clone()),
                EnvValue::Function(t) => (fname(t), fname(t)),
                EnvValue::Bucket(b) => {
                    deps.push(format!("bucket/{b}"));
                    let n = naming::bucket_name(&stack.name, &ctx.stage, b, &ctx.account, &ctx.region);
                    (n.clone(), n)
                }
                EnvValue::Parameter(p) => {
                    let value = ctx.parameters.get(p).cloned().ok_or_else(|| format!("parameter `{p}` has no value"))?;
                    let secret = stack.parameter(p).is_some_and(|p| p.secret);
                    let shown = if secret { secret_digest(&value) } else { value.clone() };
                    (value, shown)
                }
            };
            if value.contains('\0') {
                return Err(format!("environment variable `{k}` of function `{}` contains a NUL character, which Lambda refuses{}", f.name, match v {
                    EnvValue::Parameter(p) => format!(" (from parameter `{p}`)\n  hint: set the parameter's value without the NUL"),
                    _ => String::new(),
                }));
            }
            environment.insert(k.clone(), value);
            hashed.insert(k.clone(), shown);
        }
        // Lambda counts every key and value, resolved, against its 4 KB limit.
        let size: usize = environment.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > crate::stack::validate::ENV_TOTAL_MAX {
            return Err(format!(
                "the environment of function `{}` is {size} bytes once its parameters are resolved; Lambda allows {}\n  hint: shorten the parameters' values or move large values to S3",
                f.name,
                crate::stack::validate::ENV_TOTAL_MAX
            ));
        }
        nodes.push(node(
            format!("function/{}", f.name),
            Spec::Function {
                name: fname(&f.name),
                role: format!("role/{}", f.name),
                role_arn: format!("arn:aws:iam::{}:role/stackctl/{}", ctx.account, naming::role_name(&stack.name, &ctx.stage, &f.name)),
                memory: f.memory,
                timeout: f.timeout,
                reserved_concurrency: f.reserved_concurrency,
                architecture: match f.architecture {
                    crate::stack::model::Architecture::X86_64 => "x86_64".into(),
                    crate::stack::model::Architecture::Arm64 => "arm64".into(),
                },
                environment,
                hashed_environment: hashed,
                code_sha256: artifact.code_sha256.clone(),
                zip: artifact.zip.clone(),
            },
            deps,
        ));
        for (i, expression) in f.schedules.iter().enumerate() {
            let n = i + 1;
            let id = if n == 1 { format!("schedule/{}", f.name) } else { format!("schedule/{}-{n}", f.name) };
            let rule = naming::schedule_rule_name(&stack.name, &ctx.stage, &f.name, n);
            let spec = Spec::Schedule { rule: rule.clone(), expression: expression.clone(), function: format!("function/{}", f.name), function_arn: function_arn(ctx, &fname(&f.name)), statement_id: format!("events-{rule}") };
            nodes.push(node(id, spec, vec![format!("function/{}", f.name)]));
        }
    }

    if let Some(api) = &stack.api {
        let api_id = "api".to_string();
        nodes.push(node(
            api_id.clone(),
            Spec::RestApi {
                name: naming::api_name(&stack.name, &ctx.stage),
                endpoint: match api.endpoint {
                    crate::stack::model::EndpointType::Edge => "EDGE".into(),
                    crate::stack::model::EndpointType::Regional => "REGIONAL".into(),
                },
            },
            vec![],
        ));
        // Every path prefix of every route is a resource (API Gateway's tree).
        let mut paths: Vec<String> = Vec::new();
        for r in &api.routes {
            let mut acc = String::new();
            for seg in r.path.split('/').filter(|s| !s.is_empty()) {
                acc.push('/');
                acc.push_str(seg);
                if !paths.contains(&acc) {
                    paths.push(acc.clone());
                }
            }
        }
        paths.sort_by_key(|p| (p.matches('/').count(), p.clone()));
        for p in &paths {
            let parent = p.rfind('/').filter(|i| *i > 0).map(|i| format!("resource{}", &p[..i]));
            let mut deps = vec![api_id.clone()];
            deps.extend(parent.clone());
            nodes.push(node(format!("resource{p}"), Spec::ApiResource { path: p.clone(), parent }, deps));
        }
        nodes.push(node("gateway-responses", Spec::GatewayResponses { allow_origin: api.cors.allow_origin.clone() }, vec![api_id.clone()]));
        let mut method_ids = Vec::new();
        let mut function_ids: Vec<NodeId> = Vec::new();
        for r in &api.routes {
            let resource = if r.path == "/" { api_id.clone() } else { format!("resource{}", r.path) };
            for m in &r.methods {
                let function = format!("function/{}", m.function);
                let integration = match &m.integration {
                    Integration::Proxy => MethodIntegration::Proxy { function: function.clone() },
                    Integration::Aws { request_templates, responses } => {
                        MethodIntegration::Aws { function: function.clone(), request_templates: request_templates.clone(), responses: responses.clone() }
                    }
                };
                let id = format!("method/{} {}", m.http_method, r.path);
                // The integration names the function by ARN, known in advance: the
                // method waits only for its resource; the deployment, which makes it
                // live, waits for the function.
                nodes.push(node(id.clone(), Spec::Method { path: r.path.clone(), http_method: m.http_method.clone(), integration, request: m.request.clone() }, vec![resource.clone()]));
                if !function_ids.contains(&function) {
                    function_ids.push(function.clone());
                }
                method_ids.push(id.clone());
                nodes.push(node(
                    format!("permission/{} {}", m.http_method, r.path),
                    Spec::Permission {
                        function: function.clone(),
                        statement_id: format!("apigw-{}-{}", m.http_method.to_lowercase(), statement_path(&r.path)),
                        http_method: m.http_method.clone(),
                        path: r.path.clone(),
                    },
                    vec![function, api_id.clone()],
                ));
            }
            if r.cors {
                let mut methods: Vec<&str> = r.methods.iter().map(|m| m.http_method.as_str()).collect();
                methods.push("OPTIONS");
                let id = format!("method/OPTIONS {}", r.path);
                nodes.push(node(
                    id.clone(),
                    Spec::Method {
                        path: r.path.clone(),
                        http_method: "OPTIONS".into(),
                        request: MethodRequest::default(),
                        integration: MethodIntegration::CorsPreflight {
                            allow_origin: api.cors.allow_origin.clone(),
                            allow_headers: api.cors.allow_headers.join(","),
                            allow_methods: methods.join(","),
                            max_age: api.cors.max_age,
                        },
                    },
                    vec![resource.clone()],
                ));
                method_ids.push(id);
            }
        }
        // The deployment depends on everything the API serves; its hash is the hash
        // of those hashes, so any API change (and only one) makes a new deployment.
        let mut api_parts: Vec<&Node> = nodes
            .iter()
            .filter(|n| matches!(n.spec, Spec::RestApi { .. } | Spec::ApiResource { .. } | Spec::Method { .. } | Spec::GatewayResponses { .. }))
            .collect();
        api_parts.sort_by(|a, b| a.id.cmp(&b.id));
        let api_hash = hash_of(&Spec::Deployment {
            variables: BTreeMap::new(),
            stage: ctx.stage.clone(),
            api_hash: api_parts.iter().map(|n| format!("{}={}", n.id, n.hash)).collect::<Vec<_>>().join(";"),
        });
        let mut deps = method_ids;
        deps.extend(function_ids.iter().map(|f| f.replacen("function/", "role/", 1)));
        deps.extend(function_ids);
        deps.push("gateway-responses".into());
        deps.push(api_id.clone());
        nodes.push(node("deployment", Spec::Deployment { stage: ctx.stage.clone(), api_hash, variables: api.variables_for(&ctx.stage) }, deps));
    }
    Ok(Desired { stack: stack.name.clone(), stage: ctx.stage.clone(), nodes })
}

/// `/search/{id}` → `search-id`: a statement id fragment (letters, digits, dashes).
fn statement_path(path: &str) -> String {
    let s: String = path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let s = s.trim_matches('-').to_owned();
    if s.is_empty() { "root".into() } else { s }
}
