//! SDK configuration for handlers: one rustls (ring) HTTPS client, region and
//! credentials from the Lambda environment, `AWS_ENDPOINT_URL` honoured (the
//! local cloud points the functions at its own S3 and Lambda endpoints).

pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}
