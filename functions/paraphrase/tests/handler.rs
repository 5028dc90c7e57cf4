//! The paraphrase handler on API Gateway proxy events from JSON fixtures: the
//! tutorial's TestRequestEvent, every error path, the upstream service on a
//! loopback server, and arbitrary input (property test).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;
use paraphrase::{handle, HttpUpstream, Upstream, UpstreamError};
use proptest::prelude::*;
use serde_json::Value;

fn event(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn body(r: &ApiGatewayProxyResponse) -> Value {
    match &r.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("expected a JSON text body, got {other:?}"),
    }
}

fn error_code(r: &ApiGatewayProxyResponse) -> String {
    body(r)["error"]["code"].as_str().unwrap().to_owned()
}

#[test]
fn the_tutorials_test_request_event_is_paraphrased() {
    // The event from the tutorial, with its `\r` inside the body, as shipped in examples/.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/paraphrase/test-request-event.json");
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let r = handle(event, None);
    assert_eq!(r.status_code, 200);
    assert_eq!(body(&r)["newText"], "Le sujet de désaccord actuellement est de déterminer comment s'enrichir considérablement.");
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    assert_eq!(r.headers["content-type"], "application/json");
}

#[test]
fn english_and_base64_bodies() {
    let r = handle(event("english"), None);
    assert_eq!(r.status_code, 200);
    assert_eq!(body(&r)["newText"], "Engineers constantly attempt to construct instruments that assist individuals, since it is significant!");
    let r = handle(event("base64-body"), None);
    assert_eq!(r.status_code, 200);
    assert_eq!(body(&r)["newText"], "It is extremely simple.");
}

#[test]
fn bad_requests_get_json_errors() {
    for (name, status, code) in [
        ("get-method", 405, "method_not_allowed"),
        ("not-json", 400, "invalid_json"),
        ("missing-source-text", 400, "missing_source_text"),
        ("empty-source-text", 400, "empty_source_text"),
        ("number-source-text", 400, "invalid_source_text"),
        ("too-long", 413, "source_text_too_long"),
        ("no-body", 400, "missing_body"),
    ] {
        let r = handle(event(name), None);
        assert_eq!((r.status_code, error_code(&r).as_str()), (status, code), "{name}");
        assert_eq!(r.headers["access-control-allow-origin"], "*", "{name}: CORS on errors too");
    }
    assert_eq!(handle(event("get-method"), None).headers["allow"], "POST");
    let r = handle(serde_json::json!({"httpMethod": 42}), None);
    assert_eq!((r.status_code, error_code(&r).as_str()), (400, "invalid_event"));
    let r = handle(serde_json::json!("a string event"), None);
    assert_eq!(r.status_code, 400);
}

struct Failing;
impl Upstream for Failing {
    fn paraphrase(&self, _: &str) -> Result<String, UpstreamError> {
        Err(UpstreamError::Status(429))
    }
}

#[test]
fn an_upstream_failure_is_a_502_naming_it() {
    let r = handle(event("english"), Some(&Failing));
    assert_eq!(r.status_code, 502);
    let b = body(&r);
    assert_eq!(b["error"]["code"], "upstream_failed");
    assert_eq!(b["error"]["message"], "the paraphrasing service failed: answered HTTP 429");
}

/// A one-shot HTTP server on loopback; returns its URL and the raw request it got.
fn serve_once(response: &'static str, delay: Duration) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/rewrite", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        std::thread::sleep(delay);
        let _ = (&stream).write_all(response.as_bytes());
        head + &String::from_utf8(body).unwrap()
    });
    (url, handle)
}

#[test]
fn the_configured_service_is_called_with_the_key() {
    let (url, server) = serve_once(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 25\r\n\r\n{\"newText\":\"from upstr\"}\n",
        Duration::ZERO,
    );
    let upstream = HttpUpstream::new(url, Some("secret-key".into()), Duration::from_secs(5));
    let r = handle(event("english"), Some(&upstream));
    assert_eq!(r.status_code, 200);
    assert_eq!(body(&r)["newText"], "from upstr");
    let request = server.join().unwrap();
    assert!(request.starts_with("POST /api/rewrite"), "{request}");
    assert!(request.to_ascii_lowercase().contains("x-rapidapi-key: secret-key"), "{request}");
    assert!(request.contains("\"sourceText\":\"Developers always try"), "{request}");
}

#[test]
fn a_slow_service_times_out_into_a_502() {
    let (url, _server) = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", Duration::from_millis(1500));
    let upstream = HttpUpstream::new(url, None, Duration::from_millis(200));
    let r = handle(event("english"), Some(&upstream));
    assert_eq!(r.status_code, 502);
    assert!(body(&r)["error"]["message"].as_str().unwrap().contains("no answer within the timeout"));
}

#[test]
fn a_service_answering_garbage_is_a_502() {
    let (url, _server) = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", Duration::ZERO);
    let upstream = HttpUpstream::new(url, None, Duration::from_secs(5));
    let r = handle(event("english"), Some(&upstream));
    assert_eq!(r.status_code, 502);
    assert!(body(&r)["error"]["message"].as_str().unwrap().contains("not {\"newText\""));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    /// Whatever the body, the answer is 200 or a 4xx with a JSON error, never a panic.
    #[test]
    fn any_body_gets_a_json_answer(text in ".{0,300}", wrap in any::<bool>(), b64 in any::<bool>()) {
        let raw = if wrap { serde_json::json!({ "sourceText": text }).to_string() } else { text.clone() };
        let mut e = event("english");
        e["body"] = Value::String(raw);
        e["isBase64Encoded"] = Value::Bool(b64);
        let r = handle(e, None);
        prop_assert!([200, 400, 413].contains(&r.status_code), "status {}", r.status_code);
        let v = body(&r);
        prop_assert!(v.get("newText").is_some() || v["error"]["code"].is_string());
    }
}
