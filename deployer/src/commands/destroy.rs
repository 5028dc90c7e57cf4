//! `destroy`: the engine's run with an empty desired stack; `--discover`
//! rebuilds the state from tags first; `--engine cloudformation` deletes the
//! CloudFormation stack.

use std::io::IsTerminal;

use serde_json::json;

use super::{Context, Failure, OnTarget};
use crate::engine::{Mode, Options};

/// Ask for the stage name on a terminal unless `--yes`; refuse without a terminal.
fn confirm(stage: &str, yes: bool) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::User(format!("destroying stage `{stage}` needs confirmation\n  hint: pass --yes")));
    }
    eprint!("destroy every resource of stage `{stage}`? type the stage name to confirm: ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| Failure::Operation(e.to_string()))?;
    if answer.trim() != stage {
        return Err(Failure::User("not confirmed: nothing was destroyed".into()));
    }
    Ok(())
}

pub async fn run(ctx: &Context, on: &OnTarget, discover: bool, yes: bool, cloudformation: bool) -> Result<(), Failure> {
    if (discover || cloudformation) && on.local() {
        return Err(Failure::User("`--discover` and `--engine cloudformation` apply to the aws target".into()));
    }
    // The local cloud is this machine's sandbox: no confirmation.
    if !on.stacks.iter().all(|(_, t)| t.sandbox()) {
        confirm(&on.stage, yes)?;
    }
    let progress = ctx.progress();
    for (stack, target) in &on.stacks {
        let store = target.store(stack, &on.stage);
        let deleted = if cloudformation || discover {
            let aws = on.aws(stack)?;
            if cloudformation {
                crate::aws::cloudformation::destroy_with(&aws, stack, &on.stage, progress.as_ref()).await.map(|_| 1)?
            } else {
                crate::aws::discover::destroy_discovered(&aws, &store, &stack.name, &on.stage, progress.as_ref()).await?
            }
        } else {
            let outcome = crate::engine::run(target.as_ref(), &store, &stack.name, &on.stage, Mode::Destroy, &Options::default(), progress.as_ref()).await?;
            outcome.plan.count(crate::engine::plan::Action::Delete)
        };
        if ctx.json() {
            println!("{}", json!({ "stack": stack.name, "stage": on.stage, "target": target.name(), "deleted": deleted }));
        } else if on.local() {
            println!("stack `{}` stage `{}` (local): {deleted} resources deleted, server stopped, files removed", stack.name, on.stage);
        } else {
            println!("stack `{}` stage `{}`: {deleted} resources deleted", stack.name, on.stage);
        }
    }
    Ok(())
}
