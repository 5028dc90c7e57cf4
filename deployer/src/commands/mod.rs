//! The commands: one module per command, each written once over the engine's
//! `Target` (AWS or the local cloud). This module parses nothing (see `cli`): it
//! picks the target, loads the stacks, and dispatches. Data goes to stdout
//! (text or JSON), progress and diagnostics to stderr.

pub mod deploy;
pub mod destroy;
pub mod init;
pub mod invoke;
pub mod logs;
pub mod openapi;
pub mod serve;
pub mod status;
pub mod synth;
pub mod validate;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::aws::client::Clients;
use crate::aws::target::AwsTarget;
use crate::cli::{BuildArgs, Cli, Command, OutputFormat, StackArgs, StageArgs, Target as TargetKind};
use crate::diag::Diagnostics;
use crate::engine::error::EngineError;
use crate::engine::target::Target;
use crate::local::target::{LocalTarget, Serving};
use crate::progress::Progress;
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

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Failure {
        if e.is_input() { Failure::User(e.to_string()) } else { Failure::Operation(e.to_string()) }
    }
}

/// Settings shared by all commands.
pub struct Context {
    pub output: OutputFormat,
    pub verbose: u8,
    pub project: PathBuf,
    /// Colours on stderr: a terminal, and NO_COLOR unset.
    pub color: bool,
    /// stderr is a terminal.
    pub terminal: bool,
}

impl Context {
    pub fn from_cli(cli: &Cli) -> Context {
        let terminal = std::io::stderr().is_terminal();
        let color = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let project = match &cli.global.project {
            Some(p) => p.clone(),
            None => std::env::current_dir().map(|cwd| stack::discover_project(&cwd)).unwrap_or_else(|_| PathBuf::from(".")),
        };
        Context { output: cli.global.output, verbose: cli.global.verbose, project, color, terminal }
    }

    pub fn json(&self) -> bool {
        self.output == OutputFormat::Json
    }

    /// The progress sink of this command.
    pub fn progress(&self) -> Box<dyn Progress> {
        crate::progress::for_command(self.json(), self.color)
    }

