//! The embedded S3: s3s + s3s-fs serving a directory on loopback, so aws-sdk-s3
//! in a handler works unchanged — with IAM enforced. Each function has its own
//! key (SigV4 signatures are verified by s3s), and may touch only the objects its
//! generated policy grants (object actions on `bucket/prefix*`, `s3:ListBucket`
//! under the conditions it carries, such as `s3:prefix`),
//! and only through keys stored literally (`check_key`).
//! The deployer's own key administers buckets.

use std::path::Path;
use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::path::S3Path;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::dto::{CopyObjectInput, CopySource, DeleteObjectsInput, ListObjectsInput, ListObjectsV2Input, UploadPartCopyInput};
use s3s::{s3_error, S3Request, S3Result};

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

/// How the local cloud stores a key: literally, as the file `{bucket}/{key}` (and
/// s3s-fs's bookkeeping file named after base64 of bucket and key). A key that
/// a file path cannot carry as-is is refused with S3's 400 answer, before any
/// policy check or file access, so the key the policy is checked on is exactly
/// the file written: no `.` or `..` segment, no empty segment (`//`, a leading
/// `/`; a trailing `/` names a folder marker), no NUL, no segment longer than a
/// file name may be (255 bytes), and no key too long for s3s-fs's bookkeeping
/// file name. AWS would store such keys; the local cloud says why it cannot.
pub fn check_key(bucket: &str, key: &str) -> S3Result<()> {
    if key.contains('\0') {
        return Err(s3_error!(InvalidArgument, "Object key contains a NUL character, which the local cloud cannot store"));
    }
    let segments: Vec<&str> = key.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() && i + 1 < segments.len() {
            return Err(s3_error!(InvalidArgument, "Object key {key:?} has an empty path segment ('//' or a leading '/'), which the local cloud cannot store"));
        }
        if *seg == "." || *seg == ".." {
            return Err(s3_error!(InvalidArgument, "Object key {key:?} has a '{seg}' path segment, which the local cloud cannot store as a literal name"));
        }
        if seg.len() > 255 {
            return Err(s3_error!(KeyTooLongError, "Object key segment of {} bytes: the local cloud stores keys as files, at most 255 bytes between two '/'", seg.len()));
        }
    }
    let b64 = |n: usize| n.div_ceil(3) * 4;
    let bookkeeping = ".bucket-".len() + b64(bucket.len()) + ".object-".len() + b64(key.len()) + ".upload-".len() + 36 + ".metadata.json".len();
    if bookkeeping > 255 || key.len() > 1024 {
        let max = (255 - (bookkeeping - b64(key.len()))) / 4 * 3;
        return Err(s3_error!(KeyTooLongError, "Your key is too long: the local cloud stores keys of up to {max} bytes in bucket {bucket} (AWS: 1024)"));
    }
    Ok(())
}

/// What the file system holds at a key's path.
enum AtKey {
    Nothing,
    Object,
    Folder,
    /// A prefix of the key is an object: `a/b` when `a` exists.
    UnderObject,
}

fn at_key(root: &Path, bucket: &str, key: &str) -> AtKey {
    let mut path = root.join(bucket);
    let segments: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    for (i, seg) in segments.iter().enumerate() {
        path.push(seg);
        match std::fs::symlink_metadata(&path) {
            Err(_) => return AtKey::Nothing,
            Ok(m) if i + 1 < segments.len() && !m.is_dir() => return AtKey::UnderObject,
            Ok(m) if i + 1 == segments.len() => return if m.is_dir() { AtKey::Folder } else { AtKey::Object },
            Ok(_) => {}
        }
    }
    AtKey::Folder
}

struct Enforcer {
    iam: Arc<Iam>,
    root: std::path::PathBuf,
}

impl Enforcer {
    fn allow(&self, access_key: &str, action: &str, resource: &str) -> S3Result<()> {
        self.allow_in(access_key, action, resource, &[])
    }

    /// [`Enforcer::allow`] with the request's condition keys.
    fn allow_in(&self, access_key: &str, action: &str, resource: &str, context: &[(&str, &str)]) -> S3Result<()> {
        self.iam.check_in(access_key, action, resource, context).map_err(|message| s3_error!(AccessDenied, "{message}"))
    }

    /// A listing is `s3:ListBucket` on the bucket, with the condition keys
    /// the request carries (an absent prefix is no `s3:prefix` at all).
    fn list(&self, creds: Option<&s3s::auth::Credentials>, bucket: &str, prefix: Option<&str>, delimiter: Option<&str>, max_keys: Option<i32>) -> S3Result<()> {
        let creds = creds.ok_or_else(|| s3_error!(AccessDenied))?;
        let max_keys = max_keys.map(|m| m.to_string());
        let mut context: Vec<(&str, &str)> = Vec::new();
        if let Some(p) = prefix.filter(|p| !p.is_empty()) {
            context.push(("s3:prefix", p));
        }
        if let Some(d) = delimiter.filter(|d| !d.is_empty()) {
            context.push(("s3:delimiter", d));
        }
        if let Some(m) = &max_keys {
            context.push(("s3:max-keys", m));
        }
        self.allow_in(&creds.access_key, "s3:ListBucket", &format!("arn:aws:s3:::{bucket}"), &context)
    }

