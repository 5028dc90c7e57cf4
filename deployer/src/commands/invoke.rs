//! `invoke`: a deployed function with an event, or (`--http`) the stage's URL;
//! and `event api`, the API Gateway proxy event such a request becomes.
//!
//! A function behind a proxy integration expects API Gateway's event, not a
//! bare body: `invoke FN --data BODY` wraps the body into the event of the
//! function's route (`--raw` sends the payload unchanged).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Context, Failure, OnTarget};
use crate::local::gateway::{self, HttpRequest};
use crate::stack::model::{Integration, Route, Stack};

pub struct Args {
    pub function: Option<String>,
    pub data: Option<String>,
    pub event: Option<std::path::PathBuf>,
    pub http: Option<Vec<String>>,
    pub headers: Vec<String>,
    pub raw: bool,
    pub log: bool,
}

/// `K:V` / `K: V` header arguments.
pub fn parse_headers(args: &[String]) -> Result<Vec<(String, String)>, Failure> {
    args.iter()
        .map(|h| match h.split_once(':') {
            Some((k, v)) if !k.trim().is_empty() && k.trim().bytes().all(|b| b.is_ascii_graphic()) => Ok((k.trim().to_owned(), v.trim().to_owned())),
            _ => Err(Failure::User(format!("`{h}` is not a header\n  hint: write `--header 'Name: value'`, e.g. `--header 'Content-Type: text/plain'`"))),
        })
        .collect()
}

impl Args {
    /// The bytes of `--data` or of the file of `--event`.
    fn body(&self) -> Result<Option<Vec<u8>>, Failure> {
        match (&self.data, &self.event) {
            (Some(d), _) => Ok(Some(d.clone().into_bytes())),
            (None, Some(f)) => std::fs::read(f).map(Some).map_err(|e| Failure::User(format!("cannot read {}: {e}", f.display()))),
            (None, None) => Ok(None),
        }
    }
}

/// A payload Lambda's Invoke accepts: JSON.
fn json_payload(body: Option<Vec<u8>>) -> Result<Vec<u8>, Failure> {
    let payload = body.unwrap_or_else(|| b"{}".to_vec());
    if serde_json::from_slice::<Value>(&payload).is_err() {
        return Err(Failure::User("the event is not valid JSON (Lambda's Invoke takes a JSON event)\n  hint: pass --data '{\"key\": \"value\"}' or --event FILE; to send any body through the API, use --http METHOD PATH".into()));
    }
    Ok(payload)
}

/// The content type a body is sent with when no `--header` says: JSON when it parses as JSON.
fn default_content_type(body: &[u8]) -> &'static str {
    if serde_json::from_slice::<Value>(body).is_ok() { "application/json" } else { "text/plain; charset=utf-8" }
}

/// The routes and methods (verb, path) through which `function` is served by a proxy integration.
fn proxy_methods<'a>(stack: &'a Stack, function: &str) -> Vec<(&'a Route, &'a str)> {
    let Some(api) = &stack.api else { return Vec::new() };
    api.routes
        .iter()
        .flat_map(|r| r.methods.iter().filter(|m| m.function == function && m.integration == Integration::Proxy).map(move |m| (r, m.http_method.as_str())))
        .collect()
}

/// The API Gateway proxy event of a request to `path` (with its query string)
/// on a stage of `stack`: what API Gateway sends the function, with the
/// route's path parameters and the stage's variables. `None` when no route of
/// the stack serves the path.
pub fn api_event(stack: &Stack, stage: &str, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Option<Value> {
    let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
    let api = stack.api.as_ref()?;
    let (route, params) = gateway::find_route(api, path_only)?;
    let query: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect();
    let mut all_headers = headers.to_vec();
    if !body.is_empty() && !all_headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        all_headers.push(("Content-Type".into(), default_content_type(body).into()));
    }
    let req = HttpRequest {
        method: method.to_ascii_uppercase(),
        path: format!("/{stage}{path_only}"),
        query,
        headers: gateway::forwarded_headers(all_headers),
        body: body.to_vec(),
        source_ip: "127.0.0.1".into(),
    };
    Some(gateway::proxy_event(&req, stage, route, &params, &api.variables_for(stage), "stackctl-invoke", &uuid::Uuid::new_v4().to_string()))
}

