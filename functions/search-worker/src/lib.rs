//! search-worker, two duties as in the tutorial:
//! - the asynchronous event from search-start (`{"token", "request"}`): run the
//!   slow search and write the result to S3 under `results/{token}.json`;
//! - the event the GET /search request mapping template builds (`{"token", "id",
//!   "size", "rating", "upgrade"}`): read the cached result and answer it, filtered.
//!
//! Behind a non-proxy integration a Lambda answers 200 with its result; every
//! other status is a function error whose message is the JSON body, and whose
//! `errorType` (`Pending`, `NotFound`, ...) the integration responses select on.

pub mod provider;
pub mod store;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use stackctl_shared::search::{CarSize, SearchRequest, StartSearch};
use stackctl_shared::token::{self, TokenError};

pub use provider::{BuiltinProvider, Offer, Provider};
pub use store::{S3Store, Store};

/// Settings from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub prefix: String,
    /// Results older than this are expired (the bucket rule only deletes after a day).
    pub max_age: Duration,
    /// How long the stand-in upstream takes.
    pub search_delay: Duration,
    /// How long after issue a token without result is still "pending".
    pub pending_window: Duration,
    pub token_key: Option<Vec<u8>>,
}

impl Config {
    pub fn from_env() -> Config {
        let num = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default);
        let search_delay = Duration::from_millis(num("SEARCH_DELAY_MS", 3000));
        Config {
            prefix: std::env::var("RESULTS_PREFIX").unwrap_or_else(|_| "results/".into()),
            max_age: Duration::from_secs(num("RESULT_MAX_AGE_SECONDS", 1800)),
            search_delay,
            pending_window: Duration::from_secs(num("SEARCH_PENDING_SECONDS", 120).max(search_delay.as_secs() * 3)),
            token_key: token::key_from_env(),
        }
    }

    fn key_for(&self, token: &str) -> String {
        format!("{}{token}.json", self.prefix)
    }
}

/// What is stored in S3 under the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedResult {
    pub token: String,
    /// Unix milliseconds.
    pub written_at: u64,
    pub request: SearchRequest,
    pub offers: Vec<Offer>,
}

/// A non-200 answer of the GET duty (or a failure of the async duty).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub extra: Value,
}

impl Failure {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Failure {
        Failure { status, code, message: message.into(), extra: Value::Null }
    }

    /// The body the client sees.
    pub fn body(&self) -> Value {
        let mut body = json!({ "status": self.status, "error": { "code": self.code, "message": self.message } });
        if let (Some(obj), Value::Object(extra)) = (body.as_object_mut(), &self.extra) {
            obj.extend(extra.clone());
        }
        body
    }

    /// The Lambda error type the integration responses match.
    pub fn error_type(&self) -> &'static str {
        match self.status {
            202 => "Pending",
            400 => "BadRequest",
            404 => "NotFound",
            410 => "Gone",
            503 => "Unavailable",
            _ => "InternalError",
        }
    }
}

impl From<Failure> for lambda_runtime::Diagnostic {
    fn from(f: Failure) -> Self {
        lambda_runtime::Diagnostic { error_type: f.error_type().to_owned(), error_message: f.body().to_string() }
    }
}

/// The filters of a GET, as the mapping template passes them (strings, empty = absent).
#[derive(Debug, Default, Deserialize)]
struct Fetch {
    #[serde(default)]
    token: Value,
    #[serde(default)]
    id: Value,
    #[serde(default)]
    size: Value,
    #[serde(default)]
    rating: Value,
    #[serde(default)]
    upgrade: Value,
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => Some(v.to_string()),
    }
}

#[derive(Debug, PartialEq)]
enum UpgradeFilter {
    Any,
    None,
    To(CarSize),
}

struct Filters {
    user: Option<String>,
    size: Option<CarSize>,
    min_rating: Option<f64>,
    upgrade: Option<UpgradeFilter>,
}

fn filters(f: &Fetch) -> Result<Filters, Failure> {
    let mut problems = serde_json::Map::new();
    let user = as_text(&f.id);
    if user.as_ref().is_some_and(|u| u.len() > 64 || !u.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@+".contains(c))) {
        problems.insert("User".into(), "must be at most 64 letters, digits or -_.@+".into());
    }
    let size = match as_text(&f.size) {
        None => None,
        Some(s) => match CarSize::parse(&s) {
            Some(c) => Some(c),
            None => {
                problems.insert("CarSize".into(), format!("unknown car size `{s}`; use one of {}", CarSize::names()).into());
                None
            }
        },
    };
    let min_rating = match as_text(&f.rating) {
        None => None,
        Some(s) => match s.parse::<f64>() {
            Ok(r) if (1.0..=5.0).contains(&r) => Some(r),
            _ => {
                problems.insert("SupplierRating".into(), format!("`{s}` is not a rating from 1 to 5").into());
                None
            }
        },
    };
    let upgrade = match as_text(&f.upgrade).map(|s| s.to_ascii_lowercase()) {
        None => None,
        Some(s) if ["yes", "true", "any", "1"].contains(&s.as_str()) => Some(UpgradeFilter::Any),
        Some(s) if ["no", "false", "none", "0"].contains(&s.as_str()) => Some(UpgradeFilter::None),
        Some(s) => match CarSize::parse(&s) {
            Some(c) => Some(UpgradeFilter::To(c)),
            None => {
                problems.insert("UpgradeClass".into(), format!("`{s}` is not yes, no or a car size ({})", CarSize::names()).into());
                None
            }
        },
    };
    if !problems.is_empty() {
        let message = problems.iter().map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or_default())).collect::<Vec<_>>().join("; ");
        let mut f = Failure::new(400, "invalid_filter", message);
        f.extra = json!({ "fields": problems });
        return Err(f);
    }
    Ok(Filters { user, size, min_rating, upgrade })
}

