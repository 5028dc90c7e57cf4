//! API Gateway REST (v1) semantics without the network: route a request to a
//! method of the stack, build the Lambda proxy event, turn a proxy result into an
//! HTTP response, answer CORS preflight and unknown routes the way API Gateway
//! does. The local server (issue #5) puts these behind a loopback listener.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{json, Value};

use crate::stack::model::{Api, Integration, IntegrationResponse, Method, Route};

/// A request as the local server received it.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    pub method: String,
    /// Path without the query string, e.g. `/production/search`.
    pub path: String,
    /// Decoded query parameters, in order (repeated names kept).
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub source_ip: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Request headers API Gateway (REST) drops before the integration: neither a
/// mapping template (`$input.params()`) nor a proxy event sees them.
pub use crate::vtl::DROPPED_HEADERS;

/// The headers of a request that reach the integration, in order.
pub fn forwarded_headers(headers: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    headers.into_iter().filter(|(k, _)| !crate::vtl::dropped_header(k)).collect()
}

/// What a request resolved to.
#[derive(Debug)]
pub enum Routed<'a> {
    /// A method of the stack, with the matched resource and path parameters.
    Method { route: &'a Route, method: &'a Method, path_params: BTreeMap<String, String> },
    /// An OPTIONS request on a route with `cors: true`.
    Preflight { route: &'a Route },
    /// Answered by the gateway itself (unknown stage or route, method not defined).
    Gateway(HttpResponse),
}

fn gateway_error(status: u16, message: &str, cors_origin: Option<&str>) -> HttpResponse {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string()), ("x-amzn-errortype".to_string(), error_type(status).into())];
    if let Some(o) = cors_origin {
        headers.push(("access-control-allow-origin".into(), o.into()));
    }
    HttpResponse { status, headers, body: json!({ "message": message }).to_string().into_bytes() }
}

fn error_type(status: u16) -> &'static str {
    match status {
        415 => "UnsupportedMediaTypeException",
        403 => "MissingAuthenticationTokenException",
        404 => "NotFoundException",
        _ => "InternalServerErrorException",
    }
}

/// Match `segments` against a resource path; path parameters on success.
fn match_path(resource: &str, segments: &[&str]) -> Option<BTreeMap<String, String>> {
    let pattern: Vec<&str> = resource.split('/').filter(|s| !s.is_empty()).collect();
    let mut params = BTreeMap::new();
    for (i, p) in pattern.iter().enumerate() {
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
            if i >= segments.len() {
                return None;
            }
            params.insert(name.to_owned(), segments[i..].join("/"));
            return Some(params);
        }
        let seg = segments.get(i)?;
        match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => {
                if seg.is_empty() {
                    return None;
                }
                params.insert(name.to_owned(), percent_encoding::percent_decode_str(seg).decode_utf8_lossy().into_owned());
            }
            None if p != seg => return None,
            None => {}
        }
    }
    (pattern.len() == segments.len()).then_some(params)
}

/// The route serving `path` (without the stage, query string excluded) and its
/// path parameters, as API Gateway picks it: literal segments win over parameters.
pub fn find_route<'a>(api: &'a Api, path: &str) -> Option<(&'a Route, BTreeMap<String, String>)> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut candidates: Vec<(&Route, BTreeMap<String, String>)> =
        api.routes.iter().filter_map(|r| match_path(&r.path, &segments).map(|p| (r, p))).collect();
    // Most literal segments first.
    candidates.sort_by_key(|(r, _)| std::cmp::Reverse(r.path.split('/').filter(|s| !s.starts_with('{') && !s.is_empty()).count()));
    candidates.into_iter().next()
}

/// The method of a route answering `verb` (an `ANY` method answers every verb).
pub fn find_method<'a>(route: &'a Route, verb: &str) -> Option<&'a Method> {
    let verb = verb.to_ascii_uppercase();
    route.methods.iter().find(|m| m.http_method == verb).or_else(|| route.methods.iter().find(|m| m.http_method == "ANY"))
}

