//! Semantic checks of a parsed stack file, collecting every problem (not just the
//! first) with its location and fix, then building the typed [`model::Stack`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::model::{self, Stack};
use super::raw::{self, Name};
use crate::diag::{did_you_mean, Diagnostic};
use crate::naming;

/// HTTP methods API Gateway accepts on a resource.
pub const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"];

/// Environment variables Lambda sets itself and refuses in a function's configuration.
const RESERVED_ENV: &[&str] = &[
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
];

/// Lambda's limit on the total size of a function's environment.
pub const ENV_TOTAL_MAX: usize = 4096;

/// Days CloudWatch Logs keeps a function's logs when the stack does not say.
pub const DEFAULT_LOG_RETENTION_DAYS: u32 = 14;

/// The retention periods CloudWatch Logs accepts (`PutRetentionPolicy`).
pub const LOG_RETENTION_DAYS: &[u32] = &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// A `log_retention_days:` value, checked against CloudWatch's list.
fn retention(c: &mut Checker<'_>, days: &serde_saphyr::Spanned<u32>, whose: &str) -> u32 {
    if !LOG_RETENTION_DAYS.contains(&days.value) {
        let below = LOG_RETENTION_DAYS.iter().rev().find(|d| **d < days.value);
        let above = LOG_RETENTION_DAYS.iter().find(|d| **d > days.value);
        let nearest: Vec<String> = below.into_iter().chain(above).map(|d| d.to_string()).collect();
        c.at_loc(
            days.referenced.line(),
            days.referenced.column(),
            format!("log retention of {whose} is {} days; CloudWatch Logs keeps logs for one of {}", days.value, LOG_RETENTION_DAYS.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
            format!("set `log_retention_days:` to {}", nearest.join(" or ")),
        );
    }
    days.value
}

struct Checker<'a> {
    file: &'a Path,
    src: &'a str,
    errors: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn at(&mut self, name: &Name, message: impl Into<String>, hint: impl Into<String>) {
        self.at_loc(name.referenced.line(), name.referenced.column(), message, hint);
    }
    fn at_loc(&mut self, line: u64, column: u64, message: impl Into<String>, hint: impl Into<String>) {
        self.errors.push(Diagnostic::new(self.file, line as u32, column as u32, message).hint(hint).with_source(self.src));
    }

    /// A logical name must be an identifier and unique among its siblings.
    fn names<T>(&mut self, what: &str, entries: &raw::Entries<T>) {
        let mut seen: BTreeMap<&str, &Name> = BTreeMap::new();
        for (name, _) in entries.iter() {
            if let Err(why) = naming::check_identifier(&name.value) {
                self.at(name, format!("invalid {what} name `{}`: {why}", name.value), "rename it, e.g. `search-worker`");
            }
            if let Some(first) = seen.insert(&name.value, name) {
                let line = first.referenced.line();
                self.at(name, format!("{what} `{}` is declared twice (first on line {line})", name.value), "remove or rename one of them");
            }
        }
    }

    /// A reference to a logical name must name something that exists.
    fn reference<'k>(&mut self, name: &Name, what: &str, context: &str, known: impl Iterator<Item = &'k str> + Clone) -> bool {
        if known.clone().any(|k| k == name.value) {
            return true;
        }
        let list: Vec<&str> = known.clone().collect();
        let hint = match did_you_mean(&name.value, known) {
            Some(s) => format!("did you mean `{s}`?"),
            None if list.is_empty() => format!("declare it under `{what}s:` first"),
            None => format!("declared {what}s: {}", list.join(", ")),
        };
        self.at(name, format!("{context} refers to {what} `{}`, which this stack does not declare", name.value), hint);
        false
    }
}

