use lambda_runtime::{run, service_fn, Diagnostic, Error, LambdaEvent};
use search_worker::{handle, BuiltinProvider, Config, S3Store};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).without_time().init();
    let sdk = stackctl_shared::aws::sdk_config().await;
    let bucket = std::env::var("RESULTS_BUCKET").map_err(|_| "RESULTS_BUCKET is not set")?;
    let s3 = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(std::env::var_os("AWS_ENDPOINT_URL").is_some()).build();
    let store = S3Store { client: aws_sdk_s3::Client::from_conf(s3), bucket };
    let config = Config::from_env();
    let (store, config) = (&store, &config);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64 / 1_000_000;
        handle(event.payload, config, store, &BuiltinProvider, now_ms).await.map_err(Diagnostic::from)
    }))
    .await
}
