//! The command line: its flags ([`args`]), the config file, one file per
//! command under [`commands`], and what they share (request references,
//! waiting for a decision, how the binary was invoked).

pub mod args;
pub mod commands;
pub mod config;
pub mod invocation;
pub mod reference;
pub mod wait;