/// Check a parsed stack file and build the model. `stage` is the stage that
/// physical-name lengths are checked for.
pub fn validate(file: &Path, src: &str, root: &Path, stage: &str, raw: raw::StackFile) -> Result<Stack, Vec<Diagnostic>> {
    let mut c = Checker { file, src, errors: Vec::new() };

    if let Err(why) = naming::check_identifier(&raw.stack.value) {
        c.at(&raw.stack, format!("invalid stack name `{}`: {why}", raw.stack.value), "use lowercase letters, digits and `-`, e.g. `car-search`");
    }
    let stack_name = raw.stack.value.clone();

    c.names("function", &raw.functions);
    c.names("bucket", &raw.buckets);
    for (name, _) in raw.parameters.iter() {
        if !name.value.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') || name.value.is_empty() {
            c.at(name, format!("invalid parameter name `{}`", name.value), "use letters, digits and `_`, e.g. `api_key`");
        }
    }
    if raw.functions.is_empty() {
        c.at_loc(raw.stack.referenced.line(), raw.stack.referenced.column(), "the stack declares no function", "add a `functions:` section");
    }

    // Physical names must fit AWS limits for the stage being validated.
    let stage_ok = match naming::check_stage(stage) {
        Ok(()) => true,
        Err(why) => {
            c.at(&raw.stack, why, "stage names use lowercase letters, digits and `-`, e.g. `production`");
            false
        }
    };
    if stage_ok {
        for (name, _) in raw.functions.iter() {
            let physical = naming::function_name(&stack_name, stage, &name.value);
            if physical.len() > naming::FUNCTION_NAME_MAX {
                let room = naming::FUNCTION_NAME_MAX.saturating_sub(stack_name.len() + name.value.len() + 2);
                c.at(name, format!(
                    "with stage `{stage}` the physical name of function `{}` (`{physical}`) is {} characters; Lambda and IAM allow {}",
                    name.value, physical.len(), naming::FUNCTION_NAME_MAX),
                    format!("use a stage name of at most {room} characters, or shorten the stack or function name"));
            }
        }
        for (name, _) in raw.buckets.iter() {
            let len = naming::bucket_name_len(&stack_name, stage, &name.value);
            if len > naming::BUCKET_NAME_MAX {
                let room = naming::BUCKET_NAME_MAX.saturating_sub(len - stage.len());
                c.at(name, format!(
                    "with stage `{stage}` the physical name of bucket `{}` is {len} characters; S3 allows {}",
                    name.value, naming::BUCKET_NAME_MAX),
                    format!("use a stage name of at most {room} characters, or shorten the stack or bucket name"));
            }
        }
    }

    let parameters = parameters(&mut c, &raw.parameters);
    let buckets = buckets(&mut c, &raw.buckets);
    let function_names: Vec<&str> = raw.functions.keys().collect();
    let bucket_names: Vec<&str> = raw.buckets.keys().collect();
    let parameter_names: Vec<&str> = raw.parameters.keys().collect();

    let stack_retention = raw.log_retention_days.as_ref().map(|d| retention(&mut c, d, "the stack")).unwrap_or(DEFAULT_LOG_RETENTION_DAYS);
    let mut functions = Vec::new();
    for (name, f) in raw.functions.iter() {
        let fname = &name.value;
        let crate_dir = root.join(&f.crate_path.value);
        if !crate_dir.join("Cargo.toml").is_file() {
            let siblings = sibling_crates(&crate_dir);
            let hint = match did_you_mean(&f.crate_path.value, siblings.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("give the crate's directory relative to the workspace root {}", root.display()),
            };
            c.at(&f.crate_path, format!("crate `{}` of function `{fname}` not found (no Cargo.toml in {})", f.crate_path.value, crate_dir.display()), hint);
        }
        let memory = f.memory.as_ref().map(|m| (m.value, m.referenced)).unwrap_or((128, serde_saphyr::Location::UNKNOWN));
        if !(128..=10240).contains(&memory.0) {
            c.at_loc(memory.1.line(), memory.1.column(), format!("memory of function `{fname}` is {} MB; Lambda allows 128 to 10240", memory.0), "set `memory:` between 128 and 10240");
        }
        let timeout = f.timeout.as_ref().map(|t| (t.value, t.referenced)).unwrap_or((3, serde_saphyr::Location::UNKNOWN));
        if !(1..=900).contains(&timeout.0) {
            c.at_loc(timeout.1.line(), timeout.1.column(), format!("timeout of function `{fname}` is {} s; Lambda allows 1 to 900", timeout.0), "set `timeout:` between 1 and 900 seconds");
        }
        let log_retention_days = f.log_retention_days.as_ref().map(|d| retention(&mut c, d, &format!("function `{fname}`"))).unwrap_or(stack_retention);

        let mut environment = BTreeMap::new();
        let mut env_size = 0;
        for (var, value) in f.environment.iter() {
            let valid = var.value.starts_with(|ch: char| ch.is_ascii_alphabetic())
                && var.value.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
            if !valid {
                c.at(var, format!("invalid environment variable name `{}` in function `{fname}`", var.value), "use letters, digits and `_`, starting with a letter");
            } else if RESERVED_ENV.contains(&var.value.as_str()) {
                c.at(var, format!("environment variable `{}` of function `{fname}` is reserved by Lambda", var.value), "rename it: Lambda sets this variable itself");
            }
            if environment.contains_key(&var.value) {
                c.at(var, format!("environment variable `{}` of function `{fname}` is set twice", var.value), "keep one of them");
            }
            let context = format!("environment variable `{}` of function `{fname}`", var.value);
            let resolved = match value {
                raw::EnvValue::Literal(s) if s.contains('\0') => {
                    c.at(var, format!("environment variable `{}` of function `{fname}` contains a NUL character; Lambda refuses it", var.value), "remove the NUL (`\\0`) from the value");
                    model::EnvValue::Literal(s.clone())
                }
                raw::EnvValue::Literal(s) => model::EnvValue::Literal(s.clone()),
                raw::EnvValue::Function(t) => {
                    c.reference(t, "function", &context, function_names.iter().copied());
                    model::EnvValue::Function(t.value.clone())
                }
                raw::EnvValue::Bucket(t) => {
                    c.reference(t, "bucket", &context, bucket_names.iter().copied());
                    model::EnvValue::Bucket(t.value.clone())
                }
                raw::EnvValue::Parameter(t) => {
                    c.reference(t, "parameter", &context, parameter_names.iter().copied());
                    model::EnvValue::Parameter(t.value.clone())
                }
            };
            env_size += var.value.len() + match &resolved {
                model::EnvValue::Literal(s) => s.len(),
                _ => 64,
            };
            environment.insert(var.value.clone(), resolved);
        }
        if env_size > ENV_TOTAL_MAX {
            c.at(name, format!("the environment of function `{fname}` is about {env_size} bytes; Lambda allows {ENV_TOTAL_MAX}"), "move large values to S3 or a parameter store");
        }

        let permissions = match &f.permissions {
            Some(p) => permissions(&mut c, fname, p, &Names { stack: &stack_name, stage, functions: &function_names, buckets: &bucket_names }),
            None => model::Permissions::default(),
        };

        let mut schedules = Vec::new();
        if let Some(list) = &f.schedule {
            let at = (list.referenced.line(), list.referenced.column());
            if list.value.0.is_empty() {
                c.at_loc(at.0, at.1, format!("the schedule of function `{fname}` is empty"), "write `schedule: rate(5 minutes)`, or remove it");
            }
            for (i, expr) in list.value.0.iter().enumerate() {
                if let Err(why) = super::schedule::parse(expr) {
                    c.at_loc(at.0, at.1, format!("schedule of function `{fname}`: {why}"), "see EventBridge's schedule expressions: `rate(5 minutes)`, `cron(0 12 * * ? *)` (UTC)");
                }
                if list.value.0[..i].contains(expr) {
                    c.at_loc(at.0, at.1, format!("function `{fname}` lists the schedule `{expr}` twice"), "list each schedule once");
                }
                schedules.push(expr.trim().to_owned());
            }
            if stage_ok && list.value.0.len() > 1 {
                let rule = naming::schedule_rule_name(&stack_name, stage, fname, list.value.0.len());
                if rule.len() > naming::RULE_NAME_MAX {
                    c.at_loc(at.0, at.1, format!("with stage `{stage}` the EventBridge rule `{rule}` is {} characters; EventBridge allows {}", rule.len(), naming::RULE_NAME_MAX), "shorten the stage, stack or function name");
                }
            }
        }
        // Its ceiling is the account's quota, which only AWS knows (checked at deploy).
        let reserved_concurrency = f.reserved_concurrency.as_ref().map(|r| r.value);

        let package = package_name(&crate_dir).unwrap_or_else(|| fname.clone());
        functions.push(model::Function {
            name: fname.clone(),
            crate_dir,
            crate_path: f.crate_path.value.clone(),
            binary: f.binary.clone().unwrap_or_else(|| package.clone()),
            package,
            memory: memory.0,
            timeout: timeout.0,
            log_retention_days,
            architecture: f.architecture.unwrap_or(raw::Architecture::X86_64),
            environment,
            permissions,
            schedules,
            reserved_concurrency,
        });
    }

    let api = raw.api.as_ref().map(|a| api(&mut c, &stack_name, a, &function_names));

    let state = match &raw.state {
        None => model::StateConfig { backend: model::StateBackend::Local, bucket: None, prefix: String::new() },
        Some(s) => {
            let backend = s.backend.unwrap_or(model::StateBackend::Local);
            if backend == model::StateBackend::S3 && s.bucket.is_none() {
                c.at(&raw.stack, "the S3 state backend needs a bucket", "add `bucket: NAME` under `state:`");
            }
            model::StateConfig { backend, bucket: s.bucket.clone(), prefix: s.prefix.clone().unwrap_or_default() }
        }
    };

    if !c.errors.is_empty() {
        c.errors.sort_by_key(|d| (d.line, d.column));
        return Err(c.errors);
    }
    Ok(Stack {
        name: stack_name,
        description: raw.description.clone(),
        file: file.to_path_buf(),
        root: root.to_path_buf(),
        region: raw.region.as_ref().map(|r| r.value.clone()),
        parameters,
        buckets,
        functions,
        api,
        state,
    })
}

