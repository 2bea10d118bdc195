//! Loom models of replica-router's own concurrency code.
//!
//! Built with `RUSTFLAGS="--cfg replica_router_loom"`, replica-router's
//! `src/sync.rs` swaps its primitives for loom's, and the models in `tests/`
//! explore the interleavings of the real writer, publisher, routers,
//! registry and circuit breaker:
//!
//! - `tests/publish.rs`: the writer publishing rosters (growth, shrink,
//!   failover) while two readers route;
//! - `tests/in_flight.rs`: in-flight accounting under concurrent deliveries;
//! - `tests/circuit.rs`: the half-open circuit admitting exactly one probe.
//!
//! Each model runs the model's main thread (which issues the changes and
//! blocks while the writer applies them), the runtime's writer thread and
//! two more threads; at most three of them can run at any point. Without the
//! cfg this crate and its tests compile to nothing.
//!
//! ```sh
//! RUSTFLAGS="--cfg replica_router_loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test --release --manifest-path loom-tests/Cargo.toml
//! ```

#[cfg(replica_router_loom)]
pub mod support;
