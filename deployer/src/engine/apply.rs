//! The executor: runs exactly the plan against AWS, level by level (steps of one
//! level concurrently), and records the state after every successful step, so a
//! deploy stopped at any point converges when run again. Creates adopt an object
//! that already exists under our name (it was created just before a crash, before
//! it could be recorded).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, GatewayResponseType, IntegrationType, Op, PatchOperation};
use aws_sdk_lambda::client::Waiters;
use serde_json::json;

use super::desired::{Context, Desired, MethodIntegration, Node, Spec, NON_PROXY_RESPONSES};
use super::plan::{Action, Plan, Step};
use super::state::{self, Recorded, State};
use crate::aws::{retrying, AwsError, Clients, ErrorKind};

/// Tags every resource carries, so a lost state can still be destroyed.
pub fn tags(stack: &str, stage: &str) -> Vec<(String, String)> {
    vec![("stackctl:stack".into(), stack.into()), ("stackctl:stage".into(), stage.into())]
}

pub struct Executor<'a> {
    pub clients: &'a Clients,
    pub ctx: &'a Context,
    pub desired: &'a Desired,
    pub state_path: PathBuf,
    /// The team backend: the state is also written to this S3 object after every step.
    pub remote: Option<(String, String)>,
    state: Mutex<State>,
    /// Test hook: fail (without calling AWS) the step that would be the N+1th to run.
    pub fail_after: Option<usize>,
    done: Mutex<usize>,
    /// Progress lines on stderr.
    pub progress: bool,
    /// API Gateway's control plane allows only a few requests per second per
    /// account: its steps run at most this many at a time (retries handle the rest).
    apigateway_slots: tokio::sync::Semaphore,
}

/// Concurrent API Gateway steps.
const APIGATEWAY_CONCURRENCY: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{0}")]
    Internal(String),
    #[error("cannot write the state file {path}: {source}")]
    State { path: PathBuf, source: std::io::Error },
}

