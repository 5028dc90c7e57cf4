//! The validated stack: every reference resolved to something that exists, every
//! value in range. Nothing downstream (build, plan, apply) re-checks the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use super::raw::{Access, Architecture, EndpointType, StateBackend};

#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    pub name: String,
    pub description: Option<String>,
    /// The stack file this came from.
    pub file: PathBuf,
    /// The workspace root that crate paths are relative to.
    pub root: PathBuf,
    pub region: Option<String>,
    pub parameters: Vec<Parameter>,
    pub buckets: Vec<Bucket>,
    pub functions: Vec<Function>,
    pub api: Option<Api>,
    pub state: StateConfig,
}

impl Stack {
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }
    pub fn bucket(&self, name: &str) -> Option<&Bucket> {
        self.buckets.iter().find(|b| b.name == name)
    }
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Parameter {
    pub name: String,
    pub description: Option<String>,
    /// Environment variable read at deploy time.
    pub env: String,
    pub default: Option<String>,
    pub secret: bool,
    pub generate: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub name: String,
    pub lifecycle: Vec<LifecycleRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleRule {
    pub id: String,
    pub prefix: String,
    pub expiration_days: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Function {
    pub name: String,
    /// Absolute path of the crate directory.
    pub crate_dir: PathBuf,
    /// The crate path as written, relative to the workspace root.
    pub crate_path: String,
    /// Cargo package name of the crate.
    pub package: String,
    /// Cargo binary target packaged as `bootstrap`.
    pub binary: String,
    pub memory: u32,
    pub timeout: u32,
    /// Days CloudWatch Logs keeps the function's logs.
    pub log_retention_days: u32,
    pub architecture: Architecture,
    pub environment: BTreeMap<String, EnvValue>,
    pub permissions: Permissions,
    /// EventBridge schedule expressions, each checked (`stack::schedule`).
    pub schedules: Vec<String>,
    pub reserved_concurrency: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum EnvValue {
    Literal(String),
    Function(String),
    Bucket(String),
    Parameter(String),
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Permissions {
    /// Logical names of functions this one may invoke.
    pub invoke: Vec<String>,
    pub buckets: Vec<BucketGrant>,
    /// Checked IAM statements of the escape hatch, resources still holding
    /// their `${...}` references.
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketGrant {
    pub bucket: String,
    /// Distinct levels, in order, `read-write` already split: read, write, delete, list.
    pub access: Vec<Access>,
    pub prefix: String,
}

/// The statement ids stackctl writes itself in a role policy; `statements:`
/// may not take them.
pub mod sid {
    pub const OWN_LOGS: &str = "OwnLogStreams";
    pub const INVOKE: &str = "InvokeDeclaredFunctions";

    /// The object actions of the `i`-th bucket grant.
    pub fn bucket_objects(i: usize) -> String {
        format!("Bucket{i}Objects")
    }

    /// The listing of the `i`-th bucket grant.
    pub fn bucket_list(i: usize) -> String {
        format!("Bucket{i}List")
    }

    /// Whether `sid` is (or could be) one of those.
    pub fn is_generated(sid: &str) -> bool {
        let bucket = sid.strip_prefix("Bucket").and_then(|r| r.strip_suffix("Objects").or_else(|| r.strip_suffix("List")));
        sid == OWN_LOGS || sid == INVOKE || bucket.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    pub sid: String,
    /// `service:Action`, spelled as IAM's catalog does (wildcards kept).
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub condition: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Api {
    pub name: String,
    pub endpoint: EndpointType,
    pub cors: Cors,
    pub routes: Vec<Route>,
    /// Stage name (or `default`) → variables.
    pub stage_variables: BTreeMap<String, BTreeMap<String, String>>,
}

impl Api {
    /// The stage variables of `stage`: its own, else `default`'s.
    pub fn variables_for(&self, stage: &str) -> BTreeMap<String, String> {
        self.stage_variables.get(stage).or_else(|| self.stage_variables.get("default")).cloned().unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cors {
    pub allow_origin: String,
    pub allow_headers: Vec<String>,
    pub max_age: Option<u32>,
}

impl Default for Cors {
    fn default() -> Self {
        // What the console's "Enable CORS" sets.
        Cors {
            allow_origin: "*".into(),
            allow_headers: [
                "Content-Type",
                "X-Amz-Date",
                "Authorization",
                "X-Api-Key",
                "X-Amz-Security-Token",
            ]
            .map(String::from)
            .to_vec(),
            max_age: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// Resource path, `/` separated, starting with `/`, without a trailing `/`.
    pub path: String,
    pub cors: bool,
    pub methods: Vec<Method>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Method {
    /// Upper case: GET, POST, ..., or ANY.
    pub http_method: String,
    pub function: String,
    pub integration: Integration,
    /// What API Gateway checks of a request before the integration.
    pub request: MethodRequest,
}

/// A method's request checks: required parameters and body schemas, which
/// take a request validator on AWS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MethodRequest {
    /// `querystring.NAME` / `header.NAME` / `path.NAME` → required.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, bool>,
    /// Content type (or `$default`) → JSON Schema (draft 4).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, serde_json::Value>,
}

impl MethodRequest {
    pub fn is_empty(&self) -> bool {
        self.parameters.is_empty() && self.models.is_empty()
    }
    /// Whether any parameter is required (the validator checks parameters).
    pub fn checks_parameters(&self) -> bool {
        self.parameters.values().any(|r| *r)
    }
    /// Whether bodies are checked against a schema.
    pub fn checks_body(&self) -> bool {
        !self.models.is_empty()
    }
    /// The name of the request validator the method needs, if any; one per
    /// combination and API (`stackctl-body-params`, ...).
    pub fn validator(&self) -> Option<(&'static str, bool, bool)> {
        match (self.checks_body(), self.checks_parameters()) {
            (true, true) => Some(("stackctl-body-params", true, true)),
            (true, false) => Some(("stackctl-body", true, false)),
            (false, true) => Some(("stackctl-params", false, true)),
            (false, false) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Integration {
    /// AWS_PROXY: the function gets the whole request and shapes the response.
    Proxy,
    /// AWS: request mapping templates by content type shape the function's
    /// event; integration responses shape what the client gets.
    Aws { request_templates: BTreeMap<String, String>, responses: Vec<IntegrationResponse> },
}

/// One integration response of a non-proxy method, with its method response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationResponse {
    pub status: u16,
    /// Matched against all of a function error's `errorMessage`; `None` is the
    /// default response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Response templates by content type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, String>,
    /// Header → API Gateway mapping expression (`'literal'`,
    /// `integration.response.body.x`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl IntegrationResponse {
    /// The response's headers and their sources, with CORS's origin when the
    /// API has it (the method response declares each).
    pub fn headers_with_cors(&self, cors_origin: Option<&str>) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = self.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if let Some(origin) = cors_origin {
            headers.push(("Access-Control-Allow-Origin".into(), format!("'{origin}'")));
        }
        headers
    }
}

/// The integration responses of a non-proxy method that declares none: its
/// function's result is the 200; an error whose JSON message carries
/// `"status":N` (search-worker's) is that status, with the message as body.
pub fn default_responses() -> Vec<IntegrationResponse> {
    let error = |status: u16, pattern: &str| IntegrationResponse {
        status,
        pattern: Some(pattern.into()),
        templates: [("application/json".to_string(), "$input.path('$.errorMessage')".to_string())].into(),
        headers: BTreeMap::new(),
    };
    vec![
        IntegrationResponse { status: 200, pattern: None, templates: BTreeMap::new(), headers: BTreeMap::new() },
        error(202, r#".*"status":202.*"#),
        error(400, r#".*"status":400.*"#),
        error(404, r#".*"status":404.*"#),
        error(410, r#".*"status":410.*"#),
        error(500, r#".*"status":5\d\d.*"#),
    ]
}

#[derive(Debug, Clone, Serialize)]
pub struct StateConfig {
    pub backend: StateBackend,
    pub bucket: Option<String>,
    pub prefix: String,
}

/// A `${...}` reference in a statement's resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArnRef<'a> {
    Account,
    Region,
    Stage,
    Stack,
    /// Physical name of a bucket of this stack.
    Bucket(&'a str),
    /// Physical name of a function of this stack.
    Function(&'a str),
}

impl ArnRef<'_> {
    /// What the reference stands for in a stage of a stack, in an account and region.
    pub fn value(self, stack: &str, stage: &str, account: &str, region: &str) -> String {
        match self {
            ArnRef::Account => account.to_owned(),
            ArnRef::Region => region.to_owned(),
            ArnRef::Stage => stage.to_owned(),
            ArnRef::Stack => stack.to_owned(),
            ArnRef::Bucket(b) => crate::naming::bucket_name(stack, stage, b, account, region),
            ArnRef::Function(f) => crate::naming::function_name(stack, stage, f),
        }
    }
}

/// Replace the stack's `${...}` references of a resource with `resolve`'s
/// answers; IAM's own policy variables (`${aws:username}`) are kept. The error
/// names a reference that is not one.
pub fn substitute(resource: &str, mut resolve: impl FnMut(ArnRef<'_>) -> Result<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = resource;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("`{}` opens a `${{` reference without closing it", &rest[start..]));
        };
        let inner = &rest[start + 2..start + len];
        let reference = match inner.split_once(':') {
            _ if inner.starts_with("aws:") || inner == "*" || inner == "?" || inner == "$" => None,
            Some(("bucket", name)) => Some(ArnRef::Bucket(name)),
            Some(("function", name)) => Some(ArnRef::Function(name)),
            None if inner == "account" => Some(ArnRef::Account),
            None if inner == "region" => Some(ArnRef::Region),
            None if inner == "stage" => Some(ArnRef::Stage),
            None if inner == "stack" => Some(ArnRef::Stack),
            _ => {
                return Err(format!(
                    "`${{{inner}}}` is not a reference: use ${{account}}, ${{region}}, ${{stage}}, ${{stack}}, ${{bucket:NAME}}, ${{function:NAME}} or an IAM variable like ${{aws:username}}"
                ))
            }
        };
        match reference {
            Some(r) => out.push_str(&resolve(r)?),
            None => out.push_str(&rest[start..start + len + 1]),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