/// Route a request for `stage`. Literal segments win over parameters, like API Gateway.
pub fn route<'a>(api: &'a Api, stage: &str, req: &HttpRequest) -> Routed<'a> {
    let cors = api.routes.iter().any(|r| r.cors).then_some(api.cors.allow_origin.as_str());
    let mut parts = req.path.trim_start_matches('/').splitn(2, '/');
    if parts.next() != Some(stage) {
        // Unknown stage: API Gateway answers 403 Forbidden for it.
        return Routed::Gateway(gateway_error(403, "Forbidden", cors));
    }
    let rest = parts.next().unwrap_or("");
    let Some((route, path_params)) = find_route(api, rest) else {
        return Routed::Gateway(gateway_error(403, "Missing Authentication Token", cors));
    };
    let verb = req.method.to_ascii_uppercase();
    if verb == "OPTIONS" && route.cors {
        return Routed::Preflight { route };
    }
    match find_method(route, &verb) {
        Some(method) => Routed::Method { route, method, path_params },
        None => Routed::Gateway(gateway_error(403, "Missing Authentication Token", cors)),
    }
}

/// The CORS preflight answer of a route (the MOCK integration's response).
pub fn preflight(api: &Api, route: &Route) -> HttpResponse {
    let mut methods: Vec<&str> = route.methods.iter().map(|m| m.http_method.as_str()).collect();
    methods.push("OPTIONS");
    let mut headers = vec![
        ("access-control-allow-origin".to_string(), api.cors.allow_origin.clone()),
        ("access-control-allow-headers".to_string(), api.cors.allow_headers.join(",")),
        ("access-control-allow-methods".to_string(), methods.join(",")),
    ];
    if let Some(age) = api.cors.max_age {
        headers.push(("access-control-max-age".into(), age.to_string()));
    }
    HttpResponse { status: 200, headers, body: Vec::new() }
}

fn is_text(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .is_none_or(|(_, v)| v.starts_with("text/") || v.contains("json") || v.contains("xml") || v.contains("x-www-form-urlencoded") || v.contains("javascript"))
}

/// API Gateway's request context (REST, v1): the proxy event's
/// `requestContext` and a mapping template's `$context`.
pub fn request_context(req: &HttpRequest, stage: &str, resource_path: &str, api_id: &str, request_id: &str) -> Value {
    let path = path_in_stage(req);
    let header = |name: &str| req.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let domain = header("host").unwrap_or_else(|| format!("{api_id}.execute-api.{}.amazonaws.com", super::cloud::DEFAULT_REGION));
    let now = chrono::Utc::now();
    let resource_id = &crate::digest::sha256_hex(resource_path.as_bytes())[..6];
    json!({
        "accountId": super::cloud::ACCOUNT,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": domain.split('.').next().unwrap_or_default(),
        "extendedRequestId": request_id,
        "httpMethod": req.method.to_ascii_uppercase(),
        "identity": {
            "accessKey": null, "accountId": null, "caller": null, "cognitoAuthenticationProvider": null,
            "cognitoAuthenticationType": null, "cognitoIdentityId": null, "cognitoIdentityPoolId": null,
            "principalOrgId": null, "sourceIp": req.source_ip, "user": null, "userAgent": header("user-agent"), "userArn": null,
        },
        "path": format!("/{stage}{path}"),
        "protocol": "HTTP/1.1",
        "requestId": request_id,
        "requestTime": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
        "requestTimeEpoch": now.timestamp_millis(),
        "resourceId": resource_id,
        "resourcePath": resource_path,
        "stage": stage,
    })
}

/// A request's path without its stage: `/production/notes/n1` → `/notes/n1`.
fn path_in_stage(req: &HttpRequest) -> String {
    format!("/{}", req.path.trim_start_matches('/').split_once('/').map(|(_, p)| p).unwrap_or(""))
}

