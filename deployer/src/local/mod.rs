//! The embedded local cloud (issue #5). Built so far: the Lambda runtime API,
//! the Invoke API and S3 with IAM enforced, the mapping-template
//! evaluator that the local API Gateway runs for non-proxy integrations, and the
//! gateway semantics themselves (routing, proxy events, responses, CORS).

pub mod gateway;
pub mod invoke_api;
pub mod lambda;
pub mod s3;
pub mod vtl;

/// Serve `service` on `listener` (HTTP/1.1, one task per connection) until the
/// runtime stops.
pub(crate) fn spawn_server<S, B>(listener: tokio::net::TcpListener, service: S)
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
    });
}
