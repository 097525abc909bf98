//! The console's state and what is derived from it without changing it
//! (filters, flags, the verdict, the keymap). One owner (the event loop);
//! it changes only through [`crate::console::update`]; the view only reads.

pub mod app;
pub(crate) mod arrivals;
pub(crate) mod batch;
pub(crate) mod command;
pub mod filter;
pub(crate) mod flags;
pub mod keymap;
pub mod recent;
pub(crate) mod store;
pub(crate) mod trail;
pub(crate) mod verdict;
pub mod when;

pub use app::{AppState, Mode, View};
