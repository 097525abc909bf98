//! Portcullis: a terminal console for just-in-time Kubernetes access.
//!
//! Layout: [`domain`] is the pure model and RBAC engine; [`backend`] holds the
//! one trait every source of requests implements (the embedded demo now, the
//! cluster and broker later); [`app`] is the UI state, its actions and the pure
//! reducer; [`ui`] only renders state; [`cli`] and [`terminal`] are the edges.

pub mod app;
pub mod backend;
pub mod cli;
pub mod config;
pub mod domain;
pub mod runtime;
pub mod ui;
pub mod verbs;