/// The logical names a function's permissions may refer to.
struct Names<'a> {
    stack: &'a str,
    stage: &'a str,
    functions: &'a [&'a str],
    buckets: &'a [&'a str],
}

fn permissions(c: &mut Checker, fname: &str, p: &raw::Permissions, names: &Names) -> model::Permissions {
    let mut out = model::Permissions::default();
    let mut seen = BTreeSet::new();
    for target in &p.invoke {
        let context = format!("`permissions.invoke` of function `{fname}`");
        if c.reference(target, "function", &context, names.functions.iter().copied()) && !seen.insert(&target.value) {
            c.at(target, format!("function `{fname}` is granted invoke on `{}` twice", target.value), "list each function once");
        }
        out.invoke.push(target.value.clone());
    }
    let mut grants: BTreeMap<(&str, String), &Name> = BTreeMap::new();
    for grant in &p.buckets {
        let context = format!("`permissions.buckets` of function `{fname}`");
        c.reference(&grant.bucket, "bucket", &context, names.buckets.iter().copied());
        let prefix = grant.prefix.clone().unwrap_or_default();
        if prefix.starts_with('/') || prefix.contains(['*', '?']) || prefix.contains("${") {
            c.at(&grant.bucket, format!("invalid prefix `{prefix}` in the grant of function `{fname}` on bucket `{}`", grant.bucket.value), "write a key prefix without wildcards or leading `/`, e.g. `results/`");
        }
        if let Some(first) = grants.insert((grant.bucket.value.as_str(), prefix.clone()), &grant.bucket) {
            let line = first.referenced.line();
            c.at(&grant.bucket, format!("function `{fname}` has two grants on bucket `{}` with prefix `{prefix}` (first on line {line})", grant.bucket.value), "merge them into one: `access: [read, write, ...]`");
        }
        let mut access = Vec::new();
        for level in &grant.access.0 {
            let levels: &[raw::Access] = match level {
                raw::Access::ReadWrite => &[raw::Access::Read, raw::Access::Write],
                one => std::slice::from_ref(one),
            };
            for l in levels {
                if access.contains(l) {
                    c.at(&grant.bucket, format!("the grant of function `{fname}` on bucket `{}` lists `{}` twice", grant.bucket.value, access_name(*l)), "list each access level once");
                } else {
                    access.push(*l);
                }
            }
        }
        if access.is_empty() {
            c.at(&grant.bucket, format!("the grant of function `{fname}` on bucket `{}` gives no access", grant.bucket.value), "set `access:` to one or more of read, write, delete, list");
        }
        access.sort();
        out.buckets.push(model::BucketGrant { bucket: grant.bucket.value.clone(), access, prefix });
    }
    let mut sids: BTreeMap<String, u64> = BTreeMap::new();
    for (i, st) in p.statements.iter().enumerate() {
        if let Some(checked) = statement(c, fname, i, st, names) {
            let line = st.sid.as_ref().map(|s| s.referenced.line()).unwrap_or(st.actions.referenced.line());
            if let Some(first) = sids.insert(checked.sid.clone(), line) {
                let at = st.sid.as_ref().map(|s| (s.referenced.line(), s.referenced.column())).unwrap_or((st.actions.referenced.line(), st.actions.referenced.column()));
                c.at_loc(at.0, at.1, format!("statement id `{}` of function `{fname}` is used twice (first on line {first})", checked.sid), "give each statement its own `sid`");
            }
            out.statements.push(checked);
        }
    }
    out
}

fn access_name(a: raw::Access) -> &'static str {
    match a {
        raw::Access::Read => "read",
        raw::Access::Write => "write",
        raw::Access::Delete => "delete",
        raw::Access::List => "list",
        raw::Access::ReadWrite => "read-write",
    }
}

/// The type of values an operator compares (IAM's families).
fn operator_type(base: &str) -> &'static str {
    match base {
        b if b.starts_with("String") => "String",
        b if b.starts_with("Numeric") => "Number",
        b if b.starts_with("Date") => "Date",
        "Bool" | "Null" => "Bool",
        "BinaryEquals" => "Binary",
        "IpAddress" | "NotIpAddress" => "Ip",
        _ => "Arn",
    }
}

/// An operator of a value type, for hints.
fn operator_for(kind: &str) -> &'static str {
    match kind {
        "Number" => "NumericLessThanEquals",
        "Date" => "DateGreaterThan",
        "Bool" => "Bool",
        "Ip" => "IpAddress",
        "Arn" => "ArnLike",
        _ => "StringEquals",
    }
}

