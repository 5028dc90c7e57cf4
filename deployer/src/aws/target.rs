//! `AwsTarget`: AWS as a target of the engine, for one set of clients (one
//! region). Its `Target` implementation is in `dispatch`, its steps in one
//! module per service.

use std::path::PathBuf;

use super::client::Clients;
use crate::engine::run::Run;

/// Concurrent API Gateway steps: its control plane allows only a few requests
/// per second per account (retries handle the rest).
const APIGATEWAY_CONCURRENCY: usize = 3;

pub struct AwsTarget {
    pub clients: Clients,
    /// The project directory (`.stackctl/state/` lives under it).
    pub project: PathBuf,
    pub(super) apigateway_slots: tokio::sync::Semaphore,
    /// Request validator ids by (API id, validator name): methods share an
    /// API's validators, and one lock keeps two methods from creating the same.
    pub(super) validators: tokio::sync::Mutex<std::collections::BTreeMap<(String, String), String>>,
}

use crate::naming::tags;

impl AwsTarget {
    pub fn new(clients: Clients, project: impl Into<PathBuf>) -> AwsTarget {
        AwsTarget {
            clients,
            project: project.into(),
            apigateway_slots: tokio::sync::Semaphore::new(APIGATEWAY_CONCURRENCY),
            validators: Default::default(),
        }
    }

    pub(super) fn tags(&self, run: &Run<'_>) -> Vec<(String, String)> {
        tags(&run.desired.stack, &run.ctx.stage)
    }
}