/// The Lambda proxy integration event (payload format 1.0), with the stage's variables.
pub fn proxy_event(req: &HttpRequest, stage: &str, route: &Route, path_params: &BTreeMap<String, String>, stage_variables: &BTreeMap<String, String>, api_id: &str, request_id: &str) -> Value {
    let resource_path = route.path.clone();
    let path = path_in_stage(req);
    let single = |pairs: &[(String, String)]| -> Value {
        if pairs.is_empty() {
            return Value::Null;
        }
        let mut m = serde_json::Map::new();
        for (k, v) in pairs {
            m.insert(k.clone(), Value::String(v.clone()));
        }
        Value::Object(m)
    };
    let multi = |pairs: &[(String, String)]| -> Value {
        if pairs.is_empty() {
            return Value::Null;
        }
        let mut m: serde_json::Map<String, Value> = serde_json::Map::new();
        for (k, v) in pairs {
            if let Some(values) = m.entry(k.clone()).or_insert_with(|| json!([])).as_array_mut() {
                values.push(Value::String(v.clone()));
            }
        }
        Value::Object(m)
    };
    let text = is_text(&req.headers) && std::str::from_utf8(&req.body).is_ok();
    let body = if req.body.is_empty() {
        Value::Null
    } else if text {
        Value::String(String::from_utf8_lossy(&req.body).into_owned())
    } else {
        Value::String(base64::engine::general_purpose::STANDARD.encode(&req.body))
    };
    json!({
        "resource": resource_path,
        "path": path,
        "httpMethod": req.method.to_ascii_uppercase(),
        "headers": single(&req.headers),
        "multiValueHeaders": multi(&req.headers),
        "queryStringParameters": single(&req.query),
        "multiValueQueryStringParameters": multi(&req.query),
        "pathParameters": if path_params.is_empty() { Value::Null } else { json!(path_params) },
        "stageVariables": if stage_variables.is_empty() { Value::Null } else { json!(stage_variables) },
        "requestContext": request_context(req, stage, &resource_path, api_id, request_id),
        "body": body,
        "isBase64Encoded": !req.body.is_empty() && !text,
    })
}

/// A proxy integration's result → the HTTP response. A result that is not the
/// proxy shape is API Gateway's 502 "Malformed Lambda proxy response".
pub fn proxy_response(result: &Value) -> HttpResponse {
    let malformed = || HttpResponse {
        status: 502,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({ "message": "Internal server error" }).to_string().into_bytes(),
    };
    let Some(obj) = result.as_object() else { return malformed() };
    let status = match obj.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64().and_then(|s| u16::try_from(s).ok()),
        Some(Value::String(s)) => s.parse().ok(),
        None => Some(200),
        _ => None,
    };
    let Some(status) = status.filter(|s| (100..600).contains(s)) else { return malformed() };
    let mut headers = Vec::new();
    if let Some(Value::Object(h)) = obj.get("headers") {
        for (k, v) in h {
            headers.push((k.to_ascii_lowercase(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())));
        }
    }
    if let Some(Value::Object(h)) = obj.get("multiValueHeaders") {
        for (k, vs) in h {
            for v in vs.as_array().into_iter().flatten() {
                headers.push((k.to_ascii_lowercase(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())));
            }
        }
    }
    let body = match obj.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if obj.get("isBase64Encoded") == Some(&Value::Bool(true)) => match base64::engine::general_purpose::STANDARD.decode(s) {
            Ok(b) => b,
            Err(_) => return malformed(),
        },
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(_) => return malformed(),
    };
    HttpResponse { status, headers, body }
}

/// A request's media type, lower case, without parameters; API Gateway takes
/// a request without one as `application/json`.
fn media_type(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/json".into())
}

