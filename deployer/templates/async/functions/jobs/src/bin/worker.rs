//! Invoked asynchronously by `start` with `{"id", "text"}`: does the work and
//! stores the result where `status` reads it. An error makes Lambda retry the
//! event twice.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    {{crate}}::init_logging();
    let config = {{crate}}::sdk_config().await;
    let s3 = {{crate}}::s3(&config);
    let bucket = std::env::var("JOBS_BUCKET")?;
    let (s3, bucket) = (&s3, bucket.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let id = event.payload["id"].as_str().filter(|id| {{crate}}::valid_id(id)).ok_or("the event has no valid `id`")?.to_owned();
        let text = event.payload["text"].as_str().unwrap_or_default();
        let done = json!({ "id": id, "status": "done", "result": {{crate}}::work(text) }).to_string();
        s3.put_object().bucket(bucket).key({{crate}}::job_key(&id)).body(done.into_bytes().into()).content_type("application/json").send().await?;
        tracing::info!(job = %id, "job done");
        Ok::<_, Error>(())
    }))
    .await
}
