//! One error type for every AWS call: it names the resource, the call and the
//! next step. No raw `SdkError` reaches the planner or the user. With it, the
//! retry rules every call follows.

use std::time::Duration;

use aws_sdk_apigateway::error::ProvideErrorMetadata;

use crate::engine::error::EngineError;

impl From<AwsError> for EngineError {
    fn from(e: AwsError) -> EngineError {
        EngineError::Target(Box::new(e))
    }
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
        "EntityAlreadyExists" | "BucketAlreadyOwnedByYou" | "ResourceAlreadyExistsException" => ErrorKind::AlreadyExists,
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

/// Run a Lambda waiter; a poll that failed (throttled, a 5xx) is not the
/// function's state: the wait starts again, up to 5 times, with backoff.
pub async fn waiting<F, Fut, O, E>(id: &str, what: &str, mut wait: F) -> Result<(), AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), aws_smithy_runtime_api::client::waiters::error::WaiterError<O, E>>>,
    O: std::fmt::Debug,
    E: std::error::Error + Send + Sync + 'static,
{
    use aws_smithy_runtime_api::client::waiters::error::WaiterError;
    let mut attempt = 0;
    loop {
        match wait().await {
            Ok(()) => return Ok(()),
            Err(WaiterError::OperationFailed(e)) if attempt < 5 => {
                attempt += 1;
                drop(e);
                tokio::time::sleep(Duration::from_millis(200 * (1 << attempt))).await;
            }
            Err(e) => return Err(AwsError::new(id, &format!("waiting for {what}"), &aws_sdk_lambda::error::DisplayErrorContext(&e).to_string())),
        }
    }
}

/// Run a deleting call with retries; an object already gone is fine.
pub async fn gone<T, F, Fut>(call: F) -> Result<(), AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    match retrying(call).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
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
