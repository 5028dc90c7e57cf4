//! search-worker on its two events (the async start from search-start and the
//! GET event built by the request mapping template), from JSON fixtures, with an
//! in-memory store standing in for S3.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use proptest::prelude::*;
use search_worker::{handle, BuiltinProvider, Config, Failure, Store};
use serde_json::Value;
use stackctl_shared::token;

const KEY: &[u8] = b"test-signing-key";
/// 2026-11-22T12:00:00Z
const T0: u64 = 1_795_867_200;

#[derive(Default)]
struct MemoryStore {
    objects: Mutex<HashMap<String, Vec<u8>>>,
    broken: bool,
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        if self.broken {
            return Err("GetObject: ServiceUnavailable".into());
        }
        Ok(self.objects.lock().unwrap().get(key).cloned())
    }
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), String> {
        if self.broken {
            return Err("PutObject: ServiceUnavailable".into());
        }
        self.objects.lock().unwrap().insert(key.to_owned(), bytes);
        Ok(())
    }
}

fn config() -> Config {
    Config {
        prefix: "results/".into(),
        max_age: Duration::from_secs(1800),
        search_delay: Duration::ZERO,
        pending_window: Duration::from_secs(120),
        token_key: Some(KEY.to_vec()),
    }
}

fn event(name: &str, token: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events").join(format!("{name}.json"));
    let text = std::fs::read_to_string(path).unwrap().replace("{{TOKEN}}", token);
    serde_json::from_str(&text).unwrap()
}

fn ms(secs: u64) -> u64 {
    secs * 1000
}

async fn run(e: Value, store: &MemoryStore, now_secs: u64) -> Result<Value, Failure> {
    handle(e, &config(), store, &BuiltinProvider, ms(now_secs)).await
}

#[tokio::test]
async fn a_fresh_token_reads_pending_then_complete_with_filtered_offers() {
    let store = MemoryStore::default();
    let t = token::issue(KEY, T0);
    let pending = run(event("get-from-mapping-template", &t.text), &store, T0 + 1).await.unwrap_err();
    assert_eq!((pending.status, pending.code, pending.error_type()), (202, "pending", "Pending"));
    assert_eq!(pending.body()["token"], t.text.as_str());

    let stored = run(event("async-start", &t.text), &store, T0 + 2).await.unwrap();
    assert_eq!(stored["stored"], format!("results/{}.json", t.text));
    assert!(store.objects.lock().unwrap().contains_key(&format!("results/{}.json", t.text)));

    let ok = run(event("get-from-mapping-template", &t.text), &store, T0 + 10).await.unwrap();
    assert_eq!(ok["status"], "complete");
    assert_eq!(ok["user"], "alice");
    let offers = ok["offers"].as_array().unwrap();
    assert!(!offers.is_empty());
    assert_eq!(ok["count"], offers.len());
    for o in offers {
        assert_eq!(o["carClass"], "compact");
        assert!(o["supplierRating"].as_f64().unwrap() >= 4.0);
    }
}

#[tokio::test]
async fn filters_on_upgrade_class() {
    let store = MemoryStore::default();
    let t = token::issue(KEY, T0);
    run(event("async-start", &t.text), &store, T0).await.unwrap();
    let mut e = event("get-from-mapping-template", &t.text);
    e["size"] = "".into();
    e["rating"] = "".into();
    e["upgrade"] = "suv".into();
    let ok = run(e.clone(), &store, T0 + 5).await.unwrap();
    let offers = ok["offers"].as_array().unwrap();
    assert!(!offers.is_empty());
    assert!(offers.iter().all(|o| o["upgradeClass"] == "suv" && o["carClass"] == "fullsize"));
    e["upgrade"] = "no".into();
    let ok = run(e, &store, T0 + 5).await.unwrap();
    assert!(ok["offers"].as_array().unwrap().iter().all(|o| o.get("upgradeClass").is_none()));
}