fn example_of(kind: &str) -> &'static str {
    match kind {
        "Number" => "`100`",
        "Date" => "`2026-12-31T23:59:59Z`",
        "Bool" => "`true`",
        "Ip" => "`203.0.113.0/24`",
        "Arn" => "`arn:aws:sqs:eu-west-1:123456789012:jobs`",
        _ => "`text`",
    }
}

/// A resource that names every resource of a type (or more) rather than one
/// resource or a path under it: `*`, a wildcard in the partition, service,
/// region or account, or in the resource's name itself (`table/*`,
/// `function:*`, an S3 bucket name). `bucket/prefix/*`, `table/t/index/*` are
/// scoped to one named resource and are not.
pub fn wildcard_resource(resource: &str) -> bool {
    if resource == "*" {
        return true;
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    if parts.len() < 6 {
        return resource.contains(['*', '?']);
    }
    if parts[..5].iter().any(|p| p.contains(['*', '?'])) {
        return true;
    }
    let segments: Vec<&str> = parts[5].split(['/', ':']).collect();
    let named = if parts[2] == "s3" { 1 } else { 2 };
    segments.iter().position(|s| s.contains(['*', '?'])).is_some_and(|i| i < named.min(segments.len()))
}

fn declared(names: &[&str]) -> String {
    if names.is_empty() { " (it declares none)".into() } else { format!(" (declared: {})", names.join(", ")) }
}

/// Check one statement of the escape hatch.
fn statement(c: &mut Checker, fname: &str, i: usize, st: &raw::Statement, names: &Names) -> Option<model::Statement> {
    let errors_before = c.errors.len();
    let reason = st.allow_wildcard.as_deref().map(str::trim);
    if reason == Some("") {
        c.at_loc(st.actions.referenced.line(), st.actions.referenced.column(), format!("statement {} of function `{fname}` has an empty `allow_wildcard`", i + 1), "say why the wildcard is needed, e.g. `allow_wildcard: \"X-Ray takes no resource\"`");
    }
    let mut wildcard = false;
    let sid = match &st.sid {
        Some(s) => {
            if s.value.is_empty() || !s.value.chars().all(|ch| ch.is_ascii_alphanumeric()) {
                c.at(s, format!("invalid statement id `{}`", s.value), "IAM statement ids use letters and digits only, e.g. `ReadNotesTable`");
            } else if model::sid::is_generated(&s.value) {
                c.at(s, format!("statement id `{}` is one stackctl writes itself", s.value), "pick another id");
            }
            s.value.clone()
        }
        None => format!("Statement{}", i + 1),
    };
    if st.actions.value.is_empty() {
        c.at_loc(st.actions.referenced.line(), st.actions.referenced.column(), format!("statement {} of function `{fname}` has no action", i + 1), "list IAM actions, e.g. `actions: [dynamodb:GetItem]`");
    }
    let mut actions = Vec::new();
    let mut described = Vec::new();
    for a in &st.actions.value {
        let Some((service, name)) = a.value.split_once(':').filter(|(s, n)| !s.is_empty() && !n.is_empty()) else {
            let hint = if a.value.contains(['*', '?']) { "IAM actions are `service:Action`; a wildcard over every service is refused" } else { "write `service:Action`, e.g. `dynamodb:GetItem`" };
            c.at(a, format!("`{}` is not an IAM action", a.value), hint);
            continue;
        };
        if !super::iam_catalog::has_service(service) {
            let services = super::iam_catalog::services();
            let hint = match did_you_mean(service, services.iter().copied()) {
                Some(s) => format!("did you mean `{s}:{name}`?"),
                None => "use the service prefix of IAM's reference, e.g. `s3`, `dynamodb`, `sqs`".into(),
            };
            c.at(a, format!("unknown IAM service `{service}` in action `{}`", a.value), hint);
            continue;
        }
        if name.contains(['*', '?']) {
            wildcard = true;
            let covered = super::iam_catalog::expand(service, name);
            if covered.is_empty() {
                c.at(a, format!("action pattern `{}` matches no action of `{service}`", a.value), "check the spelling against IAM's list of actions");
            }
            if reason.is_none() {
                c.at(a, format!("action `{}` of function `{fname}` is a wildcard ({} actions)", a.value, covered.len()), "list the actions the function calls, or say why in `allow_wildcard: \"...\"`");
            }
            actions.push(a.value.clone());
            described.extend(covered);
            continue;
        }
        match super::iam_catalog::lookup(service, name) {
            Some(info) => {
                actions.push(info.name.clone());
                described.push(info);
            }
            None => {
                let known = super::iam_catalog::action_names(service);
                let hint = match did_you_mean(name, known.iter().copied()) {
                    Some(s) => format!("did you mean `{service}:{s}`?"),
                    None => format!("see the actions of `{service}` in IAM's Service Authorization Reference"),
                };
                c.at(a, format!("`{}` is not an action of `{service}`", a.value), hint);
            }
        }
    }
    // Resources, with the stack's references resolved for checking.
    let placeholder = |r: model::ArnRef<'_>| -> Result<String, String> {
        match r {
            model::ArnRef::Bucket(b) if !names.buckets.contains(&b) => Err(format!("`${{bucket:{b}}}` refers to a bucket this stack does not declare{}", declared(names.buckets))),
            model::ArnRef::Function(f) if !names.functions.contains(&f) => Err(format!("`${{function:{f}}}` refers to a function this stack does not declare{}", declared(names.functions))),
            // Any account and region will do for checking.
            r => Ok(r.value(names.stack, names.stage, "000000000000", "eu-central-1")),
        }
    };
    let mut resources = Vec::new();
    let mut checked = Vec::new();
    match &st.resources {
        None => c.at_loc(st.actions.referenced.line(), st.actions.referenced.column(), format!("statement {} of function `{fname}` has no `resources`", i + 1), "name the resources the actions apply to, e.g. `resources: [\"arn:aws:dynamodb:${region}:${account}:table/notes\"]`"),
        Some(list) if list.value.is_empty() => c.at_loc(list.referenced.line(), list.referenced.column(), format!("statement {} of function `{fname}` has an empty `resources` list", i + 1), "name at least one resource ARN"),
        Some(list) => {
            for r in &list.value {
                match model::substitute(&r.value, placeholder) {
                    Err(why) => c.at(r, format!("resource `{}`: {why}", r.value), "declare it, or refer to one the stack declares"),
                    Ok(resolved) => {
                        if resolved != "*" && (!resolved.starts_with("arn:") || resolved.split(':').count() < 6) {
                            c.at(r, format!("resource `{}` is not an ARN", r.value), "write `arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE`, e.g. `arn:aws:sqs:${region}:${account}:jobs`");
                            continue;
                        }
                        if wildcard_resource(&resolved) {
                            wildcard = true;
                            if reason.is_none() {
                                c.at(r, format!("resource `{}` of function `{fname}` is a wildcard", r.value), "name the resource (a path under it may end in `*`), or say why in `allow_wildcard: \"...\"`");
                            }
                        }
                        checked.push(resolved);
                    }
                }
                resources.push(r.value.clone());
            }
            // Every action must apply to one of the resources, as IAM (and parliament) check.
            if c.errors.len() == errors_before {
                for info in &described {
                    if info.needs_star && !checked.iter().any(|r| r == "*") {
                        c.at_loc(list.referenced.line(), list.referenced.column(),
                            format!("`{}` applies to no resource type: IAM only grants it on `\"*\"`", info.name),
                            "move it to a statement with `resources: [\"*\"]` and `allow_wildcard: \"why\"`");
                    }
                    for (type_name, format) in &info.required {
                        if !checked.iter().any(|r| super::iam_catalog::resource_matches(type_name, format, r)) {
                            c.at_loc(list.referenced.line(), list.referenced.column(),
                                format!("no resource of statement {} of function `{fname}` is a `{type_name}`, which `{}` needs", i + 1, info.name),
                                format!("add a resource of the form `{}`", format.replacen("arn:*:", "arn:aws:", 1)));
                        }
                    }
                }
            }
        }
    }
    let condition = st.condition.as_ref().map(|cond| {
        let at = (cond.referenced.line(), cond.referenced.column());
        match &cond.value {
            serde_json::Value::Object(ops) => {
                for (op, block) in ops {
                    let base = super::iam_catalog::parse_operator(op).map(|o| o.base);
                    if base.is_none() {
                        let operators = super::iam_catalog::CONDITION_OPERATORS;
                        let hint = match did_you_mean(op, operators.iter().copied()) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!("use one of IAM's operators: {}", operators.join(", ")),
                        };
                        c.at_loc(at.0, at.1, format!("unknown condition operator `{op}`"), hint);
                    }
                    let serde_json::Value::Object(keys) = block else {
                        c.at_loc(at.0, at.1, format!("condition `{op}` must map condition keys to values"), "write e.g. `{ StringLike: { \"s3:prefix\": [\"notes/*\"] } }`");
                        continue;
                    };
                    for (key, value) in keys {
                        let scalar = |v: &serde_json::Value| v.is_string() || v.is_number() || v.is_boolean();
                        if !(scalar(value) || value.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(scalar))) {
                            c.at_loc(at.0, at.1, format!("condition `{op}` on `{key}` needs a value or a list of values"), "write e.g. `\"s3:prefix\": [\"notes/*\"]`");
                            continue;
                        }
                        let values: Vec<String> = match value {
                            serde_json::Value::Array(a) => a.iter().map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())).collect(),
                            v => vec![v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())],
                        };
                        let wants = base.map(operator_type);
                        if matches!(base, Some("Null" | "Bool")) && values.iter().any(|v| v != "true" && v != "false") {
                            c.at_loc(at.0, at.1, format!("condition `{op}` on `{key}` takes `true` or `false`"), "write `true` or `false`");
                            continue;
                        }
                        for info in &described {
                            if !super::iam_catalog::supports_condition(info, key) {
                                c.at_loc(at.0, at.1, format!("condition key `{key}` does not apply to `{}`", info.name), "use a key IAM documents for the action, or a global `aws:` key");
                                continue;
                            }
                            if base == Some("Null") {
                                continue;
                            }
                            let Some(kind) = super::iam_catalog::condition_type(info, key) else { continue };
                            if let Some(wants) = wants.filter(|w| *w != kind) {
                                c.at_loc(at.0, at.1, format!("`{key}` is of type {kind}, but `{op}` compares {wants} values"), format!("use an operator for {kind} values, e.g. `{}`", operator_for(&kind)));
                            } else if let Some(bad) = values.iter().find(|v| !super::iam_catalog::value_fits(&kind, v)) {
                                c.at_loc(at.0, at.1, format!("`{bad}` is not a {kind} value for `{key}`"), format!("write a {kind} value, e.g. {}", example_of(&kind)));
                            }
                        }
                    }
                }
            }
            _ => c.at_loc(at.0, at.1, "`condition` must be a mapping of IAM operators", "write e.g. `condition: { StringEquals: { \"aws:RequestedRegion\": eu-west-1 } }`"),
        }
        cond.value.clone()
    });
    if reason.is_some_and(|r| !r.is_empty()) && !wildcard && c.errors.len() == errors_before {
        c.at_loc(st.actions.referenced.line(), st.actions.referenced.column(), format!("statement {} of function `{fname}` says `allow_wildcard` but has no wildcard", i + 1), "remove `allow_wildcard`");
    }
    (c.errors.len() == errors_before).then_some(model::Statement { sid, actions, resources, condition })
}

