//! `stackctl build`: compile each function crate for Lambda, check its glibc
//! needs, and package `bootstrap` into a reproducible zip with its sha256.

pub mod elf;
mod fresh;
pub mod package;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stack::model::{Architecture, Function, Stack};

/// One packaged function.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    pub stack: String,
    pub function: String,
    pub architecture: Architecture,
    /// The zip to upload. A host build (the local cloud) is never zipped: this
    /// is then the binary itself, run in place.
    pub zip: PathBuf,
    /// Hex sha256 of the zip (of the binary, for a host build).
    pub sha256: String,
    /// Base64 sha256 of the zip (of the binary), as Lambda reports `CodeSha256`.
    pub code_sha256: String,
    /// Size of the zip (of the binary) in bytes.
    pub size: u64,
    /// Size of the uncompressed `bootstrap` in bytes.
    pub binary_size: u64,
    /// Highest glibc symbol version the binary needs (`2.34`), if any.
    pub glibc: Option<String>,
}

impl Artifact {
    /// A function not built: for what depends on the stack but not on its
    /// code (the API's OpenAPI document), nothing to upload or hash.
    pub fn unbuilt(stack: &str, function: &crate::stack::model::Function) -> Artifact {
        Artifact {
            stack: stack.into(),
            function: function.name.clone(),
            architecture: function.architecture,
            zip: PathBuf::new(),
            sha256: String::new(),
            code_sha256: String::new(),
            size: 0,
            binary_size: 0,
            glibc: None,
        }
    }
}

/// How functions are compiled.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Build for this machine instead of for Lambda (the local cloud runs host binaries).
    pub host: bool,
    /// The release profile (always for Lambda; the local cloud defaults to the
    /// dev profile, which rebuilds much faster).
    pub release: bool,
    /// Use `cargo zigbuild` when it is installed (pins glibc 2.34 and cross-builds arm64).
    pub allow_zigbuild: bool,
    /// Show cargo's own output as it runs.
    pub verbose: bool,
    /// Show a spinner on stderr.
    pub progress: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions { host: false, release: true, allow_zigbuild: true, verbose: false, progress: false }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cargo failed building {what}\n{output}\n  hint: fix the compile errors above, then run `stackctl build` again")]
    Cargo { what: String, output: String },
    #[error("cannot run cargo: {0}\n  hint: is the Rust toolchain installed and on PATH?")]
    Spawn(std::io::Error),
    #[error("{0}")]
    Toolchain(String),
    #[error(
        "function `{function}`: its binary needs GLIBC_{found}, but Lambda's provided.al2023 has only GLIBC_{lambda}; it would fail at cold start with \"GLIBC_{found} not found\"\n  hint: install cargo-zigbuild (`pip install cargo-zigbuild`) so stackctl builds against glibc {lambda}, or build on an older distribution"
    )]
    Glibc { function: String, found: String, lambda: String },
    #[error("function `{function}`: cargo did not report a binary named `{binary}`\n  hint: check `binary:` in the stack file matches a [[bin]] of the crate")]
    MissingBinary { function: String, binary: String },
    #[error("function `{function}`: {message}")]
    Package { function: String, message: String },
}

/// The Rust target triple Lambda runs for an architecture.
pub fn triple(arch: Architecture) -> &'static str {
    match arch {
        Architecture::X86_64 => "x86_64-unknown-linux-gnu",
        Architecture::Arm64 => "aarch64-unknown-linux-gnu",
    }
}

fn host_arch() -> Option<Architecture> {
    match std::env::consts::ARCH {
        "x86_64" => Some(Architecture::X86_64),
        "aarch64" => Some(Architecture::Arm64),
        _ => None,
    }
}

