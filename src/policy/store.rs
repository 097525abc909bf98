//! The policy in force, reloaded when its files change or on SIGHUP. A
//! policy that fails to load never replaces the one in force: the error is
//! kept (for `/readyz` and the console's message line) and the previous
//! policy keeps working.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use super::{Policy, PolicyError};

pub struct PolicyStore {
    dir: PathBuf,
    current: RwLock<Option<Arc<Policy>>>,
    last_error: RwLock<Option<String>>,
    stamp: RwLock<Option<SystemTime>>,
    /// Bumped each time a new policy comes into force (verdicts are then
    /// judged again).
    generation: tokio::sync::watch::Sender<u64>,
}

/// The newest modification time among the directory's files.
fn newest(dir: &Path) -> Option<SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok()?.metadata().ok()?.modified().ok())
        .max()
}

impl PolicyStore {
    /// Loads the policy once; an error here is fatal to the caller (there
    /// is no previous policy to keep).
    pub fn open(dir: &Path) -> Result<Arc<Self>, PolicyError> {
        let policy = Policy::load(dir)?;
        Ok(Arc::new(Self {
            dir: dir.to_path_buf(),
            current: RwLock::new(Some(Arc::new(policy))),
            last_error: RwLock::new(None),
            stamp: RwLock::new(newest(dir)),
            generation: tokio::sync::watch::channel(0).0,
        }))
    }

    /// Changes each time a new policy comes into force.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub fn current(&self) -> Option<Arc<Policy>> {
        self.current.read().ok()?.clone()
    }

    /// Why the last reload failed (the previous policy stays in force).
    pub fn last_error(&self) -> Option<String> {
        self.last_error.read().ok()?.clone()
    }

    /// Loads the files again; on failure keeps the policy in force.
    /// Returns the error, if any.
    pub fn reload(&self) -> Option<String> {
        if let Ok(mut s) = self.stamp.write() {
            *s = newest(&self.dir);
        }
        match Policy::load(&self.dir) {
            Ok(p) => {
                if let Ok(mut c) = self.current.write() {
                    *c = Some(Arc::new(p));
                }
                if let Ok(mut e) = self.last_error.write() {
                    *e = None;
                }
                self.generation.send_modify(|g| *g += 1);
                tracing::info!(dir = %self.dir.display(), "policy reloaded");
                None
            }
            Err(e) => {
                let text = format!(
                    "the policy in {} did not load, the previous one stays in force: {e}",
                    self.dir.display()
                );
                tracing::warn!("{text}");
                if let Ok(mut last) = self.last_error.write() {
                    *last = Some(text.clone());
                }
                Some(text)
            }
        }
    }

    /// Reloads when a file changes (checked every two seconds) or on SIGHUP.
    pub fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                #[cfg(unix)]
                let signalled = async {
                    match hup.as_mut() {
                        Some(h) => {
                            h.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                #[cfg(not(unix))]
                let signalled = std::future::pending::<()>();
                let forced = tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => false,
                    _ = signalled => true,
                };
                let Some(store) = me.upgrade() else { break };
                let changed = newest(&store.dir) != store.stamp.read().ok().and_then(|s| *s);
                if forced || changed {
                    store.reload();
                }
            }
        })
    }
}
