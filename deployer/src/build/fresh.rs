//! Whether a build can be skipped without asking cargo. Even with nothing to
//! compile, a cargo run costs 0.2–0.4 s (it resolves the workspace and checks
//! every crate's fingerprint); a deploy whose sources did not change should not
//! pay it. The fingerprint here is of everything a build of the workspace
//! reads: every file under the workspace root by path, size and modification
//! time (as cargo itself judges path crates), the build's options, stackctl's
//! version, and the environment that changes what cargo builds. A record of it
//! and of the binaries it produced sits beside the zips; when both still hold,
//! the binaries are reused as they are.
//!
//! Outside the workspace it also stamps what cargo reads there: the
//! `.cargo/config.toml` files of the folders above it and of `CARGO_HOME`, and
//! each rustup toolchain's channel manifest (rewritten by `rustup update`).
//! The check is off (cargo always runs) when a crate of the workspace depends
//! on a path outside it, whose files this walk does not see, and when
//! `STACKCTL_ALWAYS_CHECK_BUILD=1` is set.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

// Size and modification time, as the zip's record of its binary keeps them.
use super::source_of as stamp;

/// The environment that changes what cargo builds (or where it puts it).
const BUILD_ENV_PREFIXES: &[&str] = &["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "RUSTC", "RUSTUP_TOOLCHAIN", "CARGO_BUILD_", "CARGO_PROFILE_", "CARGO_TARGET_", "CARGO_HOME"];

/// Folders no build reads from.
const SKIPPED_DIRS: &[&str] = &[".git", ".stackctl", "node_modules"];

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Record {
    fingerprint: String,
    binaries: Vec<Binary>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Binary {
    path: PathBuf,
    len: u64,
    modified_ns: u128,
}


/// What a build read: the workspace's files, and apart from them its lock
/// files, which the build itself may write (a first build creates
/// `Cargo.lock`).
#[derive(Debug, PartialEq)]
pub struct Fingerprint {
    sources: String,
    locks: String,
}

impl Fingerprint {
    pub fn digest(&self) -> String {
        crate::digest::sha256_hex(format!("{}\n{}", self.sources, self.locks).as_bytes())
    }

    /// Whether no file but a lock file changed between two fingerprints (taken
    /// before and after a build): then the build saw what `self` describes.
    pub fn same_sources(&self, other: &Fingerprint) -> bool {
        self.sources == other.sources
    }
}

/// The fingerprint of a build of `root` described by `key`, or `None` when
/// builds of this workspace must always go through cargo.
pub fn fingerprint(root: &Path, target_dir: &Path, key: &str) -> Option<Fingerprint> {
    if std::env::var("STACKCTL_ALWAYS_CHECK_BUILD").is_ok_and(|v| v == "1") {
        return None;
    }
    let mut text = format!("stackctl {}\n{key}\n", env!("CARGO_PKG_VERSION"));
    let mut env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| BUILD_ENV_PREFIXES.iter().any(|p| k.starts_with(p))).collect();
    env.sort();
    for (k, v) in env {
        text.push_str(&format!("env {k}={v}\n"));
    }
    for outside in outside_inputs(root) {
        let (len, modified) = stamp(&outside).unwrap_or_default();
        text.push_str(&format!("outside {} {len} {modified}\n", outside.display()));
    }
    let target_dir = target_dir.canonicalize().unwrap_or_else(|_| target_dir.to_path_buf());
    let mut locks = String::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir).ok()?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                let name = entry.file_name();
                // Target directories (the one in use, `target/`, any other
                // cargo tagged with CACHEDIR.TAG) hold outputs, not inputs.
                let skipped = SKIPPED_DIRS.iter().any(|s| name == *s)
                    || (dir == root && name == "target")
                    || path.join("CACHEDIR.TAG").exists()
                    || path.canonicalize().is_ok_and(|p| p == target_dir);
                if !skipped {
                    stack.push(path);
                }
                continue;
            }
            if path.file_name().is_some_and(|n| n == "Cargo.toml") && depends_outside(&path, root) {
                return None;
            }
            let (len, modified) = stamp(&path).unwrap_or_default();
            let line = format!("{} {len} {modified}\n", path.strip_prefix(root).unwrap_or(&path).display());
            if path.file_name().is_some_and(|n| n == "Cargo.lock") { locks.push_str(&line) } else { text.push_str(&line) }
        }
    }
    Some(Fingerprint { sources: crate::digest::sha256_hex(text.as_bytes()), locks })
}

/// What cargo reads outside the workspace: configuration files up the tree
/// and in `CARGO_HOME`, and the toolchains' manifests (a missing one stamps
/// as absent, so creating it counts as a change).
fn outside_inputs(root: &Path) -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut files = Vec::new();
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    for dir in root.ancestors().skip(1) {
        files.push(dir.join(".cargo/config.toml"));
        files.push(dir.join(".cargo/config"));
    }
    if let Some(cargo_home) = std::env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".cargo"))) {
        files.push(cargo_home.join("config.toml"));
        files.push(cargo_home.join("config"));
    }
    if let Some(rustup_home) = std::env::var_os("RUSTUP_HOME").map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".rustup"))) {
        files.push(rustup_home.join("settings.toml"));
        let mut toolchains: Vec<PathBuf> = std::fs::read_dir(rustup_home.join("toolchains")).into_iter().flatten().flatten().map(|e| e.path()).collect();
        toolchains.sort();
        files.extend(toolchains.into_iter().map(|t| t.join("lib/rustlib/multirust-channel-manifest.toml")));
    }
    files
}

/// Whether a manifest names a path dependency outside the workspace root.
fn depends_outside(manifest: &Path, root: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(manifest) else { return true };
    let Ok(doc) = text.parse::<toml::Table>() else { return true };
    let dir = manifest.parent().unwrap_or(root);
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut tables: Vec<&toml::Table> = vec![&doc];
    let mut outside = false;
    while let Some(t) = tables.pop() {
        for (k, v) in t {
            match v {
                toml::Value::Table(inner) => tables.push(inner),
                toml::Value::String(p) if k == "path" => {
                    let resolved = dir.join(p).canonicalize().unwrap_or_else(|_| dir.join(p));
                    outside |= !resolved.starts_with(&root);
                }
                _ => {}
            }
        }
    }
    outside
}

/// The binaries of the last build with this fingerprint, when each is still
/// the very file it produced.
pub fn reuse(record: &Path, fingerprint: &str) -> Option<Vec<PathBuf>> {
    let r: Record = serde_json::from_slice(&std::fs::read(record).ok()?).ok()?;
    if r.fingerprint != fingerprint {
        return None;
    }
    r.binaries.iter().all(|b| stamp(&b.path) == Some((b.len, b.modified_ns))).then(|| r.binaries.into_iter().map(|b| b.path).collect())
}

/// Remember what a build with this fingerprint produced (best effort: without
/// the record the next build asks cargo).
pub fn save(record: &Path, fingerprint: &str, binaries: &[PathBuf]) {
    let binaries = binaries.iter().filter_map(|p| stamp(p).map(|(len, modified_ns)| Binary { path: p.clone(), len, modified_ns })).collect();
    let r = Record { fingerprint: fingerprint.into(), binaries };
    let _ = super::write_atomic(record, &serde_json::to_vec(&r).unwrap_or_default());
}