/// Whether `cargo zigbuild` is installed (and zig with it).
pub fn zigbuild_available() -> bool {
    Command::new(cargo())
        .args(["zigbuild", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Where the zip of a function goes: `target/lambda/{stack}/{function}/bootstrap.zip`
/// (host builds for the local cloud: `target/lambda-host/...`).
pub fn zip_path(stack: &Stack, function: &str, host: bool) -> PathBuf {
    target_dir(&stack.root).join(if host { "lambda-host" } else { "lambda" }).join(&stack.name).join(function).join("bootstrap.zip")
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Build and package every function of a stack.
pub fn build_stack(stack: &Stack, opts: &BuildOptions) -> Result<Vec<Artifact>, BuildError> {
    let zig = opts.allow_zigbuild && !opts.host && zigbuild_available();
    let mut artifacts = Vec::new();
    // One cargo run per architecture: cargo builds the crates in parallel and shares
    // their dependencies.
    for arch in [Architecture::X86_64, Architecture::Arm64] {
        let group: Vec<&Function> = stack.functions.iter().filter(|f| f.architecture == arch || opts.host).collect();
        if group.is_empty() {
            continue;
        }
        let key = format!(
            "host={} release={} zig={zig} arch={arch:?} {}",
            opts.host,
            opts.release,
            group.iter().map(|f| format!("{}:{}", f.package, f.binary)).collect::<Vec<_>>().join(",")
        );
        let record = zip_path(stack, "", opts.host).with_file_name(format!(".fresh-{arch:?}.json"));
        let fingerprint = fresh::fingerprint(&stack.root, &target_dir(&stack.root), &key);
        let binaries = match fingerprint.as_ref().and_then(|fp| fresh::reuse(&record, &fp.digest())) {
            Some(binaries) => {
                let names = group.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ");
                eprintln!("fresh {names}: no file of the workspace changed since the last build (cargo not run)");
                binaries
            }
            None => {
                let binaries = compile(stack, &group, arch, zig, opts)?;
                // Recorded as the workspace is now, if only lock files changed
                // during the build (a file saved meanwhile: the next build asks cargo).
                if let Some(before) = &fingerprint
                    && let Some(after) = fresh::fingerprint(&stack.root, &target_dir(&stack.root), &key)
                    && before.same_sources(&after)
                {
                    fresh::save(&record, &after.digest(), &binaries);
                }
                binaries
            }
        };
        for (function, binary) in group.iter().zip(binaries) {
            artifacts.push(package_function(stack, function, &binary, opts.host)?);
        }
        if opts.host {
            break;
        }
    }
    Ok(artifacts)
}

/// Run cargo for a group of functions of one architecture; the path of each binary, in order.
fn compile(stack: &Stack, group: &[&Function], arch: Architecture, zig: bool, opts: &BuildOptions) -> Result<Vec<PathBuf>, BuildError> {
    let mut cmd = Command::new(cargo());
    if zig {
        // `.2.34` pins the glibc the binary links against to Lambda's.
        cmd.args(["zigbuild", "--release", "--target", &format!("{}.2.34", triple(arch))]);
    } else {
        if !opts.host && Some(arch) != host_arch() {
            return Err(BuildError::Toolchain(format!(
                "cannot build {arch:?} functions on this {} machine without cargo-zigbuild\n  hint: `pip install cargo-zigbuild` and `rustup target add {}`, or set `architecture: x86_64`",
                std::env::consts::ARCH,
                triple(arch)
            )));
        }
        if !opts.host && !cfg!(target_os = "linux") {
            return Err(BuildError::Toolchain(
                "building Lambda binaries without cargo-zigbuild needs a Linux host\n  hint: `pip install cargo-zigbuild`".into(),
            ));
        }
        cmd.arg("build");
        if opts.release || !opts.host {
            cmd.arg("--release");
        }
    }
    cmd.arg("--message-format=json-render-diagnostics");
    for f in group {
        cmd.args(["-p", &f.package, "--bin", &f.binary]);
    }
    cmd.current_dir(&stack.root).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    isolate(&mut cmd);
    if !opts.verbose {
        cmd.env("CARGO_TERM_PROGRESS_WHEN", "never");
    }
    let what = format!(
        "{} ({})",
        group.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
        if opts.host { "host".to_string() } else { triple(arch).to_string() }
    );
    let started = Instant::now();
    if !opts.progress && !opts.verbose {
        // Outside a terminal, a phase line: the build may take minutes.
        eprintln!("building {what}");
    }
    let mut child = cmd.spawn().map_err(BuildError::Spawn)?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");

    // stdout carries JSON messages (artifacts); stderr the human log, which we keep
    // for the failure case and feed to the spinner.
    let reader = std::thread::spawn(move || {
        let mut json = String::new();
        let _ = BufReader::new(stdout).read_to_string(&mut json);
        json
    });
    let spinner = opts.progress.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()));
        bar.set_message(format!("building {what}"));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let mut log = String::new();
    let mut crates = 0;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if opts.verbose {
            eprintln!("{line}");
        }
        if let Some(bar) = &spinner {
            // The live line follows cargo crate by crate.
            let trimmed = line.trim();
            if let Some(krate) = trimmed.strip_prefix("Compiling ") {
                let krate = krate.split(" (").next().unwrap_or(krate);
                crates += 1;
                bar.set_message(format!("building {what}: crate {crates}, {krate}"));
            }
        }
        log.push_str(&line);
        log.push('\n');
    }
    let status = child.wait().map_err(BuildError::Spawn)?;
    let json = reader.join().unwrap_or_default();
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    if !status.success() {
        return Err(BuildError::Cargo { what, output: diagnostics(&log) });
    }
    // Cargo's own log is shown only on failure (or with -v); success is one line.
    let compiled = log.lines().filter(|l| l.trim_start().starts_with("Compiling")).count();
    eprintln!("built {what} in {:.1}s ({compiled} crates compiled)", started.elapsed().as_secs_f64());

    let mut found: Vec<(String, String, PathBuf)> = Vec::new();
    for line in json.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        if let (Some(name), Some(exe)) = (msg["target"]["name"].as_str(), msg["executable"].as_str()) {
            let package_id = msg["package_id"].as_str().unwrap_or_default().to_owned();
            found.push((package_id, name.to_owned(), PathBuf::from(exe)));
        }
    }
    group
        .iter()
        .map(|f| {
            found
                .iter()
                .find(|(pkg, name, _)| *name == f.binary && package_matches(pkg, &f.package))
                .map(|(_, _, exe)| exe.clone())
                .ok_or_else(|| BuildError::MissingBinary { function: f.name.clone(), binary: f.binary.clone() })
        })
        .collect()
}

