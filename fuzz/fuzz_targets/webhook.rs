//! The admission webhook on an arbitrary AdmissionReview (JSON): the
//! review read as `server::webhook::validate` reads it, then `decide` and
//! `policy_rules` under a few policy decisions. (The `server` target sends
//! reviews through the real `/validate` handler too.) Properties: no
//! panic; the privileged identities always pass; a spec never changes; a
//! refusing policy refuses every create.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use portcullis::policy::Decision;
use portcullis::server::webhook::{decide, policy_rules, Review, Webhook};
use serde_json::Value;

const PRIVILEGED: &str = "system:serviceaccount:portcullis:portcullis";

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let r = Review::from_admission(&v);
    let now = chrono::DateTime::from_timestamp(1_795_662_300, 0).unwrap(); // 2026-11-26T03:05:00Z
    let hook = Webhook {
        privileged: vec![PRIVILEGED.into()],
    };
    let verdict = decide(&hook, &r, now);
    if r.user == PRIVILEGED {
        assert_eq!(verdict, Ok(()), "a privileged write refused");
    }
    if r.operation == "UPDATE" && r.subresource.is_empty() && r.user != PRIVILEGED {
        let spec = |o: &Option<Value>| o.as_ref().and_then(|o| o.get("spec")).cloned();
        if spec(&r.object) != spec(&r.old) {
            assert!(verdict.is_err(), "a spec change let through");
        }
    }

    let refusing = Decision {
        deny: vec!["no".into()],
        ..Default::default()
    };
    let strict = Decision {
        max_duration: Some(Duration::from_secs(3600)),
        approvals_required: 2,
        ..Default::default()
    };
    let old = r
        .old
        .as_ref()
        .map(|o| portcullis::crd::wire::request_from_json("prod", o));
    for decision in [&Decision::default(), &refusing, &strict] {
        for live in [None, Some(None), Some(old.as_ref())] {
            let ruled = policy_rules(decision, &r, "prod", live);
            if std::ptr::eq(decision, &refusing)
                && r.operation == "CREATE"
                && r.subresource.is_empty()
            {
                assert!(ruled.is_err(), "a create let through a refusing policy");
            }
        }
    }
});
