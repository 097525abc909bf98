//! The AccessRequest wire parser (`backend::kube::wire::request_from_json`)
//! on arbitrary JSON, then what readers do with the request: validate it,
//! write its status and API shape. Properties: never a panic; one pass
//! through the API shape normalises a request (its `request_json` read back
//! and written again is the same JSON); a status written and read back
//! writes the same status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::api;
use portcullis::crd::wire;
use serde_json::Value;

fn without_invalid(mut v: Value) -> Value {
    // Why a request is invalid names the defects of the text it came from.
    if let Some(m) = v.as_object_mut() {
        m.remove("invalid");
    }
    v
}

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let r = wire::request_from_json("prod", &obj);
    let _ = r.validate(&Default::default());
    let _ = r.phase().is_terminal();

    // The API shape, read back, is a fixed point.
    let first = api::request_json(&r);
    let again = api::request_from_json(&first);
    let second = api::request_json(&again);
    assert_eq!(
        without_invalid(first.clone()),
        without_invalid(second.clone()),
        "request_json is not stable through request_from_json"
    );
    // A status written onto the object reads back to the same status.
    let mut stored = obj.clone();
    if let Some(m) = stored.as_object_mut() {
        let status = wire::status_json(&r);
        m.insert("status".into(), status.clone());
        let back = wire::request_from_json("prod", &stored);
        assert_eq!(
            wire::status_json(&back),
            status,
            "status_json does not round-trip"
        );
    }
});
