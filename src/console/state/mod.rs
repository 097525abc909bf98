//! The console's state and what is derived from it without changing it
//! (filters, flags, the verdict, the keymap). One owner (the event loop);
//! it changes only through [`crate::console::update`]; the view only reads.

pub mod app;
pub mod arrivals;
pub mod batch;
pub mod command;
pub mod filter;
pub mod flags;
pub mod keymap;
pub mod recent;
pub mod store;
pub mod trail;
pub mod verdict;
pub mod when;

pub use app::{AppState, Mode, View};
