//! The commands on the `aws` target: plan, deploy, status, destroy, invoke.

use std::io::IsTerminal;

use serde_json::json;

use crate::aws::Clients;
use crate::cli::BuildArgs;
use crate::commands::{build_for, json_out, AwsTarget, Context, Failure};
use crate::engine::deploy::{self, DeployError, Options};
use crate::engine::{plan, state};

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| Failure::Operation(format!("cannot start the async runtime: {e}")))
}

fn failure(e: DeployError) -> Failure {
    match e {
        DeployError::Input(m) => Failure::User(m),
        DeployError::State(e) => Failure::User(e.to_string()),
        other => Failure::Operation(other.to_string()),
    }
}

/// `plan` (dry run) and `deploy`.
pub fn plan_or_deploy(ctx: &Context, target: &AwsTarget, build: &BuildArgs, dry_run: bool) -> Result<(), Failure> {
    let artifacts = build_for(ctx, &target.stacks, build)?;
    let rt = runtime()?;
    let mut reports = Vec::new();
    // One set of clients per region, shared by the stacks (one account lookup).
    let mut by_region: std::collections::BTreeMap<Option<String>, Clients> = std::collections::BTreeMap::new();
    for stack in &target.stacks {
        let started = std::time::Instant::now();
        let outcome = rt.block_on(async {
            let clients = match by_region.get(&stack.region) {
                Some(c) => c.clone(),
                None => {
                    let c = Clients::from_env(stack.region.as_deref()).await;
                    by_region.insert(stack.region.clone(), c.clone());
                    c
                }
            };
            let opts = Options { dry_run, progress: !json_out(ctx), fail_after: None };
            if !dry_run && !json_out(ctx) {
                ctx.note(format!("deploying stack `{}` stage `{}` to {}", stack.name, target.stage, clients.endpoint.as_deref().unwrap_or(&clients.region)));
            }
            deploy::deploy(&clients, stack, &target.stage, &artifacts, &ctx.project, &opts).await
        });
        let outcome = outcome.map_err(failure)?;
        let outputs = deploy::outputs(&outcome.state);
        if json_out(ctx) {
            reports.push(json!({
                "stack": stack.name, "stage": target.stage, "applied": !dry_run,
                "plan": outcome.plan.changes().collect::<Vec<_>>(),
                "depth": outcome.plan.depth(),
                "outputs": outputs,
            }));
            continue;
        }
        println!("stack `{}` stage `{}`", stack.name, target.stage);
        print!("{}", plan::render(&outcome.plan));
        if !dry_run {
            if outcome.plan.is_empty() {
                println!("nothing to do ({:.1}s)", started.elapsed().as_secs_f64());
            } else {
                println!("deployed in {:.1}s", started.elapsed().as_secs_f64());
            }
            if let Some(url) = outputs.get("url") {
                println!("invoke URL: {url}");
            }
        }
    }
    if json_out(ctx) {
        println!("{}", serde_json::to_string_pretty(&reports).unwrap_or_default());
    }
    Ok(())
}

/// The recorded state of a stage, from the stack's state backend.
fn recorded(ctx: &Context, rt: &tokio::runtime::Runtime, stack: &crate::stack::Stack, stage: &str) -> Result<Option<state::State>, Failure> {
    rt.block_on(async {
        let clients = Clients::from_env(stack.region.as_deref()).await;
        deploy::recorded(&clients, stack, stage, &ctx.project).await
    })
    .map_err(failure)
}

pub fn status(ctx: &Context, target: &AwsTarget) -> Result<(), Failure> {
    let mut reports = Vec::new();
    let rt = runtime()?;
    for stack in &target.stacks {
        let recorded = recorded(ctx, &rt, stack, &target.stage)?;
        let outputs = recorded.as_ref().map(deploy::outputs).unwrap_or_default();
        if json_out(ctx) {
            reports.push(json!({ "stack": stack.name, "stage": target.stage, "deployed": recorded.is_some(), "outputs": outputs }));
            continue;
        }
        match recorded {
            None => println!("stack `{}` stage `{}`: not deployed", stack.name, target.stage),
            Some(r) => {
                println!("stack `{}` stage `{}`: {} resources in account {} region {}", stack.name, target.stage, r.resources.len(), r.account.as_deref().unwrap_or("?"), r.region.as_deref().unwrap_or("?"));
                for (k, v) in outputs {
                    println!("  {k:<28} {v}");
                }
            }
        }
    }
    if json_out(ctx) {
        println!("{}", serde_json::to_string_pretty(&reports).unwrap_or_default());
    }
    Ok(())
}

/// Ask for the stage name on a terminal unless `--yes`; refuse without a terminal.
pub fn confirm_destroy(stage: &str, yes: bool) -> Result<(), Failure> {
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::User(format!("destroying stage `{stage}` needs confirmation\n  hint: pass --yes")));
        }
        eprint!("destroy every resource of stage `{stage}`? type the stage name to confirm: ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).map_err(|e| Failure::Operation(e.to_string()))?;
        if answer.trim() != stage {
            return Err(Failure::User("not confirmed: nothing was destroyed".into()));
        }
    }
    Ok(())
}

