//! stackctl: infrastructure as code that also builds and ships the handlers.
//!
//! Pipeline: stack file → [`stack`] (parse, validate, typed model) → [`build`]
//! (reproducible zips) → plan → apply against a target.

pub mod aws;
pub mod build;
pub mod cloud;
pub mod cli;
pub mod commands;
pub mod diag;
pub mod localcmd;
pub mod engine;
pub mod faultproxy;
pub mod local;
pub mod naming;
pub mod stack;
