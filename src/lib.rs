//! Portcullis: a terminal console for just-in-time Kubernetes access.
//!
//! Layout: [`domain`] is the pure model and RBAC engine; [`backend`] holds the
//! one trait every source of requests implements (the embedded demo, direct
//! on clusters, the Portcullis server over HTTP); [`server`] is `portcullis
//! serve` and [`api`] the HTTP API both sides speak; [`app`] is the UI state,
//! its actions and the pure reducer; [`ui`] only renders state; [`cli`] and
//! [`verbs`] are the edges.

pub mod api;
pub mod app;
pub mod audit;
pub mod backend;
pub mod cli;
pub mod config;
pub mod diff_verb;
pub mod domain;
pub mod get;
pub mod invocation;
pub mod naming;
pub mod policy;
pub mod runtime;
pub mod server;
pub mod ui;
pub mod verbs;
pub mod version;
pub mod wait;
