//! The background server, seen from the deployer: start it (its own process
//! group, log in `server.log`), health-check it, ask it to reload, find and
//! stop every server of a stage.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::cloud::{self, ServerFile};
use super::http::start;
use super::world::Server;

fn server_file(dir: &Path) -> PathBuf {
    dir.join("server.json")
}

pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("server.log")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(10))).build().into()
}

/// A request to the stage's server's control endpoint, with its token.
pub fn control(s: &ServerFile, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
    let url = format!("http://127.0.0.1:{}{path}", s.port);
    agent().post(&url).header("authorization", format!("Bearer {}", s.token))
}

/// The stage's server when it runs and answers its health check.
pub fn running(dir: &Path) -> Option<ServerFile> {
    let s: ServerFile = cloud::read_json(&server_file(dir)).ok()?;
    if !cloud::alive(s.pid) {
        return None;
    }
    let mut r = agent()
        .get(&format!("http://127.0.0.1:{}/__stackctl/health", s.port))
        .header("authorization", format!("Bearer {}", s.token))
        .config()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .call()
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().ok()?).ok()?;
    (v["pid"].as_u64() == Some(u64::from(s.pid))).then_some(s)
}

fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(log_path(dir)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Make sure the stage's server runs on `port` and serves the latest files. A
/// server of the stage that does not answer (stuck, or one an older stackctl
/// left behind) is stopped before another starts.
pub fn ensure(dir: &Path, port: u16, changed: bool) -> Result<(), String> {
    if let Some(s) = running(dir) {
        if s.port == port {
            if !changed {
                return Ok(());
            }
            let mut r = control(&s, "/__stackctl/reload")
                .send_empty()
                .map_err(|e| format!("the local server (pid {}) did not answer the reload: {e}\n  hint: see {}", s.pid, log_path(dir).display()))?;
            let body = r.body_mut().read_to_string().unwrap_or_default();
            if r.status() != 200 {
                return Err(format!("the local server could not load the new version: {body}\n  hint: see {}", log_path(dir).display()));
            }
            return Ok(());
        }
    }
    stop(dir)?;
    start_background(dir, port)
}

/// Start the server as a background process (its own process group), its output
/// appended to `server.log`, and wait until its health check answers.
fn start_background(dir: &Path, port: u16) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the stackctl executable: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log_path(dir)).map_err(|e| format!("{}: {e}", log_path(dir).display()))?;
    let err_log = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .arg("local-server")
        .arg("--dir")
        .arg(dir)
        .arg("--port")
        .arg(port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the local server: {e}"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the local server exited ({status}) at start:\n{}\n  hint: see {}", log_tail(dir), log_path(dir).display()));
        }
        if running(dir).is_some_and(|s| s.pid == child.id()) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("the local server did not answer its health check within 20 s:\n{}", log_tail(dir)));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The stackctl server processes serving `dir`: background servers
/// (`stackctl local-server --dir DIR`, found by their command line, so even one
/// the server file no longer names), and the foreground `serve` the server file
/// names. A pid is trusted only when its command line says it is ours: a reused
/// pid is never signalled.
fn servers_of(dir: &Path) -> Vec<(u32, bool)> {
    let mut found = Vec::new();
    let want = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if !args.contains(&b"local-server".as_slice()) {
            continue;
        }
        let Some(i) = args.iter().position(|a| *a == b"--dir") else { continue };
        let Some(arg) = args.get(i + 1) else { continue };
        let arg = Path::new(std::ffi::OsStr::from_bytes(arg));
        // A relative --dir is relative to that process's working directory.
        let arg = if arg.is_relative() { std::fs::read_link(e.path().join("cwd")).map(|c| c.join(arg)).unwrap_or_else(|_| arg.to_path_buf()) } else { arg.to_path_buf() };
        if std::fs::canonicalize(&arg).unwrap_or(arg) == want && cloud::alive(pid) {
            found.push((pid, true));
        }
    }
    if let Ok(s) = cloud::read_json::<ServerFile>(&server_file(dir))
        && cloud::alive(s.pid)
        && !found.iter().any(|(p, _)| *p == s.pid)
    {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", s.pid)).unwrap_or_default();
        if cmdline.split(|b| *b == 0).any(|a| a == b"serve") {
            found.push((s.pid, false));
        }
    }
    found
}

/// Stop every server of the stage and every function process they started (a
/// background server's process group): SIGTERM, then SIGKILL after 3 s.
/// Returns how many servers were stopped.
pub fn stop(dir: &Path) -> Result<usize, String> {
    let servers = servers_of(dir);
    for &(pid, background) in &servers {
        // A background server leads its own process group (its functions with it);
        // a foreground `serve` is signalled alone (its functions die with it).
        let target = if background { -(pid as libc::pid_t) } else { pid as libc::pid_t };
        // SAFETY: plain signal sends to the server (and its process group).
        unsafe {
            libc::kill(target, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while cloud::alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above; whatever is left of the group goes.
        unsafe {
            libc::kill(target, libc::SIGKILL);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while cloud::alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if cloud::alive(pid) {
            return Err(format!("the local server (pid {pid}) did not stop"));
        }
    }
    let _ = std::fs::remove_file(server_file(dir));
    Ok(servers.len())
}

/// `stackctl local-server`: the background server's process.
pub async fn run_background(dir: PathBuf, port: u16) -> std::io::Result<()> {
    let server = start(dir.clone(), port).await?;
    cloud::write_json(&server_file(&dir), &server.file(), true)?;
    eprintln!("local server pid {} serving {} on http://127.0.0.1:{}", std::process::id(), dir.display(), server.port());
    std::future::pending::<()>().await;
    Ok(())
}

/// Record a foreground server (so `deploy` and `destroy` see it).
pub fn record_foreground(dir: &Path, server: &Server) -> std::io::Result<()> {
    cloud::write_json(&server_file(dir), &server.file(), true)
}