/// What of cargo's log a failed build shows: the compiler's diagnostics and
/// cargo's errors, not its hundreds of status lines (`Compiling …`).
fn diagnostics(log: &str) -> String {
    const STATUS: &[&str] = &["Compiling", "Checking", "Fresh", "Downloaded", "Downloading", "Updating", "Locking", "Adding", "Blocking", "Finished", "Building", "Running", "Packaging"];
    let kept: Vec<&str> = log.lines().filter(|l| !STATUS.iter().any(|s| l.trim_start().starts_with(s))).collect();
    let text = kept.join("\n");
    if text.trim().is_empty() { log.to_owned() } else { text }
}

/// The nested cargo runs as if typed in a shell. Under `cargo run`, stackctl's
/// environment carries what cargo sets for running a package (its `CARGO_PKG_*`
/// and manifest variables, the jobserver): passed on, they change the nested
/// build's fingerprints (ring's build script tracks `CARGO_PKG_NAME` and
/// `CARGO_MANIFEST_DIR`), so the nested build and the next `cargo run` rebuild
/// each other's crates every time (a no-op deploy took 20 s). Cargo's configuration variables
/// (`CARGO_HOME`, `CARGO_TARGET_DIR`, `CARGO_BUILD_*`, …) are kept.
fn isolate(cmd: &mut Command) {
    const SET_FOR_A_RUN: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_RUSTC_CURRENT_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "OUT_DIR",
        "RUSTC_BOOTSTRAP",
    ];
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_PKG_") || key.starts_with("CARGO_BIN_EXE_") || SET_FOR_A_RUN.contains(&key) {
            cmd.env_remove(key);
        }
    }
}

/// Cargo package ids look like `path+file:///x/functions/paraphrase#paraphrase@0.1.0`
/// (or `...#0.1.0` when the name equals the directory name).
fn package_matches(package_id: &str, package: &str) -> bool {
    let fragment = package_id.rsplit('#').next().unwrap_or(package_id);
    let name = fragment.split('@').next().unwrap_or(fragment);
    if name.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        // `#0.1.0`: the name is the last path segment.
        return package_id.split('#').next().is_some_and(|p| p.trim_end_matches('/').ends_with(&format!("/{package}")));
    }
    name == package
}

/// What a zip was made from, kept beside it: a rebuild whose binary has the same
/// path, size and modification time reuses the zip without reading the binary.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
struct ZipSource {
    binary: PathBuf,
    len: u64,
    modified_ns: u128,
    host: bool,
    sha256: String,
    code_sha256: String,
    size: u64,
    glibc: Option<String>,
}

fn source_of(binary: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(binary).ok()?;
    let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    Some((meta.len(), modified))
}

