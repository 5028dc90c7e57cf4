//! The AWS target: the engine's steps as AWS SDK calls, one module per service
//! (iam, s3, lambda, apigateway, logs), plus what only AWS has: the S3 state backend,
//! discovery by tags and the CloudFormation engine.

pub mod apigateway;
pub mod client;
pub mod cloudformation;
pub mod deploy;
pub mod dispatch;
pub mod discover;
pub mod error;
pub mod events;
pub mod iam;
pub mod lambda;
pub mod logs;
pub mod s3;
pub mod target;

pub use client::Clients;
pub use error::{retrying, AwsError, ErrorKind};
