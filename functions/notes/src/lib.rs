//! The notes API: a CRUD API over one S3 prefix, the shape of most first APIs.
//!
//!   GET    /notes       -> 200 {"notes": [{"id", "size"}]}  (ListObjectsV2 under the prefix)
//!   PUT    /notes/{id}  -> 200 {"id", "size"}               (PutObject; any content type)
//!   GET    /notes/{id}  -> 200 the note, with its content type; 404 when absent
//!   DELETE /notes/{id}  -> 204; 404 when absent
//!
//! EventBridge's Scheduled Event (the stack's `schedule:`) counts the notes and
//! logs the figure: a daily report, the kind of job a schedule runs.
//!
//! Every error is a 4xx/5xx JSON body (`stackctl_shared::http`), never a panic.
//! The store is a trait so the routing and validation are tested without S3.

use std::future::Future;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderValue, Method};
use serde_json::json;
use stackctl_shared::http::{error_response, json_response, proxy_request};

/// Largest note accepted, in bytes.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// A stored note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub content_type: String,
    pub body: Vec<u8>,
}

pub trait Store: Send + Sync {
    fn get(&self, id: &str) -> impl Future<Output = Result<Option<Note>, String>> + Send;
    fn put(&self, id: &str, note: Note) -> impl Future<Output = Result<(), String>> + Send;
    /// Whether it existed.
    fn delete(&self, id: &str) -> impl Future<Output = Result<bool, String>> + Send;
    /// Ids and sizes, in key order.
    fn list(&self) -> impl Future<Output = Result<Vec<(String, i64)>, String>> + Send;
}

/// Notes as objects `{prefix}{id}` of one bucket.
pub struct S3Store {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    pub prefix: String,
}

fn s3_failure<E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Display>(call: &str, key: &str, e: &E) -> String {
    format!("{call} {key}: {}: {}", e.code().unwrap_or("error"), e.message().map(str::to_owned).unwrap_or_else(|| e.to_string()))
}

/// S3 tells a missing key from a forbidden one only to a caller that may list
/// the whole bucket; this role lists only under its prefix, so a missing note
/// answers 403 AccessDenied on AWS and on the local cloud alike. The role may
/// read every key under the prefix, so here that answer means "absent".
fn absent<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> bool {
    matches!(e.code(), Some("NoSuchKey" | "NotFound" | "AccessDenied" | "Forbidden"))
}

impl Store for S3Store {
    async fn get(&self, id: &str) -> Result<Option<Note>, String> {
        let key = format!("{}{id}", self.prefix);
        match self.client.get_object().bucket(&self.bucket).key(&key).send().await {
            Ok(out) => {
                let content_type = out.content_type().unwrap_or("application/octet-stream").to_owned();
                let body = out.body.collect().await.map_err(|e| format!("GetObject {key}: reading the body: {e}"))?.into_bytes().to_vec();
                Ok(Some(Note { content_type, body }))
            }
            Err(e) if e.as_service_error().is_some_and(absent) => Ok(None),
            Err(e) => Err(s3_failure("GetObject", &key, &e)),
        }
    }

    async fn put(&self, id: &str, note: Note) -> Result<(), String> {
        let key = format!("{}{id}", self.prefix);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(note.content_type)
            .body(note.body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| s3_failure("PutObject", &key, &e))
    }

    async fn delete(&self, id: &str) -> Result<bool, String> {
        let key = format!("{}{id}", self.prefix);
        // DeleteObject answers 204 whether the key existed or not: HEAD first.
        match self.client.head_object().bucket(&self.bucket).key(&key).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(absent) || e.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 403 | 404)) => return Ok(false),
            Err(e) => return Err(s3_failure("HeadObject", &key, &e)),
        }
        self.client.delete_object().bucket(&self.bucket).key(&key).send().await.map_err(|e| s3_failure("DeleteObject", &key, &e))?;
        Ok(true)
    }

    async fn list(&self) -> Result<Vec<(String, i64)>, String> {
        let mut out = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(&self.prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| s3_failure("ListObjectsV2", &self.prefix, &e))?;
            for o in page.contents() {
                if let Some(id) = o.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    out.push((id.to_owned(), o.size().unwrap_or(0)));
                }
            }
        }
        Ok(out)
    }
}

/// A note id: 1 to 128 letters, digits, `-` or `_` (it becomes an S3 key).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn internal(e: String) -> ApiGatewayProxyResponse {
    tracing::error!(error = %e, "storage failed");
    error_response(500, "storage_failed", "the notes store failed; see the function's logs")
}

