//! The commands on the `local` target: deploy (and plan), status, invoke,
//! destroy, serve, and the hidden `local-server` the deploy starts.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::cli::BuildArgs;
use crate::cloud::InvokeArgs;
use crate::commands::{build_with, json_out, AwsTarget, Context, Failure};
use crate::engine::plan;
use crate::local::engine::{self, LocalError, Options};
use crate::local::{cloud, server};
use crate::stack::Stack;

fn failure(e: LocalError) -> Failure {
    match e {
        LocalError::Input(m) => Failure::User(m),
        LocalError::State(e) => Failure::User(e.to_string()),
        other => Failure::Operation(other.to_string()),
    }
}

fn display(p: &std::path::Path) -> String {
    p.strip_prefix("./").unwrap_or(p).display().to_string()
}

/// `deploy --target local` (and `plan`): build for this machine, plan, apply,
/// make sure the stage's server runs the new version, print the URL.
pub fn deploy(ctx: &Context, target: &AwsTarget, build: &BuildArgs, dry_run: bool) -> Result<(), Failure> {
    let artifacts = build_with(ctx, &target.stacks, build, true)?;
    let mut reports = Vec::new();
    for stack in &target.stacks {
        let started = std::time::Instant::now();
        let opts = Options { dry_run, progress: !json_out(ctx), ..Default::default() };
        if !dry_run && !json_out(ctx) {
            ctx.note(format!("deploying stack `{}` stage `{}` to the local cloud", stack.name, target.stage));
        }
        let outcome = engine::deploy(stack, &target.stage, &artifacts, &ctx.project, &opts).map_err(failure)?;
        let dir = cloud::stage_dir(&ctx.project, &stack.name, &target.stage);
        let server = if dry_run { None } else { server::running(&dir) };
        if json_out(ctx) {
            reports.push(json!({
                "stack": stack.name, "stage": target.stage, "target": "local", "applied": !dry_run,
                "plan": outcome.plan.changes().collect::<Vec<_>>(),
                "depth": outcome.plan.depth(),
                "url": outcome.url,
                "server": server.as_ref().map(|s| json!({ "pid": s.pid, "port": s.port, "log": display(&server::log_path(&dir)) })),
            }));
            continue;
        }
        println!("stack `{}` stage `{}` (local)", stack.name, target.stage);
        print!("{}", plan::render(&outcome.plan));
        if dry_run {
            continue;
        }
        if outcome.plan.is_empty() {
            println!("nothing to do ({:.2}s)", started.elapsed().as_secs_f64());
        } else {
            println!("deployed in {:.2}s", started.elapsed().as_secs_f64());
        }
        if let Some(url) = &outcome.url {
            println!("invoke URL: {url}");
        }
        if let Some(s) = server {
            println!("local server: pid {}, log {}", s.pid, display(&server::log_path(&dir)));
        }
    }
    if json_out(ctx) {
        println!("{}", serde_json::to_string_pretty(&reports).unwrap_or_default());
    }
    Ok(())
}

fn recorded(ctx: &Context, stack: &Stack, stage: &str) -> Result<Option<crate::engine::state::State>, Failure> {
    crate::engine::state::load(&cloud::state_path(&ctx.project, &stack.name, stage), &stack.name, stage, "local").map_err(|e| Failure::User(e.to_string()))
}

pub fn status(ctx: &Context, target: &AwsTarget) -> Result<(), Failure> {
    let mut reports = Vec::new();
    for stack in &target.stacks {
        let recorded = recorded(ctx, stack, &target.stage)?;
        let outputs = recorded.as_ref().map(crate::engine::deploy::outputs).unwrap_or_default();
        let dir = cloud::stage_dir(&ctx.project, &stack.name, &target.stage);
        let server = server::running(&dir);
        if json_out(ctx) {
            reports.push(json!({
                "stack": stack.name, "stage": target.stage, "target": "local", "deployed": recorded.is_some(), "outputs": outputs,
                "server": server.as_ref().map(|s| json!({ "pid": s.pid, "port": s.port })),
            }));
            continue;
        }
        match recorded {
            None => println!("stack `{}` stage `{}` (local): not deployed", stack.name, target.stage),
            Some(r) => {
                println!("stack `{}` stage `{}` (local): {} resources", stack.name, target.stage, r.resources.len());
                for (k, v) in outputs {
                    println!("  {k:<28} {v}");
                }
                match server {
                    Some(s) => println!("  {:<28} pid {} on port {}, log {}", "server", s.pid, s.port, display(&server::log_path(&dir))),
                    None => println!("  {:<28} not running (`stackctl deploy --target local` starts it)", "server"),
                }
            }
        }
    }
    if json_out(ctx) {
        println!("{}", serde_json::to_string_pretty(&reports).unwrap_or_default());
    }
    Ok(())
}

