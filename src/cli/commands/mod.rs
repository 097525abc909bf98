//! One module per command (`portcullis COMMAND`); the request verbs
//! (`request`, `approve`, `deny`, `shorten`, `revoke`, `withdraw`,
//! `release`, `login`) share [`verbs`].

pub(crate) mod audit;
pub(crate) mod completions;
pub(crate) mod console;
pub(crate) mod crds;
pub(crate) mod diff;
pub mod get;
pub(crate) mod man;
pub(crate) mod policy;
pub(crate) mod reaper;
pub(crate) mod serve;
pub(crate) mod verbs;
pub(crate) mod version;
