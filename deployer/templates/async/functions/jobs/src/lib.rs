//! An asynchronous job API: `POST /jobs` (function `start`) records the job as
//! pending and hands it to `worker` without waiting (Lambda's `Event`
//! invocation); `worker` computes the result and stores it; `GET /jobs/{id}`
//! (function `status`) reads it. Jobs are objects `jobs/{id}.json` in the
//! stack's bucket, which expire after a day (see `stacks/{{name}}.yaml`).

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::HeaderValue;
use serde_json::{json, Value};

/// The SDK configuration in a function: region and credentials from Lambda's
/// environment; `AWS_ENDPOINT_URL` (set by the local cloud) honoured.
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).load().await
}

/// An S3 client; path-style addressing on an emulator endpoint.
pub fn s3(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(config).force_path_style(std::env::var_os("AWS_ENDPOINT_URL").is_some()).build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_span_list(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
}

/// Where a job lives in the bucket.
pub fn job_key(id: &str) -> String {
    format!("jobs/{id}.json")
}

/// A job's input, from `POST /jobs`'s body: `{"text": "..."}`, 1 to 10,000 characters.
pub fn parse_job(body: Option<&str>) -> Result<String, ApiGatewayProxyResponse> {
    let value: Value = serde_json::from_str(body.unwrap_or_default()).map_err(|e| error(400, "invalid_json", &format!("the body is not JSON: {e}")))?;
    match value.get("text").and_then(Value::as_str) {
        Some(t) if !t.is_empty() && t.chars().count() <= 10_000 => Ok(t.to_owned()),
        Some(_) => Err(error(400, "invalid_text", "`text` must have 1 to 10000 characters")),
        None => Err(error(400, "missing_text", "send {\"text\": \"...\"}")),
    }
}

/// A job id from the path: what `start` makes (a UUID), nothing else.
pub fn valid_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}

/// The work itself (replace with yours): word and character counts.
pub fn work(text: &str) -> Value {
    json!({ "words": text.split_whitespace().count(), "characters": text.chars().count(), "upper": text.to_uppercase() })
}

pub fn reply(status: i64, body: Value) -> ApiGatewayProxyResponse {
    // The response types are `#[non_exhaustive]`: start from `default()`.
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.headers.insert("content-type", HeaderValue::from_static("application/json"));
    // Proxy integration: the function sets the CORS header of its answers.
    r.headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    r.body = Some(Body::Text(body.to_string()));
    r
}

pub fn error(status: i64, code: &str, message: &str) -> ApiGatewayProxyResponse {
    reply(status, json!({ "error": { "code": code, "message": message } }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_needs_a_text() {
        assert_eq!(parse_job(Some(r#"{"text":"hello world"}"#)).unwrap(), "hello world");
        for bad in [None, Some("{"), Some("{}"), Some(r#"{"text":""}"#), Some(r#"{"text":5}"#)] {
            assert_eq!(parse_job(bad).unwrap_err().status_code, 400, "{bad:?}");
        }
    }

    #[test]
    fn ids_are_uuids_only() {
        assert!(valid_id(&uuid::Uuid::new_v4().to_string()));
        assert!(!valid_id("../secrets"));
    }

    #[test]
    fn work_counts() {
        assert_eq!(work("a bc")["words"], 2);
        assert_eq!(work("a bc")["upper"], "A BC");
    }
}