/// `destroy --target local`: stop the server, delete every resource, remove the
/// stage's files. The local cloud is this machine's sandbox: no confirmation.
pub fn destroy(ctx: &Context, target: &AwsTarget, _yes: bool) -> Result<(), Failure> {
    for stack in &target.stacks {
        let outcome = engine::destroy(stack, &target.stage, &ctx.project, &Options { progress: !json_out(ctx), ..Default::default() }).map_err(failure)?;
        let deleted = outcome.plan.count(plan::Action::Delete);
        if json_out(ctx) {
            println!("{}", json!({ "stack": stack.name, "stage": target.stage, "target": "local", "deleted": deleted }));
        } else {
            println!("stack `{}` stage `{}` (local): {deleted} resources deleted, server stopped, files removed", stack.name, target.stage);
        }
    }
    Ok(())
}

/// The running server of a deployed stage (started again if it died).
fn server_of(ctx: &Context, stack: &Stack, stage: &str) -> Result<(cloud::ServerFile, crate::engine::state::State), Failure> {
    let Some(state) = recorded(ctx, stack, stage)? else {
        return Err(Failure::User(format!("stage `{stage}` of stack `{}` is not deployed locally\n  hint: run `stackctl deploy --target local --stage {stage}` first", stack.name)));
    };
    let dir = cloud::stage_dir(&ctx.project, &stack.name, stage);
    if let Some(s) = server::running(&dir) {
        return Ok((s, state));
    }
    let port = state.resources.get("deployment").and_then(|d| d.outputs.get("port")).and_then(|p| p.parse().ok()).unwrap_or(0);
    if port == 0 {
        return Err(Failure::User(format!("stage `{stage}` of stack `{}` has no local server port recorded\n  hint: run `stackctl deploy --target local --stage {stage}`", stack.name)));
    }
    ctx.note(format!("starting the local server of stack `{}` stage `{stage}` again", stack.name));
    server::ensure(&dir, port, false).map_err(Failure::Operation)?;
    let s = server::running(&dir).ok_or_else(|| Failure::Operation("the local server did not start".into()))?;
    Ok((s, state))
}

pub fn invoke(ctx: &Context, target: &AwsTarget, args: InvokeArgs) -> Result<(), Failure> {
    let payload = args.payload()?;
    if let Some(http) = &args.http {
        let (method, path) = (&http[0], &http[1]);
        let stack = target
            .stacks
            .iter()
            .find(|s| s.api.as_ref().is_some_and(|a| a.routes.iter().any(|r| path.split('?').next() == Some(r.path.as_str()))))
            .ok_or_else(|| Failure::User(format!("no selected stack serves `{path}`\n  hint: pick the stack with --stack")))?;
        let (_, state) = server_of(ctx, stack, &target.stage)?;
        let base = engine::url_of(&state).ok_or_else(|| Failure::User(format!("stack `{}` has no API deployed", stack.name)))?;
        return crate::cloud::http_call(method, &format!("{base}{path}"), path, &payload);
    }
    let (function, stack) = args.function_of(target)?;
    let (server, state) = server_of(ctx, stack, &target.stage)?;
    let Some(name) = crate::engine::deploy::function_physical(&state, function) else {
        return Err(Failure::User(format!("function `{function}` is not deployed in stage `{}`\n  hint: run `stackctl deploy --target local`", target.stage)));
    };
    let mut r = server::control(&server, &format!("/__stackctl/invoke/{name}"))
        .config()
        .timeout_global(Some(Duration::from_secs(960)))
        .build()
        .send(payload.as_bytes())
        .map_err(|e| Failure::Operation(format!("function/{function}: the local server did not answer: {e}")))?;
    let error = r.headers().get("x-amz-function-error").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    if args.log {
        let log = std::fs::read_to_string(server::log_path(&cloud::stage_dir(&ctx.project, &stack.name, &target.stage))).unwrap_or_default();
        let prefix = format!("[{name}] ");
        let lines: Vec<&str> = log.lines().filter(|l| l.starts_with(&prefix)).collect();
        for l in &lines[lines.len().saturating_sub(20)..] {
            eprintln!("{l}");
        }
    }
    println!("{body}");
    if status != 200 {
        return Err(Failure::Operation(format!("function/{function}: the local Lambda answered {status}")));
    }
    if let Some(err) = error {
        return Err(Failure::Operation(format!("function/{function} answered a function error ({err})")));
    }
    Ok(())
}

/// `stackctl local-server`: run the background server until signalled.
pub fn local_server(dir: PathBuf, port: u16) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| Failure::Operation(e.to_string()))?;
    rt.block_on(server::run_background(dir, port)).map_err(|e| Failure::Operation(format!("local server: {e}")))
}

