//! One module per command.

pub mod diff;
pub mod get;
pub mod verbs;
