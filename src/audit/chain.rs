//! The hash chain and its signed head. Pure: bytes in, verdicts out.
//!
//! A record is its event plus `seq` (1, 2, … across files: rotation
//! continues it), `prev` (the previous record's hash; 64 zeros for the
//! first record ever) and `hash` = SHA-256 over the canonical encoding of
//! the record without `hash` (JSON, object keys sorted, no whitespace).
//! Editing a record breaks its hash; deleting or reordering breaks `seq`
//! and `prev`; truncating the tail is caught by the signed head: an
//! ed25519 signature over (`seq`, `hash`, `signedAt`) of the last record,
//! written beside the log (`FILE.head`) every few seconds, on rotation and
//! at shutdown, and printed to stdout for log shippers (an off-box copy an
//! attacker on the box cannot take back).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::record::Event;

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sealed {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    #[serde(flatten)]
    pub event: Event,
}

/// JSON with object keys sorted and no whitespace, whatever serde_json's
/// map order is (a feature elsewhere in the tree could change it).
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hash a record must carry: over everything but `hash` itself.
pub fn hash_of(record: &Value) -> String {
    let mut without = record.clone();
    if let Some(map) = without.as_object_mut() {
        map.remove("hash");
    }
    sha256_hex(canonical(&without).as_bytes())
}

/// Seals `event` after the record (`seq`, `hash`) before it.
pub fn seal(event: Event, prev_seq: u64, prev_hash: &str) -> Sealed {
    let mut sealed = Sealed {
        seq: prev_seq + 1,
        prev: prev_hash.to_string(),
        hash: String::new(),
        event,
    };
    let value = serde_json::to_value(&sealed).unwrap_or(Value::Null);
    sealed.hash = hash_of(&value);
    sealed
}

/// The line a sealed record is written as.
pub fn line(sealed: &Sealed) -> String {
    canonical(&serde_json::to_value(sealed).unwrap_or(Value::Null))
}

/// The signed head: the chain's last record as the key holder saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    pub seq: u64,
    pub hash: String,
    pub signed_at: DateTime<Utc>,
    /// The public key (base64), so a reader knows which key to pin.
    pub key: String,
    pub signature: String,
}

fn head_message(seq: u64, hash: &str, at: DateTime<Utc>) -> String {
    format!(
        "portcullis-audit-head/v1 {seq} {hash} {}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    )
}

pub fn sign_head(key: &SigningKey, seq: u64, hash: &str, at: DateTime<Utc>) -> Head {
    let sig = key.sign(head_message(seq, hash, at).as_bytes());
    Head {
        seq,
        hash: hash.to_string(),
        signed_at: at,
        key: B64.encode(key.verifying_key().as_bytes()),
        signature: B64.encode(sig.to_bytes()),
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a base64 ed25519 key of 32 bytes")]
    Malformed,
}

pub fn parse_public(text: &str) -> Result<VerifyingKey, KeyError> {
    let bytes = B64.decode(text.trim()).map_err(|_| KeyError::Malformed)?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed)?;
    VerifyingKey::from_bytes(&arr).map_err(|_| KeyError::Malformed)
}

pub fn parse_secret(text: &str) -> Result<SigningKey, KeyError> {
    let bytes = B64.decode(text.trim()).map_err(|_| KeyError::Malformed)?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed)?;
    Ok(SigningKey::from_bytes(&arr))
}

pub fn encode_secret(key: &SigningKey) -> String {
    B64.encode(key.to_bytes())
}

pub fn encode_public(key: &VerifyingKey) -> String {
    B64.encode(key.as_bytes())
}

