//! Command-line definitions only: the `///` comments are the `--help` text. The
//! logic lives in `commands`, which gets validated settings, never raw flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Build, deploy and run Rust Lambda APIs: one stack file describes the functions,
/// bucket, roles and REST API; stackctl builds the crates, plans the change and
/// applies it to AWS or to the embedded local cloud.
///
/// Exit codes: 0 success, 1 the operation failed (build, AWS, runtime),
/// 2 invalid input (stack file or command line), 3 internal error.
#[derive(Debug, Parser)]
#[command(name = "stackctl", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format: human text, or JSON on stdout for scripts.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// More detail on stderr (cargo's output, every request); repeat for more.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Project directory holding `stacks/` (default: the current directory).
    #[arg(long, short = 'C', global = true, value_name = "DIR")]
    pub project: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Which stack files a command applies to.
#[derive(Debug, Args, Clone, Default)]
pub struct StackArgs {
    /// Stack by name: `stacks/NAME.yaml` (default: every stack under `stacks/`).
    #[arg(long, short = 's', value_name = "NAME", conflicts_with = "file")]
    pub stack: Option<String>,

    /// Stack file by path.
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Stage and target of commands that touch a deployment.
#[derive(Debug, Args, Clone)]
pub struct StageArgs {
    /// Stage: a whole, isolated environment (its own functions, roles, bucket, API).
    #[arg(long, short = 'S', env = "STACKCTL_STAGE", default_value = "dev")]
    pub stage: String,

    /// Where to deploy: `aws` (real AWS, or the endpoint in AWS_ENDPOINT_URL) or
    /// `local` (the embedded cloud). Default: `aws` when AWS credentials are
    /// configured, else `local`.
    #[arg(long, short = 't', env = "STACKCTL_TARGET", value_enum)]
    pub target: Option<Target>,

