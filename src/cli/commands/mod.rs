//! One module per command (`portcullis COMMAND`); the request verbs
//! (`request`, `approve`, `deny`, `shorten`, `revoke`, `withdraw`,
//! `release`, `login`) each have theirs, and share [`verbs`].

pub(crate) mod approve;
pub mod audit;
pub(crate) mod completions;
pub(crate) mod console;
pub(crate) mod crds;
pub(crate) mod deny;
pub(crate) mod diff;
pub mod get;
pub(crate) mod login;
pub(crate) mod man;
pub(crate) mod policy;
pub(crate) mod reaper;
pub(crate) mod release;
pub(crate) mod request;
pub(crate) mod revoke;
pub(crate) mod serve;
pub(crate) mod shorten;
pub(crate) mod verbs;
pub(crate) mod version;
pub(crate) mod withdraw;