/// Everything under the stacks' workspace that can change a build: sources,
/// manifests, the lock file, stack files (not `target/`, `.stackctl/`, `.git/`).
fn source_fingerprint(roots: &[PathBuf]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut stack = roots.to_vec();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    stack.push(e.path());
                }
            } else if [".rs", ".toml", ".lock", ".yaml", ".yml"].iter().any(|x| name.ends_with(x)) {
                e.path().hash(&mut h);
                meta.len().hash(&mut h);
                meta.modified().ok().hash(&mut h);
            }
        }
    }
    h.finish()
}

/// `stackctl serve`: deploy to the local cloud and serve in the foreground.
pub fn serve(ctx: &Context, target: &AwsTarget, build: &BuildArgs, port: u16, watch: bool) -> Result<(), Failure> {
    let mut stacks = target.stacks.clone();
    let stage = target.stage.clone();
    let ports: Vec<u16> = (0..stacks.len()).map(|i| port.saturating_add(i as u16)).collect();
    let deploy_all = |stacks: &[Stack]| -> Result<Vec<bool>, Failure> {
        let artifacts = build_with(ctx, stacks, build, true)?;
        let mut changed = Vec::new();
        for (stack, port) in stacks.iter().zip(&ports) {
            let opts = Options { progress: true, no_server: true, port: Some(*port), ..Default::default() };
            let outcome = engine::deploy(stack, &stage, &artifacts, &ctx.project, &opts).map_err(failure)?;
            if !outcome.plan.is_empty() {
                print!("{}", plan::render(&outcome.plan));
            }
            changed.push(!outcome.plan.is_empty());
        }
        Ok(changed)
    };
    // One server per stage: a background one (from `deploy`) steps aside.
    for stack in &stacks {
        server::stop(&cloud::stage_dir(&ctx.project, &stack.name, &stage)).map_err(Failure::Operation)?;
    }
    deploy_all(&stacks)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| Failure::Operation(e.to_string()))?;
    rt.block_on(async {
        let mut servers = Vec::new();
        for (stack, port) in stacks.iter().zip(&ports) {
            let dir = cloud::stage_dir(&ctx.project, &stack.name, &stage);
            let s = server::start(dir.clone(), *port).await.map_err(|e| Failure::Operation(format!("cannot serve on 127.0.0.1:{port}: {e}\n  hint: pick another port with --port")))?;
            server::record_foreground(&dir, &s).map_err(|e| Failure::Operation(e.to_string()))?;
            println!("stack `{}` stage `{stage}`: http://127.0.0.1:{port}/{stage}", stack.name);
            servers.push(s);
        }
        println!("serving{} (Ctrl-C to stop)", if watch { ", watching the sources" } else { "" });
        if !watch {
            std::future::pending::<()>().await;
        }
        let roots: Vec<PathBuf> = {
            let mut r: Vec<PathBuf> = stacks.iter().map(|s| s.root.clone()).collect();
            r.extend(stacks.iter().filter_map(|s| s.file.parent().map(|p| p.to_path_buf())));
            r.sort();
            r.dedup();
            r
        };
        let mut last = source_fingerprint(&roots);
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = source_fingerprint(&roots);
            if now == last {
                continue;
            }
            // Let an editor finish writing.
            tokio::time::sleep(Duration::from_millis(200)).await;
            last = source_fingerprint(&roots);
            println!("change detected: rebuilding");
            // The stack files may have changed too.
            let mut reloaded = Vec::new();
            let mut valid = true;
            for s in &stacks {
                match crate::stack::load(&s.file, &stage) {
                    Ok(s) => reloaded.push(s),
                    Err(d) => {
                        eprintln!("{d}");
                        valid = false;
                    }
                }
            }
            if !valid {
                println!("still serving the previous version");
                continue;
            }
            stacks = reloaded;
            let snapshot = stacks.clone();
            let result = tokio::task::block_in_place(|| deploy_all(&snapshot));
            match result {
                Err(e) => {
                    eprintln!("{}", match e {
                        Failure::User(m) | Failure::Operation(m) => m,
                        Failure::Invalid(d) => d.to_string(),
                    });
                    println!("still serving the previous version");
                }
                Ok(changed) => {
                    if !changed.iter().any(|c| *c) {
                        println!("no change to deploy (the binaries are identical)");
                    }
                    for (s, changed) in servers.iter().zip(changed) {
                        if changed {
                            match s.reload().await {
                                Ok(summary) => println!("{summary}"),
                                Err(e) => eprintln!("reload failed: {e}"),
                            }
                        }
                    }
                }
            }
        }
    })
}
