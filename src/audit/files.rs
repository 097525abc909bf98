//! Reading logs from disk: `audit verify`, `audit show`, `audit keygen`.

use std::path::{Path, PathBuf};

use super::chain::{self, Head, Sealed};
use super::log::{head_path, rotated, AuditError};

/// The files of a log in chain order: with one current file, its rotated
/// predecessors first (so the chain is checked from its start).
pub fn chain_files(given: &[PathBuf]) -> Vec<PathBuf> {
    if let [one] = given {
        let mut all = rotated(one);
        all.push(one.clone());
        return all;
    }
    given.to_vec()
}

/// What `audit verify` prints on success.
#[derive(Debug)]
pub struct Report {
    pub lines: Vec<String>,
}

/// Checks the chain across `files` and every signed head beside them.
/// `key` pins the signer; without it a head is checked against the key it
/// names, which proves nothing against someone who rewrote both.
pub fn verify(
    files: &[PathBuf],
    key: Option<&ed25519_dalek::VerifyingKey>,
) -> Result<Report, String> {
    let files = chain_files(files);
    let mut texts = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        texts.push((f.display().to_string(), text));
    }
    let mut lines = Vec::new();
    let mut start = chain::Start::Genesis;
    let mut last: Option<(u64, String)> = None;
    let mut total = 0u64;
    let mut first = None;
    let mut heads = 0;
    for (i, (name, text)) in texts.iter().enumerate() {
        let intact = chain::verify([(name.as_str(), text.as_str())], start.clone())
            .map_err(|b| b.to_string())?;
        first.get_or_insert(intact.first_seq);
        total += intact.records;
        let hashes: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| {
                Some((
                    v.get("seq")?.as_u64()?,
                    v.get("hash")?.as_str()?.to_string(),
                ))
            })
            .collect();
        let head_file = head_path(&files[i]);
        match std::fs::read_to_string(&head_file) {
            Ok(h) => {
                let head: Head = serde_json::from_str(h.trim())
                    .map_err(|e| format!("{}: not a signed head ({e})", head_file.display()))?;
                chain::check_head(&head, key)
                    .map_err(|e| format!("{}: {e}", head_file.display()))?;
                chain::against_head(&intact, &head, &hashes).map_err(|e| format!("{name}: {e}"))?;
                heads += 1;
                if i + 1 == texts.len() {
                    let after = intact.last_seq.saturating_sub(head.seq);
                    lines.push(format!(
                        "signed head: record {} at {}{}{}",
                        head.seq,
                        head.signed_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        if key.is_some() {
                            ", key pinned"
                        } else {
                            ", key NOT pinned (pass --key FILE.pub)"
                        },
                        if after > 0 {
                            format!("; {after} newer record(s) not signed yet")
                        } else {
                            String::new()
                        }
                    ));
                }
            }
            Err(_) if key.is_some() && i + 1 == texts.len() => {
                return Err(format!(
                    "{}: no signed head, so a cut-off tail cannot be detected",
                    head_file.display()
                ))
            }
            Err(_) => {}
        }
        if intact.records > 0 {
            start = chain::Start::After(intact.last_seq, intact.last_hash.clone());
            last = Some((intact.last_seq, intact.last_hash));
        }
    }
    if heads == 0 {
        lines.push(
            "no signed head: records are chained, but a cut-off tail cannot be detected".into(),
        );
    }
    let (from, to) = (first.unwrap_or(0), last.map(|s| s.0).unwrap_or(0));
    lines.insert(
        0,
        format!(
            "intact: {total} record(s), {from}..{to}, in {} file(s)",
            files.len()
        ),
    );
    Ok(Report { lines })
}

/// Every record of the files (chain order), skipping lines that do not
/// parse (`verify` is the place to learn about those).
pub fn read(files: &[PathBuf]) -> Result<Vec<Sealed>, String> {
    let mut out = Vec::new();
    for f in chain_files(files) {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        out.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<Sealed>(l).ok()),
        );
    }
    Ok(out)
}

/// Writes `audit.key` (secret, mode 0600) and `audit.pub` into `dir`,
/// never over an existing key.
pub fn keygen(dir: &Path) -> Result<(PathBuf, PathBuf), AuditError> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| AuditError::Io { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let secret = dir.join("audit.key");
    let public = dir.join("audit.pub");
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| AuditError::Key {
        path: secret.display().to_string(),
        why: format!("no randomness from the OS: {e}"),
    })?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&secret).map_err(io(&secret))?;
    use std::io::Write;
    writeln!(f, "{}", chain::encode_secret(&key)).map_err(io(&secret))?;
    std::fs::write(
        &public,
        format!("{}\n", chain::encode_public(&key.verifying_key())),
    )
    .map_err(io(&public))?;
    Ok((secret, public))
}
