//! The notes API on the local cloud, driven as a user drives it: every form of
//! `invoke` (a route with path parameters and any body, a proxy function with a
//! bare body, an edited `event api`), the function's own CORS headers seen by a
//! browser-like client, and S3 answered under the role's exact grant.

use serde_json::Value;

mod support;
use support::local::Project;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

#[test]
fn the_notes_api_answers_every_invoke_form_and_a_browser() {
    let p = Project::new("notes", "notes", &[("notes.yaml", None), ("paraphrase.yaml", None)]);
    let deploy: Value = serde_json::from_str(&p.ok(&["deploy", "--target", "local", "-o", "json"])).unwrap();
    let url = deploy.as_array().unwrap().iter().find(|r| r["stack"] == "notes").and_then(|r| r["url"].as_str()).unwrap().to_owned();

    // --http: the route is found across both stacks, path parameters matched, any
    // body and content type sent as given.
    let out = p.ok(&["invoke", "--target", "local", "--http", "PUT", "/notes/n1", "--data", "# Title\nsome *markdown*", "-H", "Content-Type: text/markdown"]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), serde_json::json!({ "id": "n1", "size": 23 }));
    p.ok(&["invoke", "--target", "local", "--http", "PUT", "/notes/n2", "--data", "{\"json\":true}"]);
    let (code, out, err) = p.run(&["invoke", "--target", "local", "--http", "GET", "/notes/n1", "-v"]);
    assert_eq!((code, out.as_str()), (0, "# Title\nsome *markdown*\n"), "{err}");
    assert!(err.contains("content-type: text/markdown") && err.contains("HTTP 200"), "{err}");
    let out = p.ok(&["invoke", "notes", "--target", "local", "--http", "GET", "/notes"]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["notes"], serde_json::json!([{ "id": "n1", "size": 23 }, { "id": "n2", "size": 13 }]));
    // A missing note: the role lists only under notes/, so S3 answers 403 and the
    // handler answers 404 (never a 5xx).
    let (code, out, err) = p.run(&["invoke", "--target", "local", "--http", "GET", "/notes/nope"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("HTTP 404") && out.contains("not_found"), "{out}{err}");
    let (code, out, err) = p.run(&["invoke", "--target", "local", "--http", "GET", "/notes/bad.id"]);
    assert!(code == 1 && err.contains("HTTP 400") && out.contains("invalid_id"), "{out}{err}");

    // Errors that name the fix, and change nothing.
    let (code, _, err) = p.run(&["invoke", "--target", "local", "--http", "GET", "/note"]);
    assert_eq!(code, 2);
    assert!(err.contains("no selected stack serves `GET /note`") && err.contains("did you mean `GET /notes`?"), "{err}");
    let (code, _, err) = p.run(&["invoke", "--target", "local", "--http", "POST", "/notes"]);
    assert!(code == 2 && err.contains("has no POST method (it has GET)"), "{err}");
    let (code, _, err) = p.run(&["invoke", "paraphrase", "--target", "local", "--http", "GET", "/notes"]);
    assert!(code == 2 && err.contains("served by function `notes`, not `paraphrase`"), "{err}");
    let (code, _, err) = p.run(&["invoke", "--target", "local", "--http", "GET", "/notes", "-H", "no colon"]);
    assert!(code == 2 && err.contains("is not a header"), "{err}");

    // A proxy function with a bare body: wrapped into its route's event.
    let (code, out, err) = p.run(&["invoke", "paraphrase", "--target", "local", "--data", "{\"sourceText\": \"Le point de discorde est de savoir comment gagner de l'argent.\"}"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("sending POST /paraphrase as API Gateway's proxy event"), "{err}");
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["statusCode"], 200, "{out}");
    // --raw sends it as is: the function sees no API Gateway event and says so with a 400.
    let (code, out, _) = p.run(&["invoke", "paraphrase", "--target", "local", "--raw", "--data", "{\"sourceText\": \"x\"}"]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["statusCode"], 400, "{out}");
    // A function of several routes: the user is asked which.
    let (code, _, err) = p.run(&["invoke", "notes", "--target", "local", "--data", "x"]);
    assert!(code == 2 && err.contains("serves 4 routes") && err.contains("--http METHOD PATH"), "{err}");

    // event api: an event to edit, then sent as is.
    let event = p.ok(&["event", "api", "-X", "DELETE", "-p", "/notes/n2?soft=1", "-H", "X-Request: t"]);
    let parsed: Value = serde_json::from_str(&event).unwrap();
    assert_eq!(parsed["resource"], "/notes/{id}");
    assert_eq!(parsed["pathParameters"], serde_json::json!({ "id": "n2" }));
    assert_eq!(parsed["queryStringParameters"], serde_json::json!({ "soft": "1" }));
    assert_eq!(parsed["requestContext"]["stage"], "notes");
    assert_eq!(parsed["headers"]["X-Request"], "t");
    let file = p.dir.join("delete-event.json");
    std::fs::write(&file, &event).unwrap();
    let out = p.ok(&["invoke", "notes", "--target", "local", "--event", file.to_str().unwrap()]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["statusCode"], 204, "{out}");
    let (code, _, err) = p.run(&["invoke", "--target", "local", "--http", "DELETE", "/notes/n2"]);
    assert!(code == 1 && err.contains("HTTP 404"), "deleted once: {err}");
    // event schedule: EventBridge's event, sent as is, answered with the report.
    let scheduled = p.ok(&["event", "schedule", "notes"]);
    assert_eq!(serde_json::from_str::<Value>(&scheduled).unwrap()["resources"][0], "arn:aws:events:us-east-1:000000000000:rule/notes-notes-notes");
    std::fs::write(&file, &scheduled).unwrap();
    let out = p.ok(&["invoke", "notes", "--target", "local", "--event", file.to_str().unwrap()]);
    let report: Value = serde_json::from_str(&serde_json::from_str::<Value>(&out).unwrap()["body"].as_str().unwrap().to_owned()).unwrap();
    assert_eq!(report["notes"], 1, "{out}");

    // A browser on another origin: preflight by the gateway, the response's
    // CORS header by the function (a proxy integration passes it through).
    let pre = agent().options(&format!("{url}/notes/n1")).header("Origin", "http://localhost:5173").header("Access-Control-Request-Method", "PUT").call().unwrap();
    assert_eq!(pre.status().as_u16(), 200);
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    assert!(pre.headers()["access-control-allow-methods"].to_str().unwrap().contains("PUT"));
    let get = agent().get(&format!("{url}/notes/n1")).header("Origin", "http://localhost:5173").call().unwrap();
    assert_eq!(get.status().as_u16(), 200);
    assert_eq!(get.headers()["access-control-allow-origin"], "*");

    p.ok(&["destroy", "--target", "local"]);
}

