//! What a stage has deployed: physical ids, ARNs and content hashes, one JSON file
//! per stack and stage under `.stackctl/state/`, written atomically after every
//! step. Secrets never reach it (function environments are recorded hashed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::kind::Kind;

pub const SCHEMA_VERSION: u32 = 1;

/// The engine that owns a stage: `sdk` (this pipeline) or `cloudformation`.
pub const SDK: &str = "sdk";
pub const CLOUDFORMATION: &str = "cloudformation";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub schema_version: u32,
    pub stack: String,
    pub stage: String,
    /// `sdk` or `cloudformation`: a stage is owned by one engine.
    pub engine: String,
    pub target: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub resources: BTreeMap<String, Recorded>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub kind: Kind,
    /// Name or id AWS knows the object by.
    pub physical_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub hash: String,
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Anything later steps need (API id, resource ids, deployment id, URL).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

impl State {
    pub fn empty(stack: &str, stage: &str, target: &str) -> State {
        State {
            schema_version: SCHEMA_VERSION,
            stack: stack.into(),
            stage: stage.into(),
            engine: SDK.into(),
            target: target.into(),
            account: None,
            region: None,
            resources: BTreeMap::new(),
        }
    }
}

impl State {
    /// The outputs of a deployed stage: URL, API id, function, bucket and role names.
    pub fn outputs(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (id, r) in &self.resources {
            match r.kind {
                Kind::Deployment => {
                    if let Some(url) = r.outputs.get("url") {
                        out.insert("url".into(), url.clone());
                    }
                }
                Kind::Function | Kind::Bucket | Kind::Role | Kind::LogGroup | Kind::Schedule => {
                    out.insert(id.clone(), r.physical_id.clone());
                }
                Kind::RestApi => {
                    out.insert("api_id".into(), r.physical_id.clone());
                }
                Kind::ApiResource | Kind::Method | Kind::Permission | Kind::GatewayResponses | Kind::CloudformationStack => {}
            }
        }
        out
    }

    /// The physical name of a deployed function.
    pub fn function_physical(&self, function: &str) -> Option<String> {
        self.resources.get(&format!("function/{function}")).map(|r| r.physical_id.clone())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("state file {path} is corrupt ({why}); it was left untouched\n  hint: restore it from a backup, or remove it and run `stackctl destroy --discover` to find the stage's resources by tag")]
    Corrupt { path: PathBuf, why: String },
    #[error("state file {path} has schema version {found}; this stackctl reads version {SCHEMA_VERSION}\n  hint: use the stackctl version that wrote it")]
    Version { path: PathBuf, found: u64 },
    #[error("state file {path} belongs to stack `{found_stack}` stage `{found_stage}`, not `{stack}` stage `{stage}`; it was left untouched")]
    Mismatch { path: PathBuf, stack: String, stage: String, found_stack: String, found_stage: String },
    #[error("state file {path} was written for the `{found}` target, not `{target}`; it was left untouched\n  hint: run the command with `--target {found}`, or move the file away if it was copied here by mistake")]
    Target { path: PathBuf, target: String, found: String },
}

/// `.stackctl/state/{stack}/{stage}.json` under the project directory.
pub fn path(project: &Path, stack: &str, stage: &str) -> PathBuf {
    project.join(".stackctl").join("state").join(stack).join(format!("{stage}.json"))
}

/// Read a stage's state; `Ok(None)` when it was never deployed. A file that is
/// not exactly a state of this schema, stack, stage and target (`aws`, `local`)
/// is refused, never overwritten.
pub fn load(path: &Path, stack: &str, stage: &str, target: &str) -> Result<Option<State>, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateError::Io { path: path.into(), source: e }),
    };
    let state = parse(&text, path, stack, stage)?;
    if state.target != target {
        return Err(StateError::Target { path: path.into(), target: target.into(), found: state.target });
    }
    Ok(Some(state))
}

