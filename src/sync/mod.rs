//! The switch between the primitives the crate ships on and the loom
//! stand-ins it is model-checked with (`RUSTFLAGS="--cfg replica_router_loom"`,
//! see `loom-tests/`), in the manner of tokio's `src/loom/`.
//!
//! Every atomic, lock, thread, channel, thread-local, published roster and
//! concurrent map the crate's own concurrency code uses comes from here.
//! Built normally these are std, `parking_lot`, `crossbeam-channel`,
//! `arc-swap` and `dashmap` themselves, re-exported unchanged. Built with the
//! cfg, atomics, locks, threads and thread-locals are loom's, and the three
//! third-party types (which loom cannot see into) are small stand-ins in
//! `loom.rs` with the same method names, built on loom's primitives.
//!
//! `Arc` stays std's under loom: reference counting is std's correctness,
//! not ours, and loom's `Arc` cannot hold unsized values (`Arc<dyn Fn>`).
//! The cfg has a crate-specific name so that dependencies with their own
//! `cfg(loom)` paths are not flipped.

pub(crate) use std::sync::Arc;

#[cfg(not(replica_router_loom))]
pub(crate) use self::shipped::*;

#[cfg(replica_router_loom)]
mod loom;
#[cfg(replica_router_loom)]
pub(crate) use self::loom::*;

#[cfg(not(replica_router_loom))]
mod shipped {
    pub(crate) use arc_swap::{ArcSwap, Cache};
    pub(crate) use crossbeam_channel as channel;
    pub(crate) use dashmap::{DashMap, Entry};
    pub(crate) use parking_lot::Mutex;
    pub(crate) use std::sync::atomic;
    pub(crate) use std::thread;
    pub(crate) use std::thread_local;

    fn base() -> std::time::Instant {
        static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        *BASE.get_or_init(std::time::Instant::now)
    }

    /// Nanoseconds since the first call in this process; never 0. The
    /// circuit breaker's clock (a mock that the models advance under loom).
    pub(crate) fn now_ns() -> u64 {
        (base().elapsed().as_nanos() as u64).max(1)
    }

    /// The coarse clock latency estimates are stamped with and faded by:
    /// milliseconds since the process started, wrapping after 49 days (ages
    /// are taken with wrapping arithmetic). Advanced by every timed delivery
    /// and every batch of the writer; a route reads it with one load instead
    /// of reading the clock.
    static COARSE_MS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

    /// The coarse clock, now.
    #[inline]
    pub(crate) fn coarse_ms() -> u32 {
        COARSE_MS.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The coarse clock advanced to now (reads the clock: for the writer
    /// and cold paths, not for every route).
    pub(crate) fn coarse_now() -> u32 {
        tick_coarse(std::time::Instant::now())
    }

    /// `at` on the coarse clock's scale; advances the coarse clock to it.
    pub(crate) fn tick_coarse(at: std::time::Instant) -> u32 {
        let ms = at.saturating_duration_since(base()).as_millis() as u32;
        let current = coarse_ms();
        if (ms.wrapping_sub(current) as i32) > 0 {
            COARSE_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
        }
        ms
    }

    /// Receives the next message, spinning briefly before blocking: a
    /// command or an answer usually follows within microseconds, and a
    /// thread woken from a blocking receive costs tens of them.
    pub(crate) fn recv_soon<T>(receiver: &channel::Receiver<T>) -> Result<T, channel::RecvError> {
        const SPIN: std::time::Duration = std::time::Duration::from_micros(50);
        let started = std::time::Instant::now();
        let mut round = 0u32;
        loop {
            match receiver.try_recv() {
                Ok(message) => return Ok(message),
                Err(channel::TryRecvError::Disconnected) => return Err(channel::RecvError),
                Err(channel::TryRecvError::Empty) => {}
            }
            round += 1;
            if round < 64 {
                std::hint::spin_loop();
            } else if started.elapsed() < SPIN {
                thread::yield_now();
            } else {
                return receiver.recv();
            }
        }
    }

    /// A message already queued, if any.
    pub(crate) fn try_recv_queued<T>(receiver: &channel::Receiver<T>) -> Option<T> {
        receiver.try_recv().ok()
    }

    /// A process-wide counter handing out distinct values (group uids,
    /// generator seeds). Under loom it starts over in every execution, so
    /// executions replay identically.
    macro_rules! process_counter {
        ($name:ident = $first:expr) => {
            static $name: ::std::sync::atomic::AtomicU64 =
                ::std::sync::atomic::AtomicU64::new($first);
        };
    }
    pub(crate) use process_counter;
}
