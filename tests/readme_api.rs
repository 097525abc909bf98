//! Every `curl` example of README's server API table, run as written
//! against `portcullis serve --demo` (in-process): `$URL` is the server,
//! `$T` a demo person's token, and the placeholders `prod` and `NAME` (or
//! the example request name) the demo's cluster and a request the example
//! applies to. Each must answer 2xx. And the table and the served OpenAPI
//! document (`/v1/openapi.json`) name the same calls, both ways.

use std::process::Command;
use std::sync::Arc;

use portcullis::backend::demo::{DemoBackend, DemoConfig};
use portcullis::server::authority::DemoAuthority;
use portcullis::server::Server;
use serde_json::Value;

const README: &str = include_str!("../README.md");

/// The `curl` commands of the API table, with the row's first cell.
fn examples() -> Vec<(String, String)> {
    let section = README
        .split("### API")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("README has an API section");
    section
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("`curl "))
        .map(|l| {
            let what = l
                .trim_start_matches("| ")
                .split(" |")
                .next()
                .unwrap_or_default();
            let start = l.find("`curl ").unwrap() + 1;
            let end = start + l[start..].find('`').unwrap();
            (what.to_string(), l[start..end].to_string())
        })
        .collect()
}

/// The API section's table rows (not the header or the rule).
fn rows() -> Vec<&'static str> {
    let section = README
        .split("### API")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("README has an API section");
    section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| call |"))
        .collect()
}

/// A path as the document spells it: the example's cluster and request
/// name (`prod`, `NAME`, `alice-payments-x7k2q`) become `{cluster}` and
/// `{name}`.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["", "v1", "requests", _, _, ..] => {
            parts[3] = "{cluster}";
            parts[4] = "{name}";
        }
        ["", "v1", "clusters", _, ..] => parts[3] = "{cluster}",
        _ => {}
    }
    parts.join("/")
}

/// Every call the table shows: (method, path) of each `curl … $URL/…`
/// example, and GET for the plain paths of the health row.
fn table_calls() -> std::collections::BTreeSet<(String, String)> {
    let mut calls = std::collections::BTreeSet::new();
    for row in rows() {
        let code: Vec<&str> = row.split('`').skip(1).step_by(2).collect();
        for c in code {
            if let Some(rest) = c.strip_prefix("curl ") {
                let method = if let Some(i) = rest.find("-X ") {
                    rest[i + 3..].split(' ').next().unwrap().to_string()
                } else if rest.contains("-d ") {
                    "POST".to_string()
                } else {
                    "GET".to_string()
                };
                let at = rest.find("$URL").expect("a curl example calls $URL") + 4;
                let path: String = rest[at..]
                    .chars()
                    .take_while(|c| !matches!(c, '"' | ' ' | '?' | '\''))
                    .collect();
                calls.insert((method, normalise(&path)));
            } else if c.starts_with('/') && !c.contains(' ') {
                calls.insert(("GET".to_string(), c.to_string()));
            }
        }
    }
    calls
}

fn document_calls() -> std::collections::BTreeSet<(String, String)> {
    use utoipa::OpenApi;
    let doc: Value = serde_json::from_str(
        &portcullis::server::openapi::ApiDoc::openapi()
            .to_json()
            .unwrap(),
    )
    .unwrap();
    let mut calls = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                calls.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    calls
}

#[test]
fn the_api_table_and_the_openapi_document_agree() {
    let table = table_calls();
    let doc = document_calls();
    assert!(table.len() >= 18, "{table:?}");
    let undocumented: Vec<_> = table.difference(&doc).collect();
    let unlisted: Vec<_> = doc.difference(&table).collect();
    assert!(
        undocumented.is_empty(),
        "README's API table shows calls /v1/openapi.json lacks: {undocumented:?}"
    );
    assert!(
        unlisted.is_empty(),
        "/v1/openapi.json has calls README's API table lacks: {unlisted:?}"
    );
}