/// Check and parse a state document; `path` names where it came from.
pub fn parse(text: &str, path: &Path, stack: &str, stage: &str) -> Result<State, StateError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| StateError::Corrupt { path: path.into(), why: e.to_string() })?;
    let version = value.get("schema_version").and_then(serde_json::Value::as_u64);
    match version {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(v) => return Err(StateError::Version { path: path.into(), found: v }),
        None => return Err(StateError::Corrupt { path: path.into(), why: "no schema_version".into() }),
    }
    let state: State = serde_json::from_value(value).map_err(|e| StateError::Corrupt { path: path.into(), why: e.to_string() })?;
    if state.stack != stack || state.stage != stage {
        return Err(StateError::Mismatch {
            path: path.into(),
            stack: stack.into(),
            stage: stage.into(),
            found_stack: state.stack,
            found_stage: state.stage,
        });
    }
    Ok(state)
}

/// Write atomically: a temporary file in the same directory, flushed, renamed.
pub fn save(path: &Path, state: &State) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(serde_json::to_string_pretty(state).map_err(std::io::Error::other)?.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        let mut s = State::empty("car-search", "production", "aws");
        s.resources.insert(
            "function/search-worker".into(),
            Recorded {
                kind: Kind::Function,
                physical_id: "car-search-production-search-worker".into(),
                arn: Some("arn:aws:lambda:eu-central-1:123456789012:function:car-search-production-search-worker".into()),
                hash: "abc".into(),
                depends_on: vec!["role/search-worker".into()],
                outputs: BTreeMap::new(),
            },
        );
        s
    }

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "car-search", "production");
        assert_eq!(load(&p, "car-search", "production", "aws").unwrap(), None);
        save(&p, &sample()).unwrap();
        assert_eq!(load(&p, "car-search", "production", "aws").unwrap(), Some(sample()));
    }

    /// A state file as every earlier stackctl wrote it (kinds as strings) reads
    /// into typed kinds and is written back byte for byte; a kind this version
    /// does not know is refused as corrupt, never dropped.
    #[test]
    fn state_files_of_earlier_versions_read_and_write_back_unchanged() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/state/car-search-production.json")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("production.json");
        std::fs::write(&p, &text).unwrap();
        let st = load(&p, "car-search", "production", "aws").unwrap().unwrap();
        let kinds: std::collections::BTreeSet<Kind> = st.resources.values().map(|r| r.kind).collect();
        assert_eq!(kinds.len(), 9, "every kind of the SDK engine is in the fixture: {kinds:?}");
        assert_eq!(st.resources["api"].kind, Kind::RestApi);
        assert_eq!(st.resources["method/GET /search"].kind, Kind::Method);
        assert_eq!(st.resources["gateway-responses"].kind, Kind::GatewayResponses);
        save(&p, &st).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), text.trim_end(), "written back unchanged");
        std::fs::write(&p, text.replacen("\"kind\": \"bucket\"", "\"kind\": \"queue\"", 1)).unwrap();
        let err = load(&p, "car-search", "production", "aws").unwrap_err();
        assert!(matches!(&err, StateError::Corrupt { why, .. } if why.contains("queue")), "{err}");
    }

    #[test]
    fn corrupt_truncated_foreign_and_future_files_are_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "car-search", "production");
        save(&p, &sample()).unwrap();
        let full = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, &full[..full.len() / 2]).unwrap();
        let err = load(&p, "car-search", "production", "aws").unwrap_err().to_string();
        assert!(err.contains("is corrupt") && err.contains("left untouched"), "{err}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), full[..full.len() / 2], "never overwritten");

        std::fs::write(&p, full.replace("\"schema_version\": 1", "\"schema_version\": 9")).unwrap();
        assert!(matches!(load(&p, "car-search", "production", "aws"), Err(StateError::Version { found: 9, .. })));
        std::fs::write(&p, &full).unwrap();
        assert!(matches!(load(&p, "car-search", "dev", "aws"), Err(StateError::Mismatch { .. })));
        // A state of another target (a local stage's file saying `aws`, or the reverse).
        let err = load(&p, "car-search", "production", "local").unwrap_err();
        assert!(matches!(&err, StateError::Target { found, .. } if found == "aws"), "{err}");
        assert!(err.to_string().contains("--target aws"), "{err}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), full, "never overwritten");
        std::fs::write(&p, "{\"resources\": {}}").unwrap();
        assert!(matches!(load(&p, "car-search", "production", "aws"), Err(StateError::Corrupt { .. })));
    }
}