pub fn destroy(ctx: &Context, target: &AwsTarget, discover: bool, yes: bool, cloudformation: bool) -> Result<(), Failure> {
    confirm_destroy(&target.stage, yes)?;
    let rt = runtime()?;
    for stack in &target.stacks {
        let outcome = rt.block_on(async {
            let clients = Clients::from_env(stack.region.as_deref()).await;
            if cloudformation {
                crate::engine::cfn_deploy::destroy(&clients, stack, &target.stage, &ctx.project, !json_out(ctx)).await.map(|_| 1)
            } else if discover {
                crate::engine::discover::destroy_by_tags(&clients, &stack.name, &target.stage, !json_out(ctx)).await.map_err(DeployError::from)
            } else {
                deploy::destroy(&clients, stack, &target.stage, &ctx.project, &Options { progress: !json_out(ctx), ..Default::default() })
                    .await
                    .map(|o| o.plan.count(plan::Action::Delete))
            }
        });
        let deleted = outcome.map_err(failure)?;
        if discover {
            let _ = std::fs::remove_file(state::path(&ctx.project, &stack.name, &target.stage));
        }
        if json_out(ctx) {
            println!("{}", json!({ "stack": stack.name, "stage": target.stage, "deleted": deleted }));
        } else {
            println!("stack `{}` stage `{}`: {deleted} resources deleted", stack.name, target.stage);
        }
    }
    Ok(())
}

pub struct InvokeArgs {
    pub function: Option<String>,
    pub data: Option<String>,
    pub event: Option<std::path::PathBuf>,
    pub http: Option<Vec<String>>,
    pub log: bool,
}

impl InvokeArgs {
    /// The event: `--data`, the file of `--event`, or `{}`; it must be JSON.
    pub fn payload(&self) -> Result<String, Failure> {
        let payload = match (&self.data, &self.event) {
            (Some(d), _) => d.clone(),
            (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| Failure::User(format!("cannot read {}: {e}", f.display())))?,
            (None, None) => "{}".into(),
        };
        if serde_json::from_str::<serde_json::Value>(&payload).is_err() {
            return Err(Failure::User("the event is not valid JSON\n  hint: pass --data '{\"key\": \"value\"}' or --event FILE".into()));
        }
        Ok(payload)
    }

    /// The function named on the command line and the selected stack defining it.
    pub fn function_of<'a>(&'a self, target: &'a AwsTarget) -> Result<(&'a str, &'a crate::stack::Stack), Failure> {
        let Some(function) = &self.function else {
            return Err(Failure::User("name the function to invoke, e.g. `stackctl invoke paraphrase`".into()));
        };
        let Some(stack) = target.stacks.iter().find(|s| s.function(function).is_some()) else {
            let names: Vec<&str> = target.stacks.iter().flat_map(|s| s.functions.iter().map(|f| f.name.as_str())).collect();
            let hint = crate::diag::did_you_mean(function, names.iter().copied()).map(|s| format!("did you mean `{s}`?")).unwrap_or_else(|| format!("functions: {}", names.join(", ")));
            return Err(Failure::User(format!("no function `{function}` in the selected stacks\n  hint: {hint}")));
        };
        Ok((function, stack))
    }
}

pub fn invoke(ctx: &Context, target: &AwsTarget, args: InvokeArgs) -> Result<(), Failure> {
    let payload = args.payload()?;
    if let Some(http) = &args.http {
        return invoke_http(ctx, target, &http[0], &http[1], &payload);
    }
    let (function, stack) = args.function_of(target)?;
    let rt = runtime()?;
    let recorded = recorded(ctx, &rt, stack, &target.stage)?;
    let Some(name) = recorded.as_ref().and_then(|r| deploy::function_physical(r, function)) else {
        return Err(Failure::User(format!("stage `{}` of stack `{}` is not deployed\n  hint: run `stackctl deploy --stage {}` first", target.stage, stack.name, target.stage)));
    };
    let out = rt.block_on(async {
        let clients = Clients::from_env(stack.region.as_deref()).await;
        let mut req = clients.lambda.invoke().function_name(&name).payload(aws_sdk_lambda::primitives::Blob::new(payload.into_bytes()));
        if args.log {
            req = req.log_type(aws_sdk_lambda::types::LogType::Tail);
        }
        req.send().await.map_err(|e| crate::aws::AwsError::from_sdk(&format!("function/{function}"), "lambda:Invoke", e))
    });
    let out = out.map_err(|e| Failure::Operation(e.to_string()))?;
    let body = out.payload().map(|b| String::from_utf8_lossy(b.as_ref()).into_owned()).unwrap_or_default();
    if args.log
        && let Some(tail) = out.log_result()
    {
        {
            use base64::Engine;
            let text = base64::engine::general_purpose::STANDARD.decode(tail).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            eprintln!("{text}");
        }
    }
    println!("{body}");
    if let Some(err) = out.function_error() {
        return Err(Failure::Operation(format!("function/{function} answered a function error ({err})")));
    }
    Ok(())
}

