//! S3: the stage's buckets (private, encrypted, tagged, with their lifecycle
//! rules), and the team state backend (state object and deploy lock).

use std::collections::BTreeMap;

use super::client::Clients;
use super::error::{gone, retrying, AwsError, ErrorKind};
use super::target::AwsTarget;
use crate::engine::desired::{Node, Spec};
use crate::engine::error::EngineError;
use crate::engine::lock::{LockError, RemoteLock};
use crate::engine::run::Run;
use crate::engine::state::Recorded;
use crate::engine::store::RemoteState;

impl AwsTarget {
    pub(super) async fn apply_bucket(&self, run: &Run<'_>, node: &Node, update: bool) -> Result<Recorded, EngineError> {
        let Spec::Bucket { name, lifecycle } = &node.spec else { unreachable!("dispatched on the kind") };
        let c = &self.clients;
        let id = node.id.as_str();
        let tags = self.tags(run);
        if !update {
            retrying(|| async {
                let mut req = c.s3.create_bucket().bucket(name);
                if run.ctx.region != "us-east-1" {
                    req = req.create_bucket_configuration(
                        aws_sdk_s3::types::CreateBucketConfiguration::builder()
                            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(run.ctx.region.as_str()))
                            .build(),
                    );
                }
                match req.send().await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let err = AwsError::from_sdk(id, "s3:CreateBucket", e);
                        if err.kind == ErrorKind::AlreadyExists { Ok(()) } else { Err(err) }
                    }
                }
            })
            .await?;
        }
        // After the create, the bucket's settings are independent: they go together.
        let settings = async {
            if !update {
                let blocked = retrying(|| block_public_access(c, name, id));
                let encrypted = retrying(|| async {
                    let rule = aws_sdk_s3::types::ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(aws_sdk_s3::types::ServerSideEncryption::Aes256)
                                .build()
                                .map_err(|e| AwsError::new(id, "s3:PutBucketEncryption", &e.to_string()))?,
                        )
                        .build();
                    c.s3.put_bucket_encryption()
                        .bucket(name)
                        .server_side_encryption_configuration(
                            aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder()
                                .rules(rule)
                                .build()
                                .map_err(|e| AwsError::new(id, "s3:PutBucketEncryption", &e.to_string()))?,
                        )
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "s3:PutBucketEncryption", e))
                });
                futures::try_join!(blocked, encrypted)?;
            }
            Ok::<(), AwsError>(())
        };
        let tagged = async {
            retrying(|| async {
                let mut tagging = aws_sdk_s3::types::Tagging::builder();
                for (k, v) in &tags {
                    tagging = tagging.tag_set(aws_sdk_s3::types::Tag::builder().key(k).value(v).build().map_err(|e| AwsError::new(id, "s3:PutBucketTagging", &e.to_string()))?);
                }
                c.s3.put_bucket_tagging()
                    .bucket(name)
                    .tagging(tagging.build().map_err(|e| AwsError::new(id, "s3:PutBucketTagging", &e.to_string()))?)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(id, "s3:PutBucketTagging", e))
            })
            .await?;
            Ok::<(), AwsError>(())
        };
        let expiring = async {
            if lifecycle.is_empty() {
                if update {
                    retrying(|| async {
                        match c.s3.delete_bucket_lifecycle().bucket(name).send().await {
                            Ok(_) => Ok(()),
                            Err(e) => {
                                let err = AwsError::from_sdk(id, "s3:DeleteBucketLifecycle", e);
                                if err.kind == ErrorKind::NotFound { Ok(()) } else { Err(err) }
                            }
                        }
                    })
                    .await?;
                }
            } else {
                retrying(|| async {
                    let mut config = aws_sdk_s3::types::BucketLifecycleConfiguration::builder();
                    for r in lifecycle {
                        config = config.rules(
                            aws_sdk_s3::types::LifecycleRule::builder()
                                .id(&r.id)
                                .status(aws_sdk_s3::types::ExpirationStatus::Enabled)
                                .filter(aws_sdk_s3::types::LifecycleRuleFilter::builder().prefix(&r.prefix).build())
                                .expiration(aws_sdk_s3::types::LifecycleExpiration::builder().days(r.expiration_days as i32).build())
                                .build()
                                .map_err(|e| AwsError::new(id, "s3:PutBucketLifecycleConfiguration", &e.to_string()))?,
                        );
                    }
                    c.s3.put_bucket_lifecycle_configuration()
                        .bucket(name)
                        .lifecycle_configuration(config.build().map_err(|e| AwsError::new(id, "s3:PutBucketLifecycleConfiguration", &e.to_string()))?)
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "s3:PutBucketLifecycleConfiguration", e))
                })
                .await?;
            }
            Ok::<(), AwsError>(())
        };
        futures::try_join!(settings, tagged, expiring)?;
        Ok(Run::recorded_for(node, name.clone(), Some(format!("arn:aws:s3:::{name}")), BTreeMap::new()))
    }

    pub(super) async fn observe_bucket(&self, id: &str, r: &Recorded) -> Result<Option<String>, AwsError> {
        self.clients.s3.head_bucket().bucket(&r.physical_id).send().await.map(|_| None).map_err(|e| AwsError::from_sdk(id, "s3:HeadBucket", e))
    }

    /// Empty the bucket, then delete it.
    pub(super) async fn delete_bucket(&self, id: &str, name: &str) -> Result<(), AwsError> {
        let c = &self.clients;
        gone(|| empty_bucket(c, id, name)).await?;
        gone(|| async { c.s3.delete_bucket().bucket(name).send().await.map_err(|e| AwsError::from_sdk(id, "s3:DeleteBucket", e)) }).await
    }
}

