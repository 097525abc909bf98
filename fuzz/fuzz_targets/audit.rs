//! Audit lines and `audit verify` on arbitrary bytes as a log file (and,
//! after a `\n#head\n` line, its signed head file): `audit::files::verify`
//! as the command runs it, `chain::verify` from every start, `files::read`
//! and the `audit show` table. Properties: no panic; a chain intact from
//! genesis is intact from anywhere with the same result; without a head,
//! the file check agrees with the chain check; every record the reader
//! accepts, sealed again into a fresh chain and written, verifies.
//!
//! The first byte is a mode: with bit 1 the target first writes each line
//! that is a JSON object as its canonical encoding with its hash set (and
//! with bit 2 its `prev` set to the line before's hash), so the checks
//! past the hash (sequence, links, rotation) are reached: a fuzzer cannot
//! guess SHA-256.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::audit::{chain, files, log, query, Sealed};
use serde_json::Value;

fn paths() -> &'static (PathBuf, PathBuf) {
    static P: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    P.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("portcullis-fuzz-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let file = dir.join("audit.jsonl");
        let head = log::head_path(&file);
        (file, head)
    })
}

/// Lines made to pass the hash check (and, with `link`, the prev check).
fn rehash(log: &[u8], link: bool) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(log) else {
        return log.to_vec();
    };
    let mut prev = chain::GENESIS.to_string();
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(mut m)) => {
                if link {
                    m.insert("prev".into(), Value::String(prev.clone()));
                }
                let mut v = Value::Object(m);
                let hash = chain::hash_of(&v);
                v["hash"] = Value::String(hash.clone());
                prev = hash;
                out.push_str(&chain::canonical(&v));
            }
            _ => out.push_str(body),
        }
        out.push_str(nl);
    }
    out.into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let sep = b"\n#head\n";
    let (log_bytes, head_bytes) = match data.windows(sep.len()).position(|w| w == sep) {
        Some(i) => (&data[..i + 1], Some(&data[i + sep.len()..])),
        None => (data, None),
    };
    let fixed;
    let log_bytes = if mode & 1 == 1 {
        fixed = rehash(log_bytes, mode & 2 == 2);
        &fixed[..]
    } else {
        log_bytes
    };
    let (file, head) = paths();
    if let Some(dir) = file.parent() {
        // Another run's clean-up may have taken it.
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(file, log_bytes).expect("write the log");
    match head_bytes {
        Some(h) => std::fs::write(head, h).expect("write the head"),
        None => {
            let _ = std::fs::remove_file(head);
        }
    }
    let whole = files::verify(std::slice::from_ref(file), None);
    let pinned = chain::parse_public("O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=").ok();
    let _ = files::verify(std::slice::from_ref(file), pinned.as_ref());
    if let Ok(records) = files::read(std::slice::from_ref(file)) {
        let _ = portcullis::cli::commands::audit::table(&records);
        for r in &records {
            let _ = query::describe(&r.event);
        }
    }

    let Ok(text) = std::str::from_utf8(log_bytes) else {
        assert!(whole.is_err(), "a log that is not UTF-8 verified");
        return;
    };
    let genesis = chain::verify([("audit.jsonl", text)], chain::Start::Genesis);
    let anywhere = chain::verify([("audit.jsonl", text)], chain::Start::Anywhere);
    if let Ok(g) = &genesis {
        assert_eq!(
            anywhere.as_ref().ok(),
            Some(g),
            "intact from genesis, not from anywhere"
        );
        let after = chain::verify(
            [("audit.jsonl", text)],
            chain::Start::After(g.last_seq, g.last_hash.clone()),
        );
        if g.records > 0 {
            assert!(
                after.is_err(),
                "the chain verified after its own last record"
            );
        }
    }
    if head_bytes.is_none() {
        assert_eq!(
            whole.is_ok(),
            genesis.is_ok(),
            "files::verify and chain::verify disagree: {whole:?} vs {genesis:?}"
        );
    }

    // Whatever the reader accepts seals into a chain that verifies.
    let events: Vec<Sealed> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Sealed>(l).ok())
        .collect();
    let mut out = String::new();
    let (mut seq, mut hash) = (0, chain::GENESIS.to_string());
    for s in &events {
        let sealed = chain::seal(s.event.clone(), seq, &hash);
        out.push_str(&chain::line(&sealed));
        out.push('\n');
        seq = sealed.seq;
        hash = sealed.hash.clone();
    }
    match chain::verify([("resealed", out.as_str())], chain::Start::Genesis) {
        Ok(i) => {
            assert_eq!(i.records, events.len() as u64);
            assert_eq!(i.last_hash, hash);
        }
        Err(e) => panic!("a re-sealed chain does not verify: {e}\n{out}"),
    }
});
