//! The embedded local cloud (issue #5). Built so far: the mapping-template
//! evaluator that the local API Gateway runs for non-proxy integrations.

pub mod vtl;
