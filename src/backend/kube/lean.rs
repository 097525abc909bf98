//! What a watch keeps of an object: only what Portcullis reads.
//!
//! The apiserver sends every object with its `managedFields` (who wrote
//! which field, often the largest part of a small object) and, when kubectl
//! applied it, a copy of the whole object in an annotation. Nothing here
//! reads either, and with thousands of requests and bindings held by the
//! console, its reaper and the server they were most of the memory; so
//! every watch drops them as objects arrive, before anything stores them.

use kube::Resource;

/// kubectl's copy of the object it last applied.
pub(crate) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what nothing reads from an object as it arrives from a watch.
pub(crate) fn lean<K: Resource>(o: &mut K) {
    let meta = o.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::DynamicObject;
    use serde_json::json;

    #[test]
    fn a_watched_object_keeps_what_is_read_and_loses_the_write_history() {
        let mut o: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
            "metadata": {"name": "r", "uid": "u", "resourceVersion": "7",
                "labels": {"team": "payments"},
                "annotations": {LAST_APPLIED: "{\"a\":1}", "portcullis.dev/request-uid": "x"},
                "finalizers": ["portcullis.dev/grant"],
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"reason": "INC-1"}, "status": {"phase": "Active"}
        }))
        .unwrap();
        lean(&mut o);
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["metadata"].get("managedFields"), None);
        assert_eq!(
            v["metadata"]["annotations"],
            json!({"portcullis.dev/request-uid": "x"})
        );
        for kept in ["name", "uid", "resourceVersion", "labels", "finalizers"] {
            assert!(v["metadata"].get(kept).is_some(), "{kept} is kept");
        }
        assert_eq!(v["spec"]["reason"], "INC-1");
        assert_eq!(v["status"]["phase"], "Active");

        // Nothing else to drop: the annotations go when only kubectl's was there.
        let mut only: DynamicObject = serde_json::from_value(json!({
            "metadata": {"name": "b", "annotations": {LAST_APPLIED: "{}"}}
        }))
        .unwrap();
        lean(&mut only);
        assert_eq!(only.metadata.annotations, None);
    }
}