/// The request template of a non-proxy method for the request's content type
/// (`application/json` when the request names none). The engine sets
/// WHEN_NO_TEMPLATES passthrough: a method without templates passes the body
/// through (`Ok(None)`); one with templates but none for this content type
/// answers 415 Unsupported Media Type.
pub fn request_template<'a>(method: &'a Method, req: &HttpRequest) -> Result<Option<&'a str>, UnsupportedMediaType> {
    let Integration::Aws { request_templates, .. } = &method.integration else { return Ok(None) };
    if request_templates.is_empty() {
        return Ok(None);
    }
    request_templates.get(&media_type(&req.headers)).map(|t| Some(t.as_str())).ok_or(UnsupportedMediaType)
}

/// A request whose content type has no request template (API Gateway's 415).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsupportedMediaType;

/// Compiled request models, by schema text (compiled once per server).
fn compiled(schema: &Value) -> Option<std::sync::Arc<jsonschema::Validator>> {
    type Cache = std::sync::Mutex<BTreeMap<String, std::sync::Arc<jsonschema::Validator>>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let key = schema.to_string();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().ok()?.get(&key) {
        return Some(v.clone());
    }
    let v = std::sync::Arc::new(jsonschema::draft4::new(schema).ok()?);
    cache.lock().ok()?.insert(key, v.clone());
    Some(v)
}

/// The method's request validator, as API Gateway runs it before the
/// integration: required parameters present and not blank (400 `Missing
/// required request parameters: [a, b]`), then the body against the model of
/// its content type, or `$default`'s (400 `Invalid request body`; an empty
/// body is `{}`; a content type without a model is not checked).
pub fn validate_request(method: &Method, req: &HttpRequest, path_params: &BTreeMap<String, String>, cors_origin: Option<&str>) -> Option<HttpResponse> {
    let request = &method.request;
    if request.checks_parameters() {
        let present = |key: &str| -> bool {
            let Some((place, name)) = key.split_once('.') else { return true };
            let filled = |v: &String| !v.trim().is_empty();
            match place {
                "header" => req.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case(name) && filled(v)),
                "querystring" => req.query.iter().any(|(k, v)| k == name && filled(v)),
                "path" => path_params.get(name).is_some_and(filled),
                _ => true,
            }
        };
        let missing: Vec<&str> = request.parameters.iter().filter(|(k, required)| **required && !present(k)).filter_map(|(k, _)| k.split_once('.').map(|(_, n)| n)).collect();
        if !missing.is_empty() {
            return Some(client_error(400, &format!("Missing required request parameters: [{}]", missing.join(", ")), cors_origin));
        }
    }
    if request.checks_body() {
        let model = request.models.get(&media_type(&req.headers)).or_else(|| request.models.get("$default"));
        if let Some(schema) = model {
            let text = if req.body.is_empty() { b"{}".as_slice() } else { req.body.as_slice() };
            let valid = match (serde_json::from_slice::<Value>(text), compiled(schema)) {
                (Ok(body), Some(v)) => v.is_valid(&body),
                _ => false,
            };
            if !valid {
                return Some(client_error(400, "Invalid request body", cors_origin));
            }
        }
    }
    None
}

/// What the Lambda Invoke call answered, as an integration response sees it.
pub struct LambdaAnswer<'a> {
    pub payload: &'a [u8],
    /// `X-Amz-Function-Error` was set (a function error or a crash).
    pub function_error: bool,
    pub request_id: &'a str,
}

