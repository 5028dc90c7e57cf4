//! `invoke`: a deployed function with an event, or (`--http`) the stage's URL.

use super::{Context, Failure, OnTarget};

pub struct Args {
    pub function: Option<String>,
    pub data: Option<String>,
    pub event: Option<std::path::PathBuf>,
    pub http: Option<Vec<String>>,
    pub log: bool,
}

impl Args {
    /// The event: `--data`, the file of `--event`, or `{}`; it must be JSON.
    fn payload(&self) -> Result<String, Failure> {
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
}

pub async fn run(ctx: &Context, on: &OnTarget, args: Args) -> Result<(), Failure> {
    let _ = ctx;
    let payload = args.payload()?;
    if let Some(http) = &args.http {
        return invoke_http(on, &http[0], &http[1], &payload).await;
    }
    let Some(function) = &args.function else {
        return Err(Failure::User("name the function to invoke, e.g. `stackctl invoke paraphrase`".into()));
    };
    let (stack, target) = on.defining(function)?;
    let state = on.recorded(stack, target.as_ref()).await?;
    let Some((state, name)) = state.and_then(|s| s.function_physical(function).map(|n| (s, n))) else {
        let flag = if on.local() { " --target local" } else { "" };
        return Err(Failure::User(format!(
            "stage `{}` of stack `{}` is not deployed{}\n  hint: run `stackctl deploy{flag} --stage {}` first",
            on.stage,
            stack.name,
            if on.local() { " locally" } else { "" },
            on.stage
        )));
    };
    target.ready(&state).await?;
    let out = target.invoke(&name, payload.into_bytes(), args.log).await?;
    if let Some(log) = &out.log {
        eprintln!("{log}");
    }
    println!("{}", out.body);
    if let Some(err) = out.function_error {
        return Err(Failure::Operation(format!("function/{function} answered a function error ({err})")));
    }
    Ok(())
}

/// `--http METHOD PATH`: the stage serving `path`, called at its URL.
async fn invoke_http(on: &OnTarget, method: &str, path: &str, payload: &str) -> Result<(), Failure> {
    let route = path.split('?').next();
    let Some((stack, target)) = on.stacks.iter().find(|(s, _)| s.api.as_ref().is_some_and(|a| a.routes.iter().any(|r| route == Some(r.path.as_str())))) else {
        return Err(Failure::User(format!("no selected stack serves `{path}`\n  hint: pick the stack with --stack")));
    };
    let state = on.recorded(stack, target.as_ref()).await?;
    let Some((state, base)) = state.and_then(|s| s.outputs().get("url").cloned().map(|u| (s, u))) else {
        return Err(Failure::User(format!("no deployed stage `{}` serves `{path}`\n  hint: deploy it, or pick the stack with --stack", on.stage)));
    };
    target.ready(&state).await?;
    let (method, full, path, payload) = (method.to_owned(), format!("{base}{path}"), path.to_owned(), payload.to_owned());
    tokio::task::spawn_blocking(move || http_call(&method, &full, &path, &payload)).await.map_err(|e| Failure::Operation(e.to_string()))?
}

/// Call `full` and print the answer: status on stderr, body on stdout; 4xx/5xx fail.
fn http_call(method: &str, full: &str, path: &str, payload: &str) -> Result<(), Failure> {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let response = match method.to_ascii_uppercase().as_str() {
        "GET" => agent.get(full).call(),
        "HEAD" => agent.head(full).call(),
        "DELETE" => agent.delete(full).call(),
        "OPTIONS" => agent.options(full).call(),
        "POST" => agent.post(full).header("content-type", "application/json").send(payload.as_bytes()),
        "PUT" => agent.put(full).header("content-type", "application/json").send(payload.as_bytes()),
        "PATCH" => agent.patch(full).header("content-type", "application/json").send(payload.as_bytes()),
        other => return Err(Failure::User(format!("unknown HTTP method `{other}`"))),
    };
    let mut response = response.map_err(|e| Failure::Operation(format!("{method} {full}: {e}")))?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    eprintln!("HTTP {status}");
    println!("{body}");
    if status >= 400 { Err(Failure::Operation(format!("{method} {path} answered {status}"))) } else { Ok(()) }
}
