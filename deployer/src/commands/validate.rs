//! `validate`, `schema` and `build`: the stack files and the artifacts, no target.

use serde_json::json;

use super::{files, load_all, display_path, Context, Failure};
use crate::build::{self, BuildOptions};
use crate::cli::StackArgs;
use crate::diag::Diagnostics;
use crate::stack::{self, Stack};

pub fn schema() -> Result<(), Failure> {
    println!("{}", serde_json::to_string_pretty(&stack::json_schema()).unwrap_or_default());
    Ok(())
}

pub fn build(ctx: &Context, stacks: &StackArgs, args: &crate::cli::BuildArgs) -> Result<(), Failure> {
    let loaded = load_all(ctx, stacks, "dev")?;
    let opts = BuildOptions { host: false, release: true, allow_zigbuild: !args.no_zigbuild, verbose: ctx.verbose > 0, progress: ctx.terminal };
    build_and_report(ctx, &loaded, &opts)
}

pub fn validate(ctx: &Context, args: &StackArgs, stage: &str) -> Result<(), Failure> {
    let mut reports = Vec::new();
    let mut problems = Vec::new();
    for file in files(ctx, args)? {
        let file = display_path(&file);
        match stack::load(&file, stage) {
            Ok(s) => reports.push(s),
            Err(d) => problems.extend(d.0),
        }
    }
    if ctx.json() {
        let out = json!({
            "valid": problems.is_empty(),
            "stacks": reports.iter().map(|s| json!({
                "file": s.file, "stack": s.name,
                "functions": s.functions.iter().map(|f| &f.name).collect::<Vec<_>>(),
                "buckets": s.buckets.iter().map(|b| &b.name).collect::<Vec<_>>(),
                "routes": s.api.as_ref().map(|a| a.routes.iter().flat_map(|r| r.methods.iter().map(move |m| format!("{} {}", m.http_method, r.path))).collect::<Vec<_>>()).unwrap_or_default(),
            })).collect::<Vec<_>>(),
            "diagnostics": problems,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        for s in &reports {
            let routes = s.api.as_ref().map(|a| a.routes.iter().map(|r| r.methods.len()).sum::<usize>()).unwrap_or(0);
            println!(
                "ok  {}  stack `{}`: {} function(s), {} bucket(s), {} route(s)",
                s.file.display(),
                s.name,
                s.functions.len(),
                s.buckets.len(),
                routes
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else if ctx.json() {
        // Already printed as data; the exit code still says it failed.
        Err(Failure::Invalid(Diagnostics(Vec::new())))
    } else {
        Err(Failure::Invalid(Diagnostics(problems)))
    }
}

fn build_and_report(ctx: &Context, stacks: &[Stack], opts: &BuildOptions) -> Result<(), Failure> {
    let mut all = Vec::new();
    for s in stacks {
        let artifacts = build::build_stack(s, opts).map_err(|e| Failure::Operation(e.to_string()))?;
        all.extend(artifacts);
    }
    if ctx.json() {
        println!("{}", serde_json::to_string_pretty(&json!({ "artifacts": all })).unwrap_or_default());
    } else {
        for a in &all {
            println!(
                "{:<14} {:<16} {:>9} B  sha256 {}  glibc {}  {}",
                a.stack,
                a.function,
                a.size,
                &a.sha256[..16],
                a.glibc.as_deref().unwrap_or("none"),
                a.zip.display()
            );
        }
    }
    Ok(())
}

