//! Located, fixable errors about a stack file.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One problem in a stack file: where it is, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is about the file as a whole.
    pub line: u32,
    /// 1-based; 0 when the problem is about the file as a whole.
    pub column: u32,
    pub message: String,
    /// What to change to make the file valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The offending source line, for display.
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl Diagnostic {
    pub fn new(file: &Path, line: u32, column: u32, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint: None,
            source_line: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Attach the source line the diagnostic points at, for the caret display.
    pub fn with_source(mut self, source: &str) -> Self {
        if self.line > 0 {
            self.source_line = source
                .lines()
                .nth(self.line as usize - 1)
                .map(str::to_owned);
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)?;
        if let Some(src) = &self.source_line {
            let gutter = self.line.to_string();
            let pad = " ".repeat(gutter.len());
            let (excerpt, caret) = excerpt(src, self.column.saturating_sub(1) as usize);
            // Columns count characters; a caret under a tab would drift, so keep tabs.
            let lead: String = excerpt.chars().take(caret).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            write!(f, "\n {pad} |\n {gutter} | {excerpt}\n {pad} | {lead}^")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// At most this many characters of a source line are shown.
const EXCERPT_MAX: usize = 120;

/// The part of `line` worth showing around character `column`, and where the
/// caret goes in it: a long line (a 5 MB value) is cut to a window, with `…`
/// where it was cut.
fn excerpt(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= EXCERPT_MAX {
        return (line.to_owned(), column);
    }
    let start = column.saturating_sub(EXCERPT_MAX / 3).min(chars.len().saturating_sub(EXCERPT_MAX));
    let end = (start + EXCERPT_MAX).min(chars.len());
    let mut out = String::new();
    let mut caret = column - start;
    if start > 0 {
        out.push('…');
        caret += 1;
    }
    out.extend(&chars[start..end]);
    if end < chars.len() {
        out.push('…');
    }
    (out, caret)
}

/// All the problems found in one or more stack files.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to a misspelt word, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&word.to_ascii_lowercase(), &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(did_you_mean("memmory", ["memory", "timeout"]), Some("memory"));
        assert_eq!(did_you_mean("Timeout", ["memory", "timeout"]), Some("timeout"));
        assert_eq!(did_you_mean("zzz", ["memory", "timeout"]), None);
    }

    #[test]
    fn a_long_line_is_cut_around_the_column() {
        let line = format!("    BIG: \"{}\"", "x".repeat(5_000_000));
        let d = Diagnostic::new(Path::new("s.yaml"), 7, 5, "too big").with_source(&format!("a\nb\nc\nd\ne\nf\n{line}\n"));
        let shown = d.to_string();
        assert!(shown.len() < 600, "{} bytes shown", shown.len());
        assert!(shown.contains(" 7 |     BIG: \"xxx"), "{shown}");
        assert!(shown.contains("x…\n"), "{shown}");
        assert!(shown.contains("   |     ^"), "{shown}");
        let d = Diagnostic::new(Path::new("s.yaml"), 1, 4_000_000, "deep").with_source(&line);
        let shown = d.to_string();
        assert!(shown.len() < 600 && shown.contains("| …xxx"), "{shown}");
        let caret_line = shown.lines().find(|l| l.trim_end().ends_with('^')).unwrap();
        assert_eq!(caret_line.chars().count() - 6, 41, "{shown}");
    }

    #[test]
    fn display_points_at_the_column() {
        let d = Diagnostic::new(Path::new("s.yaml"), 2, 5, "bad")
            .hint("fix it")
            .with_source("a: 1\nb:  x\n");
        let text = d.to_string();
        assert!(text.starts_with("s.yaml:2:5: bad"), "{text}");
        assert!(text.contains(" 2 | b:  x\n   |     ^"), "{text}");
        assert!(text.ends_with("hint: fix it"), "{text}");
    }
}