#[tokio::test]
async fn invented_and_malformed_tokens_are_unknown() {
    let store = MemoryStore::default();
    let forged = token::issue(b"someone else's key", T0);
    for text in [forged.text.as_str(), "1700000000", "v1.zz.1.zz"] {
        let f = run(event("get-from-mapping-template", text), &store, T0 + 1).await.unwrap_err();
        assert_eq!((f.status, f.code), (404, "unknown_token"), "{text}");
    }
}

#[tokio::test]
async fn old_results_and_old_tokens_are_gone() {
    let store = MemoryStore::default();
    let t = token::issue(KEY, T0);
    run(event("async-start", &t.text), &store, T0).await.unwrap();
    let f = run(event("get-from-mapping-template", &t.text), &store, T0 + 1801).await.unwrap_err();
    assert_eq!((f.status, f.code, f.error_type()), (410, "expired", "Gone"));

    let never_written = token::issue(KEY, T0);
    let f = run(event("get-from-mapping-template", &never_written.text), &store, T0 + 3600).await.unwrap_err();
    assert_eq!((f.status, f.code), (410, "expired"));
    let f = run(event("get-from-mapping-template", &never_written.text), &store, T0 + 600).await.unwrap_err();
    assert_eq!((f.status, f.code), (404, "search_failed"));
}

#[tokio::test]
async fn bad_filters_and_missing_token_are_400() {
    let store = MemoryStore::default();
    let t = token::issue(KEY, T0);
    let mut e = event("get-from-mapping-template", &t.text);
    e["size"] = "tank".into();
    e["rating"] = "7".into();
    e["upgrade"] = "maybe".into();
    e["id"] = "x y".into();
    let f = run(e, &store, T0).await.unwrap_err();
    assert_eq!((f.status, f.code, f.error_type()), (400, "invalid_filter", "BadRequest"));
    let body = f.body();
    for field in ["CarSize", "SupplierRating", "UpgradeClass", "User"] {
        assert!(body["fields"][field].is_string(), "{field}: {body}");
    }
    let f = run(event("get-from-mapping-template", ""), &store, T0).await.unwrap_err();
    assert_eq!((f.status, f.code), (400, "missing_token"));
    let f = run(serde_json::json!([1, 2]), &store, T0).await.unwrap_err();
    assert_eq!((f.status, f.code), (400, "invalid_event"));
}

#[tokio::test]
async fn only_our_tokens_may_write_and_store_failures_are_503() {
    let store = MemoryStore::default();
    let forged = token::issue(b"other", T0);
    let f = run(event("async-start", &forged.text), &store, T0).await.unwrap_err();
    assert_eq!((f.status, f.code), (400, "invalid_token"));
    assert!(store.objects.lock().unwrap().is_empty());

    let broken = MemoryStore { broken: true, ..Default::default() };
    let t = token::issue(KEY, T0);
    let f = run(event("async-start", &t.text), &broken, T0).await.unwrap_err();
    assert_eq!(f.status, 503);
    let f = run(event("get-from-mapping-template", &t.text), &broken, T0).await.unwrap_err();
    assert_eq!((f.status, f.code), (503, "storage_unavailable"));
}

#[test]
fn failures_become_lambda_errors_with_a_json_message() {
    let f = Failure { status: 404, code: "unknown_token", message: "no search has this token".into(), extra: Value::Null };
    let d: lambda_runtime::Diagnostic = f.into();
    assert_eq!(d.error_type, "NotFound");
    let body: Value = serde_json::from_str(&d.error_message).unwrap();
    assert_eq!(body["status"], 404);
    assert_eq!(body["error"]["code"], "unknown_token");
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::hash_map("(token|id|size|rating|upgrade|request|[a-z]{1,6})", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    /// Any event gets an answer (a result or a failure with a 2xx/4xx/5xx status), never a panic.
    #[test]
    fn any_event_is_answered(e in json_value()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let store = MemoryStore::default();
        match rt.block_on(run(e, &store, T0)) {
            Ok(v) => prop_assert!(v.is_object()),
            Err(f) => {
                prop_assert!([202, 400, 404, 410].contains(&f.status), "status {}", f.status);
                prop_assert!(f.body()["error"]["code"].is_string());
            }
        }
    }
}
