//! A non-proxy integration and request validation on the local cloud, with the
//! real handlers behind a real HTTP client (tests/fixtures/api-fidelity.yaml):
//! API Gateway's 400s for a missing parameter and an invalid body (the function
//! never runs), integration responses picked by error message, rendered by
//! their templates, with their header mappings and `$context.responseOverride`.

use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::local::Project;

const STACK: &str = include_str!("fixtures/api-fidelity.yaml");

struct Answer {
    status: u16,
    body: String,
    headers: Vec<(String, String)>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn call(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into();
    let resp = match method {
        "GET" => {
            let mut r = agent.get(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        "PUT" | "POST" => {
            let mut r = if method == "PUT" { agent.put(url) } else { agent.post(url) };
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send(body.unwrap_or("").as_bytes())
        }
        other => panic!("{other}"),
    };
    let mut resp = resp.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
    Answer { status, body: resp.body_mut().read_to_string().unwrap(), headers }
}

#[test]
fn validation_and_integration_responses_as_api_gateway_answers() {
    let p = Project::new("fidelity", "production", &[("fidelity.yaml", Some(STACK))]);
    let deploy: Value = serde_json::from_str(&p.ok(&["deploy", "--target", "local", "-o", "json"])).unwrap();
    let url = deploy[0]["url"].as_str().unwrap().to_owned();

    // Required parameters: absent or blank, API Gateway's 400 before the function runs.
    for query in ["", "?token=", "?token=%20&other=1"] {
        let r = call("GET", &format!("{url}/search{query}"), &[], None);
        assert_eq!((r.status, r.body.as_str()), (400, r#"{"message":"Missing required request parameters: [token]"}"#), "{query}");
        assert_eq!(r.header("x-amzn-errortype"), Some("BadRequestException"));
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "gateway responses carry CORS");
    }
    let put = |id: &str, headers: &[(&str, &str)], body: &str| call("PUT", &format!("{url}/notes/{id}"), headers, Some(body));
    let json = ("content-type", "application/json");
    let r = put("n1", &[json], r#"{"title":"x"}"#);
    assert_eq!((r.status, r.body.as_str()), (400, r#"{"message":"Missing required request parameters: [X-Author]"}"#));

    // The body model: checked for its content type only; an empty body is `{}`.
    let author = ("X-Author", "ada");
    for bad in [r#"{"tags":["a"]}"#, r#"{"title":""}"#, r#"{"title":"x","tags":[1]}"#, "not json", "", "[]"] {
        let r = put("n1", &[json, author], bad);
        assert_eq!((r.status, r.body.as_str()), (400, r#"{"message":"Invalid request body"}"#), "{bad:?}");
    }
    // Parameters are checked first.
    let r = put("n1", &[json], "not json");
    assert!(r.body.contains("Missing required request parameters"), "{}", r.body);
    let r = put("n1", &[json, author], r#"{"title":"Hello","tags":["a"]}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!({ "id": "n1", "size": 30 }));
    let r = put("n2", &[("content-type", "text/markdown"), author], "# no model for this content type");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = put("n3", &[("content-type", "application/json; charset=utf-8"), author], "{}");
    assert_eq!(r.status, 400, "the media type is matched without its parameters: {}", r.body);

    // Integration responses: an error message selects 404, rendered by its template.
    let r = call("GET", &format!("{url}/search?token=v1.invented.1.00"), &[], None);
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!({ "code": "unknown_token" }));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("cache-control"), None, "the 200's headers are the 200's only");

    // A real search: 202 while pending (its header mapping), then the 200 template.
    let r = call("POST", &format!("{url}/search"), &[json], Some(r#"{"location":"Lyon","pickupDate":"2026-12-04","returnDate":"2026-12-07","carSize":"compact","driverAge":30}"#));
    assert_eq!(r.status, 202, "{}", r.body);
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let get = format!("{url}/search?token={token}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let r = call("GET", &get, &[("X-User", "ada")], None);
        if r.status == 200 {
            break r;
        }
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.header("retry-after"), Some("2"));
        assert_eq!(r.json()["status"], 202, "the error message is the body: {}", r.body);
        assert!(Instant::now() < deadline, "no result after 30 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    let body = done.json();
    let count = body["count"].as_u64().unwrap();
    assert!(count > 0, "{body}");
    assert!(body["first"].as_str().is_some_and(|s| !s.is_empty()), "{body}");
    assert_eq!(body["user"], "ada");
    assert_eq!(done.header("x-offer-count"), Some(count.to_string().as_str()), "integration.response.body.count");
    assert_eq!(done.header("cache-control"), Some("no-store"));
    assert_eq!(done.header("x-tier"), Some("gold"), "stageVariables.tier");
    assert_eq!(done.header("access-control-allow-origin"), Some("*"));

    // A content type the GET has no request template for: 415 (WHEN_NO_TEMPLATES).
    let r = call("GET", &get, &[("content-type", "text/plain")], None);
    assert_eq!((r.status, r.body.as_str()), (415, r#"{"message":"Unsupported Media Type"}"#));

    // The worker misconfigured (its signing key removed): the 5xx pattern, whose
    // template overrides the status and adds a header.
    let file = p.dir.join("stacks/fidelity.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let key = "      SEARCH_TOKEN_KEY: { parameter: search_token_key }\n      SEARCH_DELAY_MS";
    assert!(text.contains(key));
    std::fs::write(&file, text.replace(key, "      SEARCH_DELAY_MS")).unwrap();
    p.ok(&["deploy", "--target", "local"]);
    let r = call("GET", &get, &[], None);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!({ "retry": true }));
    assert_eq!(r.header("retry-after"), Some("30"));

    p.ok(&["destroy", "--target", "local"]);
}
