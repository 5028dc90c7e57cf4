//! The embedded S3: s3s + s3s-fs serving a directory on loopback, so aws-sdk-s3
//! in a handler works unchanged — with IAM enforced. Each function has its own
//! key (SigV4 signatures are verified by s3s), and may touch only the objects its
//! generated policy grants (`s3:GetObject` / `s3:PutObject` on `bucket/prefix*`).
//! The deployer's own key administers buckets.

use std::path::Path;
use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::path::S3Path;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{s3_error, S3Result};

use super::iam::Iam;

/// The IAM action of an S3 operation (the names differ for a few).
pub fn iam_action(op: &str) -> String {
    let action = match op {
        "HeadObject" => "GetObject",
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => "ListBucket",
        "ListBuckets" => "ListAllMyBuckets",
        "CopyObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => "PutObject",
        "AbortMultipartUpload" => "AbortMultipartUpload",
        "DeleteObjects" => "DeleteObject",
        "GetObjectAttributes" => "GetObjectAttributes",
        other => other,
    };
    format!("s3:{action}")
}

/// The IAM resource of an S3 request.
pub fn iam_resource(path: &S3Path) -> String {
    match path {
        S3Path::Root => "*".into(),
        S3Path::Bucket { bucket } => format!("arn:aws:s3:::{bucket}"),
        S3Path::Object { bucket, key } => format!("arn:aws:s3:::{bucket}/{key}"),
    }
}

struct Enforcer(Arc<Iam>);

#[async_trait::async_trait]
impl S3Access for Enforcer {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(creds) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "anonymous access is not allowed on the local cloud"));
        };
        let action = iam_action(cx.s3_op().name());
        let resource = iam_resource(cx.s3_path());
        self.0.check(&creds.access_key, &action, &resource).map_err(|message| s3_error!(AccessDenied, "{message}"))
    }
}

/// The S3 service over `root` (one directory per bucket), SigV4 verified against
/// every key `iam` knows, each request checked against the caller's policy.
pub fn service(root: &Path, iam: Arc<Iam>) -> std::io::Result<S3Service> {
    std::fs::create_dir_all(root)?;
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let mut auth = SimpleAuth::new();
    for (k, s) in iam.secrets() {
        auth.register(k, s.as_str().into());
    }
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(auth);
    builder.set_access(Enforcer(iam));
    Ok(builder.build())
}

/// Serve `root` on a loopback port (the S3 service alone); returns its address.
pub async fn serve(root: &Path, iam: Arc<Iam>) -> std::io::Result<std::net::SocketAddr> {
    let service = service(root, iam)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    super::spawn_server(listener, service);
    Ok(addr)
}
