//! What the tests share: one definition of each daemon, builder, generator
//! and guard, so a test file holds only its tests.
//!
//! ```
//! use replica_router::*;
//! use replica_router_testkit::support::*;
//!
//! let rt = runtime(3, 1); // nodes 1..=3 in zone z0, kinds `echo` and `flaky`
//! let group = ReplicaGroup::spawn(&rt, "echo", config(2, 1, Strategy::RoundRobin)).unwrap();
//! assert_eq!(member_nodes(&group), vec![1, 2]);
//! rt.shutdown();
//! ```

mod daemons;
mod generate;
mod runtimes;
mod wait;

pub use daemons::{
    quiet_deliberate_panics, Counting, DropCounter, Echo, Flaky, Held, Latch, NeedsTag, Pace,
    Paced, PanicsIn, Volatile, DELIBERATE_PANIC,
};
pub use generate::{env_or, from_bytes, fuzz_seeds, generate, XorShift};
pub use runtimes::{
    config, config_with_host, healthy_hashes, member_nodes, member_on, nodes, origin, runtime,
    runtime_on, seed, tally, zone_of,
};
pub use wait::{eventually, within};
