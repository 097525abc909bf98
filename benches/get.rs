//! `portcullis get` benchmarks (a bench binary, not timed tests): `cargo
//! bench --bench get`. 10,000 requests over three clusters, sorted and
//! printed in each format (table with the CLUSTER column, `-o name`,
//! `-o jsonpath` with a range, `-o custom-columns`, `--sort-by
//! .spec.duration`); median and max over several runs.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use portcullis::backend::demo::org::{CLUSTERS, PEOPLE};
use portcullis::cli::args::GetWhat;
use portcullis::cli::commands::get::jsonpath::Path;
use portcullis::cli::commands::get::{render, sorted, Output, Query};
use portcullis::domain::request::Status;
use portcullis::domain::{AccessRequest, Credentials, RoleRef};

fn request(i: usize, now: DateTime<Utc>) -> AccessRequest {
    let p = &PEOPLE[1 + i % (PEOPLE.len() - 1)];
    let ns = p.home[i % p.home.len()];
    AccessRequest {
        name: format!("{}-{ns}-{i:06}", p.user),
        uid: None,
        cluster: CLUSTERS[i % CLUSTERS.len()].to_string(),
        created_at: now - TimeDelta::seconds((i % 7200) as i64),
        requester: p.subject(),
        role: RoleRef::cluster_role(["edit", "view", "admin"][i % 3]),
        namespaces: vec![ns.to_string()],
        duration: Duration::from_secs(60 * (15 + (i % 8) as u64 * 15)),
        reason: format!("INC-{i}: load test request number {i} with a realistic reason length"),
        ticket: Some(format!("INC-{i}")),
        credentials: Credentials::Identity,
        extends: None,
        status: Status::default(),
        malformed: None,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let runs = if quick { 1 } else { 15 };
    let now = DateTime::from_timestamp(1_795_662_000, 0).expect("time");
    let count = if quick { 1_000 } else { 10_000 };
    let items: Vec<AccessRequest> = (0..count).map(|i| request(i, now)).collect();
    let view: Vec<String> = CLUSTERS.iter().map(|c| c.to_string()).collect();
    let cases: [(&str, &str, Option<&str>); 5] = [
        ("table (CLUSTER column)", "table", None),
        ("-o name", "name", None),
        (
            "-o jsonpath (range)",
            r#"jsonpath={range .items[*]}{.cluster}/{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}"#,
            None,
        ),
        (
            "-o custom-columns (3)",
            "custom-columns=NAME:.metadata.name,ROLE:.spec.role.name,NS:.spec.namespaces",
            None,
        ),
        (
            "table --sort-by .spec.duration",
            "table",
            Some(".spec.duration"),
        ),
    ];
    println!("get over {count} requests in 3 clusters ({runs} runs each):");
    for (label, output, sort_by) in cases {
        let q = Query {
            what: GetWhat::Requests,
            names: Vec::new(),
            all: true,
            output: Output::parse(output).expect("format"),
            sort_by: sort_by.map(|p| Path::parse(p).expect("path")),
            no_headers: false,
            view: view.clone(),
        };
        let mut times = Vec::with_capacity(runs);
        let mut bytes = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let rows = sorted(items.clone(), q.sort_by.as_ref()).expect("sorted");
            let listing = render(&q, &rows, now);
            times.push(t.elapsed());
            bytes = listing.stdout.len();
        }
        times.sort();
        println!(
            "  {label:<34} median {}  max {}  ({} KiB printed)",
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
            bytes / 1024
        );
    }
}
