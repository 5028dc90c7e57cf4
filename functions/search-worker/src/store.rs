//! Where results are cached: S3 through aws-sdk-s3, behind a trait so the
//! handler logic is tested without network.

use std::future::Future;

pub trait Store: Send + Sync {
    /// The object's bytes; `None` when there is no such object.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, String>> + Send;
    fn put(&self, key: &str, bytes: Vec<u8>) -> impl Future<Output = Result<(), String>> + Send;
}

pub struct S3Store {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
}

impl Store for S3Store {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => {
                let data = out.body.collect().await.map_err(|e| format!("GetObject s3://{}/{key}: reading body: {e}", self.bucket))?;
                Ok(Some(data.into_bytes().to_vec()))
            }
            Err(e) => {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    return Ok(None);
                }
                // Without s3:ListBucket, S3 answers a missing key with 403 instead of
                // 404. Our role grants object access only, so this is the normal
                // "not written yet" answer: treated as missing, deliberately.
                if e.code() == Some("AccessDenied") {
                    tracing::debug!(key, "GetObject answered AccessDenied: treated as a missing object");
                    return Ok(None);
                }
                Err(format!(
                    "GetObject s3://{}/{key}: {}: {}",
                    self.bucket,
                    e.code().unwrap_or("error"),
                    e.message().map(str::to_owned).unwrap_or_else(|| e.to_string())
                ))
            }
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), String> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(bytes.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "PutObject s3://{}/{key}: {}: {}",
                    self.bucket,
                    e.code().unwrap_or("error"),
                    e.message().map(str::to_owned).unwrap_or_else(|| e.to_string())
                )
            })
    }
}
