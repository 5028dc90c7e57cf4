//! The embedded local cloud: `deploy --target local` runs the engine's pipeline
//! on `target::LocalTarget`, whose steps write the stage as files (`cloud`,
//! `resources`), and a server
//! (`server`) serves them on loopback — API Gateway REST v1 (`gateway`, with the
//! mapping-template evaluator `vtl`), Lambda (`lambda`: the handlers as native
//! processes behind the Runtime API; `invoke_api`), S3 (`s3`: s3s + s3s-fs) and
//! IAM (`iam`: each function's own key, checked against its role's policy).

pub mod cloud;
pub mod resources;
pub mod target;
pub mod gateway;
pub mod iam;
pub mod invoke_api;
pub mod lambda;
pub mod logs;
pub mod s3;
pub mod server;
pub mod sigv4;
pub use crate::vtl;

/// How a listener treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// At most this many connections at once; the next ones wait in the kernel's
    /// backlog until one closes (never more open files than the process may have).
    pub max_connections: usize,
    /// A request whose headers have not all arrived after this long is dropped,
    /// and so is a keep-alive connection idle for this long.
    pub header_timeout: std::time::Duration,
}

impl Limits {
    /// For listeners any local process (or a web page) can reach: the API and the
    /// services endpoint. The cap leaves room under the open-file limit for the
    /// stage's files, the function processes' pipes and the other listeners.
    pub fn public() -> Limits {
        Limits { max_connections: (open_file_limit().saturating_sub(128) / 3).clamp(16, 4096), header_timeout: std::time::Duration::from_secs(10) }
    }
}

/// The process's soft limit on open files, raised to the hard limit first (a
/// server wants every descriptor it is allowed).
pub fn open_file_limit() -> usize {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write and read a plain struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX).min(1 << 20)
}

/// Serve `service` on `listener` (HTTP/1.1, one task per connection) until the
/// runtime stops or the returned task is aborted. An `accept()` error (out of
/// file descriptors, a connection reset before it was accepted) never ends the
/// loop: it backs off and accepts again once descriptors free up.
pub fn spawn_server<S, B>(listener: tokio::net::TcpListener, limits: Limits, service: S) -> tokio::task::JoinHandle<()>
where
    S: hyper::service::Service<hyper::Request<hyper::body::Incoming>, Response = hyper::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    spawn_server_admitting(listener, limits, |_| true, service)
}

/// [`spawn_server`], serving only the connections `admit` accepts (the others
/// are closed at once, before a byte is read).
pub fn spawn_server_admitting<S, B>(listener: tokio::net::TcpListener, limits: Limits, admit: impl Fn(&tokio::net::TcpStream) -> bool + Send + 'static, service: S) -> tokio::task::JoinHandle<()>
where
    S: hyper::service::Service<hyper::Request<hyper::body::Incoming>, Response = hyper::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        let mut backoff = std::time::Duration::from_millis(5);
        let mut last_report: Option<std::time::Instant> = None;
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else { return };
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    backoff = std::time::Duration::from_millis(5);
                    stream
                }
                Err(e) => {
                    drop(slot);
                    if last_report.is_none_or(|t| t.elapsed() > std::time::Duration::from_secs(10)) {
                        eprintln!("accept on {:?} failed ({e}); retrying", listener.local_addr().ok());
                        last_report = Some(std::time::Instant::now());
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_millis(500));
                    continue;
                }
            };
            if !admit(&stream) {
                continue;
            }
            let service = service.clone();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .serve_connection(io, service)
                    .await;
                drop(slot);
            });
        }
    })
}

/// Whether the TCP connection `stream` (accepted on loopback) was opened by the
/// process `pid`: its socket, found by the peer's address in `/proc/net/tcp`,
/// is one of that process's open files. Loopback TCP has no peer credentials;
/// this is how the runtime API knows which process is calling.
#[cfg(target_os = "linux")]
pub fn connected_from(stream: &tokio::net::TcpStream, pid: u32) -> bool {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else { return false };
    let (std::net::SocketAddr::V4(peer), std::net::SocketAddr::V4(local)) = (peer, local) else { return false };
    // /proc/net/tcp writes an address as the u32 in host byte order, then the port.
    let hex = |a: &std::net::SocketAddrV4| format!("{:08X}:{:04X}", u32::from_ne_bytes(a.ip().octets()), a.port());
    let (peer, local) = (hex(&peer), hex(&local));
    // Read line by line and stop at the connection: the kernel writes this
    // file as it is read, one socket at a time, so the sockets after it are
    // never formatted (with many sockets open, the whole table took
    // milliseconds, paid by every new runtime API connection).
    let Ok(file) = std::fs::File::open("/proc/net/tcp") else { return false };
    let mut reader = std::io::BufReader::with_capacity(16 * 1024, file);
    let mut line = String::new();
    let mut inode = None;
    let mut first = true;
    while std::io::BufRead::read_line(&mut reader, &mut line).is_ok_and(|n| n > 0) {
        if !std::mem::take(&mut first) {
            let mut f = line.split_ascii_whitespace();
            if f.nth(1) == Some(peer.as_str()) && f.next() == Some(local.as_str()) {
                inode = f.nth(6).map(str::to_owned);
                break;
            }
        }
        line.clear();
    }
    let Some(inode) = inode else { return false };
    let wanted = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == wanted.as_str()))
}
