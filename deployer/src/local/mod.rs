//! The embedded local cloud: `deploy --target local` runs the engine's plan with
//! an executor that writes the stage as files (`cloud`, `engine`), and a server
//! (`server`) serves them on loopback — API Gateway REST v1 (`gateway`, with the
//! mapping-template evaluator `vtl`), Lambda (`lambda`: the handlers as native
//! processes behind the Runtime API; `invoke_api`), S3 (`s3`: s3s + s3s-fs) and
//! IAM (`iam`: each function's own key, checked against its role's policy).

pub mod cloud;
pub mod engine;
pub mod gateway;
pub mod iam;
pub mod invoke_api;
pub mod lambda;
pub mod s3;
pub mod server;
pub mod vtl;

/// Serve `service` on `listener` (HTTP/1.1, one task per connection) until the
/// runtime stops or the returned task is aborted.
pub fn spawn_server<S, B>(listener: tokio::net::TcpListener, service: S) -> tokio::task::JoinHandle<()>
where
    S: hyper::service::Service<hyper::Request<hyper::body::Incoming>, Response = hyper::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let service = service.clone();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    })
}