/// Delete every object of a bucket.
pub async fn empty_bucket(c: &Clients, id: &str, bucket: &str) -> Result<(), AwsError> {
    loop {
        let listed = c.s3.list_objects_v2().bucket(bucket).send().await.map_err(|e| AwsError::from_sdk(id, "s3:ListObjectsV2", e))?;
        let keys: Vec<String> = listed.contents().iter().filter_map(|o| o.key.clone()).collect();
        if keys.is_empty() {
            return Ok(());
        }
        for key in keys {
            c.s3.delete_object().bucket(bucket).key(&key).send().await.map_err(|e| AwsError::from_sdk(id, "s3:DeleteObject", e))?;
        }
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

/// The team state backend: the state object of a stage in the state bucket,
/// and its lock object beside it.
pub struct StateObject {
    pub clients: Clients,
    pub bucket: String,
    pub key: String,
}

impl StateObject {
    fn what(&self) -> String {
        format!("state s3://{}/{}", self.bucket, self.key)
    }
}

#[async_trait::async_trait]
impl RemoteState for StateObject {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    async fn get(&self) -> Result<Option<String>, EngineError> {
        match self.clients.s3.get_object().bucket(&self.bucket).key(&self.key).send().await {
            Ok(o) => {
                let bytes = o.body.collect().await.map_err(|e| EngineError::Operation(format!("reading {}: {e}", self.location())))?.into_bytes();
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
            Err(e) => {
                let err = AwsError::from_sdk(&self.what(), "s3:GetObject", e);
                if err.kind == ErrorKind::NotFound { Ok(None) } else { Err(err.into()) }
            }
        }
    }

    async fn put(&self, document: &[u8]) -> Result<(), EngineError> {
        let c = &self.clients;
        retrying(|| async {
            c.s3.put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type("application/json")
                .body(document.to_vec().into())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&self.what(), "s3:PutObject", e))
        })
        .await?;
        Ok(())
    }

    async fn delete(&self) -> Result<(), EngineError> {
        let _ = self.clients.s3.delete_object().bucket(&self.bucket).key(&self.key).send().await;
        Ok(())
    }

    fn lock(&self) -> Box<dyn RemoteLock> {
        Box::new(LockObject { clients: self.clients.clone(), bucket: self.bucket.clone(), key: self.key.replace(".json", ".lock") })
    }
}

/// The deploy lock: an object created with `If-None-Match: *`.
struct LockObject {
    clients: Clients,
    bucket: String,
    key: String,
}

#[async_trait::async_trait]
impl RemoteLock for LockObject {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    async fn create(&self, holder: &str) -> Result<Option<String>, LockError> {
        let c = &self.clients;
        match c.s3.put_object().bucket(&self.bucket).key(&self.key).if_none_match("*").body(holder.as_bytes().to_vec().into()).send().await {
            Ok(_) => Ok(None),
            Err(e) if matches!(e.raw_response().map(|r| r.status().as_u16()), Some(412) | Some(409)) => {
                let current = match c.s3.get_object().bucket(&self.bucket).key(&self.key).send().await {
                    Ok(o) => o.body.collect().await.map(|b| String::from_utf8_lossy(&b.into_bytes()).into_owned()).unwrap_or_default(),
                    Err(_) => "unknown".into(),
                };
                Ok(Some(current))
            }
            Err(e) => Err(LockError::Remote(AwsError::from_sdk(&format!("lock {}", self.location()), "s3:PutObject", e).to_string())),
        }
    }

    async fn delete(&self) {
        let _ = self.clients.s3.delete_object().bucket(&self.bucket).key(&self.key).send().await;
    }
}
