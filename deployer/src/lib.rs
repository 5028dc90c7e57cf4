//! stackctl: infrastructure as code that also builds and ships the handlers.
//!
//! Pipeline: stack file → [`stack`] (parse, validate, typed model) → [`build`]
//! (reproducible zips) → [`engine`] (desired graph, plan, one run for every
//! target) on a [`engine::Target`]: [`aws`] or [`local`]. [`commands`] holds one
//! module per command; see ARCHITECTURE.md for what may import what.

pub mod aws;
pub mod build;
pub mod cli;
pub mod commands;
pub mod diag;
pub mod digest;
pub mod engine;
pub mod local;
pub mod naming;
pub mod progress;
pub mod stack;
pub mod vtl;
