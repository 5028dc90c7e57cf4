//! What each command does, given parsed arguments. Data goes to stdout (text or
//! JSON), progress and diagnostics to stderr.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::build::{self, BuildOptions};
use crate::cloud;
use crate::cli::{BuildArgs, Cli, Command, OutputFormat, StackArgs, StageArgs, Target};
use crate::diag::Diagnostics;
use crate::stack::{self, Selection, Stack};

/// How a command failed; decides the exit code.
#[derive(Debug)]
pub enum Failure {
    /// The input is wrong (stack file, flags): exit 2.
    User(String),
    /// The operation failed (build, cloud): exit 1.
    Operation(String),
    /// Invalid stack files, already rendered per file: exit 2.
    Invalid(Diagnostics),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Operation(_) => 1,
            Failure::User(_) | Failure::Invalid(_) => 2,
        }
    }
}

/// Settings shared by all commands.
pub struct Context {
    pub output: OutputFormat,
    pub verbose: u8,
    pub project: PathBuf,
    /// Colours on stderr: a terminal, and NO_COLOR unset.
    pub color: bool,
}

impl Context {
    pub fn from_cli(cli: &Cli) -> Context {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Context {
            output: cli.global.output,
            verbose: cli.global.verbose,
            project: cli.global.project.clone().unwrap_or_else(|| PathBuf::from(".")),
            color,
        }
    }

    fn json(&self) -> bool {
        self.output == OutputFormat::Json
    }

    /// A status line on stderr.
    pub fn note(&self, text: impl AsRef<str>) {
        if self.color {
            eprintln!("\x1b[2m{}\x1b[0m", text.as_ref());
        } else {
            eprintln!("{}", text.as_ref());
        }
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    let ctx = Context::from_cli(&cli);
    match cli.command {
        Command::Validate { stacks, stage } => validate(&ctx, &stacks, &stage),
        Command::Schema => {
            let schema = stack::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema).unwrap_or_default());
            Ok(())
        }
        Command::Build { stacks, build } => {
            let loaded = load_all(&ctx, &stacks, "dev")?;
            let opts = BuildOptions {
                host: false,
                release: true,
                allow_zigbuild: !build.no_zigbuild,
                verbose: ctx.verbose > 0,
                progress: std::io::stderr().is_terminal(),
            };
            build_and_report(&ctx, &loaded, &opts)
        }
        Command::Plan { stacks, stage } => {
            let (kind, target) = on_target(&ctx, &stacks, &stage)?;
            if kind == Target::Local {
                return crate::localcmd::deploy(&ctx, &target, &BuildArgs::default(), true);
            }
            cloud::plan_or_deploy(&ctx, &target, &BuildArgs::default(), true)
        }
        Command::Deploy { stacks, stage, build, dry_run, engine } => {
            let (kind, target) = on_target(&ctx, &stacks, &stage)?;
            if kind == Target::Local {
                if engine == crate::cli::Engine::Cloudformation {
                    return Err(Failure::User("the local cloud has no CloudFormation\n  hint: drop `--engine cloudformation`, or use `--target aws`".into()));
                }
                return crate::localcmd::deploy(&ctx, &target, &build, dry_run);
            }
            match engine {
                crate::cli::Engine::Sdk => cloud::plan_or_deploy(&ctx, &target, &build, dry_run),
                crate::cli::Engine::Cloudformation => cloud::deploy_cloudformation(&ctx, &target, &build, dry_run),
            }
        }
        Command::Invoke { function, stacks, stage, data, event, http, log } => {
            let (kind, target) = on_target(&ctx, &stacks, &stage)?;
            if kind == Target::Local {
                return crate::localcmd::invoke(&ctx, &target, cloud::InvokeArgs { function, data, event, http, log });
            }
            cloud::invoke(&ctx, &target, cloud::InvokeArgs { function, data, event, http, log })
        }
        Command::Destroy { stacks, stage, discover, yes, engine } => {
            let (kind, target) = on_target(&ctx, &stacks, &stage)?;
            if kind == Target::Local {
                return crate::localcmd::destroy(&ctx, &target, yes);
            }
            cloud::destroy(&ctx, &target, discover, yes, engine == crate::cli::Engine::Cloudformation)
        }
        Command::Synth { stacks, stage, build, account, region } => {
            crate::naming::check_stage(&stage.stage).map_err(Failure::User)?;
            let loaded = load_all(&ctx, &stacks, &stage.stage)?;
            let target = AwsTarget { stacks: loaded, stage: stage.stage.clone() };
            cloud::synth(&ctx, &target, &build, account, region)
        }
        Command::Status { stacks, stage } => {
            let (kind, target) = on_target(&ctx, &stacks, &stage)?;
            if kind == Target::Local {
                return crate::localcmd::status(&ctx, &target);
            }
            cloud::status(&ctx, &target)
        }
        Command::Serve { stacks, stage, port, watch, build } => {
            crate::naming::check_stage(&stage).map_err(Failure::User)?;
            let loaded = load_all(&ctx, &stacks, &stage)?;
            crate::localcmd::serve(&ctx, &AwsTarget { stacks: loaded, stage }, &build, port, watch)
        }
        Command::LocalServer { dir, port } => crate::localcmd::local_server(dir, port),
    }
}

