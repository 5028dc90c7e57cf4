//! `GET /jobs/{id}`: the job as stored: pending, or done with its result.

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    {{crate}}::init_logging();
    let config = {{crate}}::sdk_config().await;
    let s3 = {{crate}}::s3(&config);
    let bucket = std::env::var("JOBS_BUCKET")?;
    let (s3, bucket) = (&s3, bucket.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayProxyRequest>| async move { Ok::<_, Error>(status(s3, bucket, event.payload).await) })).await
}

async fn status(s3: &aws_sdk_s3::Client, bucket: &str, request: ApiGatewayProxyRequest) -> ApiGatewayProxyResponse {
    let id = request.path_parameters.get("id").map(String::as_str).unwrap_or_default();
    if !{{crate}}::valid_id(id) {
        return {{crate}}::error(400, "invalid_id", "a job id is the UUID `POST /jobs` answered");
    }
    match s3.get_object().bucket(bucket).key({{crate}}::job_key(id)).send().await {
        Ok(object) => match object.body.collect().await.map(|b| serde_json::from_slice::<Value>(&b.into_bytes())) {
            Ok(Ok(job)) => {{crate}}::reply(200, job),
            _ => {{crate}}::error(500, "storage", "the job could not be read"),
        },
        // Without `s3:ListBucket` S3 answers 403 rather than 404 for a missing
        // key; this function may read jobs only, so both mean "no such job".
        Err(e) if e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 403 | 404)) => {{crate}}::error(404, "unknown_job", "no such job (or it expired)"),
        Err(e) => {
            tracing::error!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "cannot read the job");
            {{crate}}::error(500, "storage", "the job could not be read")
        }
    }
}