/// A schedule fires on the local cloud: the function gets EventBridge's
/// Scheduled Event (here every "minute" of 1 s), asynchronously, and its report
/// reaches its logs; reserved concurrency 0 then stops it everywhere: the API
/// answers 500 as API Gateway does, Invoke answers 429.
#[test]
fn a_scheduled_function_fires_locally_and_reserved_concurrency_throttles() {
    let text = std::fs::read_to_string(support::local::repo().join("stacks/notes.yaml")).unwrap();
    let stack = text.replace("schedule: cron(0 6 * * ? *)", "schedule: [rate(1 minute), cron(0 6 * * ? *)]")
        + "  stage_variables:\n    sched: { report: daily, owner: ops }\n    default: { report: never }\n";
    assert_ne!(stack, text);
    let mut p = Project::new("schedule", "sched", &[("notes.yaml", Some(&stack))]);
    p.env.push(("STACKCTL_LOCAL_MINUTE_SECONDS".into(), "1".into()));
    let out = p.ok(&["deploy", "--target", "local"]);
    assert!(out.contains("schedule/notes") && out.contains("schedule/notes-2"), "{out}");
    // The stage's own variables, in the event a function of this stage receives.
    let event: Value = serde_json::from_str(&p.ok(&["event", "api", "-p", "/notes"])).unwrap();
    assert_eq!(event["stageVariables"], serde_json::json!({ "report": "daily", "owner": "ops" }));
    let staged: Value = serde_json::from_slice(&std::fs::read(p.stage_dir("notes").join("api/stage.json")).unwrap()).unwrap();
    assert_eq!(staged["variables"], serde_json::json!({ "report": "daily", "owner": "ops" }), "served by the local API");
    p.ok(&["invoke", "--target", "local", "--http", "PUT", "/notes/a", "--data", "abc"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let reports = loop {
        let out = p.ok(&["logs", "notes", "--target", "local", "--filter", "scheduled report"]);
        let reports: Vec<&str> = out.lines().filter(|l| l.contains("\"notes\":1")).collect();
        if reports.len() >= 2 || std::time::Instant::now() > deadline {
            break reports.into_iter().map(str::to_owned).collect::<Vec<_>>();
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert!(reports.len() >= 2, "the rate fires every second: {reports:?}");
    assert!(reports[0].contains("rule/notes-sched-notes"), "the event names its rule: {reports:?}");
    let log = std::fs::read_to_string(p.stage_dir("notes").join("server.log")).unwrap();
    assert!(log.contains("schedule notes-sched-notes: rate(1 minute) fires notes-sched-notes"), "{log}");
    assert!(!log.contains("schedule notes-sched-notes-2: cron"), "the daily cron has not fired: {log}");

    // Reserved concurrency 0: nothing runs.
    std::fs::write(p.dir.join("stacks/notes.yaml"), stack.replace("reserved_concurrency: 10", "reserved_concurrency: 0")).unwrap();
    let out = p.ok(&["deploy", "--target", "local"]);
    assert!(out.contains("~ function/notes"), "{out}");
    let (code, out, err) = p.run(&["invoke", "--target", "local", "--http", "GET", "/notes"]);
    assert!(code == 1 && err.contains("HTTP 500") && out.contains("Internal server error"), "{out}{err}");
    let (code, out, err) = p.run(&["invoke", "notes", "--target", "local", "--raw", "--data", "{}"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(format!("{out}{err}").contains("ReservedFunctionConcurrentInvocationLimitExceeded"), "{out}{err}");
    p.ok(&["destroy", "--target", "local"]);
}