pub async fn run(ctx: &Context, on: &OnTarget, args: Args) -> Result<(), Failure> {
    let headers = parse_headers(&args.headers)?;
    let body = args.body()?;
    if let Some(http) = &args.http {
        return invoke_http(ctx, on, args.function.as_deref(), &http[0], &http[1], &headers, body.unwrap_or_default()).await;
    }
    let Some(function) = &args.function else {
        return Err(Failure::User("name the function to invoke, e.g. `stackctl invoke paraphrase`, or call a route with `--http METHOD PATH`".into()));
    };
    let (stack, target) = on.defining(function)?;
    let served = proxy_methods(stack, function);
    // `--event FILE` is the event itself; `--data` is a request body for a
    // proxy function, unless it already is an API Gateway event.
    let as_event = args.event.is_some() || body.as_deref().and_then(|b| serde_json::from_slice::<Value>(b).ok()).is_some_and(|v| v.get("httpMethod").is_some() || v.get("requestContext").is_some());
    let payload = if args.raw || served.is_empty() || as_event {
        if !headers.is_empty() {
            return Err(Failure::User("`--header` goes with a request: use it with --http, or on a function behind a proxy route".into()));
        }
        json_payload(body)?
    } else {
        // A proxy function gets API Gateway's event, built around the body.
        let routes: Vec<String> = served.iter().map(|(r, m)| format!("{m} {}", r.path)).collect();
        let [(route, method)] = served[..] else {
            return Err(Failure::User(format!(
                "function `{function}` serves {} routes ({}): say which\n  hint: `stackctl invoke {function} --http METHOD PATH [--data BODY]`, or send the payload unchanged with --raw",
                routes.len(),
                routes.join(", ")
            )));
        };
        if route.path.contains('{') || method == "ANY" {
            return Err(Failure::User(format!(
                "function `{function}` serves `{method} {}`, which needs {}\n  hint: `stackctl invoke {function} --http {} {} [--data BODY]`",
                route.path,
                if method == "ANY" { "a method" } else { "path parameter values" },
                if method == "ANY" { "GET" } else { method },
                route.path
            )));
        }
        if !ctx.json() {
            eprintln!("sending {method} {} as API Gateway's proxy event (--raw sends the payload as is)", route.path);
        }
        let event = api_event(stack, &on.stage, method, &route.path, &headers, body.as_deref().unwrap_or_default());
        let event = event.ok_or_else(|| Failure::Operation(format!("no route of stack `{}` serves {}", stack.name, route.path)))?;
        event.to_string().into_bytes()
    };
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
    let out = target.invoke(&name, payload, args.log).await?;
    if let Some(log) = &out.log {
        eprintln!("{log}");
    }
    println!("{}", out.body);
    if let Some(err) = out.function_error {
        return Err(Failure::Operation(format!("function/{function} answered a function error ({err})")));
    }
    Ok(())
}

