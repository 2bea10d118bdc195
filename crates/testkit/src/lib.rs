//! Test machinery for replica-router, kept out of the library: it uses only
//! replica-router's public API, and nothing here ships.
//!
//! - [`support`]: what the tests share: small daemons ([`Echo`](support::Echo),
//!   [`Flaky`](support::Flaky), ...), runtime and config builders, the
//!   pseudo-random generator, the panic-hook silencer, time limits. Every
//!   test file starts with `use replica_router_testkit::support::*;`.
//! - [`model`]: the operation interpreter that applies the same operations
//!   to a real runtime and to a plain reference model of the crate docs' guarantees, and
//!   compares them after every operation. Driven by the `ops` fuzz target and
//!   by `tests/model.rs`.
//! - [`inputs`]: arbitrary values at the public API, in any order; nothing
//!   may panic. Driven by the `inputs` fuzz target and by
//!   `tests/arbitrary_calls.rs`.
//! - [`etcd`] and [`process`]: a real etcd server on loopback, and node
//!   processes as real OS processes reporting their status, for cluster-mode
//!   tests and examples.
//!
//! Both fuzz targets build their input with [`arbitrary`], so any byte
//! string is an input, and the same logic runs under `cargo test` on stable
//! over seeded pseudo-random bytes ([`support::generate`]):
//!
//! ```
//! use replica_router_testkit::model::{run, Scenario};
//! use replica_router_testkit::support::generate;
//!
//! let scenario: Scenario = generate(7, 1536);
//! run(&scenario).unwrap();
//! ```

/// The `arbitrary` the inputs are built with, for callers without their own.
pub use arbitrary;

pub mod etcd;
pub mod inputs;
pub mod model;
pub mod process;
pub mod support;