fn selection(args: &StackArgs) -> Selection {
    match (&args.stack, &args.file) {
        (_, Some(f)) => Selection::File(f.clone()),
        (Some(n), None) => Selection::Named(n.clone()),
        (None, None) => Selection::All,
    }
}

fn files(ctx: &Context, args: &StackArgs) -> Result<Vec<PathBuf>, Failure> {
    stack::select(&ctx.project, &selection(args)).map_err(Failure::User)
}

/// Load and validate every selected stack; all problems of all files are reported.
fn load_all(ctx: &Context, args: &StackArgs, stage: &str) -> Result<Vec<Stack>, Failure> {
    let mut stacks = Vec::new();
    let mut problems = Vec::new();
    for file in files(ctx, args)? {
        match stack::load(&display_path(&file), stage) {
            Ok(s) => stacks.push(s),
            Err(d) => problems.extend(d.0),
        }
    }
    if problems.is_empty() { Ok(stacks) } else { Err(Failure::Invalid(Diagnostics(problems))) }
}

/// `./stacks/x.yaml` → `stacks/x.yaml`: shorter, and what users typed.
fn display_path(p: &Path) -> PathBuf {
    p.strip_prefix(".").map(Path::to_path_buf).unwrap_or_else(|_| p.to_path_buf())
}

fn validate(ctx: &Context, args: &StackArgs, stage: &str) -> Result<(), Failure> {
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

/// Which target a command runs against, and why (printed as its first line).
pub fn resolve_target(arg: Option<Target>) -> (Target, String) {
    if let Some(t) = arg {
        let from_env = std::env::var("STACKCTL_TARGET").is_ok();
        return (t, if from_env { "from STACKCTL_TARGET".into() } else { "from --target".into() });
    }
    match aws_credentials_hint() {
        Some(why) => (Target::Aws, format!("AWS credentials found ({why})")),
        None => (Target::Local, "no AWS credentials configured".into()),
    }
}

/// Where AWS credentials would come from, without any network probe.
fn aws_credentials_hint() -> Option<String> {
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return Some("AWS_ACCESS_KEY_ID".into());
    }
    if let Some(p) = std::env::var_os("AWS_PROFILE") {
        return Some(format!("AWS_PROFILE={}", p.to_string_lossy()));
    }
    if std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
        return Some("AWS_WEB_IDENTITY_TOKEN_FILE".into());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let creds = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from).unwrap_or(home.join(".aws/credentials"));
    if std::fs::read_to_string(&creds).is_ok_and(|t| t.contains("aws_access_key_id")) {
        return Some(creds.display().to_string());
    }
    let config = std::env::var_os("AWS_CONFIG_FILE").map(PathBuf::from).unwrap_or(home.join(".aws/config"));
    if std::fs::read_to_string(&config)
        .is_ok_and(|t| ["sso_session", "sso_start_url", "credential_process", "aws_access_key_id"].iter().any(|k| t.contains(k)))
    {
        return Some(config.display().to_string());
    }
    None
}

/// The stacks and stage a cloud command works on, once the target is known to be AWS.
pub struct AwsTarget {
    pub stacks: Vec<Stack>,
    pub stage: String,
}

/// The target, stacks and stage of a command that touches a deployment; the
/// first stderr line names the target and why.
fn on_target(ctx: &Context, stacks: &StackArgs, stage: &StageArgs) -> Result<(Target, AwsTarget), Failure> {
    let (target, why) = resolve_target(stage.target);
    ctx.note(format!("target: {} ({why})", match target { Target::Aws => "aws", Target::Local => "local" }));
    crate::naming::check_stage(&stage.stage).map_err(Failure::User)?;
    let mut loaded = load_all(ctx, stacks, &stage.stage)?;
    if let Some(bucket) = &stage.state_bucket {
        if target == Target::Local {
            return Err(Failure::User("`--state-bucket` applies to the aws target; the local cloud keeps its state under .stackctl/local/".into()));
        }
        for s in &mut loaded {
            s.state = crate::stack::model::StateConfig { backend: crate::stack::model::StateBackend::S3, bucket: Some(bucket.clone()), prefix: "stackctl/".into() };
        }
    }
    Ok((target, AwsTarget { stacks: loaded, stage: stage.stage.clone() }))
}

pub(crate) fn json_out(ctx: &Context) -> bool {
    ctx.json()
}

pub(crate) fn build_for(ctx: &Context, stacks: &[Stack], build: &BuildArgs) -> Result<Vec<build::Artifact>, Failure> {
    build_with(ctx, stacks, build, false)
}

/// Build every function: for Lambda, or (`host`) for the local cloud.
pub(crate) fn build_with(ctx: &Context, stacks: &[Stack], build: &BuildArgs, host: bool) -> Result<Vec<build::Artifact>, Failure> {
    let opts = BuildOptions {
        host,
        release: !host || build.release,
        allow_zigbuild: !build.no_zigbuild,
        verbose: ctx.verbose > 0,
        progress: std::io::stderr().is_terminal(),
    };
    let mut all = Vec::new();
    for s in stacks {
        all.extend(build::build_stack(s, &opts).map_err(|e| Failure::Operation(e.to_string()))?);
    }
    Ok(all)
}
