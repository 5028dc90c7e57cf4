//! Stack files: discovery, parsing, validation and the typed model.

pub mod iam_catalog;
pub mod load;
pub mod model;
pub mod raw;
pub mod schedule;
pub mod validate;

use std::path::{Path, PathBuf};

pub use model::Stack;

use crate::diag::{did_you_mean, Diagnostic, Diagnostics};

/// Which stack files a command works on.
#[derive(Debug, Clone, Default)]
pub enum Selection {
    /// Every `*.yaml` / `*.yml` under `stacks/` of the workspace.
    #[default]
    All,
    /// `stacks/NAME.yaml`.
    Named(String),
    /// An explicit file.
    File(PathBuf),
}

/// Parse and validate one stack file for a stage.
pub fn load(file: &Path, stage: &str) -> Result<Stack, Diagnostics> {
    let bytes = std::fs::read(file).map_err(|e| {
        Diagnostics(vec![Diagnostic::new(file, 0, 0, format!("cannot read the stack file: {e}"))
            .hint("check the path given with `-f` or `--stack`")])
    })?;
    let src = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            // Point at the first byte that is not UTF-8.
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let text = String::from_utf8_lossy(good);
            let line = text.matches('\n').count() as u32 + 1;
            let column = text.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) as u32 + 1;
            return Err(Diagnostics(vec![Diagnostic::new(file, line, column, "the stack file is not UTF-8 text")
                .hint("save the file as UTF-8")]));
        }
    };
    if src.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Err(Diagnostics(vec![Diagnostic::new(file, 1, 1, "the stack file is empty")
            .hint("start it with `stack: NAME` and a `functions:` section (see `stackctl schema`)")]));
    }
    let raw = load::parse(file, &src).map_err(|d| Diagnostics(vec![d]))?;
    let root = workspace_root(file);
    validate::validate(file, &src, &root, stage, raw).map_err(Diagnostics)
}

/// The workspace root that crate paths in a stack file are relative to: the nearest
/// ancestor of the file's directory holding a `Cargo.toml` with `[workspace]`, else
/// the parent of the file's directory (the `stacks/` convention).
pub fn workspace_root(file: &Path) -> PathBuf {
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let dir = abs.parent().unwrap_or(Path::new("."));
    for ancestor in dir.ancestors() {
        let manifest = ancestor.join("Cargo.toml");
        if std::fs::read_to_string(&manifest).is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]")) {
            return ancestor.to_path_buf();
        }
    }
    dir.parent().unwrap_or(dir).to_path_buf()
}

/// The stack files a selection names, relative to `project_dir`.
/// The project directory, found as cargo finds its manifest: the current
/// directory or the nearest ancestor with a `stacks/` folder holding a stack
/// file. `.` when the current directory is the project (or none is found, so
/// the error names where stacks were looked for).
pub fn discover_project(cwd: &Path) -> PathBuf {
    let holds_stacks = |d: &Path| !list(&d.join("stacks")).is_empty();
    if holds_stacks(cwd) {
        return PathBuf::from(".");
    }
    cwd.ancestors().skip(1).find(|d| holds_stacks(d)).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

pub fn select(project_dir: &Path, selection: &Selection) -> Result<Vec<PathBuf>, String> {
    let dir = project_dir.join("stacks");
    match selection {
        Selection::File(f) => {
            if f.is_file() {
                Ok(vec![f.clone()])
            } else {
                Err(format!("stack file {} does not exist", f.display()))
            }
        }
        Selection::Named(name) => {
            let available = list(&dir);
            for ext in ["yaml", "yml"] {
                let f = dir.join(format!("{name}.{ext}"));
                if f.is_file() {
                    return Ok(vec![f]);
                }
            }
            let names: Vec<String> = available
                .iter()
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect();
            let hint = match did_you_mean(name, names.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None if names.is_empty() => format!("there is no stack file under {}", dir.display()),
                None => format!("available stacks: {}", names.join(", ")),
            };
            Err(format!("no stack named `{name}` in {}\n  hint: {hint}", dir.display()))
        }
        Selection::All => {
            let files = list(&dir);
            if files.is_empty() {
                Err(format!(
                    "no stack file found under {}\n  hint: run stackctl from the project root, or pass `-f FILE`",
                    dir.display()
                ))
            } else {
                Ok(files)
            }
        }
    }
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    files
}

/// The JSON Schema of the stack file format, for editors.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(raw::StackFile);
    serde_json::to_value(schema).unwrap_or_default()
}
