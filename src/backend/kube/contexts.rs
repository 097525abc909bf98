//! Which kubeconfig contexts direct mode connects, and what the console
//! calls each cluster.
//!
//! Contexts are how kubeconfig spells "this cluster as this user", so one
//! cluster often has several (an admin and a user context, a renamed
//! copy). Requests live in the cluster, so two contexts of one cluster
//! would show each request twice: with `--all-contexts`, one context per
//! cluster is connected — the current context if it is one of them, else
//! the first in the kubeconfig. Two contexts are one cluster when their
//! kubeconfig cluster entries name the same server URL (or, without a
//! URL, are the same entry). Contexts named one by one (`--context A
//! --context B`) are all connected, as asked: that is how one looks at a
//! cluster as two identities.
//!
//! The console shows a cluster by its display name: the config's
//! `[cluster_names]` entry for the context or for the kubeconfig cluster,
//! else the kubeconfig cluster's name. The context stays what `--context`,
//! `:ctx` and `CONTEXT/NAME` take.

use std::collections::BTreeMap;

/// One kubeconfig context, as far as this choice needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContextEntry {
    pub context: String,
    /// The kubeconfig cluster entry it names.
    pub cluster: String,
    /// That entry's server URL.
    pub server: Option<String>,
}

/// What to connect, and what to call it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Picked {
    /// The contexts to connect, in the order asked.
    pub connect: Vec<String>,
    /// Contexts not connected: (context, the context kept for its cluster).
    pub same_cluster: Vec<(String, String)>,
    /// Each connected context's display name (only where it differs).
    pub names: BTreeMap<String, String>,
}

/// Picks from `asked` (one context per cluster when `one_per_cluster`);
/// `configured`: display names by context or kubeconfig cluster name. A
/// context not in `entries` is kept as is (connecting it says what is
/// wrong).
pub(crate) fn pick(
    entries: &[ContextEntry],
    asked: &[String],
    current: Option<&str>,
    configured: &BTreeMap<String, String>,
    one_per_cluster: bool,
) -> Picked {
    let entry = |c: &str| entries.iter().find(|e| e.context == c);
    let identity = |e: &ContextEntry| {
        e.server
            .as_deref()
            .map(|s| s.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("cluster:{}", e.cluster))
    };
    // The context each cluster keeps: the current one if asked, else the first.
    let mut kept: BTreeMap<String, String> = BTreeMap::new();
    for c in asked {
        if let Some(e) = entry(c) {
            let slot = kept.entry(identity(e)).or_insert_with(|| c.clone());
            if Some(c.as_str()) == current {
                *slot = c.clone();
            }
        }
    }
    let mut picked = Picked::default();
    for c in asked {
        if picked.connect.contains(c) {
            continue;
        }
        let Some(e) = entry(c) else {
            picked.connect.push(c.clone());
            continue;
        };
        let keeper = &kept[&identity(e)];
        if one_per_cluster && keeper != c {
            picked.same_cluster.push((c.clone(), keeper.clone()));
            continue;
        }
        picked.connect.push(c.clone());
        let name = configured
            .get(c)
            .or_else(|| configured.get(&e.cluster))
            .cloned()
            .unwrap_or_else(|| e.cluster.clone());
        if !name.is_empty() && name != *c {
            picked.names.insert(c.clone(), name);
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(context: &str, cluster: &str, server: Option<&str>) -> ContextEntry {
        ContextEntry {
            context: context.into(),
            cluster: cluster.into(),
            server: server.map(String::from),
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn two_contexts_of_one_cluster_connect_once_keeping_the_current() {
        let entries = [
            e(
                "admin@prod",
                "gke_acme_europe-west1_prod",
                Some("https://10.0.0.1"),
            ),
            e(
                "oncall@prod",
                "gke_acme_europe-west1_prod",
                Some("https://10.0.0.1"),
            ),
            e("staging", "staging", Some("https://10.0.0.2")),
            // Another entry, the same server (a trailing slash apart).
            e("prod-copy", "prod-copy", Some("https://10.0.0.1/")),
        ];
        let all = s(&["admin@prod", "oncall@prod", "staging", "prod-copy"]);
        let p = pick(&entries, &all, Some("oncall@prod"), &BTreeMap::new(), true);
        assert_eq!(p.connect, s(&["oncall@prod", "staging"]));
        assert_eq!(
            p.same_cluster,
            vec![
                ("admin@prod".to_string(), "oncall@prod".to_string()),
                ("prod-copy".to_string(), "oncall@prod".to_string())
            ]
        );
        // Without the current among them: the first asked.
        let p = pick(&entries, &all, Some("elsewhere"), &BTreeMap::new(), true);
        assert_eq!(p.connect, s(&["admin@prod", "staging"]));
        // Named one by one: every one, as asked.
        let p = pick(&entries, &all, Some("elsewhere"), &BTreeMap::new(), false);
        assert_eq!(p.connect, all);
        assert!(p.same_cluster.is_empty());
    }

    #[test]
    fn display_names_configured_by_context_or_cluster_else_the_kubeconfig_cluster() {
        let entries = [
            e(
                "admin@prod",
                "gke_acme_europe-west1_prod",
                Some("https://a"),
            ),
            e("staging", "staging", Some("https://b")),
            e("dev", "kind-dev", Some("https://c")),
        ];
        let configured = BTreeMap::from([
            (
                "gke_acme_europe-west1_prod".to_string(),
                "prod-eu".to_string(),
            ),
            ("dev".to_string(), "dev (laptop)".to_string()),
        ]);
        let p = pick(
            &entries,
            &s(&["admin@prod", "staging", "dev", "missing"]),
            None,
            &configured,
            true,
        );
        assert_eq!(p.connect, s(&["admin@prod", "staging", "dev", "missing"]));
        assert_eq!(
            p.names,
            BTreeMap::from([
                ("admin@prod".to_string(), "prod-eu".to_string()),
                ("dev".to_string(), "dev (laptop)".to_string()),
            ])
        );
    }

    #[test]
    fn without_a_server_url_the_same_entry_is_the_same_cluster() {
        let entries = [
            e("a", "one", None),
            e("b", "one", None),
            e("c", "two", None),
        ];
        let p = pick(&entries, &s(&["a", "b", "c"]), None, &BTreeMap::new(), true);
        assert_eq!(p.connect, s(&["a", "c"]));
        assert_eq!(p.names.get("a").map(String::as_str), Some("one"));
    }
}