    /// The source of a copy is a key like any other, read with `s3:GetObject`.
    fn copy_source(&self, creds: Option<&s3s::auth::Credentials>, source: &CopySource) -> S3Result<()> {
        let CopySource::Bucket { bucket, key, .. } = source else {
            return Err(s3_error!(NotImplemented, "only bucket copy sources are served by the local cloud"));
        };
        check_key(bucket, key)?;
        let creds = creds.ok_or_else(|| s3_error!(AccessDenied))?;
        self.allow(&creds.access_key, "s3:GetObject", &format!("arn:aws:s3:::{bucket}/{key}"))?;
        if !matches!(at_key(&self.root, bucket, key), AtKey::Object) {
            return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl S3Access for Enforcer {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(creds) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "anonymous access is not allowed on the local cloud"));
        };
        let op = cx.s3_op().name();
        if let S3Path::Object { bucket, key } = cx.s3_path() {
            check_key(bucket, key)?;
        }
        let action = iam_action(op);
        let resource = iam_resource(cx.s3_path());
        // Listing is checked by `list_objects*` below, with the request's
        // `s3:prefix`, `s3:delimiter` and `s3:max-keys`.
        if !matches!(op, "ListObjects" | "ListObjectsV2") {
            self.allow(&creds.access_key, &action, &resource)?;
        }
        // What files cannot be: answered as S3 would, after the policy said yes.
        if let S3Path::Object { bucket, key } = cx.s3_path() {
            match (op, at_key(&self.root, bucket, key)) {
                ("GetObject" | "HeadObject" | "GetObjectAttributes", AtKey::Object) => {}
                ("GetObject" | "HeadObject" | "GetObjectAttributes", _) => {
                    // S3 says a key is missing only to a caller that may list the
                    // bucket; to any other it answers 403, as it would for a key it
                    // may not read.
                    let bucket_arn = format!("arn:aws:s3:::{bucket}");
                    return Err(match self.iam.check(&creds.access_key, "s3:ListBucket", &bucket_arn) {
                        Ok(()) => s3_error!(NoSuchKey, "The specified key does not exist."),
                        Err(_) => s3_error!(AccessDenied, "Access Denied: the key does not exist, and without s3:ListBucket on {bucket_arn} S3 answers 403 rather than 404 NoSuchKey"),
                    });
                }
                ("PutObject" | "CopyObject" | "CreateMultipartUpload" | "CompleteMultipartUpload", AtKey::UnderObject) => {
                    return Err(s3_error!(InvalidArgument, "Object key {key:?}: a prefix of it is an object, and the local cloud stores keys as files (it cannot hold both `a` and `a/b`)"));
                }
                ("PutObject" | "CopyObject" | "CreateMultipartUpload" | "CompleteMultipartUpload", AtKey::Folder) if !key.ends_with('/') => {
                    return Err(s3_error!(InvalidArgument, "Object key {key:?}: other objects live under `{key}/`, and the local cloud stores keys as files (it cannot hold both `a` and `a/b`)"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.copy_source(req.credentials.as_ref(), &req.input.copy_source)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.copy_source(req.credentials.as_ref(), &req.input.copy_source)
    }

    async fn list_objects(&self, req: &mut S3Request<ListObjectsInput>) -> S3Result<()> {
        let i = &req.input;
        self.list(req.credentials.as_ref(), &i.bucket, i.prefix.as_deref(), i.delimiter.as_deref(), i.max_keys)
    }

    async fn list_objects_v2(&self, req: &mut S3Request<ListObjectsV2Input>) -> S3Result<()> {
        let i = &req.input;
        self.list(req.credentials.as_ref(), &i.bucket, i.prefix.as_deref(), i.delimiter.as_deref(), i.max_keys)
    }

    /// Every key of a multi-object delete is a key like any other, and needs
    /// `s3:DeleteObject` on itself.
    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        let creds = req.credentials.as_ref().ok_or_else(|| s3_error!(AccessDenied))?;
        let bucket = &req.input.bucket;
        for o in &req.input.delete.objects {
            check_key(bucket, &o.key)?;
            self.allow(&creds.access_key, "s3:DeleteObject", &format!("arn:aws:s3:::{bucket}/{}", o.key))?;
        }
        Ok(())
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
    builder.set_access(Enforcer { iam, root: root.canonicalize()? });
    Ok(builder.build())
}

/// Serve `root` on a loopback port (the S3 service alone); returns its address.
pub async fn serve(root: &Path, iam: Arc<Iam>) -> std::io::Result<std::net::SocketAddr> {
    let service = service(root, iam)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    super::spawn_server(listener, super::Limits::public(), service);
    Ok(addr)
}
