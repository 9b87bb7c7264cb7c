//! The group-commit writers ([`crate::channel_ingest`], [`crate::metering`]) run on a thread of
//! their own, each on a single-threaded runtime, not as tasks of the request runtime.
//!
//! Why: a writer awaits the store statement by statement. SQLite answers from sqlx's worker thread,
//! and a task woken from outside the runtime's workers goes to the runtime's shared queue, which a
//! busy worker looks at only every few dozen polls. Under load every statement of a batch waited
//! there behind HTTP and WebSocket tasks: the batch took ~8 ms of which the database needed ~2, the
//! CPU stood 60 % idle and ingest ran at 0.1× the bare handler (BENCHMARKS.md). On a thread of its
//! own the writer is woken at once; everything else is unchanged (the same store, the same
//! channels, callers still wait for the commit).

use std::future::Future;

/// Runs `work` to completion on a new thread named `name`. The thread ends with `work` (the
/// writers end when every sender of their queue is gone).
pub fn spawn(name: &str, work: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || runtime.block_on(work))?;
    Ok(())
}