fn package_function(stack: &Stack, f: &Function, binary: &Path, host: bool) -> Result<Artifact, BuildError> {
    let err = |message: String| BuildError::Package { function: f.name.clone(), message };
    let path = zip_path(stack, &f.name, host);
    let sidecar = path.with_extension("zip.source.json");
    let artifact = |src: &ZipSource| Artifact {
        stack: stack.name.clone(),
        function: f.name.clone(),
        architecture: f.architecture,
        zip: if host { binary.to_path_buf() } else { path.clone() },
        sha256: src.sha256.clone(),
        code_sha256: src.code_sha256.clone(),
        size: src.size,
        binary_size: src.len,
        glibc: src.glibc.clone(),
    };
    let current = source_of(binary);
    if let (Some((len, modified_ns)), Ok(text)) = (current, std::fs::read(&sidecar))
        && let Ok(src) = serde_json::from_slice::<ZipSource>(&text)
        && src.binary == binary
        && src.len == len
        && src.modified_ns == modified_ns
        && src.host == host
        && (host || std::fs::metadata(&path).is_ok_and(|m| m.len() == src.size))
    {
        return Ok(artifact(&src));
    }
    let bytes = std::fs::read(binary).map_err(|e| err(format!("cannot read {}: {e}", binary.display())))?;
    let glibc = if host {
        // The local cloud runs host binaries: whatever this machine links is fine.
        if cfg!(target_os = "linux") { elf::max_glibc(&bytes).ok().flatten() } else { None }
    } else {
        check_glibc(&f.name, &bytes).map_err(|e| match e {
            BuildError::Package { message, .. } => err(format!("{}: {message}", binary.display())),
            other => other,
        })?
    };
    let (len, modified_ns) = current.unwrap_or((bytes.len() as u64, 0));
    // A host build runs in place on the local cloud: hashed, never zipped (a
    // debug binary is hundreds of MB; zipping it cost most of the edit loop).
    let (sha256, code_sha256, size) = if host {
        (package::sha256_hex(&bytes), package::code_sha256(&bytes), bytes.len() as u64)
    } else {
        let zip = package::zip_bootstrap(&bytes).map_err(|e| err(format!("cannot zip: {e}")))?;
        write_atomic(&path, &zip).map_err(|e| err(format!("cannot write {}: {e}", path.display())))?;
        (package::sha256_hex(&zip), package::code_sha256(&zip), zip.len() as u64)
    };
    let src = ZipSource {
        binary: binary.to_path_buf(),
        len,
        modified_ns,
        host,
        sha256,
        code_sha256,
        size,
        glibc: glibc.map(|(a, b)| format!("{a}.{b}")),
    };
    // Best effort: without the record the next build just zips again.
    let _ = write_atomic(&sidecar, &serde_json::to_vec(&src).unwrap_or_default());
    Ok(artifact(&src))
}

/// Refuse a Lambda binary that needs a newer glibc than provided.al2023 has.
pub fn check_glibc(function: &str, binary: &[u8]) -> Result<Option<(u32, u32)>, BuildError> {
    let found = elf::max_glibc(binary).map_err(|message| BuildError::Package { function: function.into(), message })?;
    match found {
        Some(v) if v > elf::LAMBDA_GLIBC => Err(BuildError::Glibc {
            function: function.into(),
            found: format!("{}.{}", v.0, v.1),
            lambda: format!("{}.{}", elf::LAMBDA_GLIBC.0, elf::LAMBDA_GLIBC.1),
        }),
        other => Ok(other),
    }
}

/// Write through a temporary file and rename, so a reader never sees half a zip.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("out"), std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary itself, with its newest `GLIBC_2.xx` version name rewritten
    /// to `GLIBC_2.99` (same length, so the ELF stays well-formed).
    fn binary_needing_glibc_2_99() -> Option<Vec<u8>> {
        let mut bytes = std::fs::read(std::env::current_exe().ok()?).ok()?;
        let (major, minor) = elf::max_glibc(&bytes).ok()??;
        let name = format!("GLIBC_{major}.{minor}");
        if name.len() != "GLIBC_2.99".len() {
            return None;
        }
        let at = bytes.windows(name.len() + 1).position(|w| w == format!("{name}\0").as_bytes())?;
        bytes[at..at + name.len()].copy_from_slice(b"GLIBC_2.99");
        Some(bytes)
    }

    #[test]
    fn a_binary_needing_a_newer_glibc_than_lambda_is_refused() {
        let Some(bytes) = binary_needing_glibc_2_99() else {
            if cfg!(all(target_os = "linux", target_env = "gnu")) {
                panic!("glibc hosts must be able to run this test");
            }
            return;
        };
        assert_eq!(elf::max_glibc(&bytes).unwrap(), Some((2, 99)));
        let err = check_glibc("paraphrase", &bytes).unwrap_err().to_string();
        assert!(err.contains("function `paraphrase`: its binary needs GLIBC_2.99"), "{err}");
        assert!(err.contains("GLIBC_2.99 not found"), "{err}");
        assert!(err.contains("cargo-zigbuild"), "{err}");
    }

    #[test]
    fn package_ids() {
        assert!(package_matches("path+file:///w/functions/paraphrase#0.1.0", "paraphrase"));
        assert!(package_matches("path+file:///w/functions/search#search-worker@0.1.0", "search-worker"));
        assert!(!package_matches("path+file:///w/functions/search#search-start@0.1.0", "search-worker"));
        assert!(!package_matches("path+file:///w/functions/xparaphrase#0.1.0", "paraphrase"));
    }
}
