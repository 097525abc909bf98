//! The event loop: the single owner of [`AppState`]. It turns terminal
//! events, backend events, clock ticks and finished effects into actions,
//! runs the reducer, executes the effects it returns, and renders.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use ratatui::backend::Backend;
use ratatui::Terminal;
use tokio::sync::mpsc;

use crate::backend::batch::{drain, return_freed_memory, LARGE_BATCH};
use crate::backend::AccessBackend;
use crate::console::state::AppState;
use crate::console::update::{update, Action, Effect};
use crate::console::view::{self, Theme};

/// How often countdowns refresh.
pub const TICK: Duration = Duration::from_millis(250);

/// Runs one effect against the backend; the outcome comes back as an action.
pub async fn execute(backend: &dyn AccessBackend, effect: Effect) -> Option<Action> {
    let (kind, key, result) = match effect {
        Effect::Quit | Effect::Copy(_) | Effect::Notify(_) => return None,
        Effect::Apply { key, seen, op } => {
            (op.kind(), key.clone(), backend.apply(&key, &seen, op).await)
        }
    };
    if let Err(e) = &result {
        tracing::warn!(%key, error = %e, "operation failed");
    } else {
        tracing::info!(%key, ?kind, "operation done");
    }
    Some(Action::OpFinished {
        kind,
        key,
        result: result.map(Box::new).map_err(|e| e.to_string()),
    })
}

#[cfg(unix)]
pub async fn terminate_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

#[cfg(not(unix))]
pub async fn terminate_signal() {
    std::future::pending::<()>().await
}

/// Runs the console until quit or a termination signal.
pub async fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    backend: Arc<dyn AccessBackend>,
    mut state: AppState,
    theme: &Theme,
    started: Instant,
) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut events = backend.watch();
    if let Ok(size) = terminal.size() {
        update(&mut state, Action::Resize(size.width, size.height));
    }
    // The snapshot is already queued: reduce it before the first frame.
    if let Ok(first) = events.try_recv() {
        let batch = drain(first, &mut events);
        let large = batch.len() >= LARGE_BATCH;
        update(&mut state, Action::Backend(batch));
        if large {
            return_freed_memory();
        }
    }
    terminal.draw(|f| view::render(f, &state, theme))?;
    tracing::info!(ms = started.elapsed().as_secs_f64() * 1000.0, "first frame");

    let desktop = view::notify::Desktop::from_env();
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Action>();
    let terminate = terminate_signal();
    tokio::pin!(terminate);
    loop {
        let action = tokio::select! {
            maybe = input.next() => match maybe {
                Some(Ok(Event::Key(key))) => Action::Key(key),
                Some(Ok(Event::Resize(w, h))) => Action::Resize(w, h),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            Some(e) = events.recv() => Action::Backend(drain(e, &mut events)),
            Some(done) = done_rx.recv() => done,
            _ = tick.tick() => Action::Tick(backend.now()),
            _ = &mut terminate => {
                tracing::info!("termination signal: restoring the terminal");
                break;
            }
        };
        let large = matches!(&action, Action::Backend(b) if b.len() >= LARGE_BATCH);
        let effects = update(&mut state, action);
        if large {
            return_freed_memory();
        }
        for effect in effects {
            if effect == Effect::Quit {
                continue;
            }
            if let Effect::Copy(text) = &effect {
                // Between two frames, on the terminal the frames go to.
                if let Err(e) = view::clipboard::copy(text) {
                    tracing::warn!(error = %e, "copy (OSC 52) failed");
                }
                continue;
            }
            if let Effect::Notify(n) = &effect {
                if let Err(e) = view::notify::emit(n, desktop) {
                    tracing::warn!(error = %e, "notification failed");
                }
                continue;
            }
            let backend = backend.clone();
            let tx = done_tx.clone();
            tokio::spawn(async move {
                if let Some(a) = execute(backend.as_ref(), effect).await {
                    let _ = tx.send(a);
                }
            });
        }
        if state.should_quit {
            break;
        }
        terminal.draw(|f| view::render(f, &state, theme))?;
    }
    Ok(())
}