#[test]
fn the_table_parser_reads_what_it_should() {
    assert_eq!(
        normalise("/v1/requests/prod/alice-payments-x7k2q"),
        "/v1/requests/{cluster}/{name}"
    );
    assert_eq!(
        normalise("/v1/requests/prod/NAME/approve"),
        "/v1/requests/{cluster}/{name}/approve"
    );
    assert_eq!(
        normalise("/v1/clusters/prod/inventory"),
        "/v1/clusters/{cluster}/inventory"
    );
    let calls = table_calls();
    for call in [
        ("POST", "/v1/requests"),
        ("GET", "/v1/requests"),
        ("POST", "/v1/requests/{cluster}/{name}/withdraw"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
        ("GET", "/v1/openapi.json"),
    ] {
        assert!(
            calls.contains(&(call.0.to_string(), call.1.to_string())),
            "{call:?} in {calls:?}"
        );
    }
}

fn sh(command: &str, url: &str, token: &str) -> (u16, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{command} -s -m 2 -w '\\n%{{http_code}}'"))
        .env("URL", url)
        .env("T", token)
        .output()
        .expect("sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_example_in_the_readme_works() {
    let world = Arc::new(DemoBackend::live(DemoConfig {
        seed: 7,
        rate: std::time::Duration::ZERO,
        ..Default::default()
    }));
    let authority = DemoAuthority::new(world);
    let access = authority.access().clone();
    let server = Server::builder(Arc::new(authority), access).start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, server.router()).await });

    let examples = examples();
    assert!(examples.len() >= 12, "{examples:?}");
    let cluster = "staging-eu-west";
    let mut name = String::new();
    let fresh = |url: &str| -> String {
        // A pending request of alice's for payments, 30m (what the
        // approve, deny and withdraw examples act on).
        let (code, body) = sh(
            &format!(
                r#"curl -H "Authorization: Bearer $T" -d '{{"cluster":"{cluster}","role":{{"kind":"ClusterRole","name":"edit"}},"namespaces":["payments"],"duration":"30m","reason":"readme"}}' $URL/v1/requests"#
            ),
            url,
            "alice",
        );
        assert_eq!(code, 201, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (what, example) in &examples {
        // The request each example acts on, in the state it needs.
        let token = if what.starts_with("ask")
            || what.starts_with("withdraw")
            || what.starts_with("release")
        {
            "alice"
        } else {
            "dana"
        };
        if what.starts_with("deny")
            || what.starts_with("withdraw")
            || what.starts_with("approve")
            || name.is_empty()
        {
            name = fresh(&url);
        }
        // What a decision names: the uid and seen of the request as read.
        let read = |url: &str, name: &str| -> (String, String) {
            let (code, body) = sh(
                &format!(r#"curl -H "Authorization: Bearer $T" $URL/v1/requests/{cluster}/{name}"#),
                url,
                "dana",
            );
            assert_eq!(code, 200, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            (
                v["uid"].as_str().unwrap().to_string(),
                v["seen"].as_str().unwrap().to_string(),
            )
        };
        if what.starts_with("shorten") || what.starts_with("revoke") || what.starts_with("release")
        {
            name = fresh(&url);
            let (uid, seen) = read(&url, &name);
            let (code, body) = sh(
                &format!(
                    r#"curl -H "Authorization: Bearer $T" -d '{{"uid":"{uid}","seen":"{seen}"}}' $URL/v1/requests/{cluster}/{name}/approve"#
                ),
                &url,
                "dana",
            );
            assert_eq!(code, 200, "{body}");
        }
        let (uid, seen) = read(&url, &name);
        let command = example
            .replace("/prod/", &format!("/{cluster}/"))
            .replace("cluster=prod", &format!("cluster={cluster}"))
            .replace(
                "\"cluster\":\"prod\"",
                &format!("\"cluster\":\"{cluster}\""),
            )
            .replace("/clusters/prod/", &format!("/clusters/{cluster}/"))
            .replace("alice-payments-x7k2q", &name)
            .replace("NAME", &name)
            .replace("UID", &uid)
            .replace("SEEN", &seen);
        let (code, body) = sh(&command, &url, token);
        if what.starts_with("credentials") {
            // The demo has no cluster to mint on: said plainly. The same
            // example runs verbatim against a real control plane in
            // tests/cluster_server_tokens.rs.
            assert_eq!(code, 422, "{body}");
            assert!(body.contains("no cluster to mint a token on"), "{body}");
            continue;
        }
        // The live stream is cut by curl's timeout (28) after data arrived.
        let ok = (200..300).contains(&code)
            || (what.starts_with("live") && body.contains("event: snapshot"));
        assert!(
            ok,
            "README example `{what}` answered {code}: {command}\n{body}"
        );
    }
}
