//! The API's function. API Gateway (REST, proxy integration) sends it every
//! request of the routes that name it in `stacks/{{name}}.yaml`, as an
//! `ApiGatewayProxyRequest`; it answers an `ApiGatewayProxyResponse`.
//!
//! Try it:   stackctl deploy --target local
//!           curl 'http://127.0.0.1:PORT/dev/hello?name=Ada'
//!           stackctl logs api

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderValue, Method};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // One JSON line per log event, to CloudWatch Logs (`stackctl logs api`).
    // RUST_LOG (set in the stack file) picks the level.
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_span_list(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayProxyRequest>| async move { Ok::<_, Error>(handle(&event.payload)) })).await
}

/// One request, one answer. Bad input is a 4xx with a JSON error, never a panic
/// (a panic would reach the client as API Gateway's 502).
pub fn handle(request: &ApiGatewayProxyRequest) -> ApiGatewayProxyResponse {
    let route = request.resource.as_deref().unwrap_or_default();
    let response = match (&request.http_method, route) {
        (&Method::GET, "/hello") => {
            let name = request.query_string_parameters.first("name").unwrap_or("world");
            reply(200, json!({ "message": format!("Hello, {name}!") }))
        }
        (&Method::POST, "/echo") => match request.body.as_deref().map(serde_json::from_str::<Value>) {
            Some(Ok(body @ Value::Object(_))) => reply(200, json!({ "received": body })),
            Some(Ok(_)) | None => error(400, "invalid_body", "send a JSON object"),
            Some(Err(e)) => error(400, "invalid_json", &format!("the body is not JSON: {e}")),
        },
        _ => error(404, "not_found", &format!("no route {} {route}", request.http_method)),
    };
    tracing::info!(method = %request.http_method, path = request.path.as_deref().unwrap_or_default(), status = response.status_code, "handled request");
    response
}

fn reply(status: i64, body: Value) -> ApiGatewayProxyResponse {
    // The response types are `#[non_exhaustive]`: start from `default()`.
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.headers.insert("content-type", HeaderValue::from_static("application/json"));
    // With a proxy integration the function sets the CORS headers itself
    // (`cors: true` in the stack file answers the browser's preflight only).
    r.headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    r.body = Some(Body::Text(body.to_string()));
    r
}

fn error(status: i64, code: &str, message: &str) -> ApiGatewayProxyResponse {
    reply(status, json!({ "error": { "code": code, "message": message } }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, resource: &str, query: &[(&str, &str)], body: Option<&str>) -> ApiGatewayProxyRequest {
        let mut r = ApiGatewayProxyRequest::default();
        r.http_method = method;
        r.resource = Some(resource.into());
        r.path = Some(resource.into());
        r.query_string_parameters = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::HashMap<_, _>>().into();
        r.body = body.map(str::to_owned);
        r
    }

    fn body(r: &ApiGatewayProxyResponse) -> Value {
        match &r.body {
            Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
            other => panic!("expected a text body, got {other:?}"),
        }
    }

    #[test]
    fn hello_greets_by_name() {
        let r = handle(&request(Method::GET, "/hello", &[("name", "Ada")], None));
        assert_eq!(r.status_code, 200);
        assert_eq!(body(&r)["message"], "Hello, Ada!");
        assert_eq!(body(&handle(&request(Method::GET, "/hello", &[], None)))["message"], "Hello, world!");
    }

    #[test]
    fn echo_refuses_what_is_not_a_json_object() {
        let ok = handle(&request(Method::POST, "/echo", &[], Some(r#"{"a":1}"#)));
        assert_eq!((ok.status_code, body(&ok)["received"]["a"].clone()), (200, json!(1)));
        for bad in [None, Some("[1]"), Some("{")] {
            let r = handle(&request(Method::POST, "/echo", &[], bad));
            assert_eq!(r.status_code, 400, "{bad:?}");
            assert!(body(&r)["error"]["code"].is_string());
        }
    }

    #[test]
    fn an_unknown_route_is_a_json_404() {
        let r = handle(&request(Method::DELETE, "/hello", &[], None));
        assert_eq!(r.status_code, 404);
        assert_eq!(body(&r)["error"]["code"], "not_found");
    }
}