fn parameters(c: &mut Checker, raw: &raw::Entries<raw::Parameter>) -> Vec<model::Parameter> {
    let mut out = Vec::new();
    for (name, p) in raw.iter() {
        let env = match &p.env {
            Some(e) => {
                if e.value.is_empty() || !e.value.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                    c.at(e, format!("invalid environment variable name `{}` for parameter `{}`", e.value, name.value), "use letters, digits and `_`");
                }
                e.value.clone()
            }
            None => name.value.to_ascii_uppercase(),
        };
        if p.secret && p.default.as_deref().is_some_and(|d| !d.is_empty()) {
            c.at(name, format!("secret parameter `{}` has a default value written in the stack file", name.value),
                format!("remove `default:` and set the secret in the deployer's environment (`{env}`)"));
        }
        if p.generate && p.default.as_deref().is_some_and(|d| !d.is_empty()) {
            c.at(name, format!("parameter `{}` has both `generate: true` and a default", name.value), "keep only one of them");
        }
        out.push(model::Parameter {
            name: name.value.clone(),
            description: p.description.clone(),
            env,
            default: p.default.clone(),
            secret: p.secret,
            generate: p.generate,
        });
    }
    out
}

fn buckets(c: &mut Checker, raw: &raw::Entries<raw::Bucket>) -> Vec<model::Bucket> {
    let mut out = Vec::new();
    for (name, b) in raw.iter() {
        let mut ids = BTreeSet::new();
        let mut lifecycle = Vec::new();
        for rule in &b.lifecycle {
            if !ids.insert(rule.id.value.as_str()) {
                c.at(&rule.id, format!("lifecycle rule id `{}` is used twice in bucket `{}`", rule.id.value, name.value), "give each rule its own id");
            }
            if rule.id.value.is_empty() || rule.id.value.len() > 255 {
                c.at(&rule.id, "a lifecycle rule id must have 1 to 255 characters", "give the rule a short id, e.g. `expire-results`");
            }
            if rule.expiration_days.value == 0 {
                let at = &rule.expiration_days.referenced;
                c.at_loc(at.line(), at.column(), "`expiration_days` must be at least 1", "S3 expires objects in whole days: use 1 or more");
            }
            lifecycle.push(model::LifecycleRule {
                id: rule.id.value.clone(),
                prefix: rule.prefix.clone().unwrap_or_default(),
                expiration_days: rule.expiration_days.value,
            });
        }
        out.push(model::Bucket { name: name.value.clone(), lifecycle });
    }
    out
}

