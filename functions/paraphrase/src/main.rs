use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).without_time().init();
    let upstream: Option<Arc<paraphrase::HttpUpstream>> = paraphrase::HttpUpstream::from_env().map(Arc::new);
    tracing::info!(upstream = upstream.is_some(), "paraphrase ready");
    run(service_fn(move |event: LambdaEvent<Value>| {
        let upstream = upstream.clone();
        async move {
            // The upstream client blocks: keep it off the runtime's threads.
            let response = tokio::task::spawn_blocking(move || {
                paraphrase::handle(event.payload, upstream.as_deref().map(|u| u as &dyn paraphrase::Upstream))
            })
            .await?;
            Ok::<_, Error>(response)
        }
    }))
    .await
}
