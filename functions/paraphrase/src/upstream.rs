//! The external paraphrasing service (the tutorial used RapidAPI's
//! paraphrasing-tool1): POST `{"sourceText"}` → `{"newText"}`.

use std::fmt;
use std::time::Duration;

pub trait Upstream: Send + Sync {
    fn paraphrase(&self, text: &str) -> Result<String, UpstreamError>;
}

#[derive(Debug, PartialEq, Eq)]
pub enum UpstreamError {
    Timeout,
    Unreachable(String),
    Status(u16),
    BadResponse(String),
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Timeout => write!(f, "no answer within the timeout"),
            UpstreamError::Unreachable(why) => write!(f, "unreachable ({why})"),
            UpstreamError::Status(code) => write!(f, "answered HTTP {code}"),
            UpstreamError::BadResponse(why) => write!(f, "answered something that is not {{\"newText\": ...}} ({why})"),
        }
    }
}

/// The service over HTTP(S).
pub struct HttpUpstream {
    url: String,
    /// Sent as `x-rapidapi-key`; never logged (Debug is not derived for this reason).
    key: Option<String>,
    agent: ureq::Agent,
}

impl HttpUpstream {
    pub fn new(url: String, key: Option<String>, timeout: Duration) -> HttpUpstream {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        HttpUpstream { url, key, agent }
    }

    /// From `PARAPHRASE_API_URL`, `PARAPHRASE_API_KEY`, `PARAPHRASE_TIMEOUT_MS`
    /// (default 5000); `None` when no URL is configured.
    pub fn from_env() -> Option<HttpUpstream> {
        let url = std::env::var("PARAPHRASE_API_URL").ok().filter(|u| !u.trim().is_empty())?;
        let key = std::env::var("PARAPHRASE_API_KEY").ok().filter(|k| !k.is_empty());
        let ms = std::env::var("PARAPHRASE_TIMEOUT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
        Some(HttpUpstream::new(url, key, Duration::from_millis(ms)))
    }
}

impl Upstream for HttpUpstream {
    fn paraphrase(&self, text: &str) -> Result<String, UpstreamError> {
        let mut request = self.agent.post(&self.url).header("content-type", "application/json");
        if let Some(key) = &self.key {
            request = request.header("x-rapidapi-key", key);
            if let Some(host) = self.url.split("://").nth(1).and_then(|rest| rest.split('/').next()) {
                request = request.header("x-rapidapi-host", host);
            }
        }
        let body = serde_json::json!({ "sourceText": text }).to_string();
        let mut response = request.send(body.as_bytes()).map_err(|e| match e {
            ureq::Error::Timeout(_) => UpstreamError::Timeout,
            other => UpstreamError::Unreachable(other.to_string()),
        })?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(UpstreamError::Status(status));
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .read_to_string()
            .map_err(|e| UpstreamError::BadResponse(e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| UpstreamError::BadResponse(e.to_string()))?;
        value["newText"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| UpstreamError::BadResponse("no string `newText`".into()))
    }
}
