//! Time limits: a call that must finish, a condition that must come true.

use std::thread;
use std::time::{Duration, Instant};

/// Runs `f` on another thread and fails if it takes longer than `secs`
/// (a hang fails the test instead of stalling the run).
pub fn within<T: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s"))
}

/// Waits until `check` holds, polling every 10 ms, and fails if that takes
/// longer than `secs`; the time it took.
pub fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what} within {secs} s"
        );
        thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}
