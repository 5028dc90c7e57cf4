#![allow(dead_code)] // each test binary uses part of the harness

//! Test harness: a real AWS emulator (moto server) on a free loopback port, one
//! per test, stopped when the test ends; and a reader of moto's request recorder.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    pub url: String,
    child: Child,
}

impl Moto {
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server must be installed (pip install 'moto[server]'); .ci/run installs it");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if http(&format!("{url}/moto-api/"), "GET").is_ok() {
                return Moto { url, child };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("moto_server did not start on port {port}");
    }

    pub fn start_recording(&self) {
        http(&format!("{}/moto-api/recorder/reset-recording", self.url), "POST").unwrap();
        http(&format!("{}/moto-api/recorder/start-recording", self.url), "POST").unwrap();
    }

    /// Every request since `start_recording`, as (method, url, body); the
    /// JSON protocol's action (`X-Amz-Target: Logs_20140328.DescribeLogGroups`)
    /// is added to the url as `?Action=DescribeLogGroups`.
    pub fn recording(&self) -> Vec<(String, String, String)> {
        http(&format!("{}/moto-api/recorder/stop-recording", self.url), "POST").unwrap();
        let text = http(&format!("{}/moto-api/recorder/download-recording", self.url), "GET").unwrap();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let raw = v["body"].as_str().unwrap_or_default();
                let body = if v["body_encoded"] == true {
                    use base64::Engine;
                    String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(raw).unwrap_or_default()).into_owned()
                } else {
                    raw.to_owned()
                };
                let mut url = v["url"].as_str().unwrap_or_default().to_owned();
                let target = v["headers"].as_object().and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))).and_then(|(_, t)| t.as_str());
                if let Some(action) = target.and_then(|t| t.rsplit('.').next()) {
                    url.push_str(if url.contains('?') { "&Action=" } else { "?Action=" });
                    url.push_str(action);
                }
                (v["method"].as_str().unwrap_or_default().to_owned(), url, body)
            })
            .collect()
    }

    /// Requests that change something: REST calls other than GET/HEAD, and
    /// query- or JSON-protocol actions other than Get*/List*/Describe*/Filter*.
    pub fn mutating(&self) -> Vec<String> {
        self.recording()
            .into_iter()
            .filter(|(method, url, body)| {
                let action = [url.as_str(), body.as_str()]
                    .iter()
                    .find_map(|s| s.split(['?', '&']).find_map(|kv| kv.strip_prefix("Action=")).map(str::to_owned));
                match action {
                    Some(a) => !(a.starts_with("Get") || a.starts_with("List") || a.starts_with("Describe") || a.starts_with("Filter")),
                    None => !matches!(method.as_str(), "GET" | "HEAD"),
                }
            })
            .map(|(m, u, _)| format!("{m} {u}"))
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny blocking HTTP/1.1 client for moto's control API.
fn http(url: &str, method: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    if !head.starts_with("HTTP/1.1 2") && !head.starts_with("HTTP/1.0 2") {
        return Err(std::io::Error::other(head.lines().next().unwrap_or_default().to_owned()));
    }
    Ok(body.to_owned())
}
