//! One stage of one stack on AWS: resolve parameters, observe what is live,
//! plan, apply, record. `destroy` is the same path with an empty desired stack.

use std::collections::BTreeMap;
use std::path::Path;

use super::apply::{ApplyError, Executor};
use super::desired::{self, Context, Desired};
use super::plan::{self, Live, Plan};
use super::state::{self, State, StateError};
use crate::aws::{AwsError, Clients, ErrorKind};
use crate::build::Artifact;
use crate::stack::Stack;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Lock(#[from] super::lock::LockError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{0}")]
    Input(String),
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub dry_run: bool,
    pub progress: bool,
    /// Test hook: stop with an error after this many steps.
    pub fail_after: Option<usize>,
}

#[derive(Debug)]
pub struct Outcome {
    pub plan: Plan,
    pub state: State,
}

/// Deploy context: account from STS, region from the clients.
pub async fn context(clients: &Clients, stack: &Stack, stage: &str, recorded: Option<&State>) -> Result<Context, DeployError> {
    let account = clients.account().await?;
    let parameters = resolve_parameters(clients, stack, stage, recorded).await?;
    Ok(Context { stage: stage.into(), account, region: clients.region.clone(), parameters })
}

/// Parameter values from the deployer's environment (or their defaults). A
/// `generate: true` parameter without a value keeps the value the deployed
/// functions already have (read back from Lambda, never stored locally), or gets a
/// new random one on the first deploy.
pub async fn resolve_parameters(clients: &Clients, stack: &Stack, stage: &str, recorded: Option<&State>) -> Result<BTreeMap<String, String>, DeployError> {
    let mut out = BTreeMap::new();
    for p in &stack.parameters {
        if let Some(v) = std::env::var(&p.env).ok().filter(|v| !v.is_empty()) {
            out.insert(p.name.clone(), v);
            continue;
        }
        if p.generate {
            let existing = match recorded {
                Some(_) => deployed_parameter(clients, stack, stage, &p.name).await,
                None => None,
            };
            let value = existing.unwrap_or_else(|| format!("{}{}", uuid_hex(), uuid_hex()));
            out.insert(p.name.clone(), value);
            continue;
        }
        match &p.default {
            Some(d) => {
                out.insert(p.name.clone(), d.clone());
            }
            None => {
                return Err(DeployError::Input(format!(
                    "parameter `{}` has no value\n  hint: set the environment variable {} before deploying",
                    p.name, p.env
                )));
            }
        }
    }
    Ok(out)
}

fn uuid_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn deployed_parameter(clients: &Clients, stack: &Stack, stage: &str, parameter: &str) -> Option<String> {
    for f in &stack.functions {
        let Some((var, _)) = f.environment.iter().find(|(_, v)| matches!(v, crate::stack::model::EnvValue::Parameter(p) if p == parameter)) else {
            continue;
        };
        let name = crate::naming::function_name(&stack.name, stage, &f.name);
        if let Ok(cfg) = clients.lambda.get_function_configuration().function_name(&name).send().await
            && let Some(v) = cfg.environment().and_then(|e| e.variables()).and_then(|vars| vars.get(var))
        {
            return Some(v.clone());
        }
    }
    None
}

