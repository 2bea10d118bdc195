//! Arbitrary values at the public API, in any order, on a runtime or a
//! cluster-mode one: nothing may panic, every refusal is a typed error, and
//! whatever succeeds is consistent. See `replica_router_testkit::inputs`;
//! `tests/arbitrary_calls.rs` runs the same on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replica_router_testkit::inputs::{run, Calls};

fuzz_target!(|calls: Calls| run(&calls));