fn invoke_http(ctx: &Context, target: &AwsTarget, method: &str, path: &str, payload: &str) -> Result<(), Failure> {
    let mut url = None;
    let rt = runtime()?;
    for stack in &target.stacks {
        if let Some(r) = recorded(ctx, &rt, stack, &target.stage)? {
            let serves = stack.api.as_ref().is_some_and(|a| a.routes.iter().any(|r| path.split('?').next() == Some(r.path.as_str())));
            if serves {
                url = deploy::outputs(&r).get("url").cloned();
            }
        }
    }
    let Some(base) = url else {
        return Err(Failure::User(format!("no deployed stage `{}` serves `{path}`\n  hint: deploy it, or pick the stack with --stack", target.stage)));
    };
    http_call(method, &format!("{base}{path}"), path, payload)
}

/// Call `full` and print the answer: status on stderr, body on stdout; 4xx/5xx fail.
pub fn http_call(method: &str, full: &str, path: &str, payload: &str) -> Result<(), Failure> {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let full = full.to_owned();
    let response = match method.to_ascii_uppercase().as_str() {
        "GET" => agent.get(&full).call(),
        "HEAD" => agent.head(&full).call(),
        "DELETE" => agent.delete(&full).call(),
        "OPTIONS" => agent.options(&full).call(),
        "POST" => agent.post(&full).header("content-type", "application/json").send(payload.as_bytes()),
        "PUT" => agent.put(&full).header("content-type", "application/json").send(payload.as_bytes()),
        "PATCH" => agent.patch(&full).header("content-type", "application/json").send(payload.as_bytes()),
        other => return Err(Failure::User(format!("unknown HTTP method `{other}`"))),
    };
    let mut response = response.map_err(|e| Failure::Operation(format!("{method} {full}: {e}")))?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    eprintln!("HTTP {status}");
    println!("{body}");
    if status >= 400 { Err(Failure::Operation(format!("{method} {path} answered {status}"))) } else { Ok(()) }
}

/// `synth`: the CloudFormation template of each selected stack.
pub fn synth(ctx: &Context, target: &AwsTarget, build: &BuildArgs, account: Option<String>, region: Option<String>) -> Result<(), Failure> {
    let artifacts = build_for(ctx, &target.stacks, build)?;
    let rt = runtime()?;
    for stack in &target.stacks {
        let deploy_ctx = rt
            .block_on(async {
                let clients = Clients::from_env(region.as_deref().or(stack.region.as_deref())).await;
                let account = match &account {
                    Some(a) => a.clone(),
                    None => clients.account().await?,
                };
                let parameters = deploy::resolve_parameters(&clients, stack, &target.stage, None).await?;
                Ok::<_, DeployError>(crate::engine::desired::Context { stage: target.stage.clone(), account, region: clients.region.clone(), parameters })
            })
            .map_err(failure)?;
        let desired = crate::engine::desired::desired(stack, &artifacts, &deploy_ctx).map_err(Failure::User)?;
        let keys = artifacts
            .iter()
            .filter(|a| a.stack == stack.name)
            .map(|a| (format!("function/{}", a.function), crate::engine::cfn::artifact_key(&stack.name, &a.function, &a.sha256)))
            .collect();
        let template = crate::engine::cfn::synth(&desired, &deploy_ctx, &keys);
        if json_out(ctx) {
            println!("{}", serde_json::to_string_pretty(&template).unwrap_or_default());
        } else {
            print!("{}", crate::engine::cfn::to_yaml(&template));
        }
    }
    Ok(())
}

/// `deploy --engine cloudformation`: the change set is the plan.
pub fn deploy_cloudformation(ctx: &Context, target: &AwsTarget, build: &BuildArgs, dry_run: bool) -> Result<(), Failure> {
    let artifacts = build_for(ctx, &target.stacks, build)?;
    let rt = runtime()?;
    for stack in &target.stacks {
        let outcome = rt
            .block_on(async {
                let clients = Clients::from_env(stack.region.as_deref()).await;
                let opts = crate::engine::cfn_deploy::CfnOptions { dry_run, progress: !json_out(ctx), only_types: None };
                crate::engine::cfn_deploy::deploy(&clients, stack, &target.stage, &artifacts, &ctx.project, &opts).await
            })
            .map_err(failure)?;
        if json_out(ctx) {
            println!("{}", json!({ "stack": stack.name, "stage": target.stage, "changes": outcome.changes, "status": outcome.status, "outputs": outcome.outputs }));
            continue;
        }
        println!("stack `{}` stage `{}` (CloudFormation stack {})", stack.name, target.stage, crate::engine::cfn_deploy::stack_name(&stack.name, &target.stage));
        if outcome.changes.is_empty() {
            println!("change set: no changes");
        }
        for ch in &outcome.changes {
            println!("  {:<8} {:<36} {:<32} {}", ch.action, ch.logical_id, ch.resource_type, if ch.replacement == "True" { "(replacement)" } else { "" });
        }
        if !dry_run && let Some(url) = outcome.outputs.get("InvokeUrl") {
            println!("invoke URL: {url}");
        }
    }
    Ok(())
}