impl<'a> Executor<'a> {
    pub fn new(clients: &'a Clients, ctx: &'a Context, desired: &'a Desired, state: State, state_path: PathBuf) -> Executor<'a> {
        Executor {
            clients,
            ctx,
            desired,
            state_path,
            remote: None,
            state: Mutex::new(state),
            fail_after: None,
            done: Mutex::new(0),
            progress: false,
            apigateway_slots: tokio::sync::Semaphore::new(APIGATEWAY_CONCURRENCY),
        }
    }

    pub fn state(&self) -> State {
        self.state.lock().expect("state lock").clone()
    }

    /// Run the plan. On error, every step that completed is recorded.
    pub async fn run(&self, plan: &Plan) -> Result<State, ApplyError> {
        let mut levels: BTreeMap<usize, Vec<&Step>> = BTreeMap::new();
        for s in plan.changes() {
            levels.entry(s.level).or_default().push(s);
        }
        for (_, steps) in levels {
            let results = futures::future::join_all(steps.iter().map(|s| self.step(s))).await;
            for r in results {
                r?;
            }
        }
        Ok(self.state())
    }

    async fn step(&self, step: &Step) -> Result<(), ApplyError> {
        {
            let mut done = self.done.lock().expect("lock");
            if self.fail_after.is_some_and(|n| *done >= n) {
                return Err(ApplyError::Internal(format!("{}: injected failure before this step", step.id)));
            }
            *done += 1;
        }
        let _slot = match step.kind {
            "rest_api" | "api_resource" | "method" | "gateway_responses" | "deployment" => {
                Some(self.apigateway_slots.acquire().await.map_err(|e| ApplyError::Internal(e.to_string()))?)
            }
            _ => None,
        };
        let started = std::time::Instant::now();
        match step.action {
            Action::Delete => {
                let recorded = self.recorded(&step.id);
                if let Some(r) = recorded {
                    self.delete(&step.id, &r).await?;
                }
                self.record(&step.id, None).await?;
            }
            Action::Create | Action::Update | Action::Replace => {
                let node = self.desired.get(&step.id).ok_or_else(|| ApplyError::Internal(format!("{} is not desired", step.id)))?;
                if step.action == Action::Replace
                    && let Some(r) = self.recorded(&step.id)
                {
                    self.delete(&step.id, &r).await?;
                }
                let update = step.action == Action::Update;
                let recorded = self.apply_node(node, update).await?;
                self.record(&step.id, Some(recorded)).await?;
            }
            Action::NoOp => {}
        }
        if self.progress {
            eprintln!("  {:<8} {:<36} {:>6.2}s", step.action.past_tense(), step.id, started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    fn recorded(&self, id: &str) -> Option<Recorded> {
        self.state.lock().expect("lock").resources.get(id).cloned()
    }

    fn output(&self, id: &str, key: &str) -> Result<String, ApplyError> {
        let st = self.state.lock().expect("lock");
        let r = st.resources.get(id).ok_or_else(|| ApplyError::Internal(format!("{id} is not deployed yet")))?;
        if key == "id" {
            return Ok(r.physical_id.clone());
        }
        if key == "arn" {
            return r.arn.clone().ok_or_else(|| ApplyError::Internal(format!("{id} has no ARN recorded")));
        }
        r.outputs.get(key).cloned().ok_or_else(|| ApplyError::Internal(format!("{id} has no `{key}` recorded")))
    }

    async fn record(&self, id: &str, value: Option<Recorded>) -> Result<(), ApplyError> {
        let snapshot = {
            let mut st = self.state.lock().expect("lock");
            match value {
                Some(v) => st.resources.insert(id.to_owned(), v),
                None => st.resources.remove(id),
            };
            st.account = Some(self.ctx.account.clone());
            st.region = Some(self.ctx.region.clone());
            // Saved under the lock: concurrent steps never write an older snapshot last.
            state::save(&self.state_path, &st).map_err(|source| ApplyError::State { path: self.state_path.clone(), source })?;
            st.clone()
        };
        if let Some((bucket, key)) = &self.remote {
            put_state(self.clients, bucket, key, &snapshot).await?;
        }
        Ok(())
    }

    fn recorded_for(node: &Node, physical_id: String, arn: Option<String>, outputs: BTreeMap<String, String>) -> Recorded {
        Recorded {
            kind: super::plan::kind_of(&node.spec).into(),
            physical_id,
            arn,
            hash: node.hash.clone(),
            depends_on: node.depends_on.clone(),
            outputs,
        }
    }

    fn function_arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:{}:function:{name}", self.ctx.region, self.ctx.account)
    }

    async fn apply_node(&self, node: &Node, update: bool) -> Result<Recorded, ApplyError> {
        let c = self.clients;
        let id = node.id.as_str();
        let tags = tags(&self.desired.stack, &self.desired.stage);
        match &node.spec {
            Spec::Role { name, path, trust, policy_name, policy } => {
                let created = retrying(|| async {
                    let mut req = c.iam.create_role().role_name(name).path(path).assume_role_policy_document(trust.to_string());
                    for (k, v) in &tags {
                        req = req.tags(aws_sdk_iam::types::Tag::builder().key(k).value(v).build().map_err(|e| AwsError::new(id, "iam:CreateRole", &e.to_string()))?);
                    }
                    match req.send().await {
                        Ok(out) => Ok(out.role.map(|r| r.arn)),
                        Err(e) => {
                            let err = AwsError::from_sdk(id, "iam:CreateRole", e);
                            if err.kind == ErrorKind::AlreadyExists { Ok(None) } else { Err(err) }
                        }
                    }
                })
                .await?;
                let arn = match created {
                    Some(arn) if !update => arn,
                    _ => {
                        retrying(|| async {
                            c.iam
                                .update_assume_role_policy()
                                .role_name(name)
                                .policy_document(trust.to_string())
                                .send()
                                .await
                                .map_err(|e| AwsError::from_sdk(id, "iam:UpdateAssumeRolePolicy", e))
                        })
                        .await?;
                        format!("arn:aws:iam::{}:role{path}{name}", self.ctx.account)
                    }
                };
                retrying(|| async {
                    c.iam
                        .put_role_policy()
                        .role_name(name)
                        .policy_name(policy_name)
                        .policy_document(policy.to_string())
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "iam:PutRolePolicy", e))
                })
                .await?;
                let mut outputs = BTreeMap::new();
                outputs.insert("policy_sha256".into(), policy_digest(&policy.to_string()));
                Ok(Self::recorded_for(node, name.clone(), Some(arn), outputs))
            }
            Spec::Bucket { name, lifecycle } => {
                if !update {
                    retrying(|| async {
                        let mut req = c.s3.create_bucket().bucket(name);
                        if self.ctx.region != "us-east-1" {
                            req = req.create_bucket_configuration(
                                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(self.ctx.region.as_str()))
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
                        let blocked = retrying(|| crate::aws::block_public_access(c, name, id));
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
                Ok(Self::recorded_for(node, name.clone(), Some(format!("arn:aws:s3:::{name}")), BTreeMap::new()))
            }
            Spec::Function { name, role, memory, timeout, architecture, environment, hashed_environment, code_sha256, zip } => {
                let role_arn = match self.desired.get(role).map(|n| &n.spec) {
                    Some(Spec::Role { name, path, .. }) => format!("arn:aws:iam::{}:role{path}{name}", self.ctx.account),
                    _ => self.output(role, "arn")?,
                };
                let arch = aws_sdk_lambda::types::Architecture::from(architecture.as_str());
                let env = aws_sdk_lambda::types::Environment::builder().set_variables(Some(environment.clone().into_iter().collect())).build();
                let config_hash = {
                    use sha2::Digest;
                    let text = json!([role_arn, memory, timeout, architecture, hashed_environment]).to_string();
                    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
                };
                let previous = self.recorded(&node.id);
                // Compared with the code AWS runs, not the record: a hand-made upload is repaired too.
                let live = if update { c.lambda.get_function_configuration().function_name(name).send().await.ok() } else { None };
                let live_code = live.as_ref().and_then(|cfg| cfg.code_sha256().map(str::to_owned));
                let live_config_drifted = live.as_ref().is_some_and(|cfg| cfg.memory_size() != Some(*memory as i32) || cfg.timeout() != Some(*timeout as i32));
                // A function created before a crash and adopted now: bring it fully up to date.
                let adopted = previous.is_none();
                let code_changed = match &live_code {
                    Some(live) => live != code_sha256,
                    None => previous.as_ref().and_then(|p| p.outputs.get("code_sha256")) != Some(code_sha256),
                };
                let config_changed = live_config_drifted || previous.as_ref().and_then(|p| p.outputs.get("config_hash")) != Some(&config_hash);
                let bytes = std::fs::read(zip).map_err(|e| ApplyError::Internal(format!("{id}: cannot read {}: {e}", zip.display())))?;
                let mut exists = update;
                if !update {
                    let created = retrying(|| async {
                        let mut req = c
                            .lambda
                            .create_function()
                            .function_name(name)
                            .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
                            .handler("bootstrap")
                            .role(&role_arn)
                            .memory_size(*memory as i32)
                            .timeout(*timeout as i32)
                            .architectures(arch.clone())
                            .environment(env.clone())
                            .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(aws_sdk_lambda::primitives::Blob::new(bytes.clone())).build());
                        for (k, v) in &tags {
                            req = req.tags(k, v);
                        }
                        match req.send().await {
                            // (created, already Active: Lambda answers Pending; some emulators Active)
                            Ok(out) => Ok((true, out.state() == Some(&aws_sdk_lambda::types::State::Active))),
                            Err(e) => {
                                let err = AwsError::from_sdk(id, "lambda:CreateFunction", e);
                                if err.code == "ResourceConflictException" { Ok((false, false)) } else { Err(err) }
                            }
                        }
                    })
                    .await?;
                    let (created, active) = created;
                    exists = !created;
                    if !active {
                        waiting(id, "the function to become active", || async {
                            c.lambda.wait_until_function_active_v2().function_name(name).wait(Duration::from_secs(300)).await.map(|_| ())
                        })
                        .await?;
                    }
                }
                if exists && (code_changed || adopted) {
                    retrying(|| async {
                        c.lambda
                            .update_function_code()
                            .function_name(name)
                            .zip_file(aws_sdk_lambda::primitives::Blob::new(bytes.clone()))
                            .architectures(arch.clone())
                            .send()
                            .await
                            .map_err(|e| AwsError::from_sdk(id, "lambda:UpdateFunctionCode", e))
                    })
                    .await?;
                    self.wait_updated(name, id).await?;
                }
                if exists && (config_changed || adopted) {
                    retrying(|| async {
                        c.lambda
                            .update_function_configuration()
                            .function_name(name)
                            .role(&role_arn)
                            .memory_size(*memory as i32)
                            .timeout(*timeout as i32)
                            .environment(env.clone())
                            .send()
                            .await
                            .map_err(|e| AwsError::from_sdk(id, "lambda:UpdateFunctionConfiguration", e))
                    })
                    .await?;
                    self.wait_updated(name, id).await?;
                }
                let mut outputs = BTreeMap::new();
                outputs.insert("code_sha256".into(), code_sha256.clone());
                outputs.insert("config_hash".into(), config_hash);
                outputs.insert("memory".into(), memory.to_string());
                outputs.insert("timeout".into(), timeout.to_string());
                Ok(Self::recorded_for(node, name.clone(), Some(self.function_arn(name)), outputs))
            }
            Spec::RestApi { name, endpoint } => {
                let endpoint_type = EndpointType::from(endpoint.as_str());
                // A marker left by a cut deploy has no id yet: that is a create.
                if update && self.recorded(id).is_some_and(|r| !r.physical_id.is_empty()) {
                    let api_id = self.output(id, "id")?;
                    let current = self.output(id, "endpoint").unwrap_or_default();
                    let mut ops = vec![PatchOperation::builder().op(Op::Replace).path("/name").value(name).build()];
                    if !current.is_empty() && current != *endpoint {
                        ops.push(PatchOperation::builder().op(Op::Replace).path(format!("/endpointConfiguration/types/{current}")).value(endpoint).build());
                    }
                    retrying(|| async {
                        c.apigateway
                            .update_rest_api()
                            .rest_api_id(&api_id)
                            .set_patch_operations(Some(ops.clone()))
                            .send()
                            .await
                            .map_err(|e| AwsError::from_sdk(id, "apigateway:UpdateRestApi", e))
                    })
                    .await?;
                    let mut r = self.recorded(id).ok_or_else(|| ApplyError::Internal(format!("{id} not recorded")))?;
                    r.hash = node.hash.clone();
                    r.outputs.insert("endpoint".into(), endpoint.clone());
                    if !r.outputs.contains_key("root_id") {
                        r.outputs.insert("root_id".into(), self.root_resource(id, &api_id).await?);
                    }
                    return Ok(r);
                }
                // CreateRestApi is not idempotent (two calls, two APIs). Before calling
                // it, a marker is recorded; a deploy that finds a marker (or any record)
                // was cut around the create, and first adopts an API of this stage by
                // name and tags. A retry within this deploy (its answer may have been
                // lost) does the same, and the SDK's own retries are off for the create.
                let orphan_possible = self.recorded(id).is_some();
                if !orphan_possible {
                    let mut marker = Self::recorded_for(node, String::new(), None, BTreeMap::new());
                    marker.hash = String::new();
                    self.record(id, Some(marker)).await?;
                }
                let attempts = std::sync::atomic::AtomicUsize::new(0);
                let (api_id, root) = retrying(|| async {
                    if (orphan_possible || attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0)
                        && let Some(existing) = self.find_rest_api(id, name).await?
                    {
                        return Ok(existing);
                    }
                    let mut req = c
                        .apigateway
                        .create_rest_api()
                        .name(name)
                        .endpoint_configuration(EndpointConfiguration::builder().types(endpoint_type.clone()).build());
                    for (k, v) in &tags {
                        req = req.tags(k, v);
                    }
                    let out = req
                        .customize()
                        .config_override(aws_sdk_apigateway::config::Builder::default().retry_config(aws_sdk_apigateway::config::retry::RetryConfig::disabled()))
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "apigateway:CreateRestApi", e))?;
                    let api_id = out.id.clone().ok_or_else(|| AwsError::new(id, "apigateway:CreateRestApi", "no id in the answer"))?;
                    Ok((api_id, out.root_resource_id().map(str::to_owned)))
                })
                .await?;
                let mut outputs = BTreeMap::new();
                outputs.insert("endpoint".into(), endpoint.clone());
                let root = match root {
                    Some(r) => r,
                    None => {
                        // Record at once: a crash before the root lookup must not orphan
                        // the API. Marked incomplete (no hash): the next deploy updates
                        // it, which looks the root up.
                        let mut partial = Self::recorded_for(node, api_id.clone(), None, outputs.clone());
                        partial.hash = String::new();
                        self.record(id, Some(partial)).await?;
                        self.root_resource(id, &api_id).await?
                    }
                };
                outputs.insert("root_id".into(), root);
                let arn = format!("arn:aws:apigateway:{}::/restapis/{api_id}", self.ctx.region);
                Ok(Self::recorded_for(node, api_id, Some(arn), outputs))
            }
            Spec::ApiResource { path, parent } => {
                let api_id = self.output("api", "id")?;
                let parent_id = match parent {
                    Some(p) => self.output(p, "id")?,
                    None => self.output("api", "root_id")?,
                };
                let part = path.rsplit('/').next().unwrap_or_default();
                let created = retrying(|| async {
                    match c.apigateway.create_resource().rest_api_id(&api_id).parent_id(&parent_id).path_part(part).send().await {
                        Ok(out) => Ok(out.id),
                        Err(e) => {
                            let err = AwsError::from_sdk(id, "apigateway:CreateResource", e);
                            if err.kind == ErrorKind::AlreadyExists || err.code == "ConflictException" { Ok(None) } else { Err(err) }
                        }
                    }
                })
                .await?;
                let resource_id = match created {
                    Some(r) => r,
                    None => {
                        // Created before a crash: adopt it.
                        let all = c.apigateway.get_resources().rest_api_id(&api_id).limit(500).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:GetResources", e))?;
                        all.items()
                            .iter()
                            .find(|r| r.path() == Some(path.as_str()))
                            .and_then(|r| r.id.clone())
                            .ok_or_else(|| ApplyError::Internal(format!("{id}: resource exists but cannot be found")))?
                    }
                };
                Ok(Self::recorded_for(node, resource_id, None, BTreeMap::new()))
            }
            Spec::Method { path, http_method, integration } => {
                let api_id = self.output("api", "id")?;
                let resource_id = if path == "/" { self.output("api", "root_id")? } else { self.output(&format!("resource{path}"), "id")? };
                self.put_method(id, &api_id, &resource_id, http_method, integration, update).await?;
                Ok(Self::recorded_for(node, format!("{resource_id}/{http_method}"), None, BTreeMap::new()))
            }
            Spec::Permission { function, statement_id, http_method, path } => {
                let api_id = self.output("api", "id")?;
                let fname = self.output(function, "id")?;
                let method = if http_method == "ANY" { "*" } else { http_method.as_str() };
                let source_arn = format!("arn:aws:execute-api:{}:{}:{api_id}/*/{method}{}", self.ctx.region, self.ctx.account, source_arn_path(path));
                let add = || async {
                    c.lambda
                        .add_permission()
                        .function_name(&fname)
                        .statement_id(statement_id)
                        .action("lambda:InvokeFunction")
                        .principal("apigateway.amazonaws.com")
                        .source_arn(&source_arn)
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "lambda:AddPermission", e))
                };
                // A statement of that id already there (an update, or a cut deploy)
                // is replaced.
                let first = if update { None } else { Some(retrying(add).await) };
                match first {
                    Some(Ok(_)) => {}
                    Some(Err(e)) if !matches!(e.kind, ErrorKind::AlreadyExists | ErrorKind::Conflict) => return Err(e.into()),
                    _ => {
                        let _ = c.lambda.remove_permission().function_name(&fname).statement_id(statement_id).send().await;
                        retrying(add).await?;
                    }
                }
                let mut outputs = BTreeMap::new();
                outputs.insert("function".into(), fname);
                outputs.insert("source_arn".into(), source_arn);
                Ok(Self::recorded_for(node, statement_id.clone(), None, outputs))
            }
            Spec::GatewayResponses { allow_origin } => {
                let api_id = self.output("api", "id")?;
                let puts = [GatewayResponseType::Default4Xx, GatewayResponseType::Default5Xx].map(|kind| {
                    let api_id = &api_id;
                    retrying(move || {
                        let kind = kind.clone();
                        async move {
                            c.apigateway
                                .put_gateway_response()
                                .rest_api_id(api_id)
                                .response_type(kind)
                                .response_parameters("gatewayresponse.header.Access-Control-Allow-Origin", format!("'{allow_origin}'"))
                                .response_parameters("gatewayresponse.header.Access-Control-Allow-Headers", "'*'")
                                .send()
                                .await
                                .map_err(|e| AwsError::from_sdk(id, "apigateway:PutGatewayResponse", e))
                        }
                    })
                });
                for r in futures::future::join_all(puts).await {
                    r?;
                }
                Ok(Self::recorded_for(node, api_id, None, BTreeMap::new()))
            }
            Spec::Deployment { stage, .. } => {
                let api_id = self.output("api", "id")?;
                let deployment = retrying(|| async {
                    c.apigateway
                        .create_deployment()
                        .rest_api_id(&api_id)
                        .description(format!("stackctl {}", &node.hash[..12]))
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "apigateway:CreateDeployment", e))
                })
                .await?;
                let deployment_id = deployment.id.ok_or_else(|| ApplyError::Internal(format!("{id}: no deployment id")))?;
                // A first deployment creates the stage, a later one points it at the
                // new deployment; either falls back to the other when the stage is (or
                // is not) there after all.
                let point = || async {
                    retrying(|| async {
                        c.apigateway
                            .update_stage()
                            .rest_api_id(&api_id)
                            .stage_name(stage)
                            .patch_operations(PatchOperation::builder().op(Op::Replace).path("/deploymentId").value(&deployment_id).build())
                            .send()
                            .await
                            .map_err(|e| AwsError::from_sdk(id, "apigateway:UpdateStage", e))
                    })
                    .await
                };
                let create = || async {
                    retrying(|| async {
                        let mut req = c.apigateway.create_stage().rest_api_id(&api_id).stage_name(stage).deployment_id(&deployment_id);
                        for (k, v) in &tags {
                            req = req.tags(k, v);
                        }
                        req.send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:CreateStage", e))
                    })
                    .await
                };
                if update {
                    match point().await {
                        Err(e) if e.kind == ErrorKind::NotFound => {
                            create().await?;
                        }
                        other => {
                            other?;
                        }
                    }
                } else {
                    match create().await {
                        Err(e) if matches!(e.kind, ErrorKind::AlreadyExists | ErrorKind::Conflict) => {
                            point().await?;
                        }
                        other => {
                            other?;
                        }
                    }
                }
                let mut outputs = BTreeMap::new();
                outputs.insert("stage".into(), stage.clone());
                outputs.insert("url".into(), invoke_url(self.clients, &api_id, &self.ctx.region, stage));
                Ok(Self::recorded_for(node, deployment_id, None, outputs))
            }
        }
    }

    /// The physical name of a desired function: known before it exists, so a
    /// method's integration need not wait for the function (the stage does).
    fn function_name(&self, function: &str) -> Result<String, ApplyError> {
        match self.desired.get(function).map(|n| &n.spec) {
            Some(Spec::Function { name, .. }) => Ok(name.clone()),
            _ => Ok(self.output(function, "id")?),
        }
    }

    /// The id of an API's root resource (`/`).
    async fn root_resource(&self, id: &str, api_id: &str) -> Result<String, ApplyError> {
        let resources = retrying(|| async {
            self.clients.apigateway.get_resources().rest_api_id(api_id).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:GetResources", e))
        })
        .await?;
        resources
            .items()
            .iter()
            .find(|r| r.path() == Some("/"))
            .and_then(|r| r.id.clone())
            .ok_or_else(|| ApplyError::Internal(format!("{id}: the API has no root resource")))
    }

    /// The REST API of this stack and stage named `name`, if one exists.
    async fn find_rest_api(&self, id: &str, name: &str) -> Result<Option<(String, Option<String>)>, AwsError> {
        let mut position = None;
        loop {
            let page = self
                .clients
                .apigateway
                .get_rest_apis()
                .limit(500)
                .set_position(position.clone())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(id, "apigateway:GetRestApis", e))?;
            let ours = tags(&self.desired.stack, &self.ctx.stage);
            if let Some(api) = page.items().iter().find(|a| {
                a.name() == Some(name) && ours.iter().all(|(k, v)| a.tags().and_then(|t| t.get(k)).is_some_and(|x| x == v))
            }) {
                return Ok(api.id().map(|a| (a.to_owned(), api.root_resource_id().map(str::to_owned))));
            }
            position = page.position().map(str::to_owned);
            if position.is_none() {
                return Ok(None);
            }
        }
    }

    async fn wait_updated(&self, name: &str, id: &str) -> Result<(), ApplyError> {
        waiting(id, "the update to finish", || async {
            self.clients.lambda.wait_until_function_updated_v2().function_name(name).wait(Duration::from_secs(300)).await.map(|_| ())
        })
        .await
    }

    async fn put_method(&self, id: &str, api_id: &str, resource_id: &str, http_method: &str, integration: &MethodIntegration, update: bool) -> Result<(), ApplyError> {
        let c = &self.clients.apigateway;
        let cors_origin = self.desired.cors_origin();
        // PutMethod refuses an existing method (moto and AWS alike): an update
        // deletes it first, which also makes the put a full replacement; a create
        // does so only when it finds one (left by a deploy that was cut).
        let delete = || async {
            let _ = c.delete_method().rest_api_id(api_id).resource_id(resource_id).http_method(http_method).send().await;
        };
        if update {
            delete().await;
        }
        let put = || async {
            c.put_method()
                .rest_api_id(api_id)
                .resource_id(resource_id)
                .http_method(http_method)
                .authorization_type("NONE")
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(id, "apigateway:PutMethod", e))
        };
        match retrying(put).await {
            Err(e) if matches!(e.kind, ErrorKind::AlreadyExists | ErrorKind::Conflict) => {
                delete().await;
                retrying(put).await?;
            }
            other => {
                other?;
            }
        }
        match integration {
            MethodIntegration::Proxy { function } => {
                let uri = self.lambda_uri(&self.function_name(function)?);
                retrying(|| async {
                    c.put_integration()
                        .rest_api_id(api_id)
                        .resource_id(resource_id)
                        .http_method(http_method)
                        .r#type(IntegrationType::AwsProxy)
                        .integration_http_method("POST")
                        .uri(&uri)
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "apigateway:PutIntegration", e))
                })
                .await?;
            }
            MethodIntegration::Aws { function, request_templates } => {
                let uri = self.lambda_uri(&self.function_name(function)?);
                let put_integration = retrying(|| async {
                    c.put_integration()
                        .rest_api_id(api_id)
                        .resource_id(resource_id)
                        .http_method(http_method)
                        .r#type(IntegrationType::Aws)
                        .integration_http_method("POST")
                        .uri(&uri)
                        .set_request_templates(Some(request_templates.clone().into_iter().collect()))
                        .passthrough_behavior("WHEN_NO_TEMPLATES")
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "apigateway:PutIntegration", e))
                });
                // 200 is the function's result; other statuses are function errors
                // whose JSON message carries `"status":N` (see search-worker). Method
                // responses need only the method: they go with the integration; the
                // integration responses need both, and go together after.
                let method_responses =
                    futures::future::join_all(NON_PROXY_RESPONSES.iter().map(|(status, _)| self.put_method_response(id, api_id, resource_id, http_method, status, cors_origin.as_deref())));
                let (integrated, responded) = futures::join!(put_integration, method_responses);
                integrated?;
                for r in responded {
                    r?;
                }
                let integration_responses = NON_PROXY_RESPONSES.iter().map(|(status, pattern)| {
                    self.put_integration_response(id, api_id, resource_id, http_method, status, pattern, cors_origin.as_deref(), (*status != "200").then_some("$input.path('$.errorMessage')"))
                });
                for r in futures::future::join_all(integration_responses).await {
                    r?;
                }
            }
            MethodIntegration::CorsPreflight { .. } => {
                let headers = integration.preflight_headers();
                let put_integration = retrying(|| async {
                    c.put_integration()
                        .rest_api_id(api_id)
                        .resource_id(resource_id)
                        .http_method(http_method)
                        .r#type(IntegrationType::Mock)
                        .request_templates("application/json", "{\"statusCode\": 200}")
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk(id, "apigateway:PutIntegration", e))
                });
                let method_response = retrying(|| async {
                    let mut req = c.put_method_response().rest_api_id(api_id).resource_id(resource_id).http_method(http_method).status_code("200");
                    for (h, _) in &headers {
                        req = req.response_parameters(format!("method.response.header.{h}"), false);
                    }
                    req.send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:PutMethodResponse", e))
                });
                futures::try_join!(put_integration, method_response)?;
                retrying(|| async {
                    let mut req = c.put_integration_response().rest_api_id(api_id).resource_id(resource_id).http_method(http_method).status_code("200");
                    for (h, v) in &headers {
                        req = req.response_parameters(format!("method.response.header.{h}"), format!("'{v}'"));
                    }
                    req.send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:PutIntegrationResponse", e))
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn put_method_response(&self, id: &str, api_id: &str, resource_id: &str, http_method: &str, status: &str, cors_origin: Option<&str>) -> Result<(), AwsError> {
        let c = &self.clients.apigateway;
        retrying(|| async {
            let mut req = c.put_method_response().rest_api_id(api_id).resource_id(resource_id).http_method(http_method).status_code(status);
            if cors_origin.is_some() {
                req = req.response_parameters("method.response.header.Access-Control-Allow-Origin", false);
            }
            req.send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:PutMethodResponse", e))
        })
        .await
        .map(|_| ())
    }

    #[allow(clippy::too_many_arguments)]
    async fn put_integration_response(
        &self,
        id: &str,
        api_id: &str,
        resource_id: &str,
        http_method: &str,
        status: &str,
        pattern: &str,
        cors_origin: Option<&str>,
        template: Option<&str>,
    ) -> Result<(), AwsError> {
        let c = &self.clients.apigateway;
        retrying(|| async {
            let mut req = c.put_integration_response().rest_api_id(api_id).resource_id(resource_id).http_method(http_method).status_code(status);
            if !pattern.is_empty() {
                req = req.selection_pattern(pattern);
            }
            if let Some(origin) = cors_origin {
                req = req.response_parameters("method.response.header.Access-Control-Allow-Origin", format!("'{origin}'"));
            }
            if let Some(t) = template {
                req = req.response_templates("application/json", t);
            }
            req.send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:PutIntegrationResponse", e))
        })
        .await
        .map(|_| ())
    }

    fn lambda_uri(&self, function_name: &str) -> String {
        format!(
            "arn:aws:apigateway:{}:lambda:path/2015-03-31/functions/{}/invocations",
            self.ctx.region,
            self.function_arn(function_name)
        )
    }

    async fn delete(&self, id: &str, r: &Recorded) -> Result<(), ApplyError> {
        let c = self.clients;
        let name = r.physical_id.as_str();
        match r.kind.as_str() {
            "role" => {
                gone(|| async { c.iam.delete_role_policy().role_name(name).policy_name("stackctl-function").send().await.map_err(|e| AwsError::from_sdk(id, "iam:DeleteRolePolicy", e)) }).await?;
                gone(|| async { c.iam.delete_role().role_name(name).send().await.map_err(|e| AwsError::from_sdk(id, "iam:DeleteRole", e)) }).await?;
            }
            "bucket" => {
                gone(|| self.empty_bucket(id, name)).await?;
                gone(|| async { c.s3.delete_bucket().bucket(name).send().await.map_err(|e| AwsError::from_sdk(id, "s3:DeleteBucket", e)) }).await?;
            }
            "function" => {
                gone(|| async { c.lambda.delete_function().function_name(name).send().await.map_err(|e| AwsError::from_sdk(id, "lambda:DeleteFunction", e)) }).await?;
            }
            "permission" => {
                let function = r.outputs.get("function").map(String::as_str).unwrap_or_default();
                gone(|| async {
                    c.lambda.remove_permission().function_name(function).statement_id(name).send().await.map_err(|e| AwsError::from_sdk(id, "lambda:RemovePermission", e))
                })
                .await?;
            }
            "rest_api" if name.is_empty() => {
                // Only the marker of a create that was cut: the API may exist.
                let api_name = crate::naming::api_name(&self.desired.stack, &self.ctx.stage);
                if let Some((api_id, _)) = self.find_rest_api(id, &api_name).await? {
                    gone(|| async { c.apigateway.delete_rest_api().rest_api_id(&api_id).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:DeleteRestApi", e)) }).await?;
                }
            }
            "rest_api" => {
                // An attempt whose answer was lost may have deleted it already, and some
                // services (moto) answer a later delete with a bare 500: each attempt
                // first checks that the API still exists.
                gone(|| async {
                    c.apigateway.get_rest_api().rest_api_id(name).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:GetRestApi", e))?;
                    c.apigateway.delete_rest_api().rest_api_id(name).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:DeleteRestApi", e))
                })
                .await?;
            }
            // Resources, methods, gateway responses and deployments live inside the
            // API: deleted one by one only while the API itself stays.
            "api_resource" | "method" | "gateway_responses" | "deployment" => {
                let Ok(api_id) = self.output("api", "id") else { return Ok(()) };
                if self.desired.get("api").is_none() {
                    return Ok(());
                }
                let api_id = api_id.as_str();
                match r.kind.as_str() {
                    "api_resource" => {
                        gone(|| async {
                            c.apigateway.delete_resource().rest_api_id(api_id).resource_id(name).send().await.map_err(|e| AwsError::from_sdk(id, "apigateway:DeleteResource", e))
                        })
                        .await?
                    }
                    "method" => {
                        let (resource_id, method) = name.split_once('/').unwrap_or_default();
                        gone(|| async {
                            c.apigateway
                                .delete_method()
                                .rest_api_id(api_id)
                                .resource_id(resource_id)
                                .http_method(method)
                                .send()
                                .await
                                .map_err(|e| AwsError::from_sdk(id, "apigateway:DeleteMethod", e))
                        })
                        .await?
                    }
                    _ => {}
                }
            }
            other => return Err(ApplyError::Internal(format!("{id}: unknown recorded kind `{other}`"))),
        }
        Ok(())
    }

    async fn empty_bucket(&self, id: &str, bucket: &str) -> Result<(), AwsError> {
        loop {
            let listed = self.clients.s3.list_objects_v2().bucket(bucket).send().await.map_err(|e| AwsError::from_sdk(id, "s3:ListObjectsV2", e))?;
            let keys: Vec<String> = listed.contents().iter().filter_map(|o| o.key.clone()).collect();
            if keys.is_empty() {
                return Ok(());
            }
            for key in keys {
                self.clients.s3.delete_object().bucket(bucket).key(&key).send().await.map_err(|e| AwsError::from_sdk(id, "s3:DeleteObject", e))?;
            }
        }
    }
}

/// Digest of a policy document in canonical form (keys sorted, no whitespace),
/// so the document IAM hands back (URL-encoded, reformatted) compares equal.
pub fn policy_digest(document: &str) -> String {
    use sha2::Digest;
    let decoded = percent_encoding::percent_decode_str(document).decode_utf8_lossy().into_owned();
    let canonical = serde_json::from_str::<serde_json::Value>(&decoded).map(|v| v.to_string()).unwrap_or(decoded);
    sha2::Sha256::digest(canonical.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The path part of an execute-api SourceArn: path parameters (`{id}`, `{proxy+}`)
/// become `*`, since the ARN of a request carries the actual value.
pub fn source_arn_path(path: &str) -> String {
    path.split('/').map(|seg| if seg.starts_with('{') { "*" } else { seg }).collect::<Vec<_>>().join("/")
}

/// Write the state to the S3 backend.
pub async fn put_state(clients: &Clients, bucket: &str, key: &str, state: &State) -> Result<(), AwsError> {
    let body = serde_json::to_vec_pretty(state).unwrap_or_default();
    retrying(|| async {
        clients
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(body.clone().into())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&format!("state s3://{bucket}/{key}"), "s3:PutObject", e))
    })
    .await?;
    Ok(())
}

/// Run a deleting call with retries; an object already gone is fine.
/// Run a Lambda waiter; a poll that failed (throttled, a 5xx) is not the
/// function's state: the wait starts again, up to 5 times, with backoff.
async fn waiting<F, Fut, O, E>(id: &str, what: &str, mut wait: F) -> Result<(), ApplyError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), aws_smithy_runtime_api::client::waiters::error::WaiterError<O, E>>>,
    O: std::fmt::Debug,
    E: std::error::Error + Send + Sync + 'static,
{
    use aws_smithy_runtime_api::client::waiters::error::WaiterError;
    let mut attempt = 0;
    loop {
        match wait().await {
            Ok(()) => return Ok(()),
            Err(WaiterError::OperationFailed(e)) if attempt < 5 => {
                attempt += 1;
                drop(e);
                tokio::time::sleep(Duration::from_millis(200 * (1 << attempt))).await;
            }
            Err(e) => return Err(ApplyError::Internal(format!("{id}: waiting for {what}: {}", aws_sdk_lambda::error::DisplayErrorContext(&e)))),
        }
    }
}

async fn gone<T, F, Fut>(call: F) -> Result<(), AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    match retrying(call).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}


/// The stage URL: AWS's execute-api host, or the emulator's path when
/// `AWS_ENDPOINT_URL` is set.
pub fn invoke_url(clients: &Clients, api_id: &str, region: &str, stage: &str) -> String {
    match &clients.endpoint {
        Some(endpoint) => format!("{}/restapis/{api_id}/{stage}/_user_request_", endpoint.trim_end_matches('/')),
        None => format!("https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn source_arn_paths() {
        assert_eq!(super::source_arn_path("/search"), "/search");
        assert_eq!(super::source_arn_path("/cars/{id}/photos"), "/cars/*/photos");
        assert_eq!(super::source_arn_path("/files/{path+}"), "/files/*");
        assert_eq!(super::source_arn_path("/"), "/");
    }
}