/// Whether `head` was signed by `key` (or, without one, by the key it
/// names — which proves nothing against someone who can rewrite the file).
pub fn check_head(head: &Head, key: Option<&VerifyingKey>) -> Result<(), String> {
    let named = parse_public(&head.key).map_err(|e| format!("head: {e}"))?;
    if let Some(k) = key {
        if k != &named {
            return Err("the head is signed with another key than the one given".into());
        }
    }
    let bytes = B64
        .decode(&head.signature)
        .map_err(|_| "head: the signature is not base64".to_string())?;
    let sig = Signature::from_slice(&bytes).map_err(|_| "head: malformed signature")?;
    named
        .verify(
            head_message(head.seq, &head.hash, head.signed_at).as_bytes(),
            &sig,
        )
        .map_err(|_| "head: the signature does not match (the head was edited)".to_string())
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intact {
    pub records: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub last_hash: String,
}

/// The first thing wrong, named by file line and record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {what}")]
pub struct Broken {
    pub file: String,
    pub line: usize,
    pub what: String,
}

/// Where the first file's chain must begin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// At record 1 with the genesis hash: an auditor's check (dropping
    /// the oldest records, or the oldest files, is a deletion).
    Genesis,
    /// Right after this record (seq, hash): a later file of the chain.
    After(u64, String),
    /// Wherever the file begins: the writer reopening its current file
    /// (its predecessors are checked against it separately).
    Anywhere,
}

/// Walks one or more files in order (rotation continues the chain from
/// one into the next), starting as `start` says. A line must be exactly
/// the canonical encoding of its record: no duplicate keys, no other
/// spelling of the same JSON (what is hashed is what readers read).
pub fn verify<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
    start: Start,
) -> Result<Intact, Broken> {
    let mut start = match start {
        Start::Genesis => Some((0, GENESIS.to_string())),
        Start::After(seq, hash) => Some((seq, hash)),
        Start::Anywhere => None,
    };
    let mut first_seq = None;
    let mut records = 0u64;
    let mut last: Option<(u64, String)> = None;
    for (file, text) in files {
        // Every seq in the file, to tell a reorder from a deletion.
        let seqs: std::collections::HashSet<u64> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v.get("seq").and_then(Value::as_u64))
            .collect();
        for (i, raw) in text.split_inclusive('\n').enumerate() {
            let line_no = i + 1;
            let broken = |what: String| Broken {
                file: file.to_string(),
                line: line_no,
                what,
            };
            let Some(raw) = raw.strip_suffix('\n') else {
                return Err(broken(
                    "the last line is cut off (no newline): truncated or still being written"
                        .into(),
                ));
            };
            if raw.trim().is_empty() {
                return Err(broken("an empty line where a record should be".into()));
            }
            let value: Value = serde_json::from_str(raw)
                .map_err(|e| broken(format!("not a JSON record ({e})")))?;
            let seq = value.get("seq").and_then(Value::as_u64);
            let prev = value.get("prev").and_then(Value::as_str);
            let hash = value.get("hash").and_then(Value::as_str);
            let (Some(seq), Some(prev), Some(hash)) = (seq, prev, hash) else {
                return Err(broken("a record without seq, prev and hash".into()));
            };
            if hash_of(&value) != hash {
                return Err(broken(format!(
                    "record {seq} was edited: its content does not match its hash"
                )));
            }
            if canonical(&value) != raw {
                return Err(broken(format!(
                    "record {seq} is not written as its canonical encoding (a duplicate key or re-spelled JSON: readers could see other content than was hashed)"
                )));
            }
            let expected = last.clone().or_else(|| start.take());
            if let Some((n, h)) = expected {
                // `n` may be u64::MAX (Start::Anywhere takes any seq) and
                // `seq` 0: no arithmetic here may overflow.
                if n.checked_add(1) != Some(seq) {
                    return Err(broken(out_of_order(seq, n, &seqs)));
                }
                if prev != h && n == 0 {
                    return Err(broken(
                        "record 1 does not start the chain (prev is not the genesis hash)".into(),
                    ));
                }
                if prev != h {
                    return Err(broken(format!(
                            "record {seq} does not chain to record {n} (prev hash differs): a record before it was removed, replaced or reordered"
                        )));
                }
            }
            first_seq.get_or_insert(seq);
            records += 1;
            last = Some((seq, hash.to_string()));
        }
    }
    let (last_seq, last_hash) = last.unwrap_or((0, GENESIS.to_string()));
    Ok(Intact {
        records,
        first_seq: first_seq.unwrap_or(0),
        last_seq,
        last_hash,
    })
}