/// Answer one API Gateway proxy event.
pub async fn handle(event: serde_json::Value, store: &impl Store) -> ApiGatewayProxyResponse {
    if event.get("detail-type").and_then(|d| d.as_str()) == Some("Scheduled Event") {
        return match store.list().await {
            Ok(notes) => {
                let bytes: i64 = notes.iter().map(|(_, size)| size).sum();
                tracing::info!(notes = notes.len(), bytes, rule = ?event["resources"][0], "scheduled report");
                json_response(200, &json!({ "notes": notes.len(), "bytes": bytes }))
            }
            Err(e) => internal(e),
        };
    }
    let request = match proxy_request(event) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    let id = request.path_parameters.get("id").cloned();
    let Some(id) = id else {
        return match request.http_method {
            Method::GET => match store.list().await {
                Ok(notes) => json_response(200, &json!({ "notes": notes.iter().map(|(id, size)| json!({ "id": id, "size": size })).collect::<Vec<_>>() })),
                Err(e) => internal(e),
            },
            _ => error_response(405, "method_not_allowed", "use GET on /notes"),
        };
    };
    if !valid_id(&id) {
        return error_response(400, "invalid_id", format!("note id `{id}` must be 1 to 128 letters, digits, `-` or `_`"));
    }
    match request.http_method {
        Method::GET => match store.get(&id).await {
            Ok(Some(note)) => {
                let mut response = json_response(200, &json!({}));
                if let Ok(ct) = HeaderValue::from_str(&note.content_type) {
                    response.headers.insert("content-type", ct);
                }
                response.body = Some(match String::from_utf8(note.body) {
                    Ok(text) => Body::Text(text),
                    Err(bytes) => Body::Binary(bytes.into_bytes()),
                });
                response
            }
            Ok(None) => error_response(404, "not_found", format!("note `{id}` does not exist")),
            Err(e) => internal(e),
        },
        Method::PUT => {
            let body = match stackctl_shared::http::body_bytes(&request, MAX_NOTE_BYTES) {
                Ok(b) => b,
                Err(e) => return e.response(),
            };
            let content_type = request.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("text/plain").to_owned();
            let size = body.len();
            match store.put(&id, Note { content_type, body }).await {
                Ok(()) => json_response(200, &json!({ "id": id, "size": size })),
                Err(e) => internal(e),
            }
        }
        Method::DELETE => match store.delete(&id).await {
            Ok(true) => {
                let mut response = json_response(204, &json!({}));
                response.body = None;
                response
            }
            Ok(false) => error_response(404, "not_found", format!("note `{id}` does not exist")),
            Err(e) => internal(e),
        },
        _ => error_response(405, "method_not_allowed", "use GET, PUT or DELETE on /notes/{id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Memory(Mutex<BTreeMap<String, Note>>);

    impl Store for Memory {
        async fn get(&self, id: &str) -> Result<Option<Note>, String> {
            Ok(self.0.lock().unwrap().get(id).cloned())
        }
        async fn put(&self, id: &str, note: Note) -> Result<(), String> {
            self.0.lock().unwrap().insert(id.into(), note);
            Ok(())
        }
        async fn delete(&self, id: &str) -> Result<bool, String> {
            Ok(self.0.lock().unwrap().remove(id).is_some())
        }
        async fn list(&self) -> Result<Vec<(String, i64)>, String> {
            Ok(self.0.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.body.len() as i64)).collect())
        }
    }

    fn event(method: &str, id: Option<&str>, body: Option<&str>, ctype: &str) -> serde_json::Value {
        json!({
            "resource": if id.is_some() { "/notes/{id}" } else { "/notes" },
            "path": format!("/notes{}", id.map(|i| format!("/{i}")).unwrap_or_default()),
            "httpMethod": method,
            "headers": { "content-type": ctype },
            "pathParameters": id.map(|i| json!({ "id": i })),
            "body": body,
            "isBase64Encoded": false,
        })
    }

    fn text(r: &ApiGatewayProxyResponse) -> String {
        match &r.body {
            Some(Body::Text(t)) => t.clone(),
            Some(Body::Binary(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        }
    }

    #[tokio::test]
    async fn put_get_list_delete() {
        let store = Memory::default();
        let put = handle(event("PUT", Some("a1"), Some("hello"), "text/plain"), &store).await;
        assert_eq!(put.status_code, 200, "{}", text(&put));
        let get = handle(event("GET", Some("a1"), None, ""), &store).await;
        assert_eq!((get.status_code, text(&get).as_str()), (200, "hello"));
        assert_eq!(get.headers["content-type"], "text/plain");
        assert_eq!(get.headers["access-control-allow-origin"], "*");
        let list = handle(event("GET", None, None, ""), &store).await;
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text(&list)).unwrap(), json!({ "notes": [{ "id": "a1", "size": 5 }] }));
        assert_eq!(handle(event("DELETE", Some("a1"), None, ""), &store).await.status_code, 204);
        assert_eq!(handle(event("DELETE", Some("a1"), None, ""), &store).await.status_code, 404);
        assert_eq!(handle(event("GET", Some("a1"), None, ""), &store).await.status_code, 404);
    }

    #[tokio::test]
    async fn a_scheduled_event_reports_the_count() {
        let store = Memory::default();
        handle(event("PUT", Some("a"), Some("abc"), "text/plain"), &store).await;
        let scheduled = json!({ "version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "resources": ["arn:aws:events:eu-central-1:000000000000:rule/r"], "detail": {} });
        let r = handle(scheduled, &store).await;
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text(&r)).unwrap(), json!({ "notes": 1, "bytes": 3 }));
    }

    #[tokio::test]
    async fn bad_requests_are_4xx_json() {
        let store = Memory::default();
        for (e, status) in [
            (event("GET", Some("../x"), None, ""), 400),
            (event("PUT", Some("a"), None, "text/plain"), 400),
            (event("PUT", Some("a"), Some(&"x".repeat(MAX_NOTE_BYTES + 1)), "text/plain"), 413),
            (event("POST", Some("a"), Some("x"), "text/plain"), 405),
            (json!({ "not": "an event" }), 400),
        ] {
            let r = handle(e, &store).await;
            assert_eq!(r.status_code, status, "{}", text(&r));
            assert!(serde_json::from_str::<serde_json::Value>(&text(&r)).unwrap()["error"]["code"].is_string());
        }
    }
}
