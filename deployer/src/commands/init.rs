//! `init [DIR] [--template api|async] [--name NAME]`: a new project — a cargo
//! workspace with a function crate that compiles and has tests, a commented
//! stack file, `.gitignore`, and the dev-profile settings that keep the local
//! cloud's debug builds small. Nothing is written if any of its files exists.

use std::path::{Path, PathBuf};

use super::{Context, Failure};
use crate::cli::Template;

const CARGO_TOML: &str = include_str!("../../templates/common/Cargo.toml");
const GITIGNORE: &str = include_str!("../../templates/common/gitignore");

/// (path in the project, contents) of a template; `{{name}}` is the stack
/// name, `{{crate}}` the function crate's name as a Rust identifier.
fn files(template: Template) -> Vec<(&'static str, &'static str)> {
    let mut files = vec![("Cargo.toml", CARGO_TOML), (".gitignore", GITIGNORE)];
    match template {
        Template::Api => files.extend([
            ("stacks/{{name}}.yaml", include_str!("../../templates/api/stack.yaml")),
            ("functions/api/Cargo.toml", include_str!("../../templates/api/functions/api/Cargo.toml")),
            ("functions/api/src/main.rs", include_str!("../../templates/api/functions/api/src/main.rs")),
        ]),
        Template::Async => files.extend([
            ("stacks/{{name}}.yaml", include_str!("../../templates/async/stack.yaml")),
            ("functions/jobs/Cargo.toml", include_str!("../../templates/async/functions/jobs/Cargo.toml")),
            ("functions/jobs/src/lib.rs", include_str!("../../templates/async/functions/jobs/src/lib.rs")),
            ("functions/jobs/src/bin/start.rs", include_str!("../../templates/async/functions/jobs/src/bin/start.rs")),
            ("functions/jobs/src/bin/worker.rs", include_str!("../../templates/async/functions/jobs/src/bin/worker.rs")),
            ("functions/jobs/src/bin/status.rs", include_str!("../../templates/async/functions/jobs/src/bin/status.rs")),
        ]),
    }
    files
}

/// A stack name from a directory name: lowercase letters, digits and dashes.
fn name_from(dir: &Path) -> String {
    let raw = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut name = String::new();
    for c in raw.chars() {
        match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => name.push(c),
            _ if !name.ends_with('-') && !name.is_empty() => name.push('-'),
            _ => {}
        }
    }
    let name = name.trim_end_matches('-').to_owned();
    match name.chars().next() {
        Some('a'..='z') => name,
        Some(_) => format!("app-{name}"),
        None => "app".into(),
    }
}

pub fn run(ctx: &Context, dir: Option<PathBuf>, template: Template, name: Option<String>) -> Result<(), Failure> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let absolute = std::path::absolute(&dir).map_err(|e| Failure::User(format!("{}: {e}", dir.display())))?;
    let name = match name {
        Some(n) => n,
        None => name_from(&absolute),
    };
    crate::naming::check_identifier(&name).map_err(|why| Failure::User(format!("invalid stack name `{name}`: {why}\n  hint: pass `--name my-api`")))?;
    // The physical names of the longest-named function must fit at stage `production`.
    let longest = match template {
        Template::Api => "api",
        Template::Async => "worker",
    };
    let physical = crate::naming::function_name(&name, "production", longest);
    if physical.len() > crate::naming::FUNCTION_NAME_MAX {
        return Err(Failure::User(format!("the stack name `{name}` is too long: function names such as `{physical}` would pass Lambda's {} characters\n  hint: pass a shorter `--name`", crate::naming::FUNCTION_NAME_MAX)));
    }
    let crate_ident = match template {
        Template::Api => format!("{name}_api"),
        Template::Async => format!("{name}_jobs"),
    }
    .replace('-', "_");
    let files: Vec<(PathBuf, String)> = files(template)
        .into_iter()
        .map(|(path, text)| (absolute.join(path.replace("{{name}}", &name)), text.replace("{{name}}", &name).replace("{{crate}}", &crate_ident)))
        .collect();
    let existing: Vec<String> = files.iter().filter(|(p, _)| p.exists()).map(|(p, _)| p.strip_prefix(&absolute).unwrap_or(p).display().to_string()).collect();
    if !existing.is_empty() {
        return Err(Failure::User(format!(
            "{} already has {}; nothing was written\n  hint: run `stackctl init NEW_DIR`, or remove them",
            dir.display(),
            existing.join(", ")
        )));
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Failure::Operation(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(path, text).map_err(|e| Failure::Operation(format!("cannot write {}: {e}", path.display())))?;
    }
    if ctx.json() {
        ctx.print_json(&serde_json::json!({
            "project": absolute.display().to_string(),
            "stack": name,
            "files": files.iter().map(|(p, _)| p.strip_prefix(&absolute).unwrap_or(p).display().to_string()).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let cd = if dir == Path::new(".") { String::new() } else { dir.display().to_string() };
    println!("created stack `{name}` in {} ({} files)", dir.display(), files.len());
    println!();
    println!("next:");
    let logs = match template {
        Template::Api => "stackctl logs api",
        Template::Async => "stackctl logs worker",
    };
    let curl = match template {
        Template::Api => "curl \"$URL/hello?name=Ada\"".to_string(),
        Template::Async => "curl -X POST \"$URL/jobs\" -d '{\"text\":\"hello\"}'".to_string(),
    };
    let steps: Vec<(String, &str)> = [
        (if cd.is_empty() { None } else { Some((format!("cd {}", dir.display()), "")) }),
        Some(("cargo test".into(), "the function's tests")),
        Some(("stackctl deploy --target local".into(), "build, and run it on this machine")),
        Some((curl, "URL: the invoke URL deploy printed")),
        Some(("stackctl serve --watch".into(), "serve in the foreground, reload on save")),
        Some((logs.into(), "what it logged")),
        Some(("stackctl deploy --stage production".into(), "to AWS, with AWS credentials")),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (command, why) in steps {
        if why.is_empty() {
            println!("  {command}");
        } else {
            println!("  {command:<36}  # {why}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::name_from;
    use std::path::Path;

    #[test]
    fn a_directory_name_becomes_a_stack_name() {
        assert_eq!(name_from(Path::new("/tmp/My Notes_API")), "my-notes-api");
        assert_eq!(name_from(Path::new("/tmp/2024-app")), "app-2024-app");
        assert_eq!(name_from(Path::new("/")), "app");
        assert_eq!(name_from(Path::new("/x/--weird--")), "weird");
    }
}
