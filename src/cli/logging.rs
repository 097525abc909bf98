//! Where logs go: a file for the console and the verbs (never the screen
//! the console draws on), stderr for the services (a pod's log).

use super::config;

/// PORTCULLIS_LOG asks for debug (or trace) output.
pub(crate) fn debug_logging() -> bool {
    std::env::var("PORTCULLIS_LOG")
        .map(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("debug") || v.contains("trace")
        })
        .unwrap_or(false)
}

/// Logs go to a file, never to the screen the console draws on.
pub(crate) fn to_file() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = config::state_dir()?;
    std::fs::create_dir_all(&dir).ok()?;
    let file = tracing_appender::rolling::never(&dir, "portcullis.log");
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}

/// Services (the reaper) log to stderr: the pod's log.
pub(crate) fn to_stderr() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}
