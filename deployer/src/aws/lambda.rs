//! Lambda: the functions (code and configuration, each updated only when the
//! plan says it changed) and API Gateway's permissions to invoke them.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::client::Waiters;

use crate::naming::source_arn_path;
use super::client::Clients;
use super::error::{gone, retrying, waiting, AwsError, ErrorKind};
use super::target::AwsTarget;
use crate::engine::desired::{Node, Spec};
use crate::engine::error::EngineError;
use crate::engine::plan::Scope;
use crate::engine::run::Run;
use crate::engine::state::Recorded;

fn function_arn(run: &Run<'_>, name: &str) -> String {
    crate::engine::desired::function_arn(run.ctx, name)
}

async fn wait_updated(c: &Clients, name: &str, id: &str) -> Result<(), AwsError> {
    waiting(id, "the update to finish", || async { c.lambda.wait_until_function_updated_v2().function_name(name).wait(Duration::from_secs(300)).await.map(|_| ()) }).await
}

impl AwsTarget {
    /// Create the function, or (`scope`: an update) change what the plan says changed.
    pub(super) async fn apply_function(&self, run: &Run<'_>, node: &Node, scope: Option<Scope>) -> Result<Recorded, EngineError> {
        let Spec::Function { name, role, memory, timeout, architecture, environment, code_sha256, zip, reserved_concurrency, .. } = &node.spec else { unreachable!("dispatched on the kind") };
        let c = &self.clients;
        let id = node.id.as_str();
        let tags = self.tags(run);
        let role_arn = match run.desired.get(role).map(|n| &n.spec) {
            Some(Spec::Role { name, path, .. }) => format!("arn:aws:iam::{}:role{path}{name}", run.ctx.account),
            _ => run.output(role, "arn")?,
        };
        let arch = aws_sdk_lambda::types::Architecture::from(architecture.as_str());
        let env = aws_sdk_lambda::types::Environment::builder().set_variables(Some(environment.clone().into_iter().collect())).build();
        let config_hash = node.spec.function_config_digest().unwrap_or_default();
        // The planner decided what an update changes; a create that finds the
        // function (made just before a crash, not recorded) brings all of it up to date.
        let update = scope.is_some();
        let adopted = run.recorded(&node.id).is_none();
        let code_changed = scope.is_none_or(|s| s.code);
        let config_changed = scope.is_none_or(|s| s.configuration);
        let bytes = std::fs::read(zip).map_err(|e| EngineError::Operation(format!("{id}: cannot read {}: {e}", zip.display())))?;
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
            wait_updated(c, name, id).await?;
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
            wait_updated(c, name, id).await?;
        }
        // Reserved concurrency is set apart from the configuration: on a
        // create, or when the configuration changed (its digest covers it).
        let had_reserved = run.recorded(&node.id).is_some_and(|r| r.outputs.contains_key("reserved_concurrency"));
        if !update || config_changed || adopted {
            match reserved_concurrency {
                Some(n) => {
                    retrying(|| async {
                        c.lambda.put_function_concurrency().function_name(name).reserved_concurrent_executions(*n as i32).send().await.map_err(|e| AwsError::from_sdk(id, "lambda:PutFunctionConcurrency", e))
                    })
                    .await?;
                }
                None if had_reserved => {
                    gone(|| async { c.lambda.delete_function_concurrency().function_name(name).send().await.map(|_| ()).map_err(|e| AwsError::from_sdk(id, "lambda:DeleteFunctionConcurrency", e)) }).await?;
                }
                None => {}
            }
        }
        let mut outputs = BTreeMap::new();
        if let Some(n) = reserved_concurrency {
            outputs.insert("reserved_concurrency".into(), n.to_string());
        }
        outputs.insert("code_sha256".into(), code_sha256.clone());
        outputs.insert("config_hash".into(), config_hash);
        outputs.insert("memory".into(), memory.to_string());
        outputs.insert("timeout".into(), timeout.to_string());
        Ok(Run::recorded_for(node, name.clone(), Some(function_arn(run, name)), outputs))
    }

    /// The code running must be the code recorded (a hand-made upload is drift),
    /// and its memory and timeout the recorded ones.
    pub(super) async fn observe_function(&self, id: &str, r: &Recorded) -> Result<Option<String>, AwsError> {
        let cfg = self.clients.lambda.get_function_configuration().function_name(&r.physical_id).send().await.map_err(|e| AwsError::from_sdk(id, "lambda:GetFunctionConfiguration", e))?;
        let differs = |key: &str, live: Option<String>| matches!((live, r.outputs.get(key)), (Some(l), Some(o)) if l != *o);
        // Asked only of functions that reserve concurrency (no call for the others).
        if let Some(want) = r.outputs.get("reserved_concurrency") {
            let live = retrying(|| async {
                self.clients.lambda.get_function_concurrency().function_name(&r.physical_id).send().await.map_err(|e| AwsError::from_sdk(id, "lambda:GetFunctionConcurrency", e))
            })
            .await?;
            let have = live.reserved_concurrent_executions().map(|n| n.to_string());
            if have.as_deref() != Some(want.as_str()) {
                return Ok(Some(format!("its reserved concurrency is {}, not {want}", have.as_deref().unwrap_or("unset"))));
            }
        }
        Ok(if differs("code_sha256", cfg.code_sha256().map(str::to_owned)) {
            Some("its code was replaced".to_string())
        } else if differs("memory", cfg.memory_size().map(|m| m.to_string())) || differs("timeout", cfg.timeout().map(|t| t.to_string())) {
            Some("its memory or timeout was changed".to_string())
        } else {
            None
        })
    }

    pub(super) async fn delete_function(&self, id: &str, name: &str) -> Result<(), AwsError> {
        let c = &self.clients;
        gone(|| async { c.lambda.delete_function().function_name(name).send().await.map_err(|e| AwsError::from_sdk(id, "lambda:DeleteFunction", e)) }).await
    }

    /// `var` of a deployed function's environment; `None` when the function is
    /// not there. Any other failure (after the usual retries) is an error.
    pub(super) async fn function_env(&self, name: &str, var: &str) -> Result<Option<String>, AwsError> {
        let c = &self.clients;
        let what = format!("function {name}");
        let read = retrying(|| async { c.lambda.get_function_configuration().function_name(name).send().await.map_err(|e| AwsError::from_sdk(&what, "lambda:GetFunctionConfiguration", e)) }).await;
        match read {
            Ok(cfg) => Ok(cfg.environment().and_then(|e| e.variables()).and_then(|vars| vars.get(var)).cloned()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn apply_permission(&self, run: &Run<'_>, node: &Node, update: bool) -> Result<Recorded, EngineError> {
        let Spec::Permission { function, statement_id, http_method, path } = &node.spec else { unreachable!("dispatched on the kind") };
        let id = node.id.as_str();
        let api_id = run.output("api", "id")?;
        let fname = run.output(function, "id")?;
        let method = if http_method == "ANY" { "*" } else { http_method.as_str() };
        let source_arn = format!("arn:aws:execute-api:{}:{}:{api_id}/*/{method}{}", run.ctx.region, run.ctx.account, source_arn_path(path));
        self.grant_invoke(id, &fname, statement_id, "apigateway.amazonaws.com", &source_arn, update).await?;
        let mut outputs = BTreeMap::new();
        outputs.insert("function".into(), fname);
        outputs.insert("source_arn".into(), source_arn);
        Ok(Run::recorded_for(node, statement_id.clone(), None, outputs))
    }

    pub(super) async fn delete_permission(&self, id: &str, r: &Recorded) -> Result<(), AwsError> {
        let function = r.outputs.get("function").map(String::as_str).unwrap_or_default();
        self.revoke_invoke(id, function, &r.physical_id).await
    }

    /// A statement `statement_id` in `function`'s resource policy letting
    /// `principal` invoke it from `source_arn`. One of that id already there
    /// (an update — `replace` —, or a deploy that was cut) is replaced.
    pub(super) async fn grant_invoke(&self, id: &str, function: &str, statement_id: &str, principal: &str, source_arn: &str, replace: bool) -> Result<(), AwsError> {
        let c = &self.clients;
        let add = || async {
            c.lambda
                .add_permission()
                .function_name(function)
                .statement_id(statement_id)
                .action("lambda:InvokeFunction")
                .principal(principal)
                .source_arn(source_arn)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(id, "lambda:AddPermission", e))
        };
        let first = if replace { None } else { Some(retrying(add).await) };
        match first {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) if !matches!(e.kind, ErrorKind::AlreadyExists | ErrorKind::Conflict) => Err(e),
            _ => {
                let _ = c.lambda.remove_permission().function_name(function).statement_id(statement_id).send().await;
                retrying(add).await.map(|_| ())
            }
        }
    }

    /// Remove a statement of `function`'s resource policy (gone already is fine).
    pub(super) async fn revoke_invoke(&self, id: &str, function: &str, statement_id: &str) -> Result<(), AwsError> {
        let c = &self.clients;
        gone(|| async {
            c.lambda.remove_permission().function_name(function).statement_id(statement_id).send().await.map(|_| ()).map_err(|e| AwsError::from_sdk(id, "lambda:RemovePermission", e))
        })
        .await
    }
}