/// Compares an intact chain with its signed head: the head's record must
/// be in the chain with that hash (a shorter chain was truncated; another
/// hash means the chain was rewritten and re-hashed).
pub fn against_head(intact: &Intact, head: &Head, hashes: &[(u64, String)]) -> Result<(), String> {
    if head.seq > intact.last_seq {
        return Err(format!(
            "truncated: the signed head (signed {}) names record {} but the log ends at record {}",
            head.signed_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            head.seq,
            intact.last_seq
        ));
    }
    match hashes.iter().find(|(s, _)| *s == head.seq) {
        Some((_, h)) if *h == head.hash => Ok(()),
        Some(_) => Err(format!(
            "record {} differs from the one the head signed: the log was rewritten from there or earlier",
            head.seq
        )),
        None => Err(format!(
            "the signed head names record {}, which is not in the files given",
            head.seq
        )),
    }
}

/// Why record `seq` cannot follow record `n` (`seqs`: every seq in the
/// file, to tell a reorder from a deletion).
fn out_of_order(seq: u64, n: u64, seqs: &std::collections::HashSet<u64>) -> String {
    if seq == 0 {
        "a record numbered 0 (records are numbered from 1)".to_string()
    } else if n == 0 {
        format!(
                "the log starts at record {seq}: records 1..{} are missing (the oldest were deleted, or a rotated file is missing)",
                seq - 1
            )
    } else if seq <= n {
        format!("record {seq} comes after record {n}: records were reordered or repeated")
    } else if seqs.contains(&(n + 1)) {
        format!(
                "record {seq} comes after record {n}, and record {} is further down: records were reordered",
                n + 1
            )
    } else if seq == n + 2 {
        format!(
            "record {seq} follows record {n}: record {} is missing (deleted)",
            n + 1
        )
    } else {
        format!(
            "record {seq} follows record {n}: records {}..{} are missing (deleted)",
            n + 1,
            seq - 1
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::Kind;

    fn ev(i: u32) -> Event {
        let mut e = Event::new(
            Kind::Created,
            DateTime::from_timestamp(1_700_000_000 + i as i64, 0).unwrap(),
            format!("id-{i}"),
        );
        e.request = format!("r{i}");
        e
    }

    fn chain(n: u32) -> Vec<String> {
        let mut out = Vec::new();
        let (mut seq, mut hash) = (0, GENESIS.to_string());
        for i in 0..n {
            let s = seal(ev(i), seq, &hash);
            seq = s.seq;
            hash = s.hash.clone();
            out.push(line(&s) + "\n");
        }
        out
    }

    #[test]
    fn a_record_numbered_zero_or_past_the_last_number_is_named_not_a_panic() {
        // Found by fuzz/fuzz_targets/audit.rs: `seq - 1` on a first record
        // numbered 0, `n + 1` after a record numbered u64::MAX.
        let rehash = |seq: u64, prev: &str| {
            let mut v = serde_json::to_value(seal(ev(0), 0, GENESIS)).unwrap();
            v["seq"] = seq.into();
            v["prev"] = prev.into();
            v["hash"] = hash_of(&v).into();
            (
                canonical(&v) + "\n",
                v["hash"].as_str().unwrap().to_string(),
            )
        };
        let (zero, _) = rehash(0, GENESIS);
        let e = verify([("f", zero.as_str())], Start::Genesis).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.what.contains("numbered 0"), "{e}");
        let (last, h) = rehash(u64::MAX, GENESIS);
        let (next, _) = rehash(5, &h);
        let text = last + &next;
        let e = verify([("f", text.as_str())], Start::Anywhere).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.what.contains("reordered or repeated"), "{e}");
        let e = verify([("f", next.as_str())], Start::After(u64::MAX, h)).unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn canonical_sorts_keys_at_every_depth() {
        let v: Value =
            serde_json::from_str(r#"{"b":1,"a":{"z":[{"y":1,"x":2}],"c":"\n"}}"#).unwrap();
        assert_eq!(
            canonical(&v),
            r#"{"a":{"c":"\n","z":[{"x":2,"y":1}]},"b":1}"#
        );
    }

    #[test]
    fn an_intact_chain_verifies() {
        let text = chain(5).concat();
        let ok = verify([("log", text.as_str())], Start::Genesis).unwrap();
        assert_eq!((ok.records, ok.first_seq, ok.last_seq), (5, 1, 5));
    }

    #[test]
    fn an_edit_names_its_record() {
        let mut lines = chain(5);
        lines[2] = lines[2].replace("r2", "r9");
        let err = verify([("log", lines.concat().as_str())], Start::Genesis).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.what.contains("record 3 was edited"), "{err}");
    }

    #[test]
    fn a_deletion_and_a_reorder_are_named() {
        let mut lines = chain(5);
        lines.remove(1);
        let err = verify([("log", lines.concat().as_str())], Start::Genesis).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.what.contains("missing"), "{err}");
        let mut lines = chain(5);
        lines.swap(2, 3);
        let err = verify([("log", lines.concat().as_str())], Start::Genesis).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.what.contains("reordered"), "{err}");
    }

    #[test]
    fn the_oldest_records_cut_and_a_duplicate_key_are_named() {
        let lines = chain(5);
        let err = verify([("log", lines[2..].concat().as_str())], Start::Genesis).unwrap_err();
        assert!(err.what.contains("starts at record 3"), "{err}");
        // A second "seq" in front: serde keeps the last, the hash holds,
        // but the line is not the canonical record.
        let mut dup = lines.clone();
        dup[1] = dup[1].replacen('{', "{\"seq\":9,", 1);
        let err = verify([("log", dup.concat().as_str())], Start::Genesis).unwrap_err();
        assert!(err.what.contains("canonical"), "{err}");
    }

    #[test]
    fn a_cut_line_is_truncation() {
        let text = chain(3).concat();
        let cut = &text[..text.len() - 10];
        let err = verify([("log", cut)], Start::Genesis).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.what.contains("cut off"), "{err}");
    }

    #[test]
    fn rotation_continues_the_chain_across_files() {
        let lines = chain(6);
        let (a, b) = (lines[..4].concat(), lines[4..].concat());
        let ok = verify([("a", a.as_str()), ("b", b.as_str())], Start::Genesis).unwrap();
        assert_eq!(ok.last_seq, 6);
        // The newer file alone is a deletion of the older records for an
        // auditor, and a continuation for the writer reopening it…
        let err = verify([("b", b.as_str())], Start::Genesis).unwrap_err();
        assert!(err.what.contains("records 1..4 are missing"), "{err}");
        assert_eq!(
            verify([("b", b.as_str())], Start::Anywhere)
                .unwrap()
                .first_seq,
            5
        );
        // …and out of order it does not verify.
        assert!(verify([("b", b.as_str()), ("a", a.as_str())], Start::Genesis).is_err());
    }

    #[test]
    fn the_head_catches_truncation_and_a_rewritten_chain() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let lines = chain(5);
        let full = verify([("log", lines.concat().as_str())], Start::Genesis).unwrap();
        let head = sign_head(&key, full.last_seq, &full.last_hash, Utc::now());
        check_head(&head, Some(&key.verifying_key())).unwrap();
        let hashes = vec![(5, full.last_hash.clone())];
        against_head(&full, &head, &hashes).unwrap();
        // Whole records cut from the end: the chain alone still looks fine.
        let cut = verify([("log", lines[..3].concat().as_str())], Start::Genesis).unwrap();
        let err = against_head(&cut, &head, &[]).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        // A forged head: another key, or edited fields.
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let forged = sign_head(&other, 3, &cut.last_hash, Utc::now());
        assert!(check_head(&forged, Some(&key.verifying_key())).is_err());
        let mut edited = head.clone();
        edited.seq = 3;
        assert!(check_head(&edited, None).is_err());
    }
}