/// Where `METHOD path` is served among the selected stacks: the stack, the
/// route and its path parameters.
fn serving<'a>(stacks: impl Iterator<Item = &'a Stack>, function: Option<&str>, method: &str, path: &str) -> Result<(&'a Stack, &'a Route, BTreeMap<String, String>), Failure> {
    let path_only = path.split('?').next().unwrap_or(path);
    let stacks: Vec<&Stack> = stacks.collect();
    let found: Vec<(&Stack, &Route, BTreeMap<String, String>)> =
        stacks.iter().filter_map(|s| s.api.as_ref().and_then(|a| gateway::find_route(a, path_only)).map(|(r, p)| (*s, r, p))).collect();
    let verb = method.to_ascii_uppercase();
    let answering = |r: &Route| gateway::find_method(r, &verb).is_some() || (verb == "OPTIONS" && r.cors);
    let candidates: Vec<&(&Stack, &Route, BTreeMap<String, String>)> = found
        .iter()
        .filter(|(_, r, _)| answering(r))
        .filter(|(_, r, _)| function.is_none_or(|f| gateway::find_method(r, &verb).is_some_and(|m| m.function == f) || verb == "OPTIONS"))
        .collect();
    match candidates[..] {
        [(s, r, p)] => Ok((s, r, p.clone())),
        [] => {
            let routes: Vec<String> = stacks.iter().flat_map(|s| s.api.iter().flat_map(|a| a.routes.iter().flat_map(|r| r.methods.iter().map(move |m| format!("{} {}", m.http_method, r.path))))).collect();
            if let Some((s, r, _)) = found.first() {
                let methods: Vec<&str> = r.methods.iter().map(|m| m.http_method.as_str()).collect();
                return Err(Failure::User(match (function, gateway::find_method(r, &verb)) {
                    (Some(f), Some(m)) => format!("{verb} {} of stack `{}` is served by function `{}`, not `{f}`\n  hint: drop the function name, or invoke `{}`", r.path, s.name, m.function, m.function),
                    _ => format!("`{}` of stack `{}` has no {verb} method (it has {})\n  hint: API Gateway answers 403 Missing Authentication Token for it", r.path, s.name, methods.join(", ")),
                }));
            }
            let hint = match crate::diag::did_you_mean(&format!("{verb} {path_only}"), routes.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None if routes.is_empty() => "the selected stacks have no API; pick the stack with --stack".into(),
                None => format!("routes: {}", routes.join(", ")),
            };
            Err(Failure::User(format!("no selected stack serves `{verb} {path_only}`\n  hint: {hint}")))
        }
        _ => {
            let names: Vec<&str> = candidates.iter().map(|(s, _, _)| s.name.as_str()).collect();
            Err(Failure::User(format!("stacks {} all serve `{verb} {path_only}`\n  hint: pick one with --stack", names.join(", "))))
        }
    }
}

/// `--http METHOD PATH`: the stage serving `path`, called at its URL.
async fn invoke_http(ctx: &Context, on: &OnTarget, function: Option<&str>, method: &str, path: &str, headers: &[(String, String)], body: Vec<u8>) -> Result<(), Failure> {
    if !path.starts_with('/') {
        return Err(Failure::User(format!("`{path}` is not a path\n  hint: write it from the stage's root, e.g. `/notes/x1`")));
    }
    if let Some(f) = function {
        on.defining(f)?;
    }
    let (stack, _, _) = serving(on.stacks.iter().map(|(s, _)| s), function, method, path)?;
    let target = &on.stacks.iter().find(|(s, _)| s.name == stack.name).expect("selected").1;
    let state = on.recorded(stack, target.as_ref()).await?;
    let Some((state, base)) = state.and_then(|s| s.outputs().get("url").cloned().map(|u| (s, u))) else {
        let flag = if on.local() { " --target local" } else { "" };
        return Err(Failure::User(format!("stage `{}` of stack `{}` is not deployed\n  hint: run `stackctl deploy{flag} -s {} --stage {}` first", on.stage, stack.name, stack.name, on.stage)));
    };
    target.ready(&state).await?;
    let (method, full, path) = (method.to_ascii_uppercase(), format!("{base}{path}"), path.to_owned());
    let mut headers = headers.to_vec();
    if !body.is_empty() && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        headers.push(("Content-Type".into(), default_content_type(&body).into()));
    }
    let verbose = ctx.verbose > 0;
    tokio::task::spawn_blocking(move || http_call(&method, &full, &path, &headers, body, verbose)).await.map_err(|e| Failure::Operation(e.to_string()))?
}