    /// Print a JSON document on stdout.
    pub fn print_json(&self, v: &serde_json::Value) {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    let ctx = Context::from_cli(&cli);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| Failure::Operation(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async move {
        match cli.command {
            Command::Init { dir, template, name } => init::run(&ctx, dir, template, name),
            Command::Validate { stacks, stage } => validate::validate(&ctx, &stacks, &stage),
            Command::Schema => validate::schema(),
            Command::Build { stacks, build } => validate::build(&ctx, &stacks, &build),
            Command::Plan { stacks, stage } => deploy::run(&ctx, &on_target(&ctx, &stacks, &stage).await?, &BuildArgs::default(), true).await,
            Command::Deploy { stacks, stage, build, dry_run, engine } => {
                let stage = on_target(&ctx, &stacks, &stage).await?;
                match engine {
                    crate::cli::Engine::Sdk => deploy::run(&ctx, &stage, &build, dry_run).await,
                    crate::cli::Engine::Cloudformation => deploy::cloudformation(&ctx, &stage, &build, dry_run).await,
                }
            }
            Command::Invoke { function, stacks, stage, data, event, http, headers, raw, log } => {
                invoke::run(&ctx, &on_target(&ctx, &stacks, &stage).await?, invoke::Args { function, data, event, http, headers, raw, log }).await
            }
            Command::Event { kind: crate::cli::EventKind::Api { stacks, stage, method, path, data, headers } } => {
                let loaded = load_all(&ctx, &stacks, &stage.stage)?;
                invoke::event_api(&ctx, &loaded, &stage.stage, &method, &path, &headers, data.as_deref())
            }
            Command::Event { kind: crate::cli::EventKind::Schedule { function, stacks, stage } } => {
                let loaded = load_all(&ctx, &stacks, &stage.stage)?;
                invoke::event_schedule(&loaded, &stage.stage, &function)
            }
            Command::Logs { function, stacks, stage, follow, since, filter } => {
                logs::run(&ctx, &on_target(&ctx, &stacks, &stage).await?, logs::Args { function, follow, since, filter }).await
            }
            Command::Destroy { stacks, stage, discover, yes, engine } => {
                destroy::run(&ctx, &on_target(&ctx, &stacks, &stage).await?, discover, yes, engine == crate::cli::Engine::Cloudformation).await
            }
            Command::Synth { stacks, stage, build, account, region } => synth::run(&ctx, &stacks, &stage.stage, &build, account, region).await,
            Command::Openapi { stacks, stage, account, region } => openapi::run(&ctx, &stacks, &stage.stage, account, region).await,
            Command::Status { stacks, stage } => status::run(&ctx, &on_target(&ctx, &stacks, &stage).await?).await,
            Command::Serve { stacks, stage, port, watch, build } => serve::run(&ctx, &stacks, &stage, &build, port, watch).await,
            Command::LocalServer { dir, port } => crate::local::server::run_background(dir, port).await.map_err(|e| Failure::Operation(format!("local server: {e}"))),
        }
    })
}

fn selection(args: &StackArgs) -> Selection {
    match (&args.stack, &args.file) {
        (_, Some(f)) => Selection::File(f.clone()),
        (Some(n), None) => Selection::Named(n.clone()),
        (None, None) => Selection::All,
    }
}

pub(crate) fn files(ctx: &Context, args: &StackArgs) -> Result<Vec<PathBuf>, Failure> {
    stack::select(&ctx.project, &selection(args)).map_err(Failure::User)
}

/// Load and validate every selected stack; all problems of all files are reported.
pub(crate) fn load_all(ctx: &Context, args: &StackArgs, stage: &str) -> Result<Vec<Stack>, Failure> {
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
pub(crate) fn display_path(p: &Path) -> PathBuf {
    p.strip_prefix(".").map(Path::to_path_buf).unwrap_or_else(|_| p.to_path_buf())
}

/// Which target a command runs against, and why (printed as its first line).
pub fn resolve_target(arg: Option<TargetKind>) -> (TargetKind, String) {
    if let Some(t) = arg {
        let from_env = std::env::var("STACKCTL_TARGET").is_ok();
        return (t, if from_env { "from STACKCTL_TARGET".into() } else { "from --target".into() });
    }
    match aws_credentials_hint() {
        Some(why) => (TargetKind::Aws, format!("AWS credentials found ({why})")),
        None => (TargetKind::Local, "no AWS credentials configured".into()),
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

/// The stacks of a command on one target and stage, each with its target.
pub struct OnTarget {
    pub kind: TargetKind,
    pub stage: String,
    pub stacks: Vec<(Stack, Box<dyn Target>)>,
    /// The AWS clients the targets use, one set per region.
    clients: Vec<(Option<String>, Clients)>,
    project: PathBuf,
}

impl OnTarget {
    /// The stage's recorded state for one of the stacks.
    pub async fn recorded(&self, stack: &Stack, target: &dyn Target) -> Result<Option<crate::engine::state::State>, Failure> {
        Ok(target.store(stack, &self.stage).load(&stack.name, &self.stage).await?)
    }

    /// Credentials first: a release build takes minutes, a missing credential
    /// a second (the account is asked once per set of clients).
    pub async fn check_credentials(&self) -> Result<(), Failure> {
        for (_, target) in &self.stacks {
            target.account().await?;
        }
        Ok(())
    }

    /// The AWS target of a stack as its concrete type (CloudFormation and
    /// discovery are AWS only), on the clients the command already made.
    pub fn aws(&self, stack: &Stack) -> Result<AwsTarget, Failure> {
        let (_, clients) = self
            .clients
            .iter()
            .find(|(r, _)| *r == stack.region)
            .ok_or_else(|| Failure::User("this applies to the aws target only\n  hint: pass `--target aws`".into()))?;
        Ok(AwsTarget::new(clients.clone(), &self.project))
    }

    /// The stack defining `function`, with a suggestion when none does.
    pub fn defining(&self, function: &str) -> Result<&(Stack, Box<dyn Target>), Failure> {
        self.stacks.iter().find(|(s, _)| s.function(function).is_some()).ok_or_else(|| {
            let names: Vec<&str> = self.stacks.iter().flat_map(|(s, _)| s.functions.iter().map(|f| f.name.as_str())).collect();
            let hint = crate::diag::did_you_mean(function, names.iter().copied()).map(|s| format!("did you mean `{s}`?")).unwrap_or_else(|| format!("functions: {}", names.join(", ")));
            Failure::User(format!("no function `{function}` in the selected stacks\n  hint: {hint}"))
        })
    }

    pub fn local(&self) -> bool {
        self.kind == TargetKind::Local
    }

    /// ` (local)` after a stage's name in text output.
    pub fn suffix(&self) -> &'static str {
        if self.local() { " (local)" } else { "" }
    }
}

/// The target for one stack: AWS clients (one set per region, shared, so one
/// account lookup), or the local cloud.
pub async fn target_for(kind: TargetKind, ctx: &Context, stack: &Stack, stage: &str, serving: Serving, clients: &mut Vec<(Option<String>, Clients)>) -> Box<dyn Target> {
    match kind {
        TargetKind::Local => Box::new(LocalTarget::new(&ctx.project, stack, stage, serving)),
        TargetKind::Aws => {
            let c = match clients.iter().find(|(r, _)| *r == stack.region) {
                Some((_, c)) => c.clone(),
                None => {
                    let c = Clients::from_env(stack.region.as_deref()).await;
                    clients.push((stack.region.clone(), c.clone()));
                    c
                }
            };
            Box::new(AwsTarget::new(c, &ctx.project))
        }
    }
}

/// The target, stacks and stage of a command that touches a deployment; the
/// first stderr line names the target and why.
async fn on_target(ctx: &Context, stacks: &StackArgs, stage: &StageArgs) -> Result<OnTarget, Failure> {
    let (kind, why) = resolve_target(stage.target);
    let note = format!("target: {} ({why})", match kind { TargetKind::Aws => "aws", TargetKind::Local => "local" });
    ctx.progress().note(&note);
    crate::naming::check_stage(&stage.stage).map_err(Failure::User)?;
    let mut loaded = load_all(ctx, stacks, &stage.stage)?;
    if let Some(bucket) = &stage.state_bucket {
        if kind == TargetKind::Local {
            return Err(Failure::User("`--state-bucket` applies to the aws target; the local cloud keeps its state under .stackctl/local/".into()));
        }
        for s in &mut loaded {
            s.state = crate::stack::model::StateConfig { backend: crate::stack::model::StateBackend::S3, bucket: Some(bucket.clone()), prefix: "stackctl/".into() };
        }
    }
    let mut clients = Vec::new();
    let mut out = Vec::new();
    for s in loaded {
        let t = target_for(kind, ctx, &s, &stage.stage, Serving::default(), &mut clients).await;
        out.push((s, t));
    }
    Ok(OnTarget { kind, stage: stage.stage.clone(), stacks: out, clients, project: ctx.project.clone() })
}

/// Build every function: for Lambda, or (`host`) for the local cloud.
pub fn build_with(ctx: &Context, stacks: &[&Stack], build: &BuildArgs, host: bool) -> Result<Vec<crate::build::Artifact>, Failure> {
    let opts = crate::build::BuildOptions { host, release: !host || build.release, allow_zigbuild: !build.no_zigbuild, verbose: ctx.verbose > 0, progress: ctx.terminal };
    let mut all = Vec::new();
    for s in stacks {
        all.extend(crate::build::build_stack(s, &opts).map_err(|e| Failure::Operation(e.to_string()))?);
    }
    Ok(all)
}
