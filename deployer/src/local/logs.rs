//! The local cloud's CloudWatch Logs: one directory per log group, made by the
//! deploy as on AWS (`group.json`: name and retention), into which the server
//! appends each line a function writes (`events.jsonl`, one JSON event per line).
//! `stackctl logs` reads it back with the same query as on AWS. A function whose
//! group does not exist writes to the server's log only, as Lambda drops the
//! logs of a function whose role may not create its group.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::target::{LogEvent, LogQuery};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupFile {
    pub name: String,
    pub retention_days: u32,
}

/// One line as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    /// ms since the epoch
    t: i64,
    /// stream
    s: String,
    /// message
    m: String,
}

/// The directory of a group (`/aws/lambda/{function}` → `logs/{function}`).
pub fn group_dir(stage_dir: &Path, group: &str) -> PathBuf {
    stage_dir.join("logs").join(group.trim_start_matches("/aws/lambda/"))
}

fn events_path(group_dir: &Path) -> PathBuf {
    group_dir.join("events.jsonl")
}

pub fn write_group(stage_dir: &Path, group: &GroupFile) -> std::io::Result<()> {
    super::cloud::write_json(&group_dir(stage_dir, &group.name).join("group.json"), group, false)
}

pub fn read_group(stage_dir: &Path, group: &str) -> std::io::Result<GroupFile> {
    super::cloud::read_json(&group_dir(stage_dir, group).join("group.json"))
}

/// Where the server appends a function's lines: `None` when it has no group.
pub fn sink(stage_dir: &Path, function: &str) -> Option<PathBuf> {
    let dir = group_dir(stage_dir, &crate::engine::desired::log_group_name(function));
    dir.join("group.json").is_file().then(|| events_path(&dir))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// Lambda's stream name for a new execution environment: `YYYY/MM/DD/[$LATEST]id`.
pub fn stream_name() -> String {
    let today = time::OffsetDateTime::now_utc().date();
    format!("{:04}/{:02}/{:02}/[$LATEST]{}", today.year(), today.month() as u8, today.day(), super::cloud::random_id(32, false))
}

/// Appends one process's lines to its group, each in one `write` (O_APPEND:
/// the lines of concurrent processes never interleave).
pub struct Appender {
    file: std::fs::File,
    stream: String,
}

impl Appender {
    pub fn open(path: &Path, stream: String) -> std::io::Result<Appender> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Appender { file, stream })
    }

    pub fn line(&mut self, message: &str) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(&Line { t: now_ms(), s: self.stream.clone(), m: message.to_owned() }).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        self.file.write_all(&bytes)
    }
}

/// The events of `function`'s group that match `query` and are within the
/// group's retention, oldest first. No group: no events.
pub fn read(stage_dir: &Path, function: &str, query: &LogQuery) -> std::io::Result<Vec<LogEvent>> {
    let group = crate::engine::desired::log_group_name(function);
    let Ok(meta) = read_group(stage_dir, &group) else { return Ok(Vec::new()) };
    let file = match std::fs::File::open(events_path(&group_dir(stage_dir, &group))) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let kept_from = now_ms() - i64::from(meta.retention_days) * 86_400_000;
    let since = query.since_ms.unwrap_or(i64::MIN).max(kept_from);
    let mut events = Vec::new();
    let mut offset = 0u64;
    let mut reader = std::io::BufReader::new(file);
    let mut buf = String::new();
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf)?;
        // A line still being written (no newline yet) is read next time.
        if n == 0 || !buf.ends_with('\n') {
            break;
        }
        let at = offset;
        offset += n as u64;
        let Ok(line) = serde_json::from_str::<Line>(buf.trim_end()) else { continue };
        if line.t < since || query.filter.as_ref().is_some_and(|f| !line.m.contains(f.as_str())) {
            continue;
        }
        events.push(LogEvent { id: at.to_string(), timestamp_ms: line.t, stream: line.s, message: line.m });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_back_filtered_and_within_retention() {
        let dir = tempfile::tempdir().unwrap();
        write_group(dir.path(), &GroupFile { name: "/aws/lambda/app-dev-api".into(), retention_days: 1 }).unwrap();
        let path = sink(dir.path(), "app-dev-api").expect("the group exists");
        assert!(sink(dir.path(), "app-dev-other").is_none(), "no group, no sink");
        let mut a = Appender::open(&path, stream_name()).unwrap();
        a.line("handled GET /notes").unwrap();
        a.line("handled PUT /notes/\"x\"").unwrap();
        // A line older than the retention, written as another process would have.
        let old = serde_json::to_string(&Line { t: now_ms() - 2 * 86_400_000, s: "old".into(), m: "handled long ago".into() }).unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(format!("{old}\n{{\"t\":1,\"s\":\"x\",\"m\":\"partial").as_bytes()).unwrap();

        let all = read(dir.path(), "app-dev-api", &LogQuery::default()).unwrap();
        assert_eq!(all.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["handled GET /notes", "handled PUT /notes/\"x\""]);
        assert!(all[0].stream.contains("[$LATEST]"));
        assert_ne!(all[0].id, all[1].id);
        let put = read(dir.path(), "app-dev-api", &LogQuery { filter: Some("PUT".into()), ..Default::default() }).unwrap();
        assert_eq!(put.len(), 1);
        let later = read(dir.path(), "app-dev-api", &LogQuery { since_ms: Some(now_ms() + 60_000), ..Default::default() }).unwrap();
        assert!(later.is_empty());
        assert!(read(dir.path(), "app-dev-other", &LogQuery::default()).unwrap().is_empty());
    }
}
