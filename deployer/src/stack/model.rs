//! The validated stack: every reference resolved to something that exists, every
//! value in range. Nothing downstream (build, plan, apply) re-checks the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketGrant {
    pub bucket: String,
    pub access: Access,
    pub prefix: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Api {
    pub name: String,
    pub endpoint: EndpointType,
    pub cors: Cors,
    pub routes: Vec<Route>,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Integration {
    /// AWS_PROXY: the function gets the whole request and shapes the response.
    Proxy,
    /// AWS: request mapping templates by content type shape the function's event.
    Aws { request_templates: BTreeMap<String, String> },
}

#[derive(Debug, Clone, Serialize)]
pub struct StateConfig {
    pub backend: StateBackend,
    pub bucket: Option<String>,
    pub prefix: String,
}
