//! Backend events taken in batches: a burst costs one reduction (one
//! frame, one fan-out), and the memory a large one took goes back.

use tokio::sync::mpsc;

use super::BackendEvent;

/// Takes everything already waiting on the channel, so a burst of backend
/// events costs one reduction and one frame.
pub fn drain(
    first: BackendEvent,
    rx: &mut mpsc::UnboundedReceiver<BackendEvent>,
) -> Vec<BackendEvent> {
    let mut batch = vec![first];
    while let Ok(e) = rx.try_recv() {
        batch.push(e);
    }
    batch
}

/// A batch this large (a first sync of a big installation, a relist) is
/// followed by [`return_freed_memory`].
pub const LARGE_BATCH: usize = 5_000;

/// Gives back to the system, now rather than after mimalloc's purge delay,
/// the pages a large batch of events took and the console freed once it
/// stored them (ended requests are kept compact: most of it). The binary's
/// allocator is mimalloc (`main.rs`); with another this frees nothing.
pub fn return_freed_memory() {
    // SAFETY: mi_collect only returns mimalloc's own free pages to the
    // system; it touches no memory the program holds.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}
