//! The embedded S3: s3s + s3s-fs serving a directory on loopback, so aws-sdk-s3
//! in a handler works unchanged — with IAM enforced. Each function has its own
//! key (SigV4 signatures are verified by s3s), and may touch only the objects its
//! generated policy grants (`s3:GetObject` / `s3:PutObject` on `bucket/prefix*`).
//! The deployer's own key administers buckets.

use std::collections::BTreeMap;
use std::path::Path;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::path::S3Path;
use s3s::service::S3ServiceBuilder;
use s3s::{s3_error, S3Result};

/// What one key may do on objects.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectGrant {
    pub bucket: String,
    pub prefix: String,
    pub read: bool,
    pub write: bool,
}

/// Access keys and their grants; the admin key may do anything.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    pub admin: String,
    pub grants: BTreeMap<String, Vec<ObjectGrant>>,
}

impl Policies {
    /// Whether `key` may run operation `op` on `path`.
    pub fn allows(&self, key: &str, op: &str, path: &S3Path) -> bool {
        if key == self.admin {
            return true;
        }
        let S3Path::Object { bucket, key: object } = path else { return false };
        let (read, write) = match op {
            "GetObject" | "HeadObject" => (true, false),
            "PutObject" => (false, true),
            _ => return false,
        };
        self.grants.get(key).into_iter().flatten().any(|g| {
            g.bucket.as_str() == &**bucket && object.starts_with(&g.prefix) && (!read || g.read) && (!write || g.write)
        })
    }
}

struct Enforcer(Policies);

#[async_trait::async_trait]
impl S3Access for Enforcer {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(creds) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "anonymous access is not allowed"));
        };
        let op = cx.s3_op().name().to_owned();
        if self.0.allows(&creds.access_key, &op, cx.s3_path()) {
            Ok(())
        } else {
            Err(s3_error!(AccessDenied, "{} is not authorized to perform: s3:{op} on this resource", creds.access_key))
        }
    }
}

/// Serve `root` on a loopback port. `secrets` maps every access key to its secret.
pub async fn serve(root: &Path, secrets: &BTreeMap<String, String>, policies: Policies) -> std::io::Result<std::net::SocketAddr> {
    std::fs::create_dir_all(root)?;
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let mut auth = SimpleAuth::new();
    for (k, s) in secrets {
        auth.register(k.clone(), s.as_str().into());
    }
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(auth);
    builder.set_access(Enforcer(policies));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    super::spawn_server(listener, service);
    Ok(addr)
}
