//! The audit trail: every access event, append-only, hash-chained, with a
//! signed head; read by `portcullis audit show`, checked by `portcullis
//! audit verify`, shown in the console.
//!
//! [`record`] is one event, [`derive`] turns request changes into events
//! (pure, shared by the server, the reaper and the console), [`chain`]
//! seals and verifies (pure), [`log`] is the file writer, [`query`] the
//! filters and table of `audit show` and `:audit`.

pub mod chain;
pub mod derive;
pub mod files;
pub mod log;
pub mod query;
pub(crate) mod record;

pub use chain::Sealed;
pub use record::{Actor, Event, Kind, Outcome};
