//! kubectl JSONPath templates (`get::jsonpath::Template::parse` + `render`)
//! and relaxed paths (`Path::parse` + `eval`, as `custom-columns` and
//! `--sort-by` read them) on arbitrary text, over a fixed list of requests
//! holding terminal escapes. Properties: no panic; rendering is
//! deterministic; every control character in the output (but line breaks
//! and tabs) was written in the template itself: the data's are inert.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::cli::commands::get::jsonpath::{show, Path, Template};
use serde_json::{json, Value};

fn object() -> &'static Value {
    static O: OnceLock<Value> = OnceLock::new();
    O.get_or_init(|| {
        json!({"kind": "List", "apiVersion": "v1", "items": [
            {"name": "alice-payments-7f3k", "cluster": "prod",
             "metadata": {"name": "a", "annotations": {"kubernetes.io/change-cause": "x\u{1b}[31m", "app.name": "y"}},
             "spec": {"requester": {"user": "alice", "groups": ["dev", "oncall"]},
                      "role": {"kind": "ClusterRole", "name": "edit"},
                      "namespaces": ["payments", "orders"], "duration": "30m",
                      "reason": "stuck\u{1b}]52;c;AAAA\u{7}\r\nnext\u{9b}", "ticket": null},
             "status": {"phase": "Pending", "decision": null, "reviews": []}},
            {"name": "b", "cluster": "staging",
             "metadata": {"name": "b", "labels": {"a/b-c": "d"}},
             "spec": {"namespaces": [], "duration": "1h", "n": 1.5, "big": 18446744073709551615u64, "neg": -3,
                      "nested": [[1, [2, [3]]], {"x": {"y": {"z": true}}}]},
             "status": {"phase": "Active", "decision": {"by": "bob", "verdict": "Approved"}}}
        ]})
    })
}

fn allowed(c: char) -> bool {
    !c.is_control() || matches!(c, '\n' | '\t' | '\r')
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let obj = object();
    if let Ok(t) = Template::parse(text) {
        let out = t.render(obj);
        assert_eq!(out, t.render(obj), "render is not deterministic");
        if let Some(c) = out.chars().find(|c| !allowed(*c) && !text.contains(*c)) {
            panic!("{text:?} rendered {c:?} from the data: {out:?}");
        }
        let _ = t.render(&Value::Null);
        let _ = t.render(&obj["items"]);
    }
    if let Ok(p) = Path::parse(text) {
        for v in p.eval(obj) {
            let shown = show(v);
            assert!(
                shown.chars().all(|c| !c.is_control()),
                "{text:?}: {shown:?}"
            );
        }
        let _ = p.eval(&obj["items"][0]);
    }
});