    /// Keep state (and the deploy lock) in this S3 bucket, shared by a team,
    /// instead of what the stack file says (default: `.stackctl/` locally).
    #[arg(long, env = "STACKCTL_STATE_BUCKET", value_name = "BUCKET")]
    pub state_bucket: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    Api,
    Async,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    Sdk,
    Cloudformation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    Aws,
    Local,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a new project: a cargo workspace with a function crate (compiles,
    /// with tests), a commented stack file, `.gitignore` and dev-profile settings.
    Init {
        /// Directory of the new project (created if missing; default: here).
        dir: Option<PathBuf>,
        /// `api`: one function behind GET /hello and POST /echo. `async`: POST
        /// /jobs answers at once, a worker does the job, GET /jobs/{id} reads it
        /// from S3.
        #[arg(long, value_enum, default_value_t = Template::Api)]
        template: Template,
        /// Stack name (default: from the directory's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Check stack files: syntax, types, references, names and AWS limits.
    Validate {
        #[command(flatten)]
        stacks: StackArgs,
        /// Stage to check physical-name lengths for.
        #[arg(long, short = 'S', env = "STACKCTL_STAGE", default_value = "dev")]
        stage: String,
    },
    /// Print the JSON Schema of the stack file format (for editor completion).
    Schema,
    /// Compile every function for Lambda and package it as a reproducible zip.
    Build {
        #[command(flatten)]
        stacks: StackArgs,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Show what `deploy` would change, without changing anything.
    Plan {
        #[command(flatten)]
        stacks: StackArgs,
        #[command(flatten)]
        stage: StageArgs,
    },
    /// Build, plan and apply: create or update every resource of the stage.
    Deploy {
        #[command(flatten)]
        stacks: StackArgs,
        #[command(flatten)]
        stage: StageArgs,
        #[command(flatten)]
        build: BuildArgs,
        /// Print the plan and stop.
        #[arg(long)]
        dry_run: bool,
        /// `sdk` (direct API calls, the fast path) or `cloudformation` (a change set
        /// on a CloudFormation stack). A stage belongs to the engine that deployed it.
        #[arg(long, value_enum, default_value_t = Engine::Sdk)]
        engine: Engine,
    },
    /// Invoke a deployed function (or call the deployed API with `--http`).
    ///
    /// A function behind a proxy route gets API Gateway's event: `--data BODY`
    /// is wrapped into the event of its route (`--raw` sends it unchanged).
    /// `--http METHOD PATH` calls the stage's URL: the route is found among the
    /// selected stacks, path parameters included (`/notes/x1`), with any body
    /// and content type.
    Invoke {
        /// Logical function name, e.g. `paraphrase` (optional with --http).
        function: Option<String>,
        #[command(flatten)]
        stacks: StackArgs,
        #[command(flatten)]
        stage: StageArgs,
        /// The payload: a JSON event, or with --http (or a proxy function) the request body, any content type.
        #[arg(long, short = 'd', conflicts_with = "event")]
        data: Option<String>,
        /// The event from a file, sent as it is (with --http: the request body).
        #[arg(long, short = 'e', value_name = "FILE")]
        event: Option<PathBuf>,
        /// Call the stage URL instead: `--http POST /paraphrase`, `--http GET /notes/x1?full=1`.
        #[arg(long, num_args = 2, value_names = ["METHOD", "PATH"])]
        http: Option<Vec<String>>,
        /// A request header, `Name: value` (repeatable); the default content type
        /// is application/json for a JSON body, else text/plain.
        #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// Send the payload to a proxy function as is, without wrapping it into an API Gateway event.
        #[arg(long, conflicts_with = "http")]
        raw: bool,
        /// Print the tail of the function's log.
        #[arg(long)]
        log: bool,
    },
    /// Print a sample event to edit and send with `invoke --event FILE`.
    Event {
        #[command(subcommand)]
        kind: EventKind,
    },
    /// Print what a deployed function logged: CloudWatch Logs on AWS, the local
    /// cloud's log group locally. Text: one line per event; `-o json`: one JSON
    /// object per line.
    Logs {
        /// Logical function name, e.g. `paraphrase`.
        function: String,
        #[command(flatten)]
        stacks: StackArgs,
        #[command(flatten)]
        stage: StageArgs,
        /// Keep printing new events as they arrive (Ctrl-C stops).
        #[arg(long, short = 'F')]
        follow: bool,
        /// Events from this far back (`30s`, `10m`, `2h`, `1d`) or since this
        /// time (`2026-11-25T10:00:00Z`).
        #[arg(long, default_value = "1h", value_name = "WHEN")]
        since: String,
        /// Only events whose message contains this text.
        #[arg(long, value_name = "TEXT")]
        filter: Option<String>,
    },
    /// Print the CloudFormation template (YAML) of a stage: the same resources,
    /// names and policies the SDK engine creates.
    Synth {
        #[command(flatten)]
        stacks: StackArgs,
        #[command(flatten)]
        stage: StageArgs,
        #[command(flatten)]
        build: BuildArgs,
        /// Account id to synthesize for without asking AWS (default: from the credentials).
        #[arg(long)]
        account: Option<String>,
        /// Region to synthesize for (default: the AWS configuration's).
        #[arg(long)]
        region: Option<String>,
    },
    /// Print the REST API of a stage as one OpenAPI 3 document, with API
    /// Gateway's `x-amazon-apigateway-*` extensions (integrations, templates,
    /// responses, validators, CORS), as `PutRestApi` imports it. JSON with
    /// `-o json`, else YAML. Needs no build.
    Openapi {
        #[command(flatten)]
        stacks: StackArgs,
        #[command(flatten)]
        stage: StageArgs,
        /// Account id the functions' ARNs name (default: from the credentials).
        #[arg(long)]
        account: Option<String>,
        /// Region the functions' ARNs name (default: the AWS configuration's).
        #[arg(long)]
        region: Option<String>,
    },
    /// Remove every resource of the stage.
    Destroy {
        #[command(flatten)]
        stacks: StackArgs,
        #[command(flatten)]
        stage: StageArgs,
        /// Find the stage's resources by tag when the state file is lost.
        #[arg(long)]
        discover: bool,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// The engine that deployed the stage.
        #[arg(long, value_enum, default_value_t = Engine::Sdk)]
        engine: Engine,
    },
    /// Show the outputs of a deployed stage (URL, function names, bucket).
    Status {
        #[command(flatten)]
        stacks: StackArgs,
        #[command(flatten)]
        stage: StageArgs,
    },
    /// Deploy the stage to the local cloud and serve it in the foreground (Ctrl-C
    /// stops it); `--watch` rebuilds and reloads a function when its source changes.
    Serve {
        #[command(flatten)]
        stacks: StackArgs,
        /// Stage served locally.
        #[arg(long, short = 'S', env = "STACKCTL_STAGE", default_value = "dev")]
        stage: String,
        /// Loopback port of the first stack's API (the next stacks get the next ports).
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Rebuild and reload a function when its source changes.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// The local cloud's background server (started by `deploy --target local`).
    #[command(hide = true)]
    LocalServer {
        /// The stage's directory under `.stackctl/local/`.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        port: u16,
    },
}

#[derive(Debug, Args, Clone, Default)]
pub struct BuildArgs {
    /// Never use cargo-zigbuild, even when installed.
    #[arg(long)]
    pub no_zigbuild: bool,
    /// Local target: build the functions with the release profile (default: the
    /// dev profile, much faster to rebuild; Lambda builds are always release).
    #[arg(long)]
    pub release: bool,
}

/// Events `stackctl event` prints.
#[derive(Debug, Subcommand)]
pub enum EventKind {
    /// The API Gateway (REST, proxy integration) event of a request to one of
    /// the stacks' routes, as the function receives it.
    Api {
        #[command(flatten)]
        stacks: StackArgs,
        #[command(flatten)]
        stage: StageArgs,
        /// HTTP method, e.g. `PUT`.
        #[arg(long, short = 'X', default_value = "GET")]
        method: String,
        /// Path from the stage's root, with its query string: `/notes/x1?full=1`.
        #[arg(long, short = 'p')]
        path: String,
        /// The request body (any content type).
        #[arg(long, short = 'd')]
        data: Option<String>,
        /// A request header, `Name: value` (repeatable).
        #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
    /// EventBridge's Scheduled Event, as a function with `schedule:` receives it.
    Schedule {
        /// Logical function name (its first schedule's rule is named in the event).
        function: String,
        #[command(flatten)]
        stacks: StackArgs,
        #[command(flatten)]
        stage: StageArgs,
    },
}
