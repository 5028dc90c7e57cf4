//! `status`: the outputs of a deployed stage, from its recorded state.

use serde_json::json;

use super::{Context, Failure, OnTarget};

pub async fn run(ctx: &Context, on: &OnTarget) -> Result<(), Failure> {
    let mut reports = Vec::new();
    for (stack, target) in &on.stacks {
        let recorded = on.recorded(stack, target.as_ref()).await?;
        let outputs = recorded.as_ref().map(|r| r.outputs()).unwrap_or_default();
        let about = target.about();
        if ctx.json() {
            reports.push(json!({
                "stack": stack.name, "stage": on.stage, "target": target.name(), "deployed": recorded.is_some(), "outputs": outputs,
                "server": about.as_ref().map(|(_, v)| v.clone()).unwrap_or_default(),
            }));
            continue;
        }
        let Some(r) = recorded else {
            println!("stack `{}` stage `{}`{}: not deployed", stack.name, on.stage, on.suffix());
            continue;
        };
        if on.local() {
            println!("stack `{}` stage `{}` (local): {} resources", stack.name, on.stage, r.resources.len());
        } else {
            println!(
                "stack `{}` stage `{}`: {} resources in account {} region {}",
                stack.name,
                on.stage,
                r.resources.len(),
                r.account.as_deref().unwrap_or("?"),
                r.region.as_deref().unwrap_or("?")
            );
        }
        for (k, v) in outputs {
            println!("  {k:<28} {v}");
        }
        if let Some((text, _)) = about {
            println!("  {:<28} {text}", "server");
        }
    }
    if ctx.json() {
        ctx.print_json(&json!(reports));
    }
    Ok(())
}