/// A non-proxy (AWS) integration's answer → the method response. The
/// integration response is picked as API Gateway does for Lambda: each
/// selection pattern (a regex over all of the text, `.` not crossing lines) is
/// tried on the function error's `errorMessage` (an empty string for a
/// result); none matching, the default response (no pattern). Its template for
/// the request's `Accept` (else `application/json`, else its only one) renders
/// the body, which passes through untouched when it has none; its header
/// mappings fill the headers, and `$context.responseOverride` applies last.
pub fn integration_response(answer: &LambdaAnswer<'_>, responses: &[IntegrationResponse], cors_origin: Option<&str>, request: &crate::vtl::Request, accept: Option<&str>) -> HttpResponse {
    let parsed: Option<Value> = serde_json::from_slice(answer.payload).ok();
    let subject = if answer.function_error { parsed.as_ref().and_then(|v| v["errorMessage"].as_str()).unwrap_or_default().to_owned() } else { String::new() };
    let selected = responses
        .iter()
        .filter(|r| r.pattern.is_some())
        .find(|r| r.pattern.as_deref().and_then(|p| regex::Regex::new(&format!("^(?:{p})$")).ok()).is_some_and(|re| re.is_match(&subject)))
        .or_else(|| responses.iter().find(|r| r.pattern.is_none()));
    let Some(selected) = selected else {
        // No default and nothing matched: API Gateway's configuration error.
        return gateway_error(500, "Internal server error", cors_origin);
    };
    let template = accept
        .into_iter()
        .flat_map(|a| a.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .find_map(|t| selected.templates.get_key_value(&t))
        .or_else(|| selected.templates.get_key_value("application/json"))
        .or_else(|| selected.templates.iter().next());
    let mut status = selected.status;
    let mut content_type = "application/json".to_string();
    let mut overrides = crate::vtl::ResponseOverride::default();
    let body = match template {
        None => answer.payload.to_vec(),
        Some((ctype, t)) => {
            content_type = ctype.clone();
            let mut req = request.clone();
            req.body = String::from_utf8_lossy(answer.payload).into_owned();
            match crate::vtl::render_response(t, &req) {
                Ok((out, o)) => {
                    overrides = o;
                    out.into_bytes()
                }
                Err(_) => return gateway_error(500, "Internal server error", cors_origin),
            }
        }
    };
    let mut headers = vec![("content-type".to_string(), content_type)];
    let lambda_headers = [
        ("Content-Type", "application/json".to_string()),
        ("X-Amz-Executed-Version", "$LATEST".to_string()),
        ("X-Amzn-Requestid", answer.request_id.to_string()),
        ("X-Amz-Function-Error", if answer.function_error { "Unhandled".to_string() } else { String::new() }),
    ];
    for (name, source) in selected.headers_with_cors(cors_origin) {
        let value = response_parameter(&source, parsed.as_ref(), answer.payload, &lambda_headers, request);
        if let Some(v) = value {
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
            headers.push((name.to_ascii_lowercase(), v));
        }
    }
    if let Some(s) = overrides.status {
        status = s;
    }
    for (name, v) in overrides.headers {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
        headers.push((name.to_ascii_lowercase(), v));
    }
    HttpResponse { status, headers, body }
}

/// The value of a response header mapping (`'literal'`,
/// `integration.response.body[.path]`, `integration.response.header.NAME`,
/// `context.VAR`, `stageVariables.NAME`); `None` leaves the header out.
fn response_parameter(source: &str, body: Option<&Value>, raw: &[u8], lambda_headers: &[(&str, String)], request: &crate::vtl::Request) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if let Some(literal) = source.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Some(literal.to_owned());
    }
    if source == "integration.response.body" {
        return Some(String::from_utf8_lossy(raw).into_owned());
    }
    if let Some(path) = source.strip_prefix("integration.response.body.") {
        let p = serde_json_path::JsonPath::parse(&format!("$.{path}")).ok()?;
        return p.query(body?).first().map(text);
    }
    if let Some(name) = source.strip_prefix("integration.response.header.").or_else(|| source.strip_prefix("integration.response.multivalueheader.")) {
        return lambda_headers.iter().find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_empty()).map(|(_, v)| v.clone());
    }
    if let Some(path) = source.strip_prefix("context.") {
        let mut cur = &request.context;
        for part in path.split('.') {
            cur = cur.get(part)?;
        }
        return (!cur.is_null()).then(|| text(cur));
    }
    if let Some(name) = source.strip_prefix("stageVariables.") {
        return request.stage_variables.get(name).cloned();
    }
    None
}

