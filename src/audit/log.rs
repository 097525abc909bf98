//! The append-only log file: seal, append, rotate, sign the head.
//!
//! One writer per file (the server, or the reaper in direct mode). Each
//! batch is appended with one `write` on a file opened for append and
//! synced before `record` returns. An event whose id is already in the log
//! (this file or a rotated one) is not written again, so a restart that
//! sees every request anew, or the call site and the watch seeing the same
//! change, records it once.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use serde_json::Value;

use super::chain::{self, Head, Sealed, GENESIS};
use super::record::{Event, Kind};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("audit log {path} is broken at {at}: run `portcullis audit verify {path}`; move it aside to start a new chain")]
    Broken { path: String, at: String },
    #[error("audit key {path}: {why}")]
    Key { path: String, why: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where and how to write.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// None: memory only (recent records for the API and the console;
    /// nothing survives a restart — the demo, and tests).
    pub path: Option<PathBuf>,
    /// Signs the chain head; without it the log is hash-chained but a cut
    /// tail cannot be told from a quiet period.
    pub key: Option<SigningKey>,
    /// Also print each record (and each signed head) on stdout, one JSON
    /// object per line, for log shippers.
    pub stdout: bool,
    /// Start a new file past this size (the chain continues).
    pub rotate_bytes: u64,
}