/// Check that recorded resources still exist (in parallel); what was deleted by
/// hand is recreated by the next apply.
pub async fn observe(clients: &Clients, recorded: &State) -> BTreeMap<String, Live> {
    let checks = recorded.resources.iter().map(|(id, r)| async move {
        let found: Result<Option<String>, AwsError> = match r.kind.as_str() {
            // The inline policy must still be the one we wrote: a hand-edited grant is drift.
            "role" => match clients.iam.get_role().role_name(&r.physical_id).send().await {
                Err(e) => Err(AwsError::from_sdk(id, "iam:GetRole", e)),
                Ok(_) => match clients.iam.get_role_policy().role_name(&r.physical_id).policy_name("stackctl-function").send().await {
                    Ok(p) => Ok(match r.outputs.get("policy_sha256") {
                        Some(ours) if *ours != super::apply::policy_digest(&p.policy_document) => Some("its inline policy was edited".to_string()),
                        _ => None,
                    }),
                    Err(e) => {
                        let err = AwsError::from_sdk(id, "iam:GetRolePolicy", e);
                        if err.kind == ErrorKind::NotFound { Ok(Some("its inline policy was deleted".to_string())) } else { Err(err) }
                    }
                },
            },
            "bucket" => clients.s3.head_bucket().bucket(&r.physical_id).send().await.map(|_| None).map_err(|e| AwsError::from_sdk(id, "s3:HeadBucket", e)),
            // The code running must be the code recorded: a hand-made upload is drift.
            "function" => clients
                .lambda
                .get_function_configuration()
                .function_name(&r.physical_id)
                .send()
                .await
                .map(|cfg| {
                    let differs = |key: &str, live: Option<String>| matches!((live, r.outputs.get(key)), (Some(l), Some(o)) if l != *o);
                    if differs("code_sha256", cfg.code_sha256().map(str::to_owned)) {
                        Some("its code was replaced".to_string())
                    } else if differs("memory", cfg.memory_size().map(|m| m.to_string())) || differs("timeout", cfg.timeout().map(|t| t.to_string())) {
                        Some("its memory or timeout was changed".to_string())
                    } else {
                        None
                    }
                })
                .map_err(|e| AwsError::from_sdk(id, "lambda:GetFunctionConfiguration", e)),
            "rest_api" => clients
                .apigateway
                .get_rest_api()
                .rest_api_id(&r.physical_id)
                .send()
                .await
                .map(|_| None)
                .map_err(|e| AwsError::from_sdk(id, "apigateway:GetRestApi", e)),
            _ => Ok(None),
        };
        let live = match found {
            Ok(None) => Live::Present,
            Ok(Some(why)) => Live::Drifted(why),
            Err(e) if e.kind == ErrorKind::NotFound => Live::Missing,
            // Cannot tell: trust the record rather than recreate on a transient error.
            Err(_) => Live::Present,
        };
        (id.clone(), live)
    });
    let mut live: BTreeMap<String, Live> = futures::future::join_all(checks).await.into_iter().collect();
    // Whatever lives inside a missing API or function is gone with it.
    let missing: Vec<String> = live.iter().filter(|(_, l)| **l == Live::Missing).map(|(id, _)| id.clone()).collect();
    for (id, r) in &recorded.resources {
        let inside_missing_api = missing.iter().any(|m| m == "api") && matches!(r.kind.as_str(), "api_resource" | "method" | "gateway_responses" | "deployment");
        let permission_of_missing_function =
            r.kind == "permission" && missing.iter().any(|m| r.depends_on.contains(m) && m.starts_with("function/"));
        let permission_of_missing_api = r.kind == "permission" && missing.iter().any(|m| m == "api");
        if inside_missing_api || permission_of_missing_function || permission_of_missing_api {
            live.insert(id.clone(), Live::Missing);
        }
    }
    live
}

/// Where a stage's state and deploy lock live: a file under `.stackctl/` (the
/// local cache, always written), plus the S3 object of the team backend.
pub struct StateLocation {
    pub local: std::path::PathBuf,
    pub remote: Option<(String, String)>,
}

impl StateLocation {
    pub fn of(stack: &Stack, stage: &str, project: &Path) -> StateLocation {
        let local = state::path(project, &stack.name, stage);
        let remote = match (stack.state.backend, &stack.state.bucket) {
            (crate::stack::model::StateBackend::S3, Some(bucket)) => {
                Some((bucket.clone(), format!("{}{}/{stage}.json", stack.state.prefix, stack.name)))
            }
            _ => None,
        };
        StateLocation { local, remote }
    }

    fn lock(&self, clients: &Clients) -> super::lock::Backend {
        match &self.remote {
            Some((bucket, key)) => super::lock::Backend::S3 { clients: clients.clone(), bucket: bucket.clone(), key: key.replace(".json", ".lock") },
            None => super::lock::Backend::Local(self.local.with_extension("lock")),
        }
    }
}

/// The recorded state of a stage, from its backend.
pub async fn recorded(clients: &Clients, stack: &Stack, stage: &str, project: &Path) -> Result<Option<State>, DeployError> {
    let loc = StateLocation::of(stack, stage, project);
    let Some((bucket, key)) = &loc.remote else {
        return Ok(state::load(&loc.local, &stack.name, stage, "aws")?);
    };
    match clients.s3.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => {
            let bytes = o.body.collect().await.map_err(|e| DeployError::Input(format!("reading s3://{bucket}/{key}: {e}")))?.into_bytes();
            let text = String::from_utf8_lossy(&bytes);
            Ok(Some(state::parse(&text, Path::new(&format!("s3://{bucket}/{key}")), &stack.name, stage)?))
        }
        Err(e) => {
            let err = AwsError::from_sdk(&format!("state s3://{bucket}/{key}"), "s3:GetObject", e);
            if err.kind == ErrorKind::NotFound { Ok(None) } else { Err(err.into()) }
        }
    }
}

/// Plan (and unless `dry_run`, apply) the deploy of `stack` to `stage`, holding
/// the stage's deploy lock while it applies.
pub async fn deploy(clients: &Clients, stack: &Stack, stage: &str, artifacts: &[Artifact], project: &Path, opts: &Options) -> Result<Outcome, DeployError> {
    if opts.dry_run {
        return deploy_locked(clients, stack, stage, artifacts, project, opts).await;
    }
    let loc = StateLocation::of(stack, stage, project);
    let lock = super::lock::Lock::acquire(loc.lock(clients), &stack.name, stage, &super::lock::holder("deploy")).await?;
    let result = deploy_locked(clients, stack, stage, artifacts, project, opts).await;
    lock.release().await;
    result
}

