//! SDK clients for one account and region, sharing one HTTPS client.

use super::error::AwsError;

/// Clients of every service a stack uses, sharing one HTTPS client.
#[derive(Clone)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub s3: aws_sdk_s3::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub sts: aws_sdk_sts::Client,
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub region: String,
    /// The emulator endpoint, when not real AWS.
    pub endpoint: Option<String>,
    /// The credentials' account, asked once per set of clients.
    account: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

impl Clients {
    /// From the standard chain (env, profiles, SSO); `AWS_ENDPOINT_URL` points every
    /// service at an emulator, in which case S3 uses path-style addressing.
    pub async fn from_env(region: Option<&str>) -> Clients {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r.to_owned()));
        }
        let config = loader.load().await;
        Clients::from_config(&config)
    }

    /// For an emulator on `endpoint` (moto, LocalStack) with fixed test credentials.
    pub async fn for_endpoint(endpoint: &str, region: &str) -> Clients {
        Clients::with_credentials(endpoint, region, "testing", "testing").await
    }

    /// For an endpoint with the given static credentials (the local cloud's admin key).
    pub async fn with_credentials(endpoint: &str, region: &str, key: &str, secret: &str) -> Clients {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .region(aws_config::Region::new(region.to_owned()))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_sts::config::Credentials::new(key, secret, None, None, "stackctl"))
            .load()
            .await;
        Clients::from_config(&config)
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Clients {
        let emulated = config.endpoint_url().is_some();
        let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(emulated).build();
        Clients {
            iam: aws_sdk_iam::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            lambda: aws_sdk_lambda::Client::new(config),
            apigateway: aws_sdk_apigateway::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            cloudformation: aws_sdk_cloudformation::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            events: aws_sdk_eventbridge::Client::new(config),
            region: config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into()),
            endpoint: config.endpoint_url().map(str::to_owned),
            account: Default::default(),
        }
    }

    /// The account the credentials belong to.
    /// The account the credentials belong to (one STS call per set of clients:
    /// a deploy of several stacks asks once).
    pub async fn account(&self) -> Result<String, AwsError> {
        self.account
            .get_or_try_init(|| async {
                let out = self.sts.get_caller_identity().send().await.map_err(|e| AwsError::from_sdk("credentials", "sts:GetCallerIdentity", e))?;
                out.account.ok_or_else(|| AwsError::new("credentials", "sts:GetCallerIdentity", "no account in the answer"))
            })
            .await
            .cloned()
    }
}

