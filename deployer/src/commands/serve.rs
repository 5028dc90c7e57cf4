//! `serve`: deploy to the local cloud and serve in the foreground; `--watch`
//! rebuilds and reloads what changed.

use std::path::PathBuf;
use std::time::Duration;

use super::{build_with, load_all, Context, Failure};
use crate::cli::{BuildArgs, StackArgs};
use crate::engine::plan;
use crate::engine::target::Target;
use crate::engine::{Mode, Options};
use crate::local::cloud;
use crate::local::server::{self, process};
use crate::local::target::{LocalTarget, Serving};
use crate::stack::Stack;

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
pub async fn run(ctx: &Context, args: &StackArgs, stage: &str, build: &BuildArgs, port: u16, watch: bool) -> Result<(), Failure> {
    crate::naming::check_stage(stage).map_err(Failure::User)?;
    let mut stacks = load_all(ctx, args, stage)?;
    let stage = stage.to_owned();
    let ports: Vec<u16> = (0..stacks.len()).map(|i| port.saturating_add(i as u16)).collect();
    let progress = ctx.progress();
    let deploy_all = async |stacks: &[Stack]| -> Result<Vec<bool>, Failure> {
        let refs: Vec<&Stack> = stacks.iter().collect();
        let artifacts = build_with(ctx, &refs, build, true)?;
        let mut changed = Vec::new();
        for (stack, port) in stacks.iter().zip(&ports) {
            let target = LocalTarget::new(&ctx.project, stack, &stage, Serving { no_server: true, port: Some(*port) });
            let store = target.store(stack, &stage);
            let outcome = crate::engine::run(&target, &store, &stack.name, &stage, Mode::Deploy { stack, artifacts: &artifacts }, &Options::default(), progress.as_ref()).await?;
            if !outcome.plan.is_empty() {
                eprint!("{}", plan::render(&outcome.plan));
            }
            changed.push(!outcome.plan.is_empty());
        }
        Ok(changed)
    };
    // One server per stage: a background one (from `deploy`) steps aside.
    for stack in &stacks {
        process::stop(&cloud::stage_dir(&ctx.project, &stack.name, &stage)).map_err(Failure::Operation)?;
    }
    deploy_all(&stacks).await?;
    {
        let mut servers = Vec::new();
        for (stack, port) in stacks.iter().zip(&ports) {
            let dir = cloud::stage_dir(&ctx.project, &stack.name, &stage);
            let s = server::start(dir.clone(), *port).await.map_err(|e| Failure::Operation(format!("cannot serve on 127.0.0.1:{port}: {e}\n  hint: pick another port with --port")))?;
            process::record_foreground(&dir, &s).map_err(|e| Failure::Operation(e.to_string()))?;
            println!("stack `{}` stage `{stage}`: http://127.0.0.1:{port}/{stage}", stack.name);
            servers.push(s);
        }
        eprintln!("serving{} (Ctrl-C to stop)", if watch { ", watching the sources" } else { "" });
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
            eprintln!("change detected: rebuilding");
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
                eprintln!("still serving the previous version");
                continue;
            }
            stacks = reloaded;
            let snapshot = stacks.clone();
            let result = deploy_all(&snapshot).await;
            match result {
                Err(e) => {
                    eprintln!("{}", match e {
                        Failure::User(m) | Failure::Operation(m) => m,
                        Failure::Invalid(d) => d.to_string(),
                    });
                    eprintln!("still serving the previous version");
                }
                Ok(changed) => {
                    if !changed.iter().any(|c| *c) {
                        eprintln!("no change to deploy (the binaries are identical)");
                    }
                    for (s, changed) in servers.iter().zip(changed) {
                        if changed {
                            match s.reload().await {
                                Ok(summary) => eprintln!("{summary}"),
                                Err(e) => eprintln!("reload failed: {e}"),
                            }
                        }
                    }
                }
            }
        }
    }
}
