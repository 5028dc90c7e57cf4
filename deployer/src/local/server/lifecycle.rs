//! The buckets' lifecycle rules, applied every minute through the S3 API (as
//! the server's admin, the only key that may list and expire any object).

use std::sync::Arc;
use std::time::Duration;

use super::super::cloud;
use super::world::Server;

/// How long a lifecycle "day" is, and how often rules are applied (both can be
/// shortened through the environment to watch expiry happen).
fn lifecycle_timing() -> (Duration, Duration) {
    let secs = |var: &str, default: u64| std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    (Duration::from_secs(secs("STACKCTL_LOCAL_DAY_SECONDS", 86_400)), Duration::from_secs(secs("STACKCTL_LOCAL_LIFECYCLE_INTERVAL_SECONDS", 60).max(1)))
}

/// Apply every bucket's lifecycle rules through the S3 API (as the admin).
pub async fn run(server: Arc<Server>) {
    let (day, interval) = lifecycle_timing();
    let clients = crate::aws::client::Clients::with_credentials(&format!("http://{}", server.services), cloud::DEFAULT_REGION, &server.admin.0, &server.admin.1).await;
    loop {
        tokio::time::sleep(interval).await;
        let world = server.world();
        for file in &world.lifecycle {
            for rule in &file.rules {
                let max_age = day * rule.expiration_days;
                match expire(&clients.s3, &file.bucket, &rule.prefix, max_age).await {
                    Ok(0) => {}
                    Ok(n) => eprintln!("lifecycle {}: {n} object(s) under {}/{} expired (rule {})", file.bucket, file.bucket, rule.prefix, rule.id),
                    Err(e) => eprintln!("lifecycle {}: {e}", file.bucket),
                }
            }
        }
    }
}

async fn expire(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str, max_age: Duration) -> Result<usize, String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default();
    let mut token = None;
    let mut n = 0;
    loop {
        let page = s3.list_objects_v2().bucket(bucket).prefix(prefix).set_continuation_token(token.clone()).send().await.map_err(|e| format!("ListObjectsV2: {e:?}"))?;
        for o in page.contents() {
            let (Some(key), Some(modified)) = (o.key(), o.last_modified()) else { continue };
            let age = now - modified.as_secs_f64();
            if age >= max_age.as_secs_f64() {
                s3.delete_object().bucket(bucket).key(key).send().await.map_err(|e| format!("DeleteObject {key}: {e:?}"))?;
                n += 1;
            }
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return Ok(n);
        }
    }
}
