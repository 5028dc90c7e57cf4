//! `destroy --discover`: when the state file is lost, find the stage's resources
//! by their `stackctl:stack` / `stackctl:stage` tags (and name prefix), delete
//! them in dependency order, and verify nothing of the stage remains.

use crate::aws::{retrying, AwsError, Clients};

fn ours(tags: impl IntoIterator<Item = (String, String)>, stack: &str, stage: &str) -> bool {
    let tags: Vec<(String, String)> = tags.into_iter().collect();
    tags.iter().any(|(k, v)| k == "stackctl:stack" && v == stack) && tags.iter().any(|(k, v)| k == "stackctl:stage" && v == stage)
}

/// Everything tagged with the stack and stage: (kind, physical id).
pub async fn find(c: &Clients, stack: &str, stage: &str) -> Result<Vec<(&'static str, String)>, AwsError> {
    let prefix = format!("{stack}-{stage}");
    let mut found = Vec::new();
    let apis = retrying(|| async { c.apigateway.get_rest_apis().limit(500).send().await.map_err(|e| AwsError::from_sdk("discover", "apigateway:GetRestApis", e)) }).await?;
    for api in apis.items() {
        let tags = api.tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()).unwrap_or_default();
        if ours(tags, stack, stage) {
            found.push(("rest_api", api.id().unwrap_or_default().to_owned()));
        }
    }
    let mut marker = None;
    loop {
        let page = retrying(|| async { c.lambda.list_functions().set_marker(marker.clone()).send().await.map_err(|e| AwsError::from_sdk("discover", "lambda:ListFunctions", e)) }).await?;
        for f in page.functions() {
            let (Some(name), Some(arn)) = (f.function_name(), f.function_arn()) else { continue };
            if !name.starts_with(&prefix) {
                continue;
            }
            let tags = retrying(|| async { c.lambda.list_tags().resource(arn).send().await.map_err(|e| AwsError::from_sdk(name, "lambda:ListTags", e)) }).await?;
            if ours(tags.tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()).unwrap_or_default(), stack, stage) {
                found.push(("function", name.to_owned()));
            }
        }
        marker = page.next_marker().map(str::to_owned);
        if marker.is_none() {
            break;
        }
    }
    let buckets = c.s3.list_buckets().send().await.map_err(|e| AwsError::from_sdk("discover", "s3:ListBuckets", e))?;
    for b in buckets.buckets() {
        let Some(name) = b.name() else { continue };
        if !name.starts_with(&prefix) {
            continue;
        }
        if let Ok(t) = c.s3.get_bucket_tagging().bucket(name).send().await
            && ours(t.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())), stack, stage)
        {
            found.push(("bucket", name.to_owned()));
        }
    }
    let roles = retrying(|| async { c.iam.list_roles().path_prefix("/stackctl/").send().await.map_err(|e| AwsError::from_sdk("discover", "iam:ListRoles", e)) }).await?;
    for r in roles.roles() {
        if !r.role_name().starts_with(&prefix) {
            continue;
        }
        let tags = retrying(|| async { c.iam.list_role_tags().role_name(r.role_name()).send().await.map_err(|e| AwsError::from_sdk(r.role_name(), "iam:ListRoleTags", e)) }).await?;
        if ours(tags.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())), stack, stage) {
            found.push(("role", r.role_name().to_owned()));
        }
    }
    Ok(found)
}

/// Delete what `find` finds (API, functions, buckets, roles: dependents first),
/// then check that nothing is left. Returns how many resources were deleted.
pub async fn destroy_by_tags(c: &Clients, stack: &str, stage: &str, progress: bool) -> Result<usize, AwsError> {
    let found = find(c, stack, stage).await?;
    for (kind, id) in &found {
        let what = format!("{kind} {id}");
        match *kind {
            "rest_api" => {
                c.apigateway.delete_rest_api().rest_api_id(id).send().await.map_err(|e| AwsError::from_sdk(&what, "apigateway:DeleteRestApi", e))?;
            }
            "function" => {
                c.lambda.delete_function().function_name(id).send().await.map_err(|e| AwsError::from_sdk(&what, "lambda:DeleteFunction", e))?;
            }
            "bucket" => {
                loop {
                    let listed = c.s3.list_objects_v2().bucket(id).send().await.map_err(|e| AwsError::from_sdk(&what, "s3:ListObjectsV2", e))?;
                    if listed.contents().is_empty() {
                        break;
                    }
                    for o in listed.contents() {
                        c.s3.delete_object().bucket(id).key(o.key().unwrap_or_default()).send().await.map_err(|e| AwsError::from_sdk(&what, "s3:DeleteObject", e))?;
                    }
                }
                c.s3.delete_bucket().bucket(id).send().await.map_err(|e| AwsError::from_sdk(&what, "s3:DeleteBucket", e))?;
            }
            "role" => {
                let policies = c.iam.list_role_policies().role_name(id).send().await.map_err(|e| AwsError::from_sdk(&what, "iam:ListRolePolicies", e))?;
                for p in policies.policy_names() {
                    c.iam.delete_role_policy().role_name(id).policy_name(p).send().await.map_err(|e| AwsError::from_sdk(&what, "iam:DeleteRolePolicy", e))?;
                }
                c.iam.delete_role().role_name(id).send().await.map_err(|e| AwsError::from_sdk(&what, "iam:DeleteRole", e))?;
            }
            _ => {}
        }
        if progress {
            eprintln!("  deleted  {what}");
        }
    }
    let left = find(c, stack, stage).await?;
    if !left.is_empty() {
        let names: Vec<String> = left.iter().map(|(k, id)| format!("{k} {id}")).collect();
        return Err(AwsError::new(&format!("stage {stage}"), "destroy --discover", &format!("still present after deletion: {}", names.join(", "))));
    }
    Ok(found.len())
}
