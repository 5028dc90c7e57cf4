//! The local Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`,
//! `RequestResponse` and `Event`), so that aws-sdk-lambda in a handler works
//! unchanged against the local cloud — with IAM enforced: every function gets its
//! own access key, and a caller may invoke only what its role's policy allows
//! (`local::iam`). Every request's SigV4 signature is verified (`local::sigv4`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};

use super::iam::Iam;
use super::lambda::{LocalFunction, Outcome};
use super::sigv4::{AuthError, Authorization};

pub struct InvokeApi {
    /// By physical function name.
    pub functions: BTreeMap<String, Arc<LocalFunction>>,
    pub iam: Arc<Iam>,
    pub account: String,
    pub region: String,
}

fn json(status: StatusCode, error_type: Option<&str>, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    if let Some(t) = error_type.and_then(|t| hyper::header::HeaderValue::from_str(t).ok()) {
        r.headers_mut().insert("x-amzn-errortype", t);
    }
    r
}

/// Lambda's payload limits: 6 MB for a synchronous call, 256 KB for `Event`.
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
pub const MAX_EVENT_PAYLOAD: usize = 256 * 1024;

/// How much past the limit an oversized body is read (and dropped) before the
/// 413: a client still writing its body then reads the answer, where an early
/// close would give it a broken pipe and no error code. Beyond it the
/// connection is cut.
const DRAIN_PAST_LIMIT: usize = 16 * 1024 * 1024;

/// The body, or `None` when it is over `limit` bytes. Never holds more than
/// `limit` bytes, whatever the client sends or declares.
async fn read_capped(mut body: hyper::body::Incoming, limit: usize) -> Result<Option<Vec<u8>>, hyper::Error> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else { continue };
        seen += data.len();
        if seen > limit + DRAIN_PAST_LIMIT {
            return Ok(None);
        }
        if seen <= limit {
            kept.extend_from_slice(&data);
        }
    }
    Ok((seen <= limit).then_some(kept))
}

fn too_large(limit: usize) -> Response<Full<Bytes>> {
    let message = format!("Request must be smaller than {limit} bytes for the InvokeFunction operation");
    json(StatusCode::PAYLOAD_TOO_LARGE, Some("RequestEntityTooLargeException"), serde_json::json!({ "Type": "User", "message": message }).to_string())
}

impl InvokeApi {
    /// Serve on a loopback port; returns its address.
    pub async fn serve(self: Arc<Self>) -> std::io::Result<std::net::SocketAddr> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let api = self.clone();
        super::spawn_server(listener, super::Limits::public(), hyper::service::service_fn(move |req| api.clone().handle(req)));
        Ok(addr)
    }

    /// One Invoke call. Nothing of the body is read before the caller's key,
    /// credential scope and clock are checked; the body is then read up to the
    /// invocation type's limit, the signature verified over it, and the caller's
    /// policy checked.
    pub async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = req.uri().path().to_owned();
        let path_and_query = req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| path.clone());
        let Some(name) = path.strip_prefix("/2015-03-31/functions/").and_then(|p| p.strip_suffix("/invocations")) else {
            return Ok(json(StatusCode::NOT_FOUND, Some("UnknownOperationException"), r#"{"message":"unknown operation"}"#.into()));
        };
        if req.method() != hyper::Method::POST {
            return Ok(json(StatusCode::METHOD_NOT_ALLOWED, Some("UnknownOperationException"), r#"{"message":"unknown operation"}"#.into()));
        }
        let auth = match Authorization::parse(req.headers(), &self.region, "lambda", |k| self.iam.secret(k).is_some(), std::time::SystemTime::now()) {
            Ok(a) => a,
            Err(e) => return Ok(refused(&e)),
        };
        // A name may be given as an ARN.
        let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy().rsplit(':').next().unwrap_or_default().to_owned();
        let invocation_type = req.headers().get("x-amz-invocation-type").and_then(|v| v.to_str().ok()).unwrap_or("RequestResponse").to_owned();
        let limit = match invocation_type.as_str() {
            "Event" => MAX_EVENT_PAYLOAD,
            "RequestResponse" | "DryRun" => MAX_SYNC_PAYLOAD,
            other => {
                let message = format!("1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]");
                return Ok(json(StatusCode::BAD_REQUEST, Some("ValidationException"), serde_json::json!({ "message": message }).to_string()));
            }
        };
        let (parts, body) = req.into_parts();
        let payload = match read_capped(body, limit).await {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(too_large(limit)),
            Err(_) => return Ok(json(StatusCode::BAD_REQUEST, Some("InvalidRequestContentException"), r#"{"message":"the request body could not be read"}"#.into())),
        };
        let secret = self.iam.secret(&auth.access_key).unwrap_or_default();
        if let Err(e) = auth.verify(secret, parts.method.as_str(), &path_and_query, &parts.headers, &payload) {
            return Ok(refused(&e));
        }
        let arn = format!("arn:aws:lambda:{}:{}:function:{name}", self.region, self.account);
        if let Err(message) = self.iam.check(&auth.access_key, "lambda:InvokeFunction", &arn) {
            return Ok(json(StatusCode::FORBIDDEN, Some("AccessDeniedException"), serde_json::json!({ "Type": "User", "Message": message, "message": message }).to_string()));
        }
        let Some(function) = self.functions.get(&name).cloned() else {
            let message = format!("Function not found: {arn}");
            return Ok(json(StatusCode::NOT_FOUND, Some("ResourceNotFoundException"), serde_json::json!({ "Type": "User", "Message": message }).to_string()));
        };
        match invocation_type.as_str() {
            "DryRun" => return Ok(json(StatusCode::NO_CONTENT, None, String::new())),
            "Event" => {
                function.invoke_event(payload);
                return Ok(json(StatusCode::ACCEPTED, None, String::new()));
            }
            _ => {}
        }
        match function.invoke(payload).await {
            Ok(Outcome::Ok(body)) => Ok(json(StatusCode::OK, None, String::from_utf8_lossy(&body).into_owned())),
            Ok(Outcome::FunctionError(body) | Outcome::Failed(body)) => {
                let mut r = json(StatusCode::OK, None, String::from_utf8_lossy(&body).into_owned());
                r.headers_mut().insert("x-amz-function-error", hyper::header::HeaderValue::from_static("Unhandled"));
                Ok(r)
            }
            Ok(Outcome::Throttled) => Ok(json(StatusCode::TOO_MANY_REQUESTS, Some("TooManyRequestsException"), super::lambda::throttled_body())),
            Err(e) => Ok(json(StatusCode::INTERNAL_SERVER_ERROR, Some("ServiceException"), serde_json::json!({ "message": e.to_string() }).to_string())),
        }
    }
}

fn refused(e: &AuthError) -> Response<Full<Bytes>> {
    let (status, kind, message) = e.answer();
    json(StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN), Some(kind), serde_json::json!({ "message": message }).to_string())
}
