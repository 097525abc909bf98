//! UI state, actions and the pure reducer: `update(state, action) -> effects`.
//!
//! The state has one owner (the event loop); it changes only through
//! [`update`]; rendering only reads it. Effects are the IO the reducer asks
//! for (calls to the backend, quitting); their outcomes come back as actions.

pub mod arrivals;
pub mod batch;
pub mod command;
pub mod filter;
pub mod flags;
pub mod forms;
pub mod keymap;
pub mod recent;
pub mod reducer;
pub mod state;
pub mod store;
pub mod trail;
pub mod verdict;
pub mod when;

pub use reducer::{update, Action, Effect, OpKind};
pub use state::{AppState, Mode, View};
