//! The embedded local cloud (issue #5). Built so far: the mapping-template
//! evaluator that the local API Gateway runs for non-proxy integrations, and the
//! gateway semantics themselves (routing, proxy events, responses, CORS).

pub mod gateway;
pub mod invoke_api;
pub mod lambda;
pub mod s3;
pub mod vtl;