fn keep(offer: &Offer, f: &Filters) -> bool {
    f.size.is_none_or(|s| offer.car_class == s)
        && f.min_rating.is_none_or(|r| offer.supplier_rating >= r)
        && match &f.upgrade {
            None => true,
            Some(UpgradeFilter::Any) => offer.upgrade_class.is_some(),
            Some(UpgradeFilter::None) => offer.upgrade_class.is_none(),
            Some(UpgradeFilter::To(c)) => offer.upgrade_class == Some(*c),
        }
}

/// Handle one event. `now_ms` is injected so tests control time.
pub async fn handle(event: Value, config: &Config, store: &impl Store, provider: &dyn Provider, now_ms: u64) -> Result<Value, Failure> {
    if !event.is_object() {
        return Err(Failure::new(400, "invalid_event", "the event must be a JSON object"));
    }
    if event.get("request").is_some() {
        let start: StartSearch = serde_json::from_value(event)
            .map_err(|e| Failure::new(400, "invalid_event", format!("not a search event: {e}")))?;
        return run_search(start, config, store, provider, now_ms).await;
    }
    let fetch: Fetch = serde_json::from_value(event).map_err(|e| Failure::new(400, "invalid_event", format!("not a fetch event: {e}")))?;
    fetch_result(&fetch, config, store, now_ms).await
}

async fn run_search(start: StartSearch, config: &Config, store: &impl Store, provider: &dyn Provider, now_ms: u64) -> Result<Value, Failure> {
    let key = config.token_key.as_deref().ok_or_else(|| Failure::new(500, "misconfigured", "SEARCH_TOKEN_KEY is not set"))?;
    // Only tokens search-start issued may write to the cache.
    token::verify(key, &start.token).map_err(|_| Failure::new(400, "invalid_token", "the search event carries a token we did not issue"))?;
    tokio::time::sleep(config.search_delay).await;
    let offers = provider.search(&start.request);
    let result = CachedResult { token: start.token.clone(), written_at: now_ms + config.search_delay.as_millis() as u64, request: start.request, offers };
    let object = config.key_for(&start.token);
    let bytes = serde_json::to_vec(&result).unwrap_or_default();
    store.put(&object, bytes).await.map_err(|e| {
        tracing::error!(error = %e, "could not store the search result");
        Failure::new(503, "storage_unavailable", e)
    })?;
    tracing::info!(token = %start.token, offers = result.offers.len(), "search result stored");
    Ok(json!({ "stored": object, "offers": result.offers.len() }))
}

async fn fetch_result(fetch: &Fetch, config: &Config, store: &impl Store, now_ms: u64) -> Result<Value, Failure> {
    let Some(text) = as_text(&fetch.token) else {
        return Err(Failure::new(400, "missing_token", "the `token` query parameter is required"));
    };
    let filters = filters(fetch)?;
    let key = config.token_key.as_deref().ok_or_else(|| Failure::new(500, "misconfigured", "SEARCH_TOKEN_KEY is not set"))?;
    let token = match token::verify(key, &text) {
        Ok(t) => t,
        Err(TokenError::Malformed | TokenError::BadSignature) => {
            return Err(Failure::new(404, "unknown_token", "no search has this token"));
        }
    };
    let age_ms = now_ms.saturating_sub(token.issued_at * 1000);
    let stored = store.get(&config.key_for(&token.text)).await.map_err(|e| {
        tracing::error!(error = %e, "could not read the search result");
        Failure::new(503, "storage_unavailable", "the result store is unavailable; try again")
    })?;
    let Some(bytes) = stored else {
        if age_ms > config.max_age.as_millis() as u64 {
            return Err(Failure::new(410, "expired", "this search is older than the results are kept; start a new one"));
        }
        if age_ms <= config.pending_window.as_millis() as u64 {
            let mut f = Failure::new(202, "pending", "the search is still running; ask again shortly");
            f.extra = json!({ "token": token.text, "retryAfterSeconds": 2 });
            return Err(f);
        }
        return Err(Failure::new(404, "search_failed", "the search did not produce a result; start a new one"));
    };
    let result: CachedResult = serde_json::from_slice(&bytes).map_err(|e| Failure::new(500, "corrupt_result", format!("the stored result is unreadable: {e}")))?;
    if now_ms.saturating_sub(result.written_at) > config.max_age.as_millis() as u64 {
        return Err(Failure::new(410, "expired", "this search result has expired; start a new one"));
    }
    let offers: Vec<&Offer> = result.offers.iter().filter(|o| keep(o, &filters)).collect();
    Ok(json!({
        "token": result.token,
        "status": "complete",
        "user": filters.user,
        "request": result.request,
        "count": offers.len(),
        "offers": offers,
    }))
}