fn api(c: &mut Checker, stack: &str, a: &raw::Api, functions: &[&str]) -> model::Api {
    if a.routes.value.is_empty() {
        let at = a.routes.referenced;
        c.at_loc(at.line(), at.column(), "the API declares no route", "add a route under `api.routes`, e.g. `/paraphrase:`");
    }
    let cors_cfg = a.cors.as_ref();
    let cors = model::Cors {
        allow_origin: cors_cfg.and_then(|x| x.allow_origin.clone()).unwrap_or_else(|| model::Cors::default().allow_origin),
        allow_headers: cors_cfg.and_then(|x| x.allow_headers.clone()).unwrap_or_else(|| model::Cors::default().allow_headers),
        max_age: cors_cfg.and_then(|x| x.max_age),
    };
    // Routes are compared in the shape API Gateway sees: trailing `/` dropped and
    // path parameters anonymised, since `/cars/{id}` and `/cars/{carId}` are one resource slot.
    let mut shapes: BTreeMap<String, &Name> = BTreeMap::new();
    let mut routes = Vec::new();
    for (path, route) in a.routes.value.iter() {
        let normal = match check_path(&path.value) {
            Ok(n) => n,
            Err(why) => {
                c.at(path, format!("invalid resource path `{}`: {why}", path.value), "write paths like `/search` or `/cars/{id}`");
                path.value.clone()
            }
        };
        let shape = normal
            .split('/')
            .map(|seg| if seg.starts_with('{') { if seg.ends_with("+}") { "{+}" } else { "{}" } } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        if let Some(first) = shapes.insert(shape, path) {
            let line = first.referenced.line();
            c.at(path, format!("duplicate route: `{}` is the same resource as `{}` (line {line})", path.value, first.value),
                "merge the two routes' methods under one path");
        }
        let mut seen_methods: BTreeMap<String, &Name> = BTreeMap::new();
        let mut methods = Vec::new();
        for (verb, m) in route.methods.iter() {
            let upper = verb.value.to_ascii_uppercase();
            if !HTTP_METHODS.contains(&upper.as_str()) {
                let hint = match did_you_mean(&upper, HTTP_METHODS.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("use one of: {}", HTTP_METHODS.join(", ")),
                };
                c.at(verb, format!("unknown HTTP method `{}` on `{}`", verb.value, path.value), hint);
            }
            if upper == "OPTIONS" && route.cors {
                c.at(verb, format!("`{}` declares OPTIONS and `cors: true`", path.value), "remove the OPTIONS method: `cors: true` answers preflight requests itself");
            }
            if let Some(first) = seen_methods.insert(upper.clone(), verb) {
                let line = first.referenced.line();
                c.at(verb, format!("method {upper} is declared twice on `{}` (first on line {line})", path.value), "keep one of them");
            }
            let context = format!("method {upper} {}", path.value);
            c.reference(&m.function, "function", &context, functions.iter().copied());
            let kind = m.integration.as_ref().map(|i| i.value).unwrap_or(raw::Integration::Proxy);
            if let (raw::Integration::Proxy, Some(r)) = (kind, &m.responses) {
                c.at_loc(r.referenced.line(), r.referenced.column(),
                    format!("method {upper} {} declares integration responses but has a proxy integration, whose function shapes the response itself", path.value),
                    "set `integration: aws` to use `responses`, or remove them");
            }
            let request = method_request(c, &context, &normal, m);
            let integration = match (kind, &m.request_templates) {
                (raw::Integration::Proxy, Some(t)) => {
                    c.at_loc(t.referenced.line(), t.referenced.column(),
                        format!("method {upper} {} has request mapping templates but a proxy integration, which ignores them", path.value),
                        "set `integration: aws` to use mapping templates, or remove `request_templates`");
                    model::Integration::Proxy
                }
                (raw::Integration::Proxy, None) => model::Integration::Proxy,
                (raw::Integration::Aws, templates) => {
                    let request_templates = match templates {
                        Some(t) => mapping_templates(c, &context, "request", &t.value),
                        None => BTreeMap::new(),
                    };
                    let responses = match &m.responses {
                        Some(r) => integration_responses(c, &context, route.cors, r),
                        None => model::default_responses(),
                    };
                    model::Integration::Aws { request_templates, responses }
                }
            };
            methods.push(model::Method { http_method: upper, function: m.function.value.clone(), integration, request });
        }
        if route.methods.is_empty() {
            c.at(path, format!("route `{}` has no method", path.value), "add a method, e.g. `POST: { function: NAME }`");
        }
        routes.push(model::Route { path: normal, cors: route.cors, methods });
    }
    let mut stage_variables = BTreeMap::new();
    for (stage, vars) in a.stage_variables.iter() {
        if stage.value != "default" && naming::check_stage(&stage.value).is_err() {
            c.at(stage, format!("`{}` is not a stage name", stage.value), "key stage variables by stage (`production`), or `default` for every other stage");
        }
        let mut resolved = BTreeMap::new();
        for (name, value) in vars.iter() {
            if name.value.is_empty() || !name.value.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                c.at(name, format!("invalid stage variable name `{}`", name.value), "API Gateway allows letters, digits and `_`");
            }
            if value.len() > 512 || !value.chars().all(|ch| ch.is_ascii_alphanumeric() || " -._~:/?#&=,".contains(ch)) {
                c.at(name, format!("the value of stage variable `{}` has characters API Gateway refuses, or more than 512", name.value), "use letters, digits and `-._~:/?#&=,` and spaces, at most 512 characters");
            }
            resolved.insert(name.value.clone(), value.clone());
        }
        stage_variables.insert(stage.value.clone(), resolved);
    }
    model::Api {
        name: a.name.clone().unwrap_or_else(|| stack.to_owned()),
        endpoint: a.endpoint.unwrap_or(model::EndpointType::Edge),
        cors,
        routes,
        stage_variables,
    }
}