/// Call `full` and print the answer: status (and with -v the headers) on
/// stderr, body on stdout as received; 4xx/5xx fail.
fn http_call(method: &str, full: &str, path: &str, headers: &[(String, String)], body: Vec<u8>, verbose: bool) -> Result<(), Failure> {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).allow_non_standard_methods(true).build().into();
    let mut request = ureq::http::Request::builder().method(method).uri(full);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let request = request.body(body).map_err(|e| Failure::User(format!("cannot build the request {method} {full}: {e}")))?;
    let response = agent.run(request).map_err(|e| Failure::Operation(format!("{method} {full}: {e}")))?;
    let status = response.status().as_u16();
    if verbose {
        for (k, v) in response.headers() {
            eprintln!("{k}: {}", v.to_str().unwrap_or("(binary)"));
        }
    }
    let mut response = response;
    let bytes = response.body_mut().with_config().limit(64 * 1024 * 1024).read_to_vec().map_err(|e| Failure::Operation(format!("{method} {full}: reading the body: {e}")))?;
    eprintln!("HTTP {status}");
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&bytes);
    if !bytes.is_empty() && !bytes.ends_with(b"\n") && std::str::from_utf8(&bytes).is_ok() {
        let _ = out.write_all(b"\n");
    }
    if status >= 400 { Err(Failure::Operation(format!("{method} {path} answered {status}"))) } else { Ok(()) }
}

/// `event api --method M --path P`: the proxy event of that request, to edit and
/// pass to `invoke --event FILE` (or to a unit test).
pub fn event_api(ctx: &Context, stacks: &[Stack], stage: &str, method: &str, path: &str, headers: &[String], body: Option<&str>) -> Result<(), Failure> {
    let headers = parse_headers(headers)?;
    if !path.starts_with('/') {
        return Err(Failure::User(format!("`{path}` is not a path\n  hint: write it from the stage's root, e.g. `/notes/x1`")));
    }
    let (stack, _, _) = serving(stacks.iter(), None, method, path)?;
    let event = api_event(stack, stage, method, path, &headers, body.unwrap_or_default().as_bytes());
    let _ = ctx;
    println!("{}", serde_json::to_string_pretty(&event).unwrap_or_default());
    Ok(())
}

/// `event schedule FN`: the Scheduled Event EventBridge sends the function
/// (account and region as the local cloud's, unless the stack names a region).
pub fn event_schedule(stacks: &[Stack], stage: &str, function: &str) -> Result<(), Failure> {
    let Some(stack) = stacks.iter().find(|s| s.function(function).is_some()) else {
        let names: Vec<&str> = stacks.iter().flat_map(|s| s.functions.iter().map(|f| f.name.as_str())).collect();
        let hint = crate::diag::did_you_mean(function, names.iter().copied()).map(|s| format!("did you mean `{s}`?")).unwrap_or_else(|| format!("functions: {}", names.join(", ")));
        return Err(Failure::User(format!("no function `{function}` in the selected stacks\n  hint: {hint}")));
    };
    let f = stack.function(function).expect("found");
    if f.schedules.is_empty() {
        return Err(Failure::User(format!("function `{function}` has no `schedule:`\n  hint: add e.g. `schedule: rate(1 hour)` to it in {}", stack.file.display())));
    }
    let region = stack.region.clone().unwrap_or_else(|| crate::local::cloud::DEFAULT_REGION.to_owned());
    let rule = crate::naming::schedule_rule_name(&stack.name, stage, function, 1);
    let rule_arn = format!("arn:aws:events:{region}:{}:rule/{rule}", crate::local::cloud::ACCOUNT);
    let event = crate::local::server::schedule::scheduled_event(&rule_arn, chrono::Utc::now(), &region);
    println!("{}", serde_json::to_string_pretty(&event).unwrap_or_default());
    Ok(())
}
