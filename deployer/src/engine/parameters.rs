//! Parameter values, one rule for every engine and target: the deployer's
//! environment, else the default. A `generate: true` parameter without a value
//! keeps the value the deployed functions already have (read back from the
//! target, never stored in state), or gets a new random one on the first deploy.

use std::collections::BTreeMap;

use super::error::EngineError;
use super::target::Target;
use crate::stack::model::EnvValue;
use crate::stack::Stack;

/// `deployed`: the stage has a recorded state, so its functions may hold values.
pub async fn resolve(target: &dyn Target, stack: &Stack, stage: &str, deployed: bool) -> Result<BTreeMap<String, String>, EngineError> {
    let mut out = BTreeMap::new();
    for p in &stack.parameters {
        if let Some(v) = std::env::var(&p.env).ok().filter(|v| !v.is_empty()) {
            out.insert(p.name.clone(), v);
        } else if p.generate {
            let existing = if deployed { deployed_value(target, stack, stage, &p.name).await? } else { None };
            out.insert(p.name.clone(), existing.unwrap_or_else(random_secret));
        } else if let Some(d) = &p.default {
            out.insert(p.name.clone(), d.clone());
        } else {
            return Err(EngineError::Input(format!("parameter `{}` has no value\n  hint: set the environment variable {} before deploying", p.name, p.env)));
        }
    }
    Ok(out)
}

fn random_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// The value a deployed function holds for `parameter` (through the environment
/// variable it is bound to), from the first function that has one.
async fn deployed_value(target: &dyn Target, stack: &Stack, stage: &str, parameter: &str) -> Result<Option<String>, EngineError> {
    for f in &stack.functions {
        let Some((var, _)) = f.environment.iter().find(|(_, v)| matches!(v, EnvValue::Parameter(p) if p == parameter)) else {
            continue;
        };
        let name = crate::naming::function_name(&stack.name, stage, &f.name);
        if let Some(v) = target.deployed_env(&name, var).await? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}
