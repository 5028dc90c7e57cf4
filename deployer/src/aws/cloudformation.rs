//! `deploy --engine cloudformation`: the synthesized template through a change
//! set. The change set is the plan; an empty one is a no-op; execution is
//! followed through the stack events to a terminal state, and a failure names the
//! failing resource and its reason. A stage belongs to one engine.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use aws_sdk_cloudformation::types::{Capability, ChangeSetType, Parameter, Tag};

use super::client::Clients;
use super::error::{retrying, AwsError, ErrorKind};
use super::target::AwsTarget;
use crate::build::Artifact;
use crate::engine::error::EngineError;
use crate::engine::kind::Kind;
use crate::engine::state::{Recorded, State, CLOUDFORMATION};
use crate::engine::target::Target;
use crate::engine::{cfn, desired};
use crate::naming::tags;
use crate::progress::{Event, Progress};
use crate::stack::Stack;

/// The CloudFormation stack name of a stage.
pub fn stack_name(stack: &str, stage: &str) -> String {
    format!("{stack}-{stage}")
}

/// One change of the change set, for display.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Change {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    pub replacement: String,
}

#[derive(Debug)]
pub struct CfnOutcome {
    pub changes: Vec<Change>,
    pub status: String,
    pub outputs: BTreeMap<String, String>,
}

async fn ensure_artifacts(c: &Clients, bucket: &str, stack: &Stack, artifacts: &[Artifact]) -> Result<BTreeMap<String, String>, EngineError> {
    let exists = c.s3.head_bucket().bucket(bucket).send().await.is_ok();
    if !exists {
        let mut req = c.s3.create_bucket().bucket(bucket);
        if c.region != "us-east-1" {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(c.region.as_str()))
                    .build(),
            );
        }
        if let Err(e) = req.send().await {
            let err = AwsError::from_sdk(&format!("artifact bucket {bucket}"), "s3:CreateBucket", e);
            if err.kind != ErrorKind::AlreadyExists {
                return Err(err.into());
            }
        }
        super::s3::block_public_access(c, bucket, &format!("artifact bucket {bucket}")).await?;
    }
    let mut keys = BTreeMap::new();
    for a in artifacts.iter().filter(|a| a.stack == stack.name) {
        let key = cfn::artifact_key(&stack.name, &a.function, &a.sha256);
        // Content-addressed: an object already there is the same code.
        if c.s3.head_object().bucket(bucket).key(&key).send().await.is_err() {
            let bytes = std::fs::read(&a.zip).map_err(|e| EngineError::Input(format!("cannot read {}: {e}", a.zip.display())))?;
            c.s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(bytes.into())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(&format!("function/{}", a.function), "s3:PutObject", e))?;
        }
        keys.insert(format!("function/{}", a.function), key);
    }
    Ok(keys)
}

/// How to run a CloudFormation deploy.
#[derive(Debug, Clone, Default)]
pub struct CfnOptions {
    /// Show the change set and stop.
    pub dry_run: bool,
    pub progress: bool,
    /// Deploy only resources of these types (for emulators that support a
    /// subset of CloudFormation); outputs that refer to a removed resource go too.
    pub only_types: Option<Vec<String>>,
}

/// Keep only the resources of `types` (and the outputs that still resolve).
pub fn restrict(template: &mut serde_json::Value, types: &[String]) {
    let Some(resources) = template.get_mut("Resources").and_then(|r| r.as_object_mut()) else { return };
    resources.retain(|_, r| r["Type"].as_str().is_some_and(|t| types.iter().any(|k| k == t)));
    let kept: Vec<String> = resources.keys().cloned().collect();
    for r in resources.values_mut() {
        if let Some(deps) = r.get_mut("DependsOn").and_then(|d| d.as_array_mut()) {
            deps.retain(|d| d.as_str().is_some_and(|d| kept.iter().any(|k| k == d)));
        }
    }
    if let Some(outputs) = template.get_mut("Outputs").and_then(|o| o.as_object_mut()) {
        outputs.retain(|_, o| {
            let text = o.to_string();
            kept.iter().any(|k| text.contains(&format!("\"{k}\"")) || text.contains(&format!("${{{k}}}")))
        });
    }
}

