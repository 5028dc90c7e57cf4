//! Mapping templates and request handling as API Gateway renders them, case by
//! case. Each case names the AWS page it comes from and the exact output AWS
//! gives. Classes of differences found against outputs recorded on real AWS
//! (issue 16): lists as JSON and maps Java-style, null references printed as
//! nothing, null equal to "", an empty body read as `{}`, dropped headers.

use serde_json::json;
use stackctl::local::gateway;
use stackctl::local::vtl::{render, Request};

/// The reference of `$input`, `$util` and `$context` (variables for data
/// transformations) and of Velocity as API Gateway configures it.
const VARIABLES: &str = "https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html";
/// The SQS integration example (`Action=SendMessage&MessageBody=$input.body`).
const SQS: &str = "https://docs.aws.amazon.com/apigateway/latest/developerguide/integrating-api-with-aws-services-sqs.html";
/// The important notes of REST APIs: headers API Gateway drops.
const NOTES: &str = "https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-known-issues.html";

struct Case {
    page: &'static str,
    template: &'static str,
    body: &'static str,
    expected: &'static str,
}

fn request(body: &str) -> Request {
    let mut r = Request { body: body.into(), ..Default::default() };
    r.context = json!({ "requestId": "r-1", "stage": "prod" });
    r
}

const CASES: &[Case] = &[
    // 1. Lists render as compact JSON, alone or inside a map; maps in Java style.
    Case { page: VARIABLES, template: "$input.path('$.list')", body: r#"{"list":[{"foo":"bar"}]}"#, expected: r#"[{"foo":"bar"}]"# },
    Case { page: VARIABLES, template: "$input.path('$.map')", body: r#"{"map":{"foo":[{"nested":"bar"}]}}"#, expected: r#"{foo=[{"nested":"bar"}]}"# },
    Case { page: VARIABLES, template: "$input.path('$.map')", body: r#"{"map":{"foo":"bar"}}"#, expected: "{foo=bar}" },
    Case { page: VARIABLES, template: "$input.path('$.list')", body: r#"{"list":["a",1,true,null]}"#, expected: r#"["a",1,true,null]"# },
    // 2. A null or absent reference renders as nothing.
    Case { page: VARIABLES, template: "{\"body\": $result, \"k\": \"$elem.partitionKey\"}", body: "{}", expected: "{\"body\": , \"k\": \"\"}" },
    Case { page: VARIABLES, template: "#set($v = $input.path('$.missing'))[$v][$!v]", body: "{}", expected: "[][]" },
    // 3. Null equals the empty string.
    Case { page: VARIABLES, template: "#if($x == \"\")empty#{else}set#end", body: "{}", expected: "empty" },
    Case { page: VARIABLES, template: "#if($x != '')set#{else}empty#end", body: "{}", expected: "empty" },
    Case { page: VARIABLES, template: "#if($input.path('$.a') == '')empty#{else}set#end", body: r#"{"a":"x"}"#, expected: "set" },
    // 4. An empty request body is `{}`.
    Case { page: VARIABLES, template: "$input.body", body: "", expected: "{}" },
    Case { page: VARIABLES, template: "$input.json('$')", body: "", expected: "{}" },
    Case { page: VARIABLES, template: "$util.urlEncode($input.body)", body: "", expected: "%7B%7D" },
    Case { page: SQS, template: "Action=SendMessage&MessageBody=$input.body", body: "", expected: "Action=SendMessage&MessageBody={}" },
    // `$input.path`/`$input.json` on a body that is not JSON: API Gateway's
    // JSONPath reads it leniently, as one string (a form post stays readable).
    Case { page: VARIABLES, template: "$input.path('$')", body: "a=b", expected: "a=b" },
    Case { page: VARIABLES, template: "$input.json('$')", body: "a=b", expected: r#""a=b""# },
    Case { page: VARIABLES, template: r#"{"name": "$input.path('$')"}"#, body: "name=toqoz", expected: r#"{"name": "name=toqoz"}"# },
    Case { page: VARIABLES, template: "$input.path('$')", body: "a{b", expected: "a{b" },
    Case { page: VARIABLES, template: "[$input.path('$.name')]", body: "name=toqoz", expected: "[]" },
    Case { page: VARIABLES, template: "$input.path('$')", body: r#""a=b""#, expected: "a=b" },
    Case { page: VARIABLES, template: "$input.body", body: "a=b", expected: "a=b" },
    // `$util.parseJson` makes an object a template can walk.
    Case { page: VARIABLES, template: "#set($o = $util.parseJson($input.path('$.s')))$o.a.b", body: r#"{"s":"{\"a\":{\"b\":7}}"}"#, expected: "7" },
];

/// Velocity 1.7, as API Gateway runs it: its user guide and its grammar
/// (`Parser.jjt`: `SET_DIRECTIVE` takes the spaces before `#set`; a
/// directive's `)`, `#else` and `#end` take the rest of their line).
const VELOCITY: &str = "https://velocity.apache.org/engine/1.7/user-guide.html";
/// API Gateway's quotas and important notes (1,000 `#foreach` iterations).
const QUOTAS: &str = "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html";

const VELOCITY_CASES: &[Case] = &[
    // Whitespace: an indented `#set` line leaves nothing; other directives
    // keep their indentation and lose their newline.
    Case { page: VELOCITY, template: "  #set($a = 1)\n  $a", body: "{}", expected: "  1" },
    Case { page: VELOCITY, template: "a  #set($a = 1)b", body: "{}", expected: "ab" },
    Case { page: VELOCITY, template: "#foreach($i in [1..3])\n  $i\n#end\n", body: "{}", expected: "  1\n  2\n  3\n" },
    Case { page: VELOCITY, template: "  #if(true)\n  x\n  #end\ny", body: "{}", expected: "    x\n  y" },
    Case { page: VELOCITY, template: "#if(false)\na\n#else\nb\n#end\nc", body: "{}", expected: "b\nc" },
    Case { page: VELOCITY, template: "## a comment line\n#* a block *#x", body: "{}", expected: "x" },
    // `#foreach` over something that is not a list or a map: no iteration.
    Case { page: VELOCITY, template: "[#foreach($i in $input.path('$.s'))x#end]", body: r#"{"s":"abc"}"#, expected: "[]" },
    Case { page: VELOCITY, template: "#foreach($v in $input.path('$.m'))$v#if($foreach.hasNext),#end#end", body: r#"{"m":{"a":1,"b":2}}"#, expected: "1,2" },
    // At most 1,000 iterations.
    Case { page: QUOTAS, template: "#set($n = 0)#foreach($i in [1..1500])#set($n = $n + 1)#end$n", body: "{}", expected: "1000" },
    Case { page: VELOCITY, template: "a#stop b", body: "{}", expected: "a" },
    Case { page: VELOCITY, template: "#define($greet)Hello $name#end#set($name = 'Ada')$greet, #set($name = 'Bo')$greet", body: "{}", expected: "Hello Ada,Hello Bo" },
    Case { page: VELOCITY, template: "#macro(tag $k $v)<$k>$v</$k>#end\n#tag('a' 'b')#tag('c', $input.path('$.n'))", body: r#"{"n":2}"#, expected: "<a>b</a><c>2</c>" },
    // Java's methods on strings, lists and maps, and the collections a template builds.
    Case { page: VELOCITY, template: "$input.path('$.s').replaceAll('[aeiou]', '*') $input.path('$.s').replaceFirst('(l+)', '[$1]') $input.path('$.s').matches('h.*d') $input.path('$.s').lastIndexOf('o')", body: r#"{"s":"hello world"}"#, expected: "h*ll* w*rld he[ll]o world true 7" },
    Case { page: VELOCITY, template: "#set($p = $input.path('$.csv').split(','))$p.size() $p[1]", body: r#"{"csv":"a,b,,"}"#, expected: "2 b" },
    Case { page: VELOCITY, template: "#set($ids = [])#foreach($o in $input.path('$.offers'))#set($ok = $ids.add($o.id))#end$ids $ids.size()", body: r#"{"offers":[{"id":"a"},{"id":"b"}]}"#, expected: r#"["a","b"] 2"# },
    Case { page: VELOCITY, template: "#set($m = {})#set($old = $m.put('k', 1))#set($old = $m.put('k', 2))$m $old", body: "{}", expected: "{k=2} 1" },
    // Numbers print as Java prints them.
    Case { page: VARIABLES, template: "$input.path('$.a') $input.path('$.b') $input.path('$.c') $input.path('$.d') $input.path('$.e')", body: r#"{"a":12.5,"b":100.0,"c":1e7,"d":0.0001,"e":-3}"#, expected: "12.5 100.0 1.0E7 1.0E-4 -3" },
];

/// The console's "Method Request passthrough" template (path, query string,
/// headers and context to the integration), shortened to its params part:
/// its odd indentation is exactly Velocity 1.7's whitespace rules.
#[test]
fn the_passthrough_template_renders_as_velocity_does() {
    let template = "##  See https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html
#set($allParams = $input.params())
{
\"body-json\" : $input.json('$'),
\"params\" : {
#foreach($type in $allParams.keySet())
    #set($params = $allParams.get($type))
\"$type\" : {
    #foreach($paramName in $params.keySet())
    \"$paramName\" : \"$util.escapeJavaScript($params.get($paramName))\"
        #if($foreach.hasNext),#end
    #end
}
    #if($foreach.hasNext),#end
#end
},
\"stage\" : \"$context.stage\"
}
";
    let mut req = request(r#"{"a": 1}"#);
    req.path.insert("id".into(), "n1".into());
    req.header.insert("Accept".into(), "*/*".into());
    req.header.insert("Connection".into(), "keep-alive".into());
    let expected = "{
\"body-json\" : {\"a\":1},
\"params\" : {
\"path\" : {
        \"id\" : \"n1\"
            }
    ,\"querystring\" : {
    }
    ,\"header\" : {
        \"Accept\" : \"*\\/*\"
            }
    },
\"stage\" : \"prod\"
}
";
    assert_eq!(render(template, &req).unwrap(), expected, "{VARIABLES} {VELOCITY}");
}

/// A body that opens like JSON but is not: the request fails with 400.
#[test]
fn a_broken_json_body_is_the_clients_error() {
    for body in ["{a", "[a", "  {\"a\": }"] {
        let e = render("$input.path('$')", &request(body)).unwrap_err();
        assert!(e.bad_payload, "{body}: {e}");
        assert!(e.message.starts_with("Could not process payload"), "{e}");
    }
    // A template error is not the client's.
    assert!(!render("$util.parseJson('{')", &request("{}")).unwrap_err().bad_payload);
}

/// `$context.responseOverride` in a response template: the status and headers
/// it sets replace the integration response's.
#[test]
fn response_overrides_are_returned() {
    const OVERRIDE: &str = "https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-override-request-response-parameters.html";
    let _ = OVERRIDE;
    let t = "#set($context.responseOverride.status = 400)\n#set($context.responseOverride.header.X-Why = \"$input.path('$.why')\")\n{\"s\": $context.responseOverride.status}";
    let (out, o) = stackctl::vtl::render_response(t, &request(r#"{"why":"nope"}"#)).unwrap();
    assert_eq!(out, "{\"s\": 400}");
    assert_eq!(o.status, Some(400));
    assert_eq!(o.headers, vec![("X-Why".to_string(), "nope".to_string())]);
    // Out of range: ignored, as API Gateway ignores an invalid override.
    let (_, o) = stackctl::vtl::render_response("#set($context.responseOverride.status = 42)", &request("{}")).unwrap();
    assert_eq!(o.status, None);
}

#[test]
fn every_case_renders_as_aws_does() {
    let mut failures = Vec::new();
    for c in CASES.iter().chain(VELOCITY_CASES) {
        match render(c.template, &request(c.body)) {
            Ok(out) if out == c.expected => {}
            Ok(out) => failures.push(format!("{}\n  template {:?} body {:?}\n  expected {:?}\n  got      {:?}", c.page, c.template, c.body, c.expected, out)),
            Err(e) => failures.push(format!("{}\n  template {:?}: {e}", c.page, c.template)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `$util.escapeJavaScript`: Commons Lang's JavaScript escaping, which API
/// Gateway documents as turning `'` into `\'`.
#[test]
fn escape_javascript_as_commons_lang() {
    let _ = VARIABLES;
    for (input, expected) in [
        ("it's", "it\\'s"),
        ("say \"hi\"", "say \\\"hi\\\""),
        ("a/b\\c", "a\\/b\\\\c"),
        ("\u{8}\u{c}\n\r\t", "\\b\\f\\n\\r\\t"),
        ("\u{1}\u{1f}", "\\u0001\\u001F"),
        ("\u{7f}", "\u{7f}"),
        ("é€", "\\u00E9\\u20AC"),
        ("😀", "\\uD83D\\uDE00"),
    ] {
        let mut req = request("{}");
        req.querystring.insert("q".into(), input.into());
        assert_eq!(render("$util.escapeJavaScript($input.params('q'))", &req).unwrap(), expected, "{input:?}");
    }
}

/// `$context` of a REST API: every documented field a template reads.
#[test]
fn context_is_complete() {
    let req = gateway::HttpRequest {
        method: "post".into(),
        path: "/prod/notes/n1".into(),
        headers: vec![("Host".into(), "abc123.execute-api.eu-west-1.amazonaws.com".into()), ("User-Agent".into(), "curl/8".into())],
        source_ip: "203.0.113.9".into(),
        ..Default::default()
    };
    let c = gateway::request_context(&req, "prod", "/notes/{id}", "abc123", "req-9");
    for (field, want) in [
        ("requestId", json!("req-9")), ("extendedRequestId", json!("req-9")), ("apiId", json!("abc123")), ("stage", json!("prod")),
        ("httpMethod", json!("POST")), ("resourcePath", json!("/notes/{id}")), ("path", json!("/prod/notes/n1")), ("protocol", json!("HTTP/1.1")),
        ("domainName", json!("abc123.execute-api.eu-west-1.amazonaws.com")), ("domainPrefix", json!("abc123")), ("accountId", json!("000000000000")),
    ] {
        assert_eq!(c[field], want, "{field}: {c:#}");
    }
    assert_eq!(c["identity"]["sourceIp"], "203.0.113.9");
    assert_eq!(c["identity"]["userAgent"], "curl/8");
    let time = c["requestTime"].as_str().unwrap();
    assert!(time.len() == 26 && time.ends_with(" +0000") && time.as_bytes()[2] == b'/', "dd/MMM/yyyy:HH:mm:ss +0000: {time}");
    assert!(c["requestTimeEpoch"].as_i64().unwrap() > 1_700_000_000_000);
    let mut vreq = request("{}");
    vreq.context = c;
    assert_eq!(render("$context.identity.sourceIp $context.resourcePath $context.httpMethod", &vreq).unwrap(), "203.0.113.9 /notes/{id} POST");
}

/// 5. Headers API Gateway drops reach neither `$input.params()` nor the proxy event.
#[test]
fn dropped_headers_reach_no_integration() {
    let _ = NOTES;
    let sent: Vec<(String, String)> = [
        ("Connection", "keep-alive"), ("Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="), ("Expect", "100-continue"), ("Max-Forwards", "3"),
        ("Proxy-Authenticate", "Basic"), ("Server", "x"), ("TE", "trailers"), ("Transfer-Encoding", "chunked"), ("Trailer", "Expires"),
        ("Upgrade", "h2c"), ("WWW-Authenticate", "Basic"), ("X-Custom", "kept"), ("Accept", "*/*"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let forwarded = gateway::forwarded_headers(sent);
    assert_eq!(forwarded, vec![("X-Custom".to_string(), "kept".to_string()), ("Accept".to_string(), "*/*".to_string())]);
    let mut req = request("{}");
    req.header = forwarded.iter().cloned().collect();
    assert_eq!(render("$input.params().header", &req).unwrap(), "{Accept=*/*, X-Custom=kept}");
    assert_eq!(render("[$input.params('Max-Forwards')]", &req).unwrap(), "[]");
}