/// Mapping templates by content type: each key a content type, each template
/// one the evaluator parses.
fn mapping_templates(c: &mut Checker, context: &str, what: &str, templates: &raw::Entries<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (ctype, body) in templates.iter() {
        if !is_content_type(&ctype.value) {
            c.at(ctype, format!("`{}` is not a content type", ctype.value), "key templates by content type, e.g. `application/json`");
        }
        if let Err(e) = crate::vtl::check(body) {
            c.at(ctype, format!("the {what} template `{}` of {context} does not parse: line {} of the template: {}", ctype.value, e.line, e.message), "fix the template (Velocity, as API Gateway runs it)");
        }
        if out.insert(ctype.value.to_ascii_lowercase(), body.clone()).is_some() {
            c.at(ctype, format!("{context} has two {what} templates for `{}`", ctype.value), "keep one template per content type");
        }
    }
    out
}

fn is_content_type(s: &str) -> bool {
    let token = |t: &str| !t.is_empty() && t.chars().all(|ch| ch.is_ascii_alphanumeric() || "!#$&^_.+-*".contains(ch));
    s.split_once('/').is_some_and(|(a, b)| token(a) && token(b))
}

/// A method's request parameters and body models.
fn method_request(c: &mut Checker, context: &str, path: &str, m: &raw::Method) -> model::MethodRequest {
    let mut request = model::MethodRequest::default();
    let path_params: Vec<&str> = path.split('/').filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}')).map(|p| p.trim_end_matches('+')).collect();
    for (key, requirement) in m.request_parameters.iter() {
        let required = requirement.value == raw::Requirement::Required;
        let Some((place, name)) = key.value.split_once('.').filter(|(_, n)| !n.is_empty()) else {
            c.at(key, format!("`{}` is not a request parameter of {context}", key.value), "write `querystring.NAME`, `header.NAME` or `path.NAME`");
            continue;
        };
        match place {
            "querystring" | "header" => {
                let ok = name.chars().all(|ch| ch.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(ch));
                if !ok || (place == "querystring" && name.contains('&')) {
                    c.at(key, format!("`{name}` is not a valid {place} parameter name"), "use letters, digits and `-_.`");
                }
            }
            "path" if !path_params.contains(&name) => {
                let hint = match path_params.as_slice() {
                    [] => "the route has no path parameter: remove it".to_string(),
                    known => format!("the route's path parameters: {}", known.join(", ")),
                };
                c.at(key, format!("`{}` names no path parameter of {context}", key.value), hint);
            }
            "path" => {}
            other => {
                let hint = match did_you_mean(other, ["querystring", "header", "path"]) {
                    Some(s) => format!("did you mean `{s}.{name}`?"),
                    None => "write `querystring.NAME`, `header.NAME` or `path.NAME`".into(),
                };
                c.at(key, format!("`{other}` is not a place request parameters come from"), hint);
            }
        }
        request.parameters.insert(key.value.clone(), required);
    }
    for (ctype, schema) in m.request_models.iter() {
        if ctype.value != "$default" && !is_content_type(&ctype.value) {
            c.at(ctype, format!("`{}` is not a content type", ctype.value), "key request models by content type, e.g. `application/json`, or `$default`");
        }
        let at = &schema.referenced;
        if !schema.value.is_object() {
            c.at_loc(at.line(), at.column(), format!("the request model of {context} for `{}` is not a JSON Schema object", ctype.value), "write a schema, e.g. `{ type: object, required: [name] }`");
            continue;
        }
        if let Some(r) = external_ref(&schema.value) {
            c.at_loc(at.line(), at.column(), format!("the request model of {context} refers to `{r}` outside itself"), "inline the schema, or refer inside it (`#/definitions/...`)");
            continue;
        }
        if let Err(e) = jsonschema::draft4::new(&schema.value) {
            c.at_loc(at.line(), at.column(), format!("the request model of {context} for `{}` is not a valid JSON Schema (draft 4): {e}", ctype.value), "API Gateway models are JSON Schema draft 4");
            continue;
        }
        request.models.insert(ctype.value.to_ascii_lowercase(), schema.value.clone());
    }
    request
}

/// The first `$ref` of a schema that does not point inside it.
fn external_ref(schema: &serde_json::Value) -> Option<String> {
    match schema {
        serde_json::Value::Object(m) => m
            .iter()
            .find_map(|(k, v)| match (k.as_str(), v) {
                ("$ref", serde_json::Value::String(r)) if !r.starts_with('#') => Some(r.clone()),
                _ => external_ref(v),
            }),
        serde_json::Value::Array(items) => items.iter().find_map(external_ref),
        _ => None,
    }
}

