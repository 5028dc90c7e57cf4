//! `openapi`: the REST API of each selected stack as one OpenAPI 3 document.

use super::{load_all, Context, Failure};
use crate::cli::StackArgs;

pub async fn run(ctx: &Context, stacks: &StackArgs, stage: &str, account: Option<String>, region: Option<String>) -> Result<(), Failure> {
    crate::naming::check_stage(stage).map_err(Failure::User)?;
    let loaded = load_all(ctx, stacks, stage)?;
    let mut printed = 0;
    for stack in &loaded {
        if stack.api.is_none() {
            continue;
        }
        let clients = crate::aws::client::Clients::from_env(region.as_deref().or(stack.region.as_deref())).await;
        let account = match &account {
            Some(a) => a.clone(),
            None => clients.account().await.map_err(|e| Failure::Operation(format!("{e}\n  hint: or pass --account and --region to print the document without credentials")))?,
        };
        let Some(document) = crate::engine::openapi::of_stack(stack, stage, &account, &clients.region).map_err(Failure::User)? else { continue };
        if ctx.json() {
            ctx.print_json(&serde_json::to_value(&document).map_err(|e| Failure::Operation(format!("cannot write the document: {e}")))?);
        } else {
            let yaml = serde_saphyr::to_string(&document).map_err(|e| Failure::Operation(format!("cannot write the document as YAML: {e}")))?;
            if printed > 0 {
                println!("---");
            }
            print!("{yaml}");
        }
        printed += 1;
    }
    if printed == 0 {
        return Err(Failure::User("no selected stack has an `api:`".into()));
    }
    Ok(())
}