/// API Gateway's 4xx answers about the request itself (`x-amzn-ErrorType: BadRequestException`).
pub fn client_error(status: u16, message: &str, cors_origin: Option<&str>) -> HttpResponse {
    let mut r = gateway_error(status, message, cors_origin);
    for (k, v) in r.headers.iter_mut() {
        if k == "x-amzn-errortype" {
            *v = "BadRequestException".into();
        }
    }
    r
}

/// API Gateway's own 5xx answers (`Internal server error`, timeouts).
pub fn server_error(status: u16, message: &str, cors_origin: Option<&str>) -> HttpResponse {
    gateway_error(status, message, cors_origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::model::Cors;

    fn api() -> Api {
        let m = |verb: &str, f: &str| Method { http_method: verb.into(), function: f.into(), integration: Integration::Proxy, request: Default::default() };
        Api {
            name: "x".into(),
            endpoint: crate::stack::model::EndpointType::Edge,
            cors: Cors::default(),
            stage_variables: Default::default(),
            routes: vec![
                Route { path: "/search".into(), cors: true, methods: vec![m("POST", "start"), m("GET", "worker")] },
                Route { path: "/cars/{id}".into(), cors: false, methods: vec![m("GET", "car")] },
                Route { path: "/cars/new".into(), cors: false, methods: vec![m("GET", "new")] },
                Route { path: "/files/{path+}".into(), cors: false, methods: vec![m("ANY", "files")] },
            ],
        }
    }

    fn req(method: &str, path: &str) -> HttpRequest {
        HttpRequest { method: method.into(), path: path.into(), source_ip: "127.0.0.1".into(), ..Default::default() }
    }

    #[test]
    fn routing_like_api_gateway() {
        let a = api();
        match route(&a, "production", &req("GET", "/production/search")) {
            Routed::Method { method, .. } => assert_eq!(method.function, "worker"),
            other => panic!("{other:?}"),
        }
        match route(&a, "production", &req("GET", "/production/cars/42")) {
            Routed::Method { method, path_params, .. } => {
                assert_eq!(method.function, "car");
                assert_eq!(path_params["id"], "42");
            }
            other => panic!("{other:?}"),
        }
        match route(&a, "production", &req("GET", "/production/cars/new")) {
            Routed::Method { method, .. } => assert_eq!(method.function, "new", "literal segments win"),
            other => panic!("{other:?}"),
        }
        match route(&a, "production", &req("DELETE", "/production/files/a/b/c.txt")) {
            Routed::Method { method, path_params, .. } => {
                assert_eq!(method.function, "files");
                assert_eq!(path_params["path"], "a/b/c.txt");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(route(&a, "production", &req("OPTIONS", "/production/search")), Routed::Preflight { .. }));
        for (m, p) in [("GET", "/production/nope"), ("PUT", "/production/search"), ("GET", "/production/cars/42/x")] {
            match route(&a, "production", &req(m, p)) {
                Routed::Gateway(r) => {
                    assert_eq!(r.status, 403, "{m} {p}");
                    assert_eq!(String::from_utf8_lossy(&r.body), r#"{"message":"Missing Authentication Token"}"#);
                }
                other => panic!("{m} {p}: {other:?}"),
            }
        }
        match route(&a, "production", &req("GET", "/dev/search")) {
            Routed::Gateway(r) => assert_eq!(r.status, 403),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn preflight_lists_the_routes_methods() {
        let a = api();
        let r = preflight(&a, &a.routes[0]);
        assert_eq!(r.status, 200);
        assert!(r.headers.contains(&("access-control-allow-methods".into(), "POST,GET,OPTIONS".into())));
        assert!(r.headers.contains(&("access-control-allow-origin".into(), "*".into())));
    }

    fn answer(payload: &[u8], function_error: bool) -> LambdaAnswer<'_> {
        LambdaAnswer { payload, function_error, request_id: "r-1" }
    }

    #[test]
    fn integration_responses_select_by_error_message() {
        let req = crate::vtl::Request::default();
        let responses = crate::stack::model::default_responses();
        let ok = integration_response(&answer(br#"{"offers":[]}"#, false), &responses, Some("*"), &req, None);
        assert_eq!((ok.status, ok.body.as_slice()), (200, br#"{"offers":[]}"#.as_slice()));
        assert!(ok.headers.contains(&("access-control-allow-origin".into(), "*".into())));
        let pending = serde_json::json!({ "errorType": "Pending", "errorMessage": r#"{"status":202,"message":"pending"}"# }).to_string();
        let r = integration_response(&answer(pending.as_bytes(), true), &responses, None, &req, None);
        assert_eq!(r.status, 202);
        assert_eq!(String::from_utf8_lossy(&r.body), r#"{"status":202,"message":"pending"}"#);
        let down = serde_json::json!({ "errorType": "Unavailable", "errorMessage": r#"{"status":503}"# }).to_string();
        assert_eq!(integration_response(&answer(down.as_bytes(), true), &responses, None, &req, None).status, 500);
        // Unmatched errors (a crash, a timeout) fall to the default response.
        let crash = serde_json::json!({ "errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 1.00 seconds" }).to_string();
        let r = integration_response(&answer(crash.as_bytes(), true), &responses, None, &req, None);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, crash.as_bytes());
        // `.` does not cross lines, as in Java's regex: a two-line message is unmatched.
        let two_lines = serde_json::json!({ "errorMessage": "{\"status\":404,\n}" }).to_string();
        assert_eq!(integration_response(&answer(two_lines.as_bytes(), true), &responses, None, &req, None).status, 200);
    }

    #[test]
    fn proxy_events_and_responses() {
        let a = api();
        let mut r = req("POST", "/production/search");
        r.query = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
        r.headers = vec![("content-type".into(), "application/json".into())];
        r.body = b"{\"x\":1}".to_vec();
        let e = proxy_event(&r, "production", &a.routes[0], &BTreeMap::new(), &BTreeMap::new(), "api1", "req1");
        assert_eq!(e["path"], "/search");
        assert_eq!(e["resource"], "/search");
        assert_eq!(e["body"], "{\"x\":1}");
        assert_eq!(e["isBase64Encoded"], false);
        assert_eq!(e["queryStringParameters"]["a"], "2", "the last value wins, as in API Gateway");
        assert_eq!(e["multiValueQueryStringParameters"]["a"], json!(["1", "2"]));
        assert_eq!(e["requestContext"]["stage"], "production");
        assert_eq!(e["pathParameters"], Value::Null);
        r.headers = vec![("content-type".into(), "image/png".into())];
        r.body = vec![0, 159, 146, 150];
        let e = proxy_event(&r, "production", &a.routes[0], &BTreeMap::new(), &BTreeMap::new(), "api1", "req1");
        assert_eq!(e["isBase64Encoded"], true);
        assert_eq!(e["body"], "AJ+Slg==");

        let ok = proxy_response(&json!({ "statusCode": 201, "headers": { "X-A": "1" }, "body": "hi" }));
        assert_eq!((ok.status, ok.body.as_slice()), (201, b"hi".as_slice()));
        assert!(ok.headers.contains(&("x-a".into(), "1".into())));
        let bin = proxy_response(&json!({ "statusCode": 200, "isBase64Encoded": true, "body": "AJ+Slg==" }));
        assert_eq!(bin.body, vec![0, 159, 146, 150]);
        for bad in [json!("text"), json!({ "statusCode": "abc" }), json!({ "statusCode": 200, "body": { "a": 1 } })] {
            assert_eq!(proxy_response(&bad).status, 502, "{bad}");
        }
    }
}
