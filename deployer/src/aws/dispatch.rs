//! The engine's `Target` on AWS: each step dispatched on its kind to the
//! service module that owns it; observation checks recorded resources in
//! parallel; a destroy is verified by discovery.

use std::collections::BTreeMap;

use super::error::{AwsError, ErrorKind};
use super::target::AwsTarget;
use crate::engine::desired::Node;
use crate::engine::error::EngineError;
use crate::engine::kind::Kind;
use crate::engine::plan::{Action, Live, Step};
use crate::engine::run::Run;
use crate::engine::state::{self, Recorded, State};
use crate::engine::store::Store;
use crate::engine::target::{Invoked, LogEvent, LogQuery, StageRef, Target};
use crate::stack::model::StateBackend;
use crate::stack::Stack;

#[async_trait::async_trait]
impl Target for AwsTarget {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn store(&self, stack: &Stack, stage: &str) -> Store {
        let mut store = Store::file("aws", state::path(&self.project, &stack.name, stage));
        if let (StateBackend::S3, Some(bucket)) = (stack.state.backend, &stack.state.bucket) {
            let key = format!("{}{}/{stage}.json", stack.state.prefix, stack.name);
            store.remote = Some(Box::new(super::s3::StateObject { clients: self.clients.clone(), bucket: bucket.clone(), key }));
        }
        store
    }

    fn region(&self) -> String {
        self.clients.region.clone()
    }

    async fn account(&self) -> Result<String, EngineError> {
        Ok(self.clients.account().await?)
    }

    async fn deployed_env(&self, function: &str, var: &str) -> Result<Option<String>, EngineError> {
        Ok(self.function_env(function, var).await?)
    }

