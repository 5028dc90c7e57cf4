use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use search_start::{handle, LambdaInvoker};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).without_time().init();
    let config = stackctl_shared::aws::sdk_config().await;
    let function_name = std::env::var("WORKER_FUNCTION").map_err(|_| "WORKER_FUNCTION is not set")?;
    let invoker = LambdaInvoker { client: aws_sdk_lambda::Client::new(&config), function_name };
    let key = stackctl_shared::token::key_from_env();
    let invoker = &invoker;
    let key = key.as_deref();
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let now = time::OffsetDateTime::now_utc();
        Ok::<_, Error>(handle(event.payload, invoker, key, now.date(), now.unix_timestamp() as u64).await)
    }))
    .await
}
