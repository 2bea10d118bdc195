//! The `inputs` fuzz target's logic on stable: arbitrary values at the public
//! API (node ids, zones, tags, weights, kind names, group configs, routing
//! contexts, origin hashes, payloads), in any order, on a runtime or a
//! cluster-mode one, built by `arbitrary` from seeded pseudo-random bytes.
//! Nothing may panic: every refusal is a typed error, and whatever succeeds
//! is consistent (see `replica_router_testkit::inputs`).
//!
//! Random bytes rarely make more than a call or two; the committed seeds
//! coverage-guided fuzzing found (`fuzz/corpus/inputs/`) reach deeper, and
//! are replayed too.
//!
//! `INPUTS_CASES` sets the number of generated inputs (default 3,000) and
//! `INPUTS_SEED` the first seed, to replay or widen a run.

use std::panic::{catch_unwind, AssertUnwindSafe};

use replica_router_testkit::inputs::{run, Call, Calls, MAX_CALLS};
use replica_router_testkit::support::{env_or, from_bytes, fuzz_seeds, generate};

/// The input seed `seed` builds: up to 2 KiB, so up to a few dozen calls.
fn calls(seed: u64) -> Calls {
    generate(seed, 2048)
}

/// Runs `input`; a broken promise fails the test naming the input.
fn check(name: &str, input: &Calls) {
    if catch_unwind(AssertUnwindSafe(|| run(input))).is_err() {
        panic!("{name} broke a promise (the panic above says which):\n{input:#?}");
    }
}

#[test]
fn generated_calls_get_typed_errors_or_consistent_answers() {
    let cases = env_or("INPUTS_CASES", 3_000);
    let first = env_or("INPUTS_SEED", 1);
    let mut made = 0;
    for seed in first..first + cases {
        let input = calls(seed);
        made += input.calls.len().min(MAX_CALLS);
        check(&format!("seed {seed}"), &input);
    }
    eprintln!("{cases} inputs, {made} calls");
    assert!(
        2 * made > cases as usize,
        "most inputs make calls: {made} calls"
    );
}

#[test]
fn committed_fuzz_seeds_get_typed_errors_or_consistent_answers() {
    let seeds = fuzz_seeds("inputs");
    assert!(seeds.len() >= 30, "{} committed seeds", seeds.len());
    let mut made = 0;
    for (name, data) in &seeds {
        let input: Calls = from_bytes(data);
        made += input.calls.len().min(MAX_CALLS);
        check(name, &input);
    }
    assert!(
        made > 5 * seeds.len(),
        "the seeds reach deeper: {made} calls"
    );
}

/// The byte-built inputs reach every call, and both kinds of runtime.
#[test]
fn every_call_is_generated() {
    let mut seen = [false; 15];
    let mut cluster_mode = false;
    for seed in 1..400 {
        let input = calls(seed);
        cluster_mode |= input.local.is_some();
        for call in input.calls {
            let i = match call {
                Call::Register { .. } => 0,
                Call::Start => 1,
                Call::Spawn(_) => 2,
                Call::Route { .. } => 3,
                Call::Dispatch { .. } => 4,
                Call::Deliver { .. } => 5,
                Call::DeliverToMember { .. } => 6,
                Call::ScaleTo { .. } => 7,
                Call::AddNode(_) => 8,
                Call::NodeFailed(_) => 9,
                Call::NodeRecovered(_) => 10,
                Call::OnNodeFailure { .. } => 11,
                Call::OnNodeRecovery { .. } => 12,
                Call::Digest => 13,
                Call::Shutdown => 14,
            };
            seen[i] = true;
        }
    }
    assert_eq!(seen, [true; 15]);
    assert!(cluster_mode, "some inputs run a cluster-mode runtime");
}
