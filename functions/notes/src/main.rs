use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use notes::{handle, S3Store};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).without_time().init();
    let config = stackctl_shared::aws::sdk_config().await;
    let bucket = std::env::var("NOTES_BUCKET").map_err(|_| "NOTES_BUCKET is not set")?;
    let prefix = std::env::var("NOTES_PREFIX").unwrap_or_else(|_| "notes/".into());
    let store = S3Store { client: aws_sdk_s3::Client::new(&config), bucket, prefix };
    let store = &store;
    run(service_fn(move |event: LambdaEvent<Value>| async move { Ok::<_, Error>(handle(event.payload, store).await) })).await
}