/// Where a method response header's value may come from (API Gateway's
/// response parameter mapping sources).
fn header_source_ok(source: &str) -> bool {
    if source.len() >= 2 && source.starts_with('\'') && source.ends_with('\'') {
        return true;
    }
    let named = |prefix: &str| source.strip_prefix(prefix).is_some_and(|n| !n.is_empty() && !n.contains(char::is_whitespace));
    source == "integration.response.body"
        || named("integration.response.body.")
        || named("integration.response.header.")
        || named("integration.response.multivalueheader.")
        || named("context.")
        || named("stageVariables.")
}

fn integration_responses(c: &mut Checker, context: &str, cors: bool, raw: &serde_saphyr::Spanned<Vec<raw::IntegrationResponse>>) -> Vec<model::IntegrationResponse> {
    let mut out: Vec<model::IntegrationResponse> = Vec::new();
    let mut default_seen = false;
    for r in &raw.value {
        let at = &r.status.referenced;
        let status = r.status.value;
        if !(100..=599).contains(&status) {
            c.at_loc(at.line(), at.column(), format!("status {status} of {context} is not an HTTP status"), "use 100 to 599");
        }
        if out.iter().any(|o| o.status == status) {
            c.at_loc(at.line(), at.column(), format!("{context} declares status {status} twice"), "API Gateway keys integration responses by status: merge them");
        }
        match &r.pattern {
            None if default_seen => c.at_loc(at.line(), at.column(), format!("{context} has two responses without `pattern`"), "only one response is the default: give the others a `pattern`"),
            None => default_seen = true,
            Some(p) => {
                if p.value.is_empty() {
                    c.at(p, "an empty `pattern` would make this the default response", "remove `pattern:` for the default response, or write a regular expression");
                } else if let Err(e) = regex::Regex::new(&format!("^(?:{})$", p.value)) {
                    c.at(p, format!("`{}` is not a regular expression: {e}", p.value), "write a pattern that matches the whole error message, e.g. `.*\"status\":404.*`");
                }
                if out.iter().any(|o| o.pattern.as_deref() == Some(p.value.as_str())) {
                    c.at(p, format!("pattern `{}` is used twice in {context}", p.value), "the first response with a matching pattern wins: remove the second");
                }
            }
        }
        let templates = mapping_templates(c, context, "response", &r.templates);
        let mut headers = BTreeMap::new();
        for (name, source) in r.headers.iter() {
            if name.value.is_empty() || !name.value.chars().all(|ch| ch.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(ch)) {
                c.at(name, format!("`{}` is not a header name", name.value), "use letters, digits and `-`");
            }
            if cors && name.value.eq_ignore_ascii_case("access-control-allow-origin") {
                c.at(name, format!("{context} sets Access-Control-Allow-Origin, which `cors: true` already sets"), "remove the header, or set the origin with `api.cors.allow_origin`");
            }
            if !header_source_ok(&source.value) {
                c.at(source, format!("`{}` is not where a response header can come from", source.value),
                    "write a literal in single quotes (`\"'no-store'\"`), `integration.response.body.FIELD`, `integration.response.header.NAME`, `context.VAR` or `stageVariables.NAME`");
            }
            if headers.insert(name.value.to_ascii_lowercase(), source.value.clone()).is_some() {
                c.at(name, format!("header `{}` is set twice", name.value), "keep one");
            }
        }
        // Header names keep the case written (the first of each).
        let headers = r.headers.iter().filter_map(|(n, v)| headers.remove(&n.value.to_ascii_lowercase()).map(|_| (n.value.clone(), v.value.clone()))).collect();
        out.push(model::IntegrationResponse { status, pattern: r.pattern.as_ref().map(|p| p.value.clone()), templates, headers });
    }
    if !default_seen {
        let at = &raw.referenced;
        c.at_loc(at.line(), at.column(), format!("{context} has no default response (one without `pattern`)"), "add `- status: 200` for the function's result");
    }
    out
}

/// Check a resource path the way API Gateway does and return it without a trailing `/`.
pub fn check_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err("it must start with `/`".into());
    }
    if path == "/" {
        return Ok(path.into());
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = trimmed[1..].split('/').collect();
    let mut params = BTreeSet::new();
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            return Err("it has an empty segment (`//`)".into());
        }
        if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let (name, greedy) = match inner.strip_suffix('+') {
                Some(n) => (n, true),
                None => (inner, false),
            };
            if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-') {
                return Err(format!("path parameter `{seg}` needs a name of letters, digits, `_` or `-`"));
            }
            if greedy && i + 1 != segments.len() {
                return Err(format!("the greedy parameter `{seg}` must be the last segment"));
            }
            if !params.insert(name) {
                return Err(format!("path parameter `{name}` appears twice"));
            }
        } else if let Some(ch) = seg.chars().find(|ch| !(ch.is_ascii_alphanumeric() || "-._~:@!$&'()*,;=".contains(*ch))) {
            return Err(format!("`{ch}` is not allowed in a path segment"));
        }
    }
    Ok(trimmed.to_owned())
}

fn sibling_crates(dir: &Path) -> Vec<String> {
    let Some(parent) = dir.parent() else { return Vec::new() };
    let Ok(read) = std::fs::read_dir(parent) else { return Vec::new() };
    let prefix = dir
        .components()
        .rev()
        .nth(1)
        .map(|c| PathBuf::from(c.as_os_str()))
        .unwrap_or_default();
    read.flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| prefix.join(e.file_name()).to_string_lossy().into_owned())
        .collect()
}

/// `[package] name` of a crate.
fn package_name(crate_dir: &Path) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        package: Package,
    }
    #[derive(serde::Deserialize)]
    struct Package {
        name: String,
    }
    let text = std::fs::read_to_string(crate_dir.join("Cargo.toml")).ok()?;
    toml::from_str::<Manifest>(&text).ok().map(|m| m.package.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(check_path("/search/").unwrap(), "/search");
        assert_eq!(check_path("/").unwrap(), "/");
        assert_eq!(check_path("/cars/{id}").unwrap(), "/cars/{id}");
        assert!(check_path("search").is_err());
        assert!(check_path("/a//b").is_err());
        assert!(check_path("/{proxy+}/x").is_err());
        assert!(check_path("/a b").is_err());
        assert!(check_path("/{id}/{id}").is_err());
    }
}
