//! Where progress goes: a sink the engines report to, never `eprintln!` of their
//! own. On a terminal a live view (one line per running step, indicatif); in a
//! pipe plain lines; with `--output json` one JSON event per line. Always on
//! stderr: stdout carries the command's data only.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use serde_json::json;

/// One thing that happened.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A status line ("deploying stack `x` stage `y` to …").
    Note(&'a str),
    /// A step starts (`action` is the plan's action name).
    Started { id: &'a str, action: &'a str },
    /// A step finished.
    Finished { id: &'a str, done: &'a str, seconds: f64 },
    /// A step failed.
    Failed { id: &'a str, error: &'a str },
    /// A line from a service being followed (CloudFormation's stack events).
    Detail(&'a str),
}

pub trait Progress: Send + Sync {
    fn report(&self, event: Event<'_>);

    fn note(&self, text: &str) {
        self.report(Event::Note(text));
    }
}

/// Reports nothing (library callers, tests, `--output json` data-only runs).
pub struct Silent;

impl Progress for Silent {
    fn report(&self, _: Event<'_>) {}
}

/// Plain lines on stderr, as a log reads.
pub struct Plain {
    color: bool,
}

impl Plain {
    pub fn new(color: bool) -> Plain {
        Plain { color }
    }
}

fn line(event: Event<'_>) -> Option<String> {
    match event {
        Event::Note(t) | Event::Detail(t) => Some(t.to_owned()),
        Event::Started { .. } => None,
        Event::Finished { id, done, seconds } => Some(format!("  {done:<8} {id:<36} {seconds:>6.2}s")),
        Event::Failed { id, error } => Some(format!("  failed   {id:<36} {}", error.lines().next().unwrap_or_default())),
    }
}

impl Progress for Plain {
    fn report(&self, event: Event<'_>) {
        let Some(text) = line(event) else { return };
        let mut err = std::io::stderr().lock();
        let _ = if self.color && matches!(event, Event::Note(_)) { writeln!(err, "\x1b[2m{text}\x1b[0m") } else { writeln!(err, "{text}") };
    }
}

/// One JSON object per line on stderr (`--output json`).
pub struct Json;

impl Progress for Json {
    fn report(&self, event: Event<'_>) {
        let v = match event {
            Event::Note(t) => json!({ "event": "note", "message": t }),
            Event::Detail(t) => json!({ "event": "detail", "message": t }),
            Event::Started { id, action } => json!({ "event": "step_started", "id": id, "action": action }),
            Event::Finished { id, done, seconds } => json!({ "event": "step_finished", "id": id, "done": done, "seconds": (seconds * 1000.0).round() / 1000.0 }),
            Event::Failed { id, error } => json!({ "event": "step_failed", "id": id, "error": error }),
        };
        let _ = writeln!(std::io::stderr().lock(), "{v}");
    }
}

/// The live view of a terminal: a spinner per running step; finished steps
/// scroll above as plain lines.
pub struct Live {
    bars: indicatif::MultiProgress,
    running: Mutex<BTreeMap<String, indicatif::ProgressBar>>,
    color: bool,
}

impl Live {
    pub fn new(color: bool) -> Live {
        Live { bars: indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr()), running: Mutex::new(BTreeMap::new()), color }
    }
}

impl Progress for Live {
    fn report(&self, event: Event<'_>) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Started { id, action } => {
                let bar = self.bars.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(indicatif::ProgressStyle::with_template("  {spinner} {msg} {elapsed:>4}").unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()));
                bar.set_message(format!("{action:<8} {id:<36}"));
                bar.enable_steady_tick(std::time::Duration::from_millis(100));
                running.insert(id.to_owned(), bar);
            }
            Event::Finished { id, .. } | Event::Failed { id, .. } => {
                if let Some(bar) = running.remove(id) {
                    bar.finish_and_clear();
                    self.bars.remove(&bar);
                }
                if let Some(text) = line(event) {
                    let _ = self.bars.println(text);
                }
            }
            Event::Note(t) => {
                let _ = self.bars.println(if self.color { format!("\x1b[2m{t}\x1b[0m") } else { t.to_owned() });
            }
            Event::Detail(t) => {
                let _ = self.bars.println(t);
            }
        }
    }
}

/// Plain lines when `wanted`, else nothing (the library's one-call entry points).
pub fn lines_if(wanted: bool) -> Box<dyn Progress> {
    if wanted { Box::new(Plain::new(false)) } else { Box::new(Silent) }
}

/// The sink for a command: JSON events, a live view on a terminal, else lines.
pub fn for_command(json: bool, color: bool) -> Box<dyn Progress> {
    if json {
        Box::new(Json)
    } else if std::io::stderr().is_terminal() {
        Box::new(Live::new(color))
    } else {
        Box::new(Plain::new(color))
    }
}

/// Collects events, for tests of what the engine reports.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<String>>);

impl Progress for Recorder {
    fn report(&self, event: Event<'_>) {
        let text = match event {
            Event::Started { id, action } => format!("started {action} {id}"),
            other => line(other).unwrap_or_default(),
        };
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(text);
    }
}
