//! The deployment engine: desired resource graph → plan against recorded state
//! → execution on a target. This module holds the pure parts (graph, planner,
//! state format); nothing here touches the network.

pub mod apply;
pub mod cfn;
pub mod cfn_deploy;
pub mod deploy;
pub mod desired;
pub mod discover;
pub mod lock;
pub mod plan;
pub mod state;
