//! The runtime against the reference model: a scenario of operations
//! (spawn, scale, add / fail / recover nodes, group-level failure and
//! recovery, routes with arbitrary contexts, deliveries, shutdown) applied
//! to both, compared after every operation. See
//! `replica_router_testkit::model`; `tests/model.rs` runs the same on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replica_router_testkit::model::{run, Scenario};
use replica_router_testkit::support::quiet_deliberate_panics;

fuzz_target!(|scenario: Scenario| {
    // After libfuzzer's own hook is in place: the daemons' deliberate panics
    // (caught by the runtime) stay quiet, every other panic still aborts.
    quiet_deliberate_panics();
    if let Err(divergence) = run(&scenario) {
        panic!("the runtime diverged from the reference model: {divergence}");
    }
});
