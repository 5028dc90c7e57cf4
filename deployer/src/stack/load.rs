//! Reading a stack file: YAML → [`raw::StackFile`], with every parse or type error
//! turned into a [`Diagnostic`] that names the file, line, column, the field path
//! and the fix.

use std::path::Path;

use serde_saphyr::granit_parser::{Event, Parser};

use super::raw;
use crate::diag::{did_you_mean, Diagnostic};

/// Parse one stack file's text. `file` is only used to label diagnostics.
pub fn parse(file: &Path, src: &str) -> Result<raw::StackFile, Diagnostic> {
    serde_saphyr::from_str::<raw::StackFile>(src).map_err(|err| {
        let (line, column) = err
            .location()
            .map(|l| (l.line() as u32, l.column() as u32))
            .unwrap_or((0, 0));
        let path = if line > 0 { path_at(src, line, column) } else { Vec::new() };
        explain(file, line, column, &path, &raw_message(&err)).with_source(src)
    })
}

/// serde-saphyr's message without its location prefix and snippet: we render both.
fn raw_message(err: &serde_saphyr::Error) -> String {
    let msg = message_text(err);
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    }
}

fn message_text(err: &serde_saphyr::Error) -> String {
    match err.without_snippet() {
        serde_saphyr::Error::Message { msg, .. } | serde_saphyr::Error::ExternalMessage { msg, .. } => msg.clone(),
        other => {
            let text = other.to_string();
            let first = text.lines().next().unwrap_or_default();
            // "error: line 2 column 12: expected mapping start"
            match first.split_once(" column ").and_then(|(_, rest)| rest.split_once(": ")) {
                Some((_, msg)) => msg.to_owned(),
                None => first.trim_start_matches("error: ").to_owned(),
            }
        }
    }
}

/// Turn a deserializer message into our wording, with a hint.
fn explain(file: &Path, line: u32, column: u32, path: &[String], msg: &str) -> Diagnostic {
    let here = describe(path);
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (key, expected) = split_expected(rest);
        // The unknown key is the last element of the path when the parser stopped on it.
        let parent = if path.last().map(String::as_str) == Some(key) { &path[..path.len() - 1] } else { path };
        let where_ = describe(parent);
        let mut d = Diagnostic::new(file, line, column, format!("unknown key `{key}` in {where_}"));
        d = match did_you_mean(key, expected.iter().copied()) {
            Some(s) => d.hint(format!("did you mean `{s}`? (allowed here: {})", expected.join(", "))),
            None => d.hint(format!("remove it, or use one of: {}", expected.join(", "))),
        };
        return d;
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        let (value, expected) = split_expected(rest);
        let mut d = Diagnostic::new(file, line, column, format!("`{value}` is not a valid value for {here}"));
        d = match did_you_mean(value, expected.iter().copied()) {
            Some(s) => d.hint(format!("did you mean `{s}`? (one of: {})", expected.join(", "))),
            None => d.hint(format!("use one of: {}", expected.join(", "))),
        };
        return d;
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        // Reported at the mapping's first key, which the path ends with: drop it.
        let parent = match path.last() {
            Some(last) if last.parse::<usize>().is_err() => describe(&path[..path.len() - 1]),
            _ => here,
        };
        return Diagnostic::new(file, line, column, format!("missing required key `{key}` in {parent}"))
            .hint(format!("add `{key}: ...` here"));
    }
    if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest);
        return Diagnostic::new(file, line, column, format!("duplicate key `{key}` in {}", describe(&path[..path.len().saturating_sub(1)])))
            .hint("each key may appear only once here: merge the two entries or rename one");
    }
    if let Some("u8" | "u16" | "u32" | "u64" | "i32" | "i64") = msg.strip_prefix("invalid ") {
        return Diagnostic::new(file, line, column, format!("{here} must be a whole number"))
            .hint("write a number without quotes or units, e.g. `128`");
    }
    if msg == "invalid boolean" {
        return Diagnostic::new(file, line, column, format!("{here} must be `true` or `false`"))
            .hint("write `true` or `false` without quotes");
    }
    if msg.starts_with("expected mapping start") {
        return Diagnostic::new(file, line, column, format!("{here} must be a mapping (`name: value` entries)"))
            .hint("see `stackctl schema` for the expected shape of this key");
    }
    if msg.starts_with("expected sequence start") {
        return Diagnostic::new(file, line, column, format!("{here} must be a list (`- item` entries or `[a, b]`)"))
            .hint("see `stackctl schema` for the expected shape of this key");
    }
    if msg.starts_with("invalid type") {
        return Diagnostic::new(file, line, column, format!("wrong type for {here}: {msg}"))
            .hint("see `stackctl schema` for the expected shape of this key");
    }
    Diagnostic::new(file, line, column, format!("{msg} (in {here})"))
        .hint("the file must be valid YAML shaped like `stackctl schema`")
}

