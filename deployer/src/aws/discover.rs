//! `destroy --discover`: when the state file is lost, find the stage's resources
//! by their `stackctl:stack` / `stackctl:stage` tags (and name prefix), rebuild a
//! state from them, and destroy that state with the engine (dependents first;
//! the AWS target's finish verifies nothing of the stage remains).

use std::collections::BTreeMap;

use super::client::Clients;
use super::error::{retrying, AwsError};
use super::target::AwsTarget;
use crate::engine::error::EngineError;
use crate::engine::kind::Kind;
use crate::engine::state::{Recorded, State};
use crate::engine::store::Store;
use crate::engine::{Mode, Options};
use crate::progress::Progress;

fn ours(tags: impl IntoIterator<Item = (String, String)>, stack: &str, stage: &str) -> bool {
    let tags: Vec<(String, String)> = tags.into_iter().collect();
    tags.iter().any(|(k, v)| k == "stackctl:stack" && v == stack) && tags.iter().any(|(k, v)| k == "stackctl:stage" && v == stage)
}

/// Everything tagged with the stack and stage: (kind, physical id).
pub async fn find(c: &Clients, stack: &str, stage: &str) -> Result<Vec<(Kind, String)>, AwsError> {
    let prefix = format!("{stack}-{stage}");
    let mut found = Vec::new();
    let apis = retrying(|| async { c.apigateway.get_rest_apis().limit(500).send().await.map_err(|e| AwsError::from_sdk("discover", "apigateway:GetRestApis", e)) }).await?;
    for api in apis.items() {
        let tags = api.tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()).unwrap_or_default();
        if ours(tags, stack, stage) {
            found.push((Kind::RestApi, api.id().unwrap_or_default().to_owned()));
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
                found.push((Kind::Function, name.to_owned()));
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
            found.push((Kind::Bucket, name.to_owned()));
        }
    }
    let roles = retrying(|| async { c.iam.list_roles().path_prefix("/stackctl/").send().await.map_err(|e| AwsError::from_sdk("discover", "iam:ListRoles", e)) }).await?;
    for r in roles.roles() {
        if !r.role_name().starts_with(&prefix) {
            continue;
        }
        let tags = retrying(|| async { c.iam.list_role_tags().role_name(r.role_name()).send().await.map_err(|e| AwsError::from_sdk(r.role_name(), "iam:ListRoleTags", e)) }).await?;
        if ours(tags.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())), stack, stage) {
            found.push((Kind::Role, r.role_name().to_owned()));
        }
    }
    let groups_prefix = crate::engine::desired::log_group_name(&prefix);
    let mut token: Option<String> = None;
    loop {
        let page = retrying(|| async {
            c.logs.describe_log_groups().log_group_name_prefix(&groups_prefix).set_next_token(token.clone()).send().await.map_err(|e| AwsError::from_sdk("discover", "logs:DescribeLogGroups", e))
        })
        .await?;
        for g in page.log_groups() {
            let (Some(name), Some(arn)) = (g.log_group_name(), g.arn()) else { continue };
            // DescribeLogGroups gives the ARN with a `:*` suffix; tags want it without.
            let arn = arn.trim_end_matches(":*");
            let tags = retrying(|| async { c.logs.list_tags_for_resource().resource_arn(arn).send().await.map_err(|e| AwsError::from_sdk(name, "logs:ListTagsForResource", e)) }).await?;
            if ours(tags.tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()).unwrap_or_default(), stack, stage) {
                found.push((Kind::LogGroup, name.to_owned()));
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let mut token: Option<String> = None;
    loop {
        let page = retrying(|| async { c.events.list_rules().name_prefix(&prefix).set_next_token(token.clone()).send().await.map_err(|e| AwsError::from_sdk("discover", "events:ListRules", e)) }).await?;
        for r in page.rules() {
            let (Some(name), Some(arn)) = (r.name(), r.arn()) else { continue };
            let tags = retrying(|| async { c.events.list_tags_for_resource().resource_arn(arn).send().await.map_err(|e| AwsError::from_sdk(name, "events:ListTagsForResource", e)) }).await?;
            if ours(tags.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())), stack, stage) {
                found.push((Kind::Schedule, name.to_owned()));
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    Ok(found)
}

/// A state of the stage rebuilt from what `find` finds: the API and the
/// schedules depend on the functions, which depend on the roles, buckets and log groups, so a
/// destroy deletes them in that order.
pub fn state_from(found: &[(Kind, String)], stack: &str, stage: &str, region: &str) -> State {
    let mut st = State::empty(stack, stage, "aws");
    st.region = Some(region.to_owned());
    let ids: Vec<String> = found.iter().map(|(kind, name)| format!("{kind}/{name}")).collect();
    let of = |wanted: &[Kind]| -> Vec<String> { found.iter().zip(&ids).filter(|((k, _), _)| wanted.contains(k)).map(|(_, id)| id.clone()).collect() };
    for ((kind, name), id) in found.iter().zip(&ids) {
        let depends_on = match kind {
            Kind::RestApi | Kind::Schedule => of(&[Kind::Function]),
            Kind::Function => of(&[Kind::Role, Kind::Bucket, Kind::LogGroup]),
            Kind::Role | Kind::Bucket | Kind::LogGroup | Kind::ApiResource | Kind::Method | Kind::Permission | Kind::GatewayResponses | Kind::Deployment | Kind::CloudformationStack => Vec::new(),
        };
        st.resources.insert(id.clone(), Recorded { kind: *kind, physical_id: name.clone(), arn: None, hash: String::new(), depends_on, outputs: BTreeMap::new() });
    }
    st
}

/// Find the stage by its tags and destroy it through the engine, with `store`
/// for the lock (and the state file to remove). Returns how many resources
/// were deleted.
pub async fn destroy_discovered(target: &AwsTarget, store: &Store, stack: &str, stage: &str, progress: &dyn Progress) -> Result<usize, EngineError> {
    let found = find(&target.clients, stack, stage).await?;
    let state = state_from(&found, stack, stage, &target.clients.region);
    let outcome = crate::engine::run(target, store, stack, stage, Mode::DestroyFrom(state), &Options::default(), progress).await?;
    Ok(outcome.plan.changes().count())
}

/// `destroy_discovered` with nothing persisted (no project, no lock).
pub async fn destroy_by_tags(c: &Clients, stack: &str, stage: &str, progress: bool) -> Result<usize, EngineError> {
    let target = AwsTarget::new(c.clone(), ".");
    destroy_discovered(&target, &Store::memory("aws"), stack, stage, crate::progress::lines_if(progress).as_ref()).await
}
