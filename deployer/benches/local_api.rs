//! The local cloud measured through its HTTP API, with the real CLI and handlers.
//!
//!     cargo bench -p stackctl --bench local_api
//!
//! Deploys both stacks with `stackctl deploy --target local --release` into a
//! scratch project under `target/`, then prints:
//! - warm latency of POST /production/paraphrase: 1,000 sequential requests on
//!   one keep-alive connection (median, p90, p99);
//! - cold start through the gateway: first request after a fresh deploy (server
//!   started, function process not yet), 5 runs;
//! - load: 10,000 requests at concurrency 16 per stack (paraphrase: POST;
//!   car-search: one POST /search per client, then GETs of its token, a POST
//!   every 50th request), errors (transport errors, 5xx, unexpected statuses),
//!   p50/p99 latency, throughput, and the resident memory of the server and its
//!   function processes.
//!
//! `STACKCTL_BENCH_PROFILE=dev` measures dev-profile handlers instead. Asserts
//! nothing about speed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

struct Project {
    dir: PathBuf,
    release: bool,
}

impl Project {
    fn run(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stackctl"));
        cmd.arg("-C").arg(&self.dir).args(args).args(["--stage", "production", "--target", "local"]);
        if self.release && args[0] == "deploy" {
            cmd.arg("--release");
        }
        let out = cmd.env("CARGO_TARGET_DIR", repo().join("target").join("local-api-bench")).output().unwrap();
        assert!(out.status.success(), "stackctl {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn url(&self, stack: &str) -> String {
        let out = self.run(&["status", "-s", stack, "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0]["outputs"]["url"].as_str().unwrap().to_owned()
    }

    fn server_pid(&self, stack: &str) -> u32 {
        let out = self.run(&["status", "-s", stack, "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v[0]["server"]["pid"].as_u64().unwrap() as u32
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_stackctl")).arg("-C").arg(&self.dir).args(["destroy", "--stage", "production", "--target", "local"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(60))).build().into()
}

const PARAPHRASE_BODY: &str = r#"{"sourceText":"The quick brown fox jumps over the lazy dog. I think this is a good idea."}"#;
const SEARCH_BODY: &str = r#"{"location":"New York","pickupDate":"2026-12-04","returnDate":"2026-12-07","carSize":"compact","driverAge":30}"#;

fn post(a: &ureq::Agent, url: &str, body: &str) -> Result<(u16, String), String> {
    let mut r = a.post(url).header("content-type", "application/json").send(body.as_bytes()).map_err(|e| e.to_string())?;
    Ok((r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default()))
}

fn get(a: &ureq::Agent, url: &str) -> Result<(u16, String), String> {
    let mut r = a.get(url).call().map_err(|e| e.to_string())?;
    Ok((r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default()))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Resident memory (current, peak) in MiB of a process and its children.
fn memory(pid: u32) -> (f64, f64) {
    let mut pids = vec![pid];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(stat) = std::fs::read_to_string(e.path().join("stat"))
            && let Some(rest) = stat.rsplit(')').next()
            && rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid)
            && let Ok(child) = e.file_name().to_string_lossy().parse()
        {
            pids.push(child);
        }
    }
    let (mut rss, mut hwm) = (0.0, 0.0);
    for p in pids {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        let kb = |key: &str| status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        rss += kb("VmRSS:") / 1024.0;
        hwm += kb("VmHWM:") / 1024.0;
    }
    (rss, hwm)
}

fn load(name: &str, total: usize, clients: usize, work: impl Fn(&ureq::Agent, usize, &mut Option<String>) -> Result<u16, String> + Sync) -> (Vec<Duration>, usize, Duration) {
    let started = Instant::now();
    let per = total / clients;
    let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let work = &work;
                s.spawn(move || {
                    let a = agent();
                    let mut state = None;
                    let mut lat = Vec::with_capacity(per);
                    let mut errors = 0;
                    for i in 0..per {
                        let t = Instant::now();
                        match work(&a, i, &mut state) {
                            Ok(_) => {}
                            Err(e) => {
                                if errors < 3 {
                                    eprintln!("{name}: {e}");
                                }
                                errors += 1;
                            }
                        }
                        lat.push(t.elapsed());
                    }
                    (lat, errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = started.elapsed();
    let mut all: Vec<Duration> = results.iter().flat_map(|(l, _)| l.iter().copied()).collect();
    all.sort();
    (all, results.iter().map(|(_, e)| e).sum(), wall)
}

fn main() {
    let release = std::env::var("STACKCTL_BENCH_PROFILE").map(|p| p != "dev").unwrap_or(true);
    let dir = repo().join("target").join(format!("local-api-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("stacks")).unwrap();
    for f in ["paraphrase.yaml", "car-search.yaml"] {
        std::fs::copy(repo().join("stacks").join(f), dir.join("stacks").join(f)).unwrap();
    }
    let p = Project { dir, release };
    println!("handlers built with the {} profile", if release { "release" } else { "dev" });
    let t = Instant::now();
    p.run(&["deploy"]);
    println!("first local deploy of both stacks (build included): {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    p.run(&["deploy"]);
    println!("no-op local redeploy (build check included): {:.0} ms", t.elapsed().as_secs_f64() * 1000.0);

    // Cold start through the gateway.
    let mut cold = Vec::new();
    for _ in 0..5 {
        p.run(&["destroy", "-s", "paraphrase"]);
        p.run(&["deploy", "-s", "paraphrase"]);
        let url = format!("{}/paraphrase", p.url("paraphrase"));
        let a = agent();
        let t = Instant::now();
        let (status, _) = post(&a, &url, PARAPHRASE_BODY).unwrap();
        cold.push(t.elapsed());
        assert_eq!(status, 200);
    }
    cold.sort();
    println!("cold start, POST /paraphrase (process spawn + init + invoke), 5 runs: median {:.2} ms (min {:.2}, max {:.2})", percentile(&cold, 0.5), percentile(&cold, 0.0), percentile(&cold, 1.0));

    // Warm latency, one keep-alive connection.
    let url = format!("{}/paraphrase", p.url("paraphrase"));
    let a = agent();
    for _ in 0..50 {
        post(&a, &url, PARAPHRASE_BODY).unwrap();
    }
    let mut warm = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let t = Instant::now();
        let (status, _) = post(&a, &url, PARAPHRASE_BODY).unwrap();
        warm.push(t.elapsed());
        assert_eq!(status, 200);
    }
    warm.sort();
    println!("warm POST /paraphrase, 1,000 sequential: median {:.3} ms, p90 {:.3} ms, p99 {:.3} ms", percentile(&warm, 0.5), percentile(&warm, 0.9), percentile(&warm, 0.99));

    // Load: 10,000 requests at concurrency 16, per stack.
    let (lat, errors, wall) = load("paraphrase", 10_000, 16, |a, _, _| match post(a, &url, PARAPHRASE_BODY)? {
        (200, _) => Ok(200),
        (s, b) => Err(format!("{s} {b}")),
    });
    let (rss, hwm) = memory(p.server_pid("paraphrase"));
    println!(
        "load paraphrase: {} requests at concurrency 16: {errors} errors, p50 {:.2} ms, p99 {:.2} ms, {:.0} req/s; server + functions RSS {rss:.0} MiB (peak {hwm:.0} MiB)",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.len() as f64 / wall.as_secs_f64()
    );
    let search = format!("{}/search", p.url("car-search"));
    let (lat, errors, wall) = load("car-search", 10_000, 16, |a, i, token| {
        if token.is_none() || i % 50 == 0 {
            let (s, b) = post(a, &search, SEARCH_BODY)?;
            if s != 202 {
                return Err(format!("POST {s} {b}"));
            }
            let v: serde_json::Value = serde_json::from_str(&b).map_err(|e| e.to_string())?;
            *token = v["token"].as_str().map(str::to_owned);
            return Ok(s);
        }
        let (s, b) = get(a, &format!("{search}?token={}&User=bench&CarSize=compact", token.as_deref().unwrap_or_default()))?;
        if s == 200 || s == 202 { Ok(s) } else { Err(format!("GET {s} {b}")) }
    });
    let (rss, hwm) = memory(p.server_pid("car-search"));
    println!(
        "load car-search: {} requests at concurrency 16: {errors} errors, p50 {:.2} ms, p99 {:.2} ms, {:.0} req/s; server + functions RSS {rss:.0} MiB (peak {hwm:.0} MiB)",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.len() as f64 / wall.as_secs_f64()
    );
}
