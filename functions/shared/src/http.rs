//! API Gateway proxy responses: JSON bodies, CORS headers, and one error shape
//! for every 4xx/5xx: `{"error": {"code": "...", "message": "..."}}`.

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use base64::Engine;
use serde::Serialize;
use serde_json::json;

/// Access-Control-Allow-Origin for proxy responses: `CORS_ALLOW_ORIGIN` or `*`
/// (what the console's "Enable CORS" sets).
pub fn cors_origin() -> String {
    std::env::var("CORS_ALLOW_ORIGIN").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "*".into())
}

/// A JSON response with CORS headers.
pub fn json_response(status: u16, body: &impl Serialize) -> ApiGatewayProxyResponse {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(origin) = HeaderValue::from_str(&cors_origin()) {
        headers.insert("access-control-allow-origin", origin);
    }
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(Body::Text(serde_json::to_string(body).unwrap_or_else(|_| "{}".into())));
    response
}

/// The error shape every handler answers with.
pub fn error_response(status: u16, code: &str, message: impl Into<String>) -> ApiGatewayProxyResponse {
    json_response(status, &json!({ "error": { "code": code, "message": message.into() } }))
}

/// An API Gateway proxy request from a raw event. Console test events (like the
/// tutorial's TestRequestEvent) often omit `requestContext`; API Gateway always
/// sends it, and nothing here needs it, so its absence is tolerated.
pub fn proxy_request(mut event: serde_json::Value) -> Result<ApiGatewayProxyRequest, Box<ApiGatewayProxyResponse>> {
    if let Some(obj) = event.as_object_mut() {
        let method = obj.get("httpMethod").cloned().unwrap_or_default();
        obj.entry("requestContext").or_insert_with(|| json!({ "httpMethod": method }));
    }
    serde_json::from_value(event)
        .map_err(|e| Box::new(error_response(400, "invalid_event", format!("not an API Gateway proxy event: {e}"))))
}

/// The text body of a `POST` proxy event: the 400/405/413 answer otherwise.
pub fn post_body(event: serde_json::Value, limit: usize) -> Result<String, Box<ApiGatewayProxyResponse>> {
    let request = proxy_request(event)?;
    if request.http_method != aws_lambda_events::http::Method::POST {
        return Err(Box::new(method_not_allowed("POST")));
    }
    body_text(&request, limit).map_err(|e| Box::new(e.response()))
}

/// Why a request body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    Missing,
    TooLarge { limit: usize },
    NotBase64,
    NotUtf8,
}

impl BodyError {
    pub fn response(&self) -> ApiGatewayProxyResponse {
        match self {
            BodyError::Missing => error_response(400, "missing_body", "the request has no body"),
            BodyError::TooLarge { limit } => {
                error_response(413, "body_too_large", format!("the request body is larger than {limit} bytes"))
            }
            BodyError::NotBase64 => error_response(400, "invalid_body", "the body is marked base64 but is not valid base64"),
            BodyError::NotUtf8 => error_response(400, "invalid_body", "the body is not UTF-8 text"),
        }
    }
}

/// The request body as text, decoded from base64 when API Gateway encoded it,
/// refused past `limit` bytes.
pub fn body_text(request: &ApiGatewayProxyRequest, limit: usize) -> Result<String, BodyError> {
    String::from_utf8(body_bytes(request, limit)?).map_err(|_| BodyError::NotUtf8)
}

/// The request body's bytes (any content type), decoded from base64 when API
/// Gateway encoded it, refused past `limit` bytes or when empty.
pub fn body_bytes(request: &ApiGatewayProxyRequest, limit: usize) -> Result<Vec<u8>, BodyError> {
    let raw = request.body.as_deref().ok_or(BodyError::Missing)?;
    let bytes = if request.is_base64_encoded {
        // Base64 is 4/3 of the payload: refuse early without decoding a huge body.
        if raw.len() / 4 * 3 > limit {
            return Err(BodyError::TooLarge { limit });
        }
        base64::engine::general_purpose::STANDARD.decode(raw.trim()).map_err(|_| BodyError::NotBase64)?
    } else {
        raw.as_bytes().to_vec()
    };
    if bytes.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Missing);
    }
    Ok(bytes)
}

/// 405 with an `Allow` header.
pub fn method_not_allowed(allowed: &str) -> ApiGatewayProxyResponse {
    let mut r = error_response(405, "method_not_allowed", format!("use {allowed}"));
    if let Ok(v) = HeaderValue::from_str(allowed) {
        r.headers.insert("allow", v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Option<&str>, b64: bool) -> ApiGatewayProxyRequest {
        let mut r = ApiGatewayProxyRequest::default();
        r.body = body.map(str::to_owned);
        r.is_base64_encoded = b64;
        r
    }

    #[test]
    fn bodies() {
        assert_eq!(body_text(&request(Some("{}"), false), 10).unwrap(), "{}");
        assert_eq!(body_text(&request(Some("e30="), true), 10).unwrap(), "{}");
        assert_eq!(body_text(&request(None, false), 10), Err(BodyError::Missing));
        assert_eq!(body_text(&request(Some(" \r\n"), false), 10), Err(BodyError::Missing));
        assert_eq!(body_text(&request(Some("12345678901"), false), 10), Err(BodyError::TooLarge { limit: 10 }));
        assert_eq!(body_text(&request(Some("***"), true), 10), Err(BodyError::NotBase64));
        assert_eq!(body_text(&request(Some("/w=="), true), 10), Err(BodyError::NotUtf8));
    }

    #[test]
    fn errors_are_json_with_cors() {
        let r = error_response(400, "bad", "why");
        assert_eq!(r.status_code, 400);
        assert_eq!(r.headers["access-control-allow-origin"], "*");
        let Some(Body::Text(text)) = r.body else { panic!() };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "bad");
        assert_eq!(v["error"]["message"], "why");
    }
}
