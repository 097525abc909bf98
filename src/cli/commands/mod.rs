//! One module per command (`portcullis COMMAND`); the request verbs
//! (`request`, `approve`, `deny`, `shorten`, `revoke`, `withdraw`,
//! `release`, `login`) share [`verbs`].

pub mod audit;
pub mod completions;
pub mod console;
pub mod crds;
pub mod diff;
pub mod get;
pub mod man;
pub mod policy;
pub mod reaper;
pub mod serve;
pub mod verbs;
pub mod version;
