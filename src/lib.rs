//! Portcullis: a terminal console for just-in-time Kubernetes access.
//!
//! The folders are the layers, lowest first; a module only uses the ones
//! below it (`tests/layers.rs` keeps it so):
//!
//! - [`domain`]: the pure model: requests, phases, RBAC engine, risk.
//! - [`policy`], [`audit`]: Rego decisions; the hash-chained trail.
//! - [`crd`], [`api`], [`version`]: the shapes on the wire (the
//!   AccessRequest resource; the server's HTTP API).
//! - [`backend`]: the one trait every source of requests implements, and
//!   its three implementations (demo, `kube` direct, `http` to the server);
//!   the reaper, which ends grants at expiry, is part of `kube`.
//! - [`server`]: `portcullis serve`.
//! - [`console`]: the terminal UI: state, update (the reducer), view.
//! - [`cli`]: the command line, one file per command.

pub mod api;
pub mod audit;
pub mod backend;
pub mod cli;
pub mod console;
pub mod crd;
pub mod domain;
pub mod policy;
pub mod server;
pub mod version;