/// Deploy (or with `dry_run`, only show the change set).
pub async fn deploy(c: &Clients, stack: &Stack, stage: &str, artifacts: &[Artifact], project: &Path, opts: &CfnOptions) -> Result<CfnOutcome, EngineError> {
    deploy_with(&AwsTarget::new(c.clone(), project), stack, stage, artifacts, opts, crate::progress::lines_if(opts.progress).as_ref()).await
}

/// `deploy` on a target, reporting to `progress`. The context (account, region,
/// parameters: a generated secret keeps its deployed value) and the ownership
/// rule are the SDK engine's own.
pub async fn deploy_with(target: &AwsTarget, stack: &Stack, stage: &str, artifacts: &[Artifact], opts: &CfnOptions, progress: &dyn Progress) -> Result<CfnOutcome, EngineError> {
    let c = &target.clients;
    let dry_run = opts.dry_run;
    let store = target.store(stack, stage);
    let recorded = store.load(&stack.name, stage).await?;
    crate::engine::check_owner(recorded.as_ref(), CLOUDFORMATION, &stack.name, stage)?;
    let ctx = crate::engine::context(target, stack, stage, recorded.as_ref()).await?;
    let desired = desired::desired(stack, artifacts, &ctx).map_err(EngineError::Input)?;
    let bucket = cfn::artifact_bucket(&ctx);
    let keys = ensure_artifacts(c, &bucket, stack, artifacts).await?;
    let mut template = cfn::synth(&desired, &ctx, &keys);
    if let Some(types) = &opts.only_types {
        restrict(&mut template, types);
    }
    let name = stack_name(&stack.name, stage);

    let existing = c.cloudformation.describe_stacks().stack_name(&name).send().await.ok().and_then(|o| o.stacks().first().cloned());
    let live = existing.as_ref().is_some_and(|s| s.stack_status().map(|st| st.as_str()) != Some("REVIEW_IN_PROGRESS"));
    let change_set = format!("stackctl-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default());
    let mut req = c
        .cloudformation
        .create_change_set()
        .stack_name(&name)
        .change_set_name(&change_set)
        .template_body(cfn::to_yaml(&template))
        .change_set_type(if live { ChangeSetType::Update } else { ChangeSetType::Create })
        .capabilities(Capability::CapabilityNamedIam);
    // Secret parameters: the values go to CloudFormation as NoEcho parameters.
    if let Some(params) = template.get("Parameters").and_then(|p| p.as_object()) {
        for param in params.keys() {
            let var = desired.nodes.iter().find_map(|n| match &n.spec {
                desired::Spec::Function { environment, .. } => environment
                    .iter()
                    .find(|(k, _)| format!("Secret{}", cfn::logical_id(&k.to_ascii_lowercase())) == *param)
                    .map(|(_, v)| v.clone()),
                _ => None,
            });
            req = req.parameters(Parameter::builder().parameter_key(param).parameter_value(var.unwrap_or_default()).build());
        }
    }
    for (k, v) in tags(&stack.name, stage) {
        req = req.tags(Tag::builder().key(k).value(v).build());
    }
    if let Err(e) = req.send().await {
        let err = AwsError::from_sdk(&format!("stack {name}"), "cloudformation:CreateChangeSet", e);
        // Some CloudFormation implementations refuse an empty change set outright.
        if err.message.contains("No updates are to be performed") {
            let status = existing.as_ref().and_then(|s| s.stack_status().map(|st| st.as_str().to_owned())).unwrap_or_default();
            return Ok(CfnOutcome { changes: Vec::new(), status, outputs: stack_outputs(c, &name).await });
        }
        return Err(err.into());
    }

    // Wait for the change set.
    let started = std::time::Instant::now();
    let described = loop {
        let d = c
            .cloudformation
            .describe_change_set()
            .stack_name(&name)
            .change_set_name(&change_set)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&format!("stack {name}"), "cloudformation:DescribeChangeSet", e))?;
        match d.status().map(|s| s.as_str()) {
            Some("CREATE_COMPLETE") | Some("FAILED") => break d,
            _ if started.elapsed() > Duration::from_secs(300) => {
                return Err(EngineError::Input(format!("stack {name}: the change set was not ready after 5 minutes")));
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let changes: Vec<Change> = described
        .changes()
        .iter()
        .filter_map(|ch| ch.resource_change())
        .map(|rc| Change {
            action: rc.action().map(|a| a.as_str().to_owned()).unwrap_or_default(),
            logical_id: rc.logical_resource_id().unwrap_or_default().to_owned(),
            resource_type: rc.resource_type().unwrap_or_default().to_owned(),
            replacement: rc.replacement().map(|r| r.as_str().to_owned()).unwrap_or_default(),
        })
        .collect();
    let empty = described.status().map(|s| s.as_str()) == Some("FAILED")
        && described.status_reason().is_some_and(|r| r.contains("didn't contain changes") || r.contains("No updates"));
    if described.status().map(|s| s.as_str()) == Some("FAILED") && !empty {
        return Err(EngineError::Input(format!(
            "stack {name}: the change set failed: {}",
            described.status_reason().unwrap_or("no reason given")
        )));
    }
    if empty || changes.is_empty() || dry_run {
        let _ = c.cloudformation.delete_change_set().stack_name(&name).change_set_name(&change_set).send().await;
        let status = existing.as_ref().and_then(|s| s.stack_status().map(|st| st.as_str().to_owned())).unwrap_or_default();
        return Ok(CfnOutcome { changes: if empty { Vec::new() } else { changes }, status, outputs: stack_outputs(c, &name).await });
    }
    for ch in &changes {
        progress.report(Event::Detail(&format!("  {:<8} {:<32} {}", ch.action, ch.logical_id, ch.resource_type)));
    }
    c.cloudformation
        .execute_change_set()
        .stack_name(&name)
        .change_set_name(&change_set)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk(&format!("stack {name}"), "cloudformation:ExecuteChangeSet", e))?;
    let status = follow(c, &name, progress).await?;
    if !matches!(status.as_str(), "CREATE_COMPLETE" | "UPDATE_COMPLETE") {
        let reason = first_failure(c, &name).await;
        return Err(EngineError::Input(format!("stack {name} ended in {status}: {reason}\n  hint: fix the cause and deploy again; CloudFormation rolled the stack back")));
    }
    let outputs = stack_outputs(c, &name).await;
    // Record the stage as owned by CloudFormation, with what `status` and `invoke` need.
    let mut st = State::empty(&stack.name, stage, "aws");
    st.engine = CLOUDFORMATION.into();
    st.account = Some(ctx.account.clone());
    st.region = Some(ctx.region.clone());
    st.resources.insert("cloudformation-stack".into(), Recorded { kind: Kind::CloudformationStack, physical_id: name.clone(), arn: None, hash: String::new(), depends_on: vec![], outputs: outputs.clone() });
    for f in &stack.functions {
        let physical = crate::naming::function_name(&stack.name, stage, &f.name);
        st.resources.insert(format!("function/{}", f.name), Recorded { kind: Kind::Function, physical_id: physical, arn: None, hash: String::new(), depends_on: vec![], outputs: BTreeMap::new() });
    }
    if let Some(url) = outputs.get("InvokeUrl") {
        let mut o = BTreeMap::new();
        o.insert("url".to_string(), url.clone());
        st.resources.insert("deployment".into(), Recorded { kind: Kind::Deployment, physical_id: name.clone(), arn: None, hash: String::new(), depends_on: vec![], outputs: o });
    }
    store.save(&st).await?;
    Ok(CfnOutcome { changes, status, outputs })
}

async fn stack_outputs(c: &Clients, name: &str) -> BTreeMap<String, String> {
    let Ok(o) = c.cloudformation.describe_stacks().stack_name(name).send().await else { return BTreeMap::new() };
    o.stacks()
        .first()
        .map(|s| s.outputs().iter().filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned()))).collect())
        .unwrap_or_default()
}

