//! POST /paraphrase (Lambda proxy integration): `{"sourceText": "..."}` →
//! `{"newText": "..."}`. Forwards to the paraphrasing service configured by
//! `PARAPHRASE_API_URL` (+ secret `PARAPHRASE_API_KEY`), or paraphrases with the
//! built-in rewriter when none is configured.

pub mod rewriter;
pub mod upstream;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use serde::Deserialize;
use serde_json::{json, Value};
use stackctl_shared::http::{error_response, json_response, post_body};

pub use upstream::{HttpUpstream, Upstream, UpstreamError};

/// Largest accepted request body, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Largest accepted `sourceText`, in characters.
pub const MAX_SOURCE_CHARS: usize = 5_000;

#[derive(Deserialize)]
struct Request {
    #[serde(rename = "sourceText")]
    source_text: Option<Value>,
}

/// Answer one API Gateway proxy event (given as raw JSON, so that even an event
/// that is not a proxy request gets a 400 rather than a runtime error).
pub fn handle(event: Value, upstream: Option<&dyn Upstream>) -> ApiGatewayProxyResponse {
    let body = match post_body(event, MAX_BODY_BYTES) {
        Ok(b) => b,
        Err(response) => return *response,
    };
    let parsed: Request = match serde_json::from_str(&body) {
        Ok(r) => r,
        Err(e) => return error_response(400, "invalid_json", format!("the body is not a JSON object: {e}")),
    };
    let text = match parsed.source_text {
        None | Some(Value::Null) => return error_response(400, "missing_source_text", "`sourceText` is required"),
        Some(Value::String(s)) => s,
        Some(_) => return error_response(400, "invalid_source_text", "`sourceText` must be a string"),
    };
    let text = text.trim();
    if text.is_empty() {
        return error_response(400, "empty_source_text", "`sourceText` must not be empty");
    }
    let chars = text.chars().count();
    if chars > MAX_SOURCE_CHARS {
        return error_response(413, "source_text_too_long", format!("`sourceText` has {chars} characters; the limit is {MAX_SOURCE_CHARS}"));
    }
    match upstream {
        None => json_response(200, &json!({ "newText": rewriter::paraphrase(text) })),
        Some(service) => match service.paraphrase(text) {
            Ok(new_text) => json_response(200, &json!({ "newText": new_text })),
            Err(e) => {
                tracing::warn!(error = %e, "paraphrasing service failed");
                error_response(502, "upstream_failed", format!("the paraphrasing service failed: {e}"))
            }
        },
    }
}
