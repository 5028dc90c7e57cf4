//! search-start on API Gateway proxy events from JSON fixtures, with a recording
//! invoker standing in for Lambda's Invoke API.

use std::path::Path;
use std::sync::Mutex;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;
use proptest::prelude::*;
use search_start::{handle, Invoker};
use serde_json::Value;
use stackctl_shared::search::StartSearch;
use stackctl_shared::token;
use time::macros::date;

const KEY: &[u8] = b"test-signing-key";
const NOW: u64 = 1_795_867_200;

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<Vec<u8>>>,
    fail: bool,
}

impl Invoker for Recorder {
    async fn invoke_async(&self, payload: Vec<u8>) -> Result<(), String> {
        if self.fail {
            return Err("Invoke car-search-production-search-worker: TooManyRequestsException: Rate exceeded".into());
        }
        self.calls.lock().unwrap().push(payload);
        Ok(())
    }
}

fn event(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn body(r: &ApiGatewayProxyResponse) -> Value {
    match &r.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("{other:?}"),
    }
}

async fn call(e: Value, invoker: &Recorder, key: Option<&[u8]>) -> ApiGatewayProxyResponse {
    handle(e, invoker, key, date!(2026 - 11 - 22), NOW).await
}

#[tokio::test]
async fn a_valid_search_answers_202_with_a_signed_token_and_starts_the_worker() {
    let rec = Recorder::default();
    let r = call(event("start-search"), &rec, Some(KEY)).await;
    assert_eq!(r.status_code, 202);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    let b = body(&r);
    let text = b["token"].as_str().unwrap();
    let t = token::verify(KEY, text).unwrap();
    assert_eq!(t.issued_at, NOW);
    let calls = rec.calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    let sent: StartSearch = serde_json::from_slice(&calls[0]).unwrap();
    assert_eq!(sent.token, text);
    assert_eq!(sent.request.location, "New York");
    assert_eq!(sent.request.days(), 3);
}

#[tokio::test]
async fn invalid_fields_are_listed_in_a_400_and_nothing_starts() {
    let rec = Recorder::default();
    let r = call(event("invalid-fields"), &rec, Some(KEY)).await;
    assert_eq!(r.status_code, 400);
    let b = body(&r);
    assert_eq!(b["error"]["code"], "invalid_request");
    assert_eq!(b["error"]["fields"]["location"], "must not be empty");
    assert!(b["error"]["fields"]["pickupDate"].as_str().unwrap().contains("YYYY-MM-DD"));
    assert!(b["error"]["fields"]["carSize"].as_str().unwrap().contains("tank"));
    assert!(rec.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn other_bad_requests() {
    let rec = Recorder::default();
    let r = call(event("not-json"), &rec, Some(KEY)).await;
    assert_eq!((r.status_code, body(&r)["error"]["code"].as_str().unwrap()), (400, "invalid_json"));
    let r = call(event("get-method"), &rec, Some(KEY)).await;
    assert_eq!(r.status_code, 405);
    let mut e = event("start-search");
    e["body"] = Value::String(format!("{{\"location\": \"{}\"}}", "x".repeat(9000)));
    assert_eq!(call(e, &rec, Some(KEY)).await.status_code, 413);
    assert!(rec.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn worker_and_configuration_failures_are_json_5xx() {
    let failing = Recorder { fail: true, ..Default::default() };
    let r = call(event("start-search"), &failing, Some(KEY)).await;
    assert_eq!((r.status_code, body(&r)["error"]["code"].as_str().unwrap()), (502, "search_not_started"));
    let r = call(event("start-search"), &Recorder::default(), None).await;
    assert_eq!((r.status_code, body(&r)["error"]["code"].as_str().unwrap()), (500, "misconfigured"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn any_body_is_answered_with_json(text in ".{0,200}", location in ".{0,20}", pickup in "[0-9-]{0,12}") {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for raw in [text.clone(), serde_json::json!({"location": location, "pickupDate": pickup, "returnDate": text}).to_string()] {
            let mut e = event("start-search");
            e["body"] = Value::String(raw);
            let r = rt.block_on(call(e, &Recorder::default(), Some(KEY)));
            prop_assert!([202, 400, 413].contains(&r.status_code));
            let b = body(&r);
            prop_assert!(b["token"].is_string() || b["error"]["code"].is_string());
        }
    }
}