async fn deploy_locked(clients: &Clients, stack: &Stack, stage: &str, artifacts: &[Artifact], project: &Path, opts: &Options) -> Result<Outcome, DeployError> {
    let loc = StateLocation::of(stack, stage, project);
    let path = loc.local.clone();
    // The state and the account are independent reads: together.
    let (recorded, account) = futures::join!(recorded(clients, stack, stage, project), clients.account());
    let recorded = recorded?;
    super::cfn_deploy::refuse_if_cloudformation(recorded.as_ref(), &stack.name, stage)?;
    let parameters = resolve_parameters(clients, stack, stage, recorded.as_ref()).await?;
    let ctx = Context { stage: stage.into(), account: account?, region: clients.region.clone(), parameters };
    if let Some(r) = &recorded
        && r.account.as_deref().is_some_and(|a| a != ctx.account)
    {
        return Err(DeployError::Input(format!(
            "stage `{stage}` of stack `{}` was deployed to account {}, but the credentials are for account {}\n  hint: use the credentials of that account, or another stage name",
            stack.name,
            r.account.as_deref().unwrap_or_default(),
            ctx.account
        )));
    }
    let desired = desired::desired(stack, artifacts, &ctx).map_err(DeployError::Input)?;
    let live = match &recorded {
        Some(r) => observe(clients, r).await,
        None => BTreeMap::new(),
    };
    let plan = plan::plan(&desired, recorded.as_ref(), &live);
    let current = recorded.unwrap_or_else(|| State::empty(&stack.name, stage, "aws"));
    if opts.dry_run || plan.is_empty() {
        return Ok(Outcome { plan, state: current });
    }
    let mut exec = Executor::new(clients, &ctx, &desired, current, path);
    exec.remote = loc.remote.clone();
    exec.progress = opts.progress;
    exec.fail_after = opts.fail_after;
    let state = exec.run(&plan).await?;
    Ok(Outcome { plan, state })
}

/// Delete every recorded resource of the stage, in reverse dependency order, then
/// remove the state file.
pub async fn destroy(clients: &Clients, stack: &Stack, stage: &str, project: &Path, opts: &Options) -> Result<Outcome, DeployError> {
    let loc = StateLocation::of(stack, stage, project);
    let lock = super::lock::Lock::acquire(loc.lock(clients), &stack.name, stage, &super::lock::holder("destroy")).await?;
    let result = destroy_locked(clients, stack, stage, project, &loc, opts).await;
    lock.release().await;
    result
}

async fn destroy_locked(clients: &Clients, stack: &Stack, stage: &str, project: &Path, loc: &StateLocation, opts: &Options) -> Result<Outcome, DeployError> {
    let path = loc.local.clone();
    let recorded = recorded(clients, stack, stage, project).await?;
    super::cfn_deploy::refuse_if_cloudformation(recorded.as_ref(), &stack.name, stage)?;
    let Some(recorded) = recorded else {
        return Ok(Outcome { plan: Plan::default(), state: State::empty(&stack.name, stage, "aws") });
    };
    let ctx = Context {
        stage: stage.into(),
        account: recorded.account.clone().unwrap_or_default(),
        region: recorded.region.clone().unwrap_or_else(|| clients.region.clone()),
        parameters: BTreeMap::new(),
    };
    let empty = Desired { stack: stack.name.clone(), stage: stage.into(), nodes: Vec::new() };
    let plan = plan::plan(&empty, Some(&recorded), &BTreeMap::new());
    if opts.dry_run {
        return Ok(Outcome { plan, state: recorded });
    }
    let mut exec = Executor::new(clients, &ctx, &empty, recorded, path.clone());
    exec.remote = loc.remote.clone();
    exec.progress = opts.progress;
    exec.fail_after = opts.fail_after;
    let state = exec.run(&plan).await?;
    if state.resources.is_empty() {
        let _ = std::fs::remove_file(&path);
        if let Some((bucket, key)) = &loc.remote {
            let _ = clients.s3.delete_object().bucket(bucket).key(key).send().await;
        }
        // Verify: nothing tagged with this stack and stage is left anywhere.
        let left = super::discover::find(clients, &stack.name, stage).await?;
        if !left.is_empty() {
            let names: Vec<String> = left.iter().map(|(k, id)| format!("{k} {id}")).collect();
            return Err(DeployError::Input(format!(
                "destroy finished but these resources of stage `{stage}` remain: {}\n  hint: run `stackctl destroy --discover --stage {stage}` to remove them",
                names.join(", ")
            )));
        }
    }
    Ok(Outcome { plan, state })
}

/// The outputs of a deployed stage: URL, function and bucket names.
pub fn outputs(state: &State) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (id, r) in &state.resources {
        match r.kind.as_str() {
            "deployment" => {
                if let Some(url) = r.outputs.get("url") {
                    out.insert("url".into(), url.clone());
                }
            }
            "function" | "bucket" | "role" => {
                out.insert(id.clone(), r.physical_id.clone());
            }
            "rest_api" => {
                out.insert("api_id".into(), r.physical_id.clone());
            }
            _ => {}
        }
    }
    out
}

/// Physical name of a function of a deployed stage.
pub fn function_physical(desired_or_state: &State, function: &str) -> Option<String> {
    desired_or_state.resources.get(&format!("function/{function}")).map(|r| r.physical_id.clone())
}
