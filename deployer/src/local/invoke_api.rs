//! The local Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`,
//! `RequestResponse` and `Event`), so that aws-sdk-lambda in a handler works
//! unchanged against the local cloud — with IAM enforced: every function gets its
//! own access key, and a caller may invoke only what its role's policy allows
//! (`local::iam`). The key identifies the caller; signatures are not verified here.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};

use super::iam::Iam;
use super::lambda::{LocalFunction, Outcome};

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

/// The access key id of a SigV4 `Authorization` header.
pub fn access_key(authorization: &str) -> Option<&str> {
    let cred = authorization.split("Credential=").nth(1)?;
    cred.split('/').next().filter(|k| !k.is_empty())
}

impl InvokeApi {
    /// Serve on a loopback port; returns its address.
    pub async fn serve(self: Arc<Self>) -> std::io::Result<std::net::SocketAddr> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let api = self.clone();
        super::spawn_server(listener, hyper::service::service_fn(move |req| api.clone().handle(req)));
        Ok(addr)
    }

    pub async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = req.uri().path().to_owned();
        let Some(name) = path.strip_prefix("/2015-03-31/functions/").and_then(|p| p.strip_suffix("/invocations")) else {
            return Ok(json(StatusCode::NOT_FOUND, Some("UnknownOperationException"), r#"{"message":"unknown operation"}"#.into()));
        };
        // A name may be given as an ARN.
        let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy().rsplit(':').next().unwrap_or_default().to_owned();
        let caller = req.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(access_key).unwrap_or("anonymous").to_owned();
        let invocation_type = req.headers().get("x-amz-invocation-type").and_then(|v| v.to_str().ok()).unwrap_or("RequestResponse").to_owned();
        let payload = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
        let arn = format!("arn:aws:lambda:{}:{}:function:{name}", self.region, self.account);
        if let Err(message) = self.iam.check(&caller, "lambda:InvokeFunction", &arn) {
            return Ok(json(StatusCode::FORBIDDEN, Some("AccessDeniedException"), serde_json::json!({ "Type": "User", "Message": message, "message": message }).to_string()));
        }
        let Some(function) = self.functions.get(&name).cloned() else {
            let message = format!("Function not found: {arn}");
            return Ok(json(StatusCode::NOT_FOUND, Some("ResourceNotFoundException"), serde_json::json!({ "Type": "User", "Message": message }).to_string()));
        };
        if invocation_type == "Event" {
            function.invoke_event(payload);
            return Ok(json(StatusCode::ACCEPTED, None, String::new()));
        }
        match function.invoke(payload).await {
            Ok(Outcome::Ok(body)) => Ok(json(StatusCode::OK, None, String::from_utf8_lossy(&body).into_owned())),
            Ok(Outcome::FunctionError(body) | Outcome::Failed(body)) => {
                let mut r = json(StatusCode::OK, None, String::from_utf8_lossy(&body).into_owned());
                r.headers_mut().insert("x-amz-function-error", hyper::header::HeaderValue::from_static("Unhandled"));
                Ok(r)
            }
            Err(e) => Ok(json(StatusCode::INTERNAL_SERVER_ERROR, Some("ServiceException"), serde_json::json!({ "message": e.to_string() }).to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn access_keys_from_sigv4_headers() {
        let h = "AWS4-HMAC-SHA256 Credential=LOCALSEARCHSTART/20261122/eu-central-1/lambda/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(super::access_key(h), Some("LOCALSEARCHSTART"));
        assert_eq!(super::access_key("Bearer x"), None);
    }
}