/// Follow the stack to a terminal state, printing new events.
async fn follow(c: &Clients, name: &str, progress: &dyn Progress) -> Result<String, EngineError> {
    let started = std::time::Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        if let Ok(ev) = c.cloudformation.describe_stack_events().stack_name(name).send().await {
            for e in ev.stack_events().iter().rev() {
                if seen.insert(e.event_id().unwrap_or_default().to_owned()) {
                    progress.report(Event::Detail(&format!(
                        "  {:<28} {:<22} {}",
                        e.logical_resource_id().unwrap_or_default(),
                        e.resource_status().map(|s| s.as_str()).unwrap_or_default(),
                        e.resource_status_reason().unwrap_or_default()
                    )));
                }
            }
        }
        let s = retrying(|| async {
            c.cloudformation.describe_stacks().stack_name(name).send().await.map_err(|e| AwsError::from_sdk(&format!("stack {name}"), "cloudformation:DescribeStacks", e))
        })
        .await?;
        let status = s.stacks().first().and_then(|s| s.stack_status().map(|st| st.as_str().to_owned())).unwrap_or_default();
        if !status.ends_with("_IN_PROGRESS") {
            return Ok(status);
        }
        if started.elapsed() > Duration::from_secs(3600) {
            return Err(EngineError::Input(format!("stack {name} still {status} after an hour")));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn first_failure(c: &Clients, name: &str) -> String {
    let Ok(ev) = c.cloudformation.describe_stack_events().stack_name(name).send().await else { return "no events".into() };
    ev.stack_events()
        .iter()
        .rev()
        .find(|e| e.resource_status().is_some_and(|s| s.as_str().ends_with("_FAILED")))
        .map(|e| format!("{} ({}) {}: {}", e.logical_resource_id().unwrap_or_default(), e.resource_type().unwrap_or_default(), e.resource_status().map(|s| s.as_str()).unwrap_or_default(), e.resource_status_reason().unwrap_or_default()))
        .unwrap_or_else(|| "no failed resource reported".into())
}

/// Delete the stage's CloudFormation stack and its code artifacts.
pub async fn destroy(c: &Clients, stack: &Stack, stage: &str, project: &Path, progress: bool) -> Result<String, EngineError> {
    destroy_with(&AwsTarget::new(c.clone(), project), stack, stage, crate::progress::lines_if(progress).as_ref()).await
}

pub async fn destroy_with(target: &AwsTarget, stack: &Stack, stage: &str, progress: &dyn Progress) -> Result<String, EngineError> {
    let c = &target.clients;
    let store = target.store(stack, stage);
    let recorded = store.load(&stack.name, stage).await?;
    crate::engine::check_owner(recorded.as_ref(), CLOUDFORMATION, &stack.name, stage)?;
    let name = stack_name(&stack.name, stage);
    c.cloudformation.delete_stack().stack_name(&name).send().await.map_err(|e| AwsError::from_sdk(&format!("stack {name}"), "cloudformation:DeleteStack", e))?;
    let status = match follow(c, &name, progress).await {
        Ok(s) => s,
        Err(EngineError::Target(e)) if e.downcast_ref::<AwsError>().is_some_and(|e| e.kind == ErrorKind::NotFound || e.message.contains("does not exist")) => "DELETE_COMPLETE".into(),
        Err(e) => return Err(e),
    };
    if status != "DELETE_COMPLETE" && !status.is_empty() {
        return Err(EngineError::Input(format!("stack {name} ended in {status}: {}", first_failure(c, &name).await)));
    }
    if let Some(account) = recorded.as_ref().and_then(|r| r.account.clone()) {
        let bucket = format!("stackctl-artifacts-{account}-{}", c.region);
        if let Ok(list) = c.s3.list_objects_v2().bucket(&bucket).prefix(format!("{}/", stack.name)).send().await {
            for o in list.contents() {
                let _ = c.s3.delete_object().bucket(&bucket).key(o.key().unwrap_or_default()).send().await;
            }
        }
    }
    store.remove().await?;
    Ok(status)
}
