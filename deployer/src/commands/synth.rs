//! `synth`: the CloudFormation template of each selected stack.

use super::{build_with, load_all, Context, Failure};
use crate::aws::target::AwsTarget;
use crate::cli::{BuildArgs, StackArgs};

pub async fn run(ctx: &Context, stacks: &StackArgs, stage: &str, build: &BuildArgs, account: Option<String>, region: Option<String>) -> Result<(), Failure> {
    crate::naming::check_stage(stage).map_err(Failure::User)?;
    let loaded = load_all(ctx, stacks, stage)?;
    // The account first (`--account`, or the credentials'): a release build
    // takes minutes, a missing credential a second.
    let mut accounts = Vec::new();
    for stack in &loaded {
        let clients = crate::aws::client::Clients::from_env(region.as_deref().or(stack.region.as_deref())).await;
        let account = match &account {
            Some(a) => a.clone(),
            None => clients.account().await.map_err(|e| Failure::Operation(format!("{e}\n  hint: or pass --account and --region to synthesize without credentials")))?,
        };
        accounts.push((clients, account));
    }
    let refs: Vec<_> = loaded.iter().collect();
    let artifacts = build_with(ctx, &refs, build, false)?;
    for (stack, (clients, account)) in loaded.iter().zip(accounts) {
        let target = AwsTarget::new(clients.clone(), &ctx.project);
        let parameters = crate::engine::parameters::resolve(&target, stack, stage, false).await?;
        let deploy_ctx = crate::engine::desired::Context { stage: stage.into(), account, region: clients.region.clone(), parameters };
        let desired = crate::engine::desired::desired(stack, &artifacts, &deploy_ctx).map_err(Failure::User)?;
        let keys = artifacts
            .iter()
            .filter(|a| a.stack == stack.name)
            .map(|a| (format!("function/{}", a.function), crate::engine::cfn::artifact_key(&stack.name, &a.function, &a.sha256)))
            .collect();
        let template = crate::engine::cfn::synth(&desired, &deploy_ctx, &keys);
        if ctx.json() {
            ctx.print_json(&template);
        } else {
            print!("{}", crate::engine::cfn::to_yaml(&template));
        }
    }
    Ok(())
}
