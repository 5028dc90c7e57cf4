//! `POST /jobs`: record the job as pending, start `worker` without waiting,
//! answer 202 with the job's id.

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Error> {
    {{crate}}::init_logging();
    let config = {{crate}}::sdk_config().await;
    let (s3, lambda) = ({{crate}}::s3(&config), aws_sdk_lambda::Client::new(&config));
    let bucket = std::env::var("JOBS_BUCKET")?;
    let worker = std::env::var("WORKER_FUNCTION")?;
    let (s3, lambda, bucket, worker) = (&s3, &lambda, bucket.as_str(), worker.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayProxyRequest>| async move {
        Ok::<_, Error>(start(s3, lambda, bucket, worker, event.payload).await)
    }))
    .await
}

async fn start(s3: &aws_sdk_s3::Client, lambda: &aws_sdk_lambda::Client, bucket: &str, worker: &str, request: ApiGatewayProxyRequest) -> ApiGatewayProxyResponse {
    let text = match {{crate}}::parse_job(request.body.as_deref()) {
        Ok(t) => t,
        Err(response) => return response,
    };
    let id = uuid::Uuid::new_v4().to_string();
    let pending = json!({ "id": id, "status": "pending" }).to_string();
    if let Err(e) = s3.put_object().bucket(bucket).key({{crate}}::job_key(&id)).body(pending.into_bytes().into()).content_type("application/json").send().await {
        tracing::error!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "cannot record the job");
        return {{crate}}::error(500, "storage", "the job could not be recorded");
    }
    let payload = json!({ "id": id, "text": text }).to_string();
    let invoked = lambda
        .invoke()
        .function_name(worker)
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await;
    if let Err(e) = invoked {
        tracing::error!(error = %aws_sdk_lambda::error::DisplayErrorContext(&e), "cannot start the worker");
        return {{crate}}::error(500, "worker", "the job could not be started");
    }
    tracing::info!(job = %id, "job started");
    {{crate}}::reply(202, json!({ "id": id, "status": "pending" }))
}