    async fn observe(&self, recorded: &State) -> Result<BTreeMap<String, Live>, EngineError> {
        let checks = recorded.resources.iter().map(|(id, r)| async move {
            let found: Result<Option<String>, AwsError> = match r.kind {
                Kind::Role => self.observe_role(id, r).await,
                Kind::Bucket => self.observe_bucket(id, r).await,
                Kind::Function => self.observe_function(id, r).await,
                Kind::RestApi => self.observe_rest_api(id, r).await,
                Kind::LogGroup => self.observe_log_group(id, r).await,
                Kind::Schedule => self.observe_schedule(id, r).await,
                // Inside the API, or in a function's policy: they go with it (below).
                Kind::ApiResource | Kind::Method | Kind::Permission | Kind::GatewayResponses | Kind::Deployment | Kind::CloudformationStack => Ok(None),
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
        let api_missing = recorded.resources.iter().any(|(id, r)| r.kind == Kind::RestApi && missing.contains(id));
        for (id, r) in &recorded.resources {
            let gone = match r.kind {
                Kind::ApiResource | Kind::Method | Kind::GatewayResponses | Kind::Deployment => api_missing,
                Kind::Permission => api_missing || r.depends_on.iter().any(|d| missing.contains(d) && recorded.resources.get(d).is_some_and(|f| f.kind == Kind::Function)),
                // A rule outlives its function (its target dangles): recreated with it.
                Kind::Schedule => r.depends_on.iter().any(|d| missing.contains(d)),
                Kind::Role | Kind::Bucket | Kind::Function | Kind::RestApi | Kind::LogGroup | Kind::CloudformationStack => false,
            };
            if gone {
                live.insert(id.clone(), Live::Missing);
            }
        }
        Ok(live)
    }

    async fn orphans(&self, recorded: &State) -> Result<Vec<(String, Recorded)>, EngineError> {
        // CreateRestApi is the one create that is not idempotent: a request of a
        // killed deploy that lands after the next deploy's lookup makes a second
        // API of the stage. Any API with the stage's name and tags but another
        // id than the recorded one is such a leftover. (A marker, no id yet: the
        // create adopts one of them first; the others go on the deploy after.)
        let Some(api) = recorded.resources.iter().find(|(_, r)| r.kind == Kind::RestApi && !r.physical_id.is_empty()).map(|(_, r)| r) else {
            return Ok(Vec::new());
        };
        let name = crate::naming::api_name(&recorded.stack, &recorded.stage);
        let tags = crate::naming::tags(&recorded.stack, &recorded.stage);
        // Cannot tell (a transient error, a role without GetRestApis): the
        // deploy goes on, as observation trusts a record it cannot check; a
        // later deploy sweeps.
        let Ok(found) = self.rest_apis_of("api", &name, &tags).await else { return Ok(Vec::new()) };
        Ok(found
            .into_iter()
            .filter(|(id, _)| *id != api.physical_id)
            .map(|(id, _)| {
                let mut outputs = BTreeMap::new();
                outputs.insert(
                    crate::engine::plan::ORPHAN.to_owned(),
                    format!("API `{id}` carries this stage's name and tags but is not the stage's (left by a deploy that was killed around its create)"),
                );
                (format!("api-orphan/{id}"), Recorded { kind: Kind::RestApi, physical_id: id, arn: None, hash: String::new(), depends_on: Vec::new(), outputs })
            })
            .collect())
    }

    async fn apply(&self, run: &Run<'_>, node: &Node, step: &Step) -> Result<Recorded, EngineError> {
        let update = step.action == Action::Update;
        let _slot = match node.spec.kind() {
            Kind::RestApi | Kind::ApiResource | Kind::Method | Kind::GatewayResponses | Kind::Deployment => {
                Some(self.apigateway_slots.acquire().await.map_err(|e| EngineError::Operation(e.to_string()))?)
            }
            Kind::Role | Kind::Bucket | Kind::Function | Kind::Permission | Kind::LogGroup | Kind::Schedule | Kind::CloudformationStack => None,
        };
        match node.spec.kind() {
            Kind::Role => self.apply_role(run, node, update).await,
            Kind::Bucket => self.apply_bucket(run, node, update).await,
            Kind::LogGroup => self.apply_log_group(run, node, update).await,
            Kind::Schedule => self.apply_schedule(run, node).await,
            Kind::Function => self.apply_function(run, node, step.scope.filter(|_| update)).await,
            Kind::Permission => self.apply_permission(run, node, update).await,
            Kind::RestApi => self.apply_rest_api(run, node, update).await,
            Kind::ApiResource => self.apply_resource(run, node).await,
            Kind::Method => self.apply_method(run, node, update).await,
            Kind::GatewayResponses => self.apply_gateway_responses(run, node).await,
            Kind::Deployment => self.apply_deployment(run, node, update).await,
            Kind::CloudformationStack => Err(EngineError::Operation(format!("{}: a CloudFormation stack is deployed by `--engine cloudformation`", node.id))),
        }
    }

    async fn delete(&self, run: &Run<'_>, id: &str, r: &Recorded) -> Result<(), EngineError> {
        match r.kind {
            Kind::Role => self.delete_role(id, &r.physical_id).await?,
            Kind::Bucket => self.delete_bucket(id, &r.physical_id).await?,
            Kind::LogGroup => self.delete_log_group(id, &r.physical_id).await?,
            Kind::Schedule => self.delete_schedule(id, r).await?,
            Kind::Function => self.delete_function(id, &r.physical_id).await?,
            Kind::Permission => self.delete_permission(id, r).await?,
            Kind::RestApi => self.delete_rest_api(run, id, &r.physical_id).await?,
            // They live inside the API: deleted one by one only while it stays.
            Kind::ApiResource | Kind::Method | Kind::GatewayResponses | Kind::Deployment => self.delete_inside_api(run, id, r).await?,
            Kind::CloudformationStack => {
                return Err(EngineError::Input(format!("{id}: the stage belongs to CloudFormation\n  hint: destroy it with `--engine cloudformation`")));
            }
        }
        Ok(())
    }

    async fn invoke(&self, function: &str, payload: Vec<u8>, log: bool) -> Result<Invoked, EngineError> {
        let mut req = self.clients.lambda.invoke().function_name(function).payload(aws_sdk_lambda::primitives::Blob::new(payload));
        if log {
            req = req.log_type(aws_sdk_lambda::types::LogType::Tail);
        }
        let out = req.send().await.map_err(|e| AwsError::from_sdk(&format!("function {function}"), "lambda:Invoke", e))?;
        let log = out.log_result().map(|tail| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(tail).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
        });
        Ok(Invoked {
            body: out.payload().map(|b| String::from_utf8_lossy(b.as_ref()).into_owned()).unwrap_or_default(),
            function_error: out.function_error().map(str::to_owned),
            log,
        })
    }

    async fn log_events(&self, function: &str, query: &LogQuery) -> Result<Vec<LogEvent>, EngineError> {
        Ok(self.filter_log_events(function, query).await?)
    }

    async fn finish(&self, at: &StageRef<'_>, outcome: &crate::engine::run::Outcome) -> Result<(), EngineError> {
        // A destroy verifies: nothing tagged with this stack and stage is left anywhere.
        if !at.destroy || outcome.plan.steps.is_empty() || !outcome.state.resources.is_empty() {
            return Ok(());
        }
        let left = super::discover::find(&self.clients, at.stack, at.stage).await?;
        if !left.is_empty() {
            let names: Vec<String> = left.iter().map(|(k, id)| format!("{k} {id}")).collect();
            return Err(EngineError::Operation(format!(
                "destroy finished but these resources of stage `{}` remain: {}\n  hint: run `stackctl destroy --discover --stage {}` to remove them",
                at.stage,
                names.join(", "),
                at.stage
            )));
        }
        Ok(())
    }
}
