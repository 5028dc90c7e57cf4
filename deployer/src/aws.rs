//! The AWS adapter: SDK clients for one account and region, and one error type
//! that names the resource, the call and the next step. No raw `SdkError`
//! reaches the planner or the user.

use std::time::Duration;

use aws_sdk_apigateway::error::ProvideErrorMetadata;

/// Clients of every service a stack uses, sharing one HTTPS client.
#[derive(Clone)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub s3: aws_sdk_s3::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub sts: aws_sdk_sts::Client,
    pub cloudformation: aws_sdk_cloudformation::Client,
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

/// Block every form of public access to a bucket.
pub async fn block_public_access(clients: &Clients, bucket: &str, resource: &str) -> Result<(), AwsError> {
    clients
        .s3
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|e| AwsError::from_sdk(resource, "s3:PutPublicAccessBlock", e))
}

/// What went wrong, sorted by what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    Throttled,
    /// A role just created is not yet usable by Lambda (IAM propagation).
    RoleNotYetAssumable,
    Conflict,
    AccessDenied,
    Other,
}

/// An AWS call that failed: which resource, which call, what AWS said.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{resource}: {call} failed: {code}: {message}{}", self.hint())]
pub struct AwsError {
    pub resource: String,
    pub call: String,
    pub kind: ErrorKind,
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn new(resource: &str, call: &str, message: &str) -> AwsError {
        AwsError { resource: resource.into(), call: call.into(), kind: ErrorKind::Other, code: "Error".into(), message: message.into() }
    }

    pub fn from_sdk<E>(resource: &str, call: &str, err: aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = err.code().unwrap_or_default().to_owned();
        let message = err.message().map(str::to_owned).unwrap_or_else(|| {
            use std::error::Error;
            let mut text = err.to_string();
            let mut source = err.source();
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        });
        let kind = classify(&code, &message, err.raw_response().map(|r| r.status().as_u16()));
        AwsError { resource: resource.into(), call: call.into(), kind, code: if code.is_empty() { "Error".into() } else { code }, message }
    }

    fn hint(&self) -> String {
        let next = match self.kind {
            ErrorKind::AccessDenied => "the credentials lack this permission: grant it, or deploy with a role that has it",
            ErrorKind::Throttled => "AWS is throttling: run the command again; it resumes where it stopped",
            ErrorKind::RoleNotYetAssumable => "the new role is not visible to Lambda yet: run the command again in a minute",
            ErrorKind::Conflict => "another change is in progress on this resource: run the command again shortly",
            _ => "fix the cause, then run the command again: completed steps are recorded and not redone",
        };
        format!("\n  hint: {next}")
    }
}

fn classify(code: &str, message: &str, status: Option<u16>) -> ErrorKind {
    match code {
        "NoSuchEntity" | "ResourceNotFoundException" | "NotFoundException" | "NoSuchBucket" | "NotFound" | "NoSuchKey"
        | "NoSuchLifecycleConfiguration" => ErrorKind::NotFound,
        "EntityAlreadyExists" | "BucketAlreadyOwnedByYou" | "ResourceConflictException" if message.contains("exist") => ErrorKind::AlreadyExists,
        "EntityAlreadyExists" | "BucketAlreadyOwnedByYou" => ErrorKind::AlreadyExists,
        "Throttling" | "ThrottlingException" | "TooManyRequestsException" | "SlowDown" | "RequestLimitExceeded" => ErrorKind::Throttled,
        "InvalidParameterValueException" if message.contains("cannot be assumed") || message.contains("role defined for the function") => {
            ErrorKind::RoleNotYetAssumable
        }
        "ConflictException" if message.to_lowercase().contains("exist") => ErrorKind::AlreadyExists,
        "ConflictException" | "ResourceConflictException" | "OperationAbortedException" | "ConcurrentModification" => ErrorKind::Conflict,
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => ErrorKind::AccessDenied,
        _ => match status {
            Some(404) => ErrorKind::NotFound,
            Some(429) => ErrorKind::Throttled,
            Some(500..=599) => ErrorKind::Throttled,
            _ => ErrorKind::Other,
        },
    }
}

/// Run `call` again while AWS throttles (or answers 5xx), and while a new role is
/// not yet assumable, with exponential backoff and jitter, for a bounded time.
pub async fn retrying<T, F, Fut>(mut call: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let budget = match e.kind {
                    ErrorKind::Throttled | ErrorKind::Conflict => Duration::from_secs(60),
                    ErrorKind::RoleNotYetAssumable => Duration::from_secs(90),
                    _ => return Err(e),
                };
                if started.elapsed() > budget {
                    return Err(e);
                }
                let jitter = Duration::from_millis(u64::from(std::process::id() ^ started.elapsed().subsec_nanos()) % 100);
                tokio::time::sleep(delay + jitter).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        assert_eq!(classify("NoSuchEntity", "", None), ErrorKind::NotFound);
        assert_eq!(classify("ThrottlingException", "Rate exceeded", None), ErrorKind::Throttled);
        assert_eq!(classify("", "", Some(503)), ErrorKind::Throttled);
        assert_eq!(
            classify("InvalidParameterValueException", "The role defined for the function cannot be assumed by Lambda.", None),
            ErrorKind::RoleNotYetAssumable
        );
        assert_eq!(classify("InvalidParameterValueException", "bad memory", None), ErrorKind::Other);
        assert_eq!(classify("ConflictException", "Another resource with the same parent already has this name", None), ErrorKind::Conflict);
    }

    #[tokio::test]
    async fn retries_throttling_but_not_other_errors() {
        let mut n = 0;
        let r = retrying(|| {
            n += 1;
            let attempt = n;
            async move {
                if attempt < 3 {
                    Err(AwsError { kind: ErrorKind::Throttled, ..AwsError::new("x", "y", "z") })
                } else {
                    Ok(attempt)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        let mut calls = 0;
        let r: Result<(), _> = retrying(|| {
            calls += 1;
            async { Err(AwsError::new("role/x", "iam:CreateRole", "bad")) }
        })
        .await;
        assert_eq!(calls, 1);
        assert!(r.unwrap_err().to_string().starts_with("role/x: iam:CreateRole failed: Error: bad"));
    }
}
