//! `deploy` and `plan` (a dry run) on any target; `deploy --engine
//! cloudformation` on AWS.

use serde_json::json;

use super::{build_with, Context, Failure, OnTarget};
use crate::cli::BuildArgs;
use crate::engine::plan;
use crate::engine::{Mode, Options};

/// Build (for Lambda, or this machine for the local cloud), plan, apply, report.
pub async fn run(ctx: &Context, on: &OnTarget, build: &BuildArgs, dry_run: bool) -> Result<(), Failure> {
    on.check_credentials().await?;
    let stacks: Vec<_> = on.stacks.iter().map(|(s, _)| s).collect();
    let artifacts = build_with(ctx, &stacks, build, on.local())?;
    let progress = ctx.progress();
    let mut reports = Vec::new();
    for (stack, target) in &on.stacks {
        let started = std::time::Instant::now();
        if !dry_run && !ctx.json() {
            let place = if on.local() { "the local cloud".to_string() } else { target.region() };
            progress.note(&format!("deploying stack `{}` stage `{}` to {place}", stack.name, on.stage));
        }
        let store = target.store(stack, &on.stage);
        let opts = Options { dry_run, fail_after: None };
        let outcome = crate::engine::run(target.as_ref(), &store, &stack.name, &on.stage, Mode::Deploy { stack, artifacts: &artifacts }, &opts, progress.as_ref()).await?;
        let outputs = outcome.state.outputs();
        let about = if dry_run { None } else { target.about() };
        if ctx.json() {
            reports.push(json!({
                "stack": stack.name, "stage": on.stage, "target": target.name(), "applied": !dry_run,
                "plan": outcome.plan.changes().collect::<Vec<_>>(),
                "depth": outcome.plan.depth(),
                "outputs": outputs,
                "url": outputs.get("url"),
                "server": about.as_ref().map(|(_, v)| v.clone()).unwrap_or_default(),
            }));
            continue;
        }
        println!("stack `{}` stage `{}`{}", stack.name, on.stage, on.suffix());
        print!("{}", plan::render(&outcome.plan));
        if dry_run {
            continue;
        }
        let took = started.elapsed().as_secs_f64();
        if outcome.plan.is_empty() {
            println!("nothing to do ({took:.2}s)");
        } else {
            println!("deployed in {took:.2}s");
        }
        if let Some(url) = outputs.get("url") {
            println!("invoke URL: {url}");
        }
        if let Some((text, _)) = about {
            println!("local server: {text}");
        }
    }
    if ctx.json() {
        ctx.print_json(&json!(reports));
    }
    Ok(())
}

/// `deploy --engine cloudformation`: the change set is the plan.
pub async fn cloudformation(ctx: &Context, on: &OnTarget, build: &BuildArgs, dry_run: bool) -> Result<(), Failure> {
    if on.local() {
        return Err(Failure::User("the local cloud has no CloudFormation\n  hint: drop `--engine cloudformation`, or use `--target aws`".into()));
    }
    on.check_credentials().await?;
    let stacks: Vec<_> = on.stacks.iter().map(|(s, _)| s).collect();
    let artifacts = build_with(ctx, &stacks, build, false)?;
    let progress = ctx.progress();
    for (stack, _) in &on.stacks {
        let target = on.aws(stack)?;
        let opts = crate::aws::cloudformation::CfnOptions { dry_run, progress: false, only_types: None };
        let outcome = crate::aws::cloudformation::deploy_with(&target, stack, &on.stage, &artifacts, &opts, progress.as_ref()).await?;
        if ctx.json() {
            println!("{}", json!({ "stack": stack.name, "stage": on.stage, "changes": outcome.changes, "status": outcome.status, "outputs": outcome.outputs }));
            continue;
        }
        println!("stack `{}` stage `{}` (CloudFormation stack {})", stack.name, on.stage, crate::aws::cloudformation::stack_name(&stack.name, &on.stage));
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