impl LogConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LogConfig {
            path: Some(path.into()),
            ..Self::memory()
        }
    }

    pub fn memory() -> Self {
        LogConfig {
            path: None,
            key: None,
            stdout: false,
            rotate_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Reads a secret key file written by `portcullis audit keygen`.
pub fn read_key(path: &Path) -> Result<SigningKey, AuditError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    chain::parse_secret(&text).map_err(|e| AuditError::Key {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

struct Inner {
    file: Option<File>,
    size: u64,
    seq: u64,
    hash: String,
    signed_seq: u64,
    seen: HashSet<String>,
    recent: VecDeque<Sealed>,
}

pub struct AuditLog {
    config: LogConfig,
    inner: Mutex<Inner>,
}

/// How many records the server keeps in memory for `/v1/audit` and the
/// console's `:audit` (the file has them all).
pub const RECENT: usize = 10_000;

/// The rotated files of `path`, oldest first (`audit.jsonl.000000000042`:
/// the number is the first record's seq).
pub fn rotated(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            let rest = n.strip_prefix(&prefix)?;
            let seq: u64 = rest.parse().ok()?;
            Some((seq, e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

pub fn head_path(log: &Path) -> PathBuf {
    let mut p = log.as_os_str().to_owned();
    p.push(".head");
    PathBuf::from(p)
}

impl AuditLog {
    /// Opens (or starts) the log, continuing its chain.
    pub fn open(config: LogConfig) -> Result<Self, AuditError> {
        let Some(path) = config.path.clone() else {
            return Ok(AuditLog {
                inner: Mutex::new(Inner {
                    file: None,
                    size: 0,
                    seq: 0,
                    hash: GENESIS.to_string(),
                    signed_seq: 0,
                    seen: HashSet::new(),
                    recent: VecDeque::new(),
                }),
                config,
            });
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let mut seen = ids_in_rotated(&path)?;
        let mut recent = VecDeque::new();
        let text = read_whole_lines(&path)?;
        let name = path.display().to_string();
        check_whole_chain(&path, &text, &config)?;
        // The chain continues from the newest rotated file when this one is
        // new (a crash between rename and first write).
        let start = if text.is_empty() {
            rotated(&path)
                .last()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|t| chain::verify([("", t.as_str())], chain::Start::Anywhere).ok())
                .filter(|i| i.records > 0)
                .map(|i| (i.last_seq, i.last_hash))
        } else {
            None
        };
        let intact = chain::verify([(name.as_str(), text.as_str())], chain::Start::Anywhere)
            .map_err(|b| AuditError::Broken {
                path: name.clone(),
                at: b.to_string(),
            })?;
        for line in text.lines() {
            if let Ok(s) = serde_json::from_str::<Sealed>(line) {
                seen.insert(s.event.id.clone());
                recent.push_back(s);
                if recent.len() > RECENT {
                    recent.pop_front();
                }
            }
        }
        let (seq, hash) = match start {
            Some(s) => s,
            None if intact.records > 0 => (intact.last_seq, intact.last_hash),
            None => (0, GENESIS.to_string()),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let signed_seq = std::fs::read_to_string(head_path(&path))
            .ok()
            .and_then(|t| serde_json::from_str::<Head>(&t).ok())
            .map(|h| h.seq)
            .unwrap_or(0);
        Ok(AuditLog {
            inner: Mutex::new(Inner {
                file: Some(file),
                size: text.len() as u64,
                seq,
                hash,
                signed_seq,
                seen,
                recent,
            }),
            config,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn path(&self) -> Option<&Path> {
        self.config.path.as_deref()
    }

    /// Whether an event with this id is already recorded.
    pub fn has(&self, id: &str) -> bool {
        self.lock().seen.contains(id)
    }

    /// Seals and appends the events not recorded yet; returns them sealed.
    pub fn record(&self, events: Vec<Event>) -> Result<Vec<Sealed>, AuditError> {
        let mut st = self.lock();
        let mut sealed: Vec<Sealed> = Vec::new();
        let mut text = String::new();
        let (mut seq, mut hash) = (st.seq, st.hash.clone());
        let mut ids = HashSet::new();
        for e in events {
            if st.seen.contains(&e.id) || !ids.insert(e.id.clone()) {
                continue;
            }
            let s = chain::seal(e, seq, &hash);
            seq = s.seq;
            hash = s.hash.clone();
            text.push_str(&chain::line(&s));
            text.push('\n');
            sealed.push(s);
        }
        if sealed.is_empty() {
            return Ok(sealed);
        }
        // On disk and synced first; the chain moves on only then, so a
        // failed write (a full disk) leaves nothing half-chained behind.
        let size = st.size;
        if let (Some(file), Some(path)) = (st.file.as_mut(), self.config.path.as_deref()) {
            let written = file
                .write_all(text.as_bytes())
                .and_then(|()| file.sync_data());
            if let Err(e) = written {
                let _ = file.set_len(size);
                return Err(io(path)(e));
            }
        }
        st.size += text.len() as u64;
        st.seq = seq;
        st.hash = hash;
        st.seen.extend(ids);
        if self.config.stdout {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        for s in &sealed {
            st.recent.push_back(s.clone());
            if st.recent.len() > RECENT {
                st.recent.pop_front();
            }
        }
        let now = Utc::now();
        // The very first records get a head at once: a log with a key is
        // never without one (a missing head is refused at the next start).
        if st.signed_seq == 0 {
            self.sign_locked(&mut st, now)?;
        }
        if st.file.is_some() && st.size >= self.config.rotate_bytes {
            self.rotate(&mut st, now)?;
        }
        Ok(sealed)
    }

    /// The recent records (newest last) that `keep` accepts.
    pub fn recent(&self, keep: impl Fn(&Sealed) -> bool) -> Vec<Sealed> {
        self.lock()
            .recent
            .iter()
            .filter(|s| keep(s))
            .cloned()
            .collect()
    }

    /// Signs the current head when records came since the last signature.
    pub fn sign(&self, now: DateTime<Utc>) -> Result<Option<Head>, AuditError> {
        let mut st = self.lock();
        self.sign_locked(&mut st, now)
    }

    fn sign_locked(&self, st: &mut Inner, now: DateTime<Utc>) -> Result<Option<Head>, AuditError> {
        let (Some(key), Some(path)) = (&self.config.key, self.config.path.as_deref()) else {
            return Ok(None);
        };
        if st.seq == st.signed_seq || st.seq == 0 {
            return Ok(None);
        }
        let head = chain::sign_head(key, st.seq, &st.hash, now);
        let text = serde_json::to_string(&head).unwrap_or_default();
        let target = head_path(path);
        let tmp = target.with_extension("head.tmp");
        std::fs::write(&tmp, format!("{text}\n")).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &target).map_err(io(&target))?;
        st.signed_seq = st.seq;
        if self.config.stdout {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{{\"portcullisAuditHead\":{text}}}");
            let _ = out.flush();
        }
        Ok(Some(head))
    }

    /// Closes the current file under the name of its first record's seq
    /// (head beside it) and starts a new one; the chain goes on.
    fn rotate(&self, st: &mut Inner, now: DateTime<Utc>) -> Result<(), AuditError> {
        self.sign_locked(st, now)?;
        let Some(path) = self.config.path.as_deref() else {
            return Ok(());
        };
        let first = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.lines().next().map(str::to_string))
            .and_then(|l| serde_json::from_str::<Value>(&l).ok())
            .and_then(|v| v.get("seq").and_then(Value::as_u64))
            .unwrap_or(st.seq);
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{first:012}"));
        let moved = PathBuf::from(name);
        std::fs::rename(path, &moved).map_err(io(path))?;
        let head = head_path(path);
        if head.exists() {
            std::fs::rename(&head, head_path(&moved)).map_err(io(&head))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(path))?;
        st.size = 0;
        let mut e = Event::new(
            Kind::Rotated,
            now,
            format!("rotated-{}-{}", st.seq, &st.hash[..16]),
        );
        e.message = format!(
            "continues {} (records {first}..{})",
            moved
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            st.seq
        );
        let s = chain::seal(e, st.seq, &st.hash);
        st.seq = s.seq;
        st.hash = s.hash.clone();
        st.seen.insert(s.event.id.clone());
        let line = chain::line(&s) + "\n";
        file.write_all(line.as_bytes()).map_err(io(path))?;
        file.sync_data().map_err(io(path))?;
        st.file = Some(file);
        st.size = line.len() as u64;
        Ok(())
    }
}

/// The ids in the rotated files (a record already written is never
/// written again).
fn ids_in_rotated(path: &Path) -> Result<HashSet<String>, AuditError> {
    let mut seen = HashSet::new();
    for old in rotated(path) {
        let text = std::fs::read_to_string(&old).map_err(io(&old))?;
        for line in text.lines() {
            if let Some(id) = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
            {
                seen.insert(id);
            }
        }
    }
    Ok(seen)
}

/// The log's text, without a last line a crash cut short: it was never
/// synced nor answered, so it is dropped (said on stderr).
fn read_whole_lines(path: &Path) -> Result<String, AuditError> {
    let mut text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(path)(e)),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        let keep = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io(path))?;
        f.set_len(keep as u64).map_err(io(path))?;
        eprintln!(
            "portcullis: {}: dropped a cut-off last line ({} bytes) a crash left half-written",
            path.display(),
            text.len() - keep
        );
        text.truncate(keep);
    }
    Ok(text)
}

/// The whole chain from record 1, rotated files included, and every signed
/// head beside it, with this writer's own key: a log cut, edited or
/// rewritten while the writer was down is not continued (and never
/// re-signed over).
fn check_whole_chain(path: &Path, text: &str, config: &LogConfig) -> Result<(), AuditError> {
    let has_records = !text.is_empty() || !rotated(path).is_empty();
    if !has_records {
        return Ok(());
    }
    let name = path.display().to_string();
    let own = config.key.as_ref().map(SigningKey::verifying_key);
    if own.is_some() && !head_path(path).exists() {
        return Err(AuditError::Broken {
            path: name,
            at: format!("{}: its signed head is missing", head_path(path).display()),
        });
    }
    super::files::verify(std::slice::from_ref(&path.to_path_buf()), own.as_ref())
        .map(|_| ())
        .map_err(|why| AuditError::Broken {
            path: name,
            at: why,
        })
}
