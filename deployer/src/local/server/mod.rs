//! The local cloud's server: one per deployed stack and stage, serving what the
//! local engine wrote under `.stackctl/local/{stack}/{stage}/`:
//!
//! - the REST API on `127.0.0.1:{port}/{stage}/...` (routing, proxy and
//!   non-proxy integrations with mapping templates, CORS, API Gateway's errors);
//! - one services endpoint for the functions' SDK clients (`AWS_ENDPOINT_URL`):
//!   the Lambda Invoke API and S3, both checking the caller's role policy;
//! - the functions, as native processes behind the Runtime API;
//! - the buckets' lifecycle rules, applied every minute.
//!
//! `stackctl deploy --target local` starts it in the background (its own process
//! group, log in `server.log`), health-checks it, and asks it to reload after each
//! change; `destroy` stops it; `stackctl serve` runs it in the foreground.

pub mod http;
pub mod lifecycle;
pub mod process;
pub mod schedule;
pub mod world;

pub use http::start;
pub use process::{control, ensure, log_path, record_foreground, run_background, running, stop};
pub use world::Server;