fn split_expected(rest: &str) -> (&str, Vec<&str>) {
    let mut parts = rest.splitn(2, '`');
    let key = parts.next().unwrap_or_default();
    let tail = parts.next().unwrap_or_default();
    let expected = tail
        .split_once("expected one of ")
        .or_else(|| tail.split_once("expected "))
        .map(|(_, list)| {
            list.split(", ")
                .map(|s| s.trim_matches('`'))
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    (key, expected)
}

/// A human phrase for a field path: `function `a``, `method POST /search`, `key `stack``.
pub fn describe(path: &[String]) -> String {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let dotted = p.join(".");
    match p.as_slice() {
        [] => "the stack file".into(),
        ["functions", name] => format!("function `{name}`"),
        ["functions", name, "environment"] => format!("the environment of function `{name}`"),
        ["functions", name, "environment", var, ..] => format!("environment variable `{var}` of function `{name}`"),
        ["functions", name, "permissions", ..] => format!("the permissions of function `{name}` (`{dotted}`)"),
        ["functions", name, field, ..] => format!("`{field}` of function `{name}` (`{dotted}`)"),
        ["buckets", name] => format!("bucket `{name}`"),
        ["buckets", name, ..] => format!("bucket `{name}` (`{dotted}`)"),
        ["parameters", name] => format!("parameter `{name}`"),
        ["parameters", name, ..] => format!("parameter `{name}` (`{dotted}`)"),
        ["api", "routes", route] => format!("route `{route}`"),
        ["api", "routes", route, "methods", method] => format!("method {method} {route}"),
        ["api", "routes", route, "methods", method, ..] => format!("method {method} {route} (`{dotted}`)"),
        ["api", "routes", route, ..] => format!("route `{route}` (`{dotted}`)"),
        _ => format!("`{dotted}`"),
    }
}

/// The key path (`functions.search-worker.memory`, `permissions.buckets.0`) of the YAML
/// node at a 1-based line and column, found by replaying the parser's events.
/// serde's own path tracking cannot see map keys that carry locations, hence this.
pub fn path_at(src: &str, line: u32, column: u32) -> Vec<String> {
    enum Frame {
        Map { key: Option<String>, expect_key: bool },
        Seq { index: usize },
    }
    let target = (line as usize, column.saturating_sub(1) as usize);
    let mut stack: Vec<Frame> = Vec::new();
    let mut at_target: Option<(usize, Vec<String>)> = None;
    let snapshot = |stack: &[Frame]| -> Vec<String> {
        stack
            .iter()
            .filter_map(|f| match f {
                Frame::Map { key, .. } => key.clone(),
                Frame::Seq { index } => Some(index.to_string()),
            })
            .collect()
    };
    // A node was consumed as a value: the enclosing map now waits for a key again.
    fn value_done(stack: &mut [Frame]) {
        match stack.last_mut() {
            Some(Frame::Map { expect_key, .. }) => *expect_key = true,
            Some(Frame::Seq { index }) => *index += 1,
            None => {}
        }
    }
    for item in Parser::new_from_str(src) {
        let Ok((event, span)) = item else { break };
        let start = (span.start.line(), span.start.col());
        let at_or_past = start >= target;
        match event {
            Event::Scalar(value, ..) => {
                at_target = None;
                let is_key = matches!(stack.last(), Some(Frame::Map { expect_key: true, .. }));
                if is_key {
                    if let Some(Frame::Map { key, expect_key }) = stack.last_mut() {
                        *key = Some(value.into_owned());
                        *expect_key = false;
                    }
                    if at_or_past {
                        return snapshot(&stack);
                    }
                } else {
                    if at_or_past {
                        return snapshot(&stack);
                    }
                    value_done(&mut stack);
                }
            }
            // A block mapping starts on its first key: at exactly the target the
            // error is about that key, so step inside rather than stop.
            Event::MappingStart(..) if start > target => return snapshot(&stack),
            Event::MappingStart(..) => {
                if start == target {
                    // If this mapping closes before any key, the error is about it.
                    at_target = Some((stack.len(), snapshot(&stack)));
                }
                stack.push(Frame::Map { key: None, expect_key: true });
            }
            Event::SequenceStart(..) if at_or_past => return snapshot(&stack),
            Event::SequenceStart(..) => stack.push(Frame::Seq { index: 0 }),
            Event::MappingEnd | Event::SequenceEnd => {
                // An end event sits on the next token (often the next key), so it
                // never "contains" the location.
                stack.pop();
                if let Some((depth, path)) = &at_target
                    && stack.len() == *depth
                {
                    return path.clone();
                }
                value_done(&mut stack);
            }
            Event::Alias(..) => {
                if at_or_past {
                    return snapshot(&stack);
                }
                value_done(&mut stack);
            }
            _ => {}
        }
    }
    snapshot(&stack)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "stack: x\nfunctions:\n  a:\n    crate: f\n    memory: lots\n    permissions:\n      buckets:\n        - bucket: b\n          access: all\n";

    #[test]
    fn path_of_a_value_includes_its_key() {
        assert_eq!(path_at(SRC, 5, 13), ["functions", "a", "memory"]);
    }

    #[test]
    fn path_of_a_key_ends_with_the_key() {
        assert_eq!(path_at(SRC, 4, 5), ["functions", "a", "crate"]);
    }

    #[test]
    fn path_through_a_sequence_has_the_index() {
        assert_eq!(path_at(SRC, 9, 19), ["functions", "a", "permissions", "buckets", "0", "access"]);
    }

    #[test]
    fn flow_mappings_are_tracked_too() {
        let src = "functions: { a: { crate: f, memory: x } }\n";
        assert_eq!(path_at(src, 1, 37), ["functions", "a", "memory"]);
    }
}
