//! How a request is named: by its cluster (kubeconfig context) and object name.

use super::AccessRequest;

/// A request is named by its cluster (kubeconfig context) and object name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestKey {
    pub cluster: String,
    pub name: String,
}

impl RequestKey {
    pub fn of(req: &AccessRequest) -> Self {
        Self {
            cluster: req.cluster.clone(),
            name: req.name.clone(),
        }
    }
}

impl std::fmt::Display for RequestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.cluster, self.name)
    }
}
