//! The local cloud's control plane: what a deployed stage is, as files. The local
//! engine writes them (one file per AWS object, like the API calls it stands for);
//! the local server reads them. Per stack and stage:
//!
//! ```text
//! .stackctl/local/{stack}/{stage}/
//!     roles/{role}.json              policy document + the role's local access key (0600)
//!     functions/{fn}/bootstrap        the host binary, extracted from the uploaded zip
//!     functions/{fn}/config.json      memory, timeout, role, environment (0600: like Lambda's configuration, it holds secrets)
//!     buckets/{bucket}/...            objects (the s3s-fs root)
//!     lifecycle/{bucket}.json         lifecycle rules
//!     api/api.json                    the REST API (id, name)
//!     api/methods/{id}.json           one per method, with its integration
//!     api/permissions/{sid}.json      API Gateway's permission to invoke a function
//!     api/stage.json                  the deployment: a snapshot of every method
//!     server.json, server.log         the background server (pid, port) and its log
//! .stackctl/local/state/{stack}/{stage}.json   the engine's state, as on AWS
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::desired::MethodIntegration;

/// The account id and default region of the local cloud.
pub const ACCOUNT: &str = "000000000000";
pub const DEFAULT_REGION: &str = "us-east-1";

/// Everything of one stage of one stack.
pub fn stage_dir(project: &Path, stack: &str, stage: &str) -> PathBuf {
    project.join(".stackctl").join("local").join(stack).join(stage)
}

/// The engine's state file of a local stage.
pub fn state_path(project: &Path, stack: &str, stage: &str) -> PathBuf {
    project.join(".stackctl").join("local").join("state").join(stack).join(format!("{stage}.json"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleFile {
    pub name: String,
    pub arn: String,
    pub policy: Value,
    pub access_key: String,
    pub secret_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionFile {
    pub name: String,
    pub arn: String,
    /// Physical name of the role.
    pub role: String,
    pub memory: u32,
    pub timeout: u32,
    pub environment: BTreeMap<String, String>,
    /// Base64 sha256 of the zip it came from (Lambda's `CodeSha256`).
    pub code_sha256: String,
    /// At most this many invocations at once; more are throttled (429).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<u32>,
}

/// An EventBridge rule firing a function on a schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleFile {
    pub rule: String,
    pub arn: String,
    pub expression: String,
    /// Physical name of the function.
    pub function: String,
    /// When the rule was made (ms since the epoch): rates count from it.
    pub created_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifecycleFile {
    pub bucket: String,
    pub rules: Vec<crate::engine::desired::LifecycleRule>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiFile {
    pub id: String,
    pub name: String,
}

/// A method as deployed: function references resolved to physical names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MethodFile {
    pub path: String,
    pub http_method: String,
    pub integration: MethodIntegration,
    #[serde(default, skip_serializing_if = "crate::stack::model::MethodRequest::is_empty")]
    pub request: crate::stack::model::MethodRequest,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PermissionFile {
    pub function: String,
    pub statement_id: String,
    pub http_method: String,
    pub path: String,
}

/// The stage's deployment: what the gateway serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageFile {
    pub stage: String,
    pub api_id: String,
    pub deployment_id: String,
    pub methods: Vec<MethodFile>,
    pub cors_origin: Option<String>,
    /// Stage variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerFile {
    pub pid: u32,
    pub port: u16,
    /// The server's control token: `/__stackctl/` requests must carry it
    /// (`Authorization: Bearer …`). The file is readable by its owner only.
    #[serde(default)]
    pub token: String,
    /// The functions' endpoint (Invoke API and S3), for diagnostics and tests.
    #[serde(default)]
    pub services: u16,
}

/// Write `value` as JSON atomically; `private` files are readable by the owner only.
pub fn write_json<T: Serialize>(path: &Path, value: &T, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(&serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> std::io::Result<T> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))
}

/// Every JSON file of a directory, parsed (a missing directory is empty).
pub fn read_all<T: for<'de> Deserialize<'de>>(dir: &Path) -> std::io::Result<Vec<T>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    paths.sort();
    for p in paths {
        out.push(read_json(&p)?);
    }
    Ok(out)
}

/// A file name for a logical id such as `method/GET /search`.
pub fn file_name(id: &str) -> String {
    let digest = crate::digest::sha256_hex(id.as_bytes());
    let slug: String = id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    format!("{}-{}.json", slug.trim_matches('-'), &digest[..8])
}

/// A random id of `n` lowercase letters and digits (API ids, access keys).
pub fn random_id(n: usize, upper: bool) -> String {
    let alphabet: &[u8] = if upper { b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" } else { b"abcdefghijklmnopqrstuvwxyz0123456789" };
    let mut out = String::new();
    while out.len() < n {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() < n {
                out.push(alphabet[usize::from(*b) % alphabet.len()] as char);
            }
        }
    }
    out
}

/// The process with this pid is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

/// Size and modification time of a file, as recorded after writing it.
pub fn stamp(meta: &std::fs::Metadata) -> String {
    let modified = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{}:{modified}", meta.len())
}
