//! POST /search (Lambda proxy integration): validate the search, issue a signed
//! token, invoke search-worker asynchronously with it, answer 202 `{"token"}` at
//! once — the slow search runs in the worker and lands in S3 under the token.

use std::future::Future;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use serde_json::{json, Value};
use stackctl_shared::http::{error_response, json_response, post_body};
use stackctl_shared::search::{self, StartSearch};
use stackctl_shared::token;
use time::Date;

/// Largest accepted request body, in bytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// Starts the worker without waiting for it (Lambda `InvocationType::Event`).
pub trait Invoker: Send + Sync {
    fn invoke_async(&self, payload: Vec<u8>) -> impl Future<Output = Result<(), String>> + Send;
}

/// The worker through aws-sdk-lambda.
pub struct LambdaInvoker {
    pub client: aws_sdk_lambda::Client,
    pub function_name: String,
}

impl Invoker for LambdaInvoker {
    async fn invoke_async(&self, payload: Vec<u8>) -> Result<(), String> {
        use aws_sdk_lambda::error::ProvideErrorMetadata;
        let out = self
            .client
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await
            .map_err(|e| {
                let code = e.code().unwrap_or("unknown").to_owned();
                let message = e.message().map(str::to_owned).unwrap_or_else(|| e.to_string());
                format!("Invoke {}: {code}: {message}", self.function_name)
            })?;
        match out.status_code() {
            202 => Ok(()),
            other => Err(format!("Invoke {} answered {other}, expected 202", self.function_name)),
        }
    }
}

/// Handle one proxy event. `key` signs the token; `today`/`now` are injected so
/// tests are deterministic.
pub async fn handle(event: Value, invoker: &impl Invoker, key: Option<&[u8]>, today: Date, now: u64) -> ApiGatewayProxyResponse {
    let body = match post_body(event, MAX_BODY_BYTES) {
        Ok(b) => b,
        Err(response) => return *response,
    };
    let value: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => return error_response(400, "invalid_json", format!("the body is not JSON: {e}")),
    };
    let search = match search::validate(&value, today) {
        Ok(s) => s,
        Err(fields) => {
            let message = fields.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join("; ");
            return json_response(400, &json!({ "error": { "code": "invalid_request", "message": message, "fields": fields } }));
        }
    };
    let Some(key) = key else {
        tracing::error!("SEARCH_TOKEN_KEY is not set: cannot issue tokens");
        return error_response(500, "misconfigured", "the search service is not configured (no token key)");
    };
    let token = token::issue(key, now);
    let payload = serde_json::to_vec(&StartSearch { token: token.text.clone(), request: search.clone() }).unwrap_or_default();
    if let Err(e) = invoker.invoke_async(payload).await {
        tracing::error!(error = %e, "could not start the search worker");
        return error_response(502, "search_not_started", "the search could not be started; try again");
    }
    tracing::info!(token = %token.text, location = %search.location, "search started");
    json_response(202, &json!({ "token": token.text, "status": "pending", "request": search }))
}
