//! Model-based tests on stable: the testkit's interpreter (the same one
//! `fuzz/`'s `ops` target drives) over scenarios built by `arbitrary` from
//! seeded pseudo-random bytes. After every operation the runtime must agree
//! with the plain reference model of the crate docs' guarantees.
//!
//! `MODEL_CASES` sets the number of scenarios (default 2,000) and
//! `MODEL_SEED` the first seed, to replay or widen a run.

use replica_router_testkit::model::*;
use replica_router_testkit::support::{env_or, from_bytes, fuzz_seeds, generate};

/// The scenario seed `seed` builds: up to 1.5 KiB of input, so up to a few
/// dozen operations.
fn scenario(seed: u64) -> Scenario {
    generate(seed, 1536)
}

#[test]
fn runtime_agrees_with_the_reference_model_on_generated_scenarios() {
    let cases = env_or("MODEL_CASES", 2_000);
    let first = env_or("MODEL_SEED", 1);
    let mut ops = 0;
    for seed in first..first + cases {
        let scenario = scenario(seed);
        ops += scenario.ops.len().min(MAX_OPS);
        if let Err(divergence) = run(&scenario) {
            panic!("seed {seed}: {divergence}\n{scenario:#?}");
        }
    }
    eprintln!("{cases} scenarios, {ops} operations");
    assert!(
        ops > 10 * cases as usize,
        "scenarios are long enough to matter: {ops} operations"
    );
}

/// The committed seeds of the `ops` fuzz target (`fuzz/corpus/ops/`), found
/// by coverage-guided fuzzing, agree with the model too.
#[test]
fn committed_fuzz_seeds_agree_with_the_model() {
    let seeds = fuzz_seeds("ops");
    assert!(seeds.len() >= 40, "{} committed seeds", seeds.len());
    for (name, data) in &seeds {
        let scenario: Scenario = from_bytes(data);
        if let Err(divergence) = run(&scenario) {
            panic!("{name}: {divergence}\n{scenario:#?}");
        }
    }
}

/// A scenario written out: growth, failover with and without a free node,
/// recovery, shrink, routes and deliveries of every kind, then shutdown.
#[test]
fn a_written_scenario_agrees_with_the_model() {
    let node = |id, zone, tags| NodeSpec {
        id,
        zone: Some(zone),
        tags,
        weight: Weight::Default,
    };
    let ctx = |zone, tags| ContextSpec {
        key: Some(b"k".to_vec()),
        session: None,
        zone,
        tags,
    };
    let scenario = Scenario {
        nodes: vec![node(1, 0, 1), node(2, 1, 3), node(3, 2, 1), node(4, 0, 0)],
        ops: vec![
            Op::Spawn {
                kind: Kind::Tagged,
                seed: 1,
                count: 3,
                strategy: 7,
                threshold: 1,
            },
            Op::Spawn {
                kind: Kind::Plain,
                seed: 2,
                count: 2,
                strategy: 0,
                threshold: 4,
            },
            Op::Route {
                group: 0,
                context: ctx(Some(1), 2),
                via_router: true,
            },
            Op::NodeFailed(1),
            Op::AddNode(node(5, 0, 1)),
            Op::Route {
                group: 0,
                context: ctx(None, 1),
                via_router: false,
            },
            Op::NodeRecovered(1),
            Op::GroupNodeFailure { group: 1, node: 2 },
            Op::GroupNodeRecovery { group: 1, node: 2 },
            Op::Deliver {
                target: Target::Member { group: 0, index: 1 },
                payload: Payload::Fail,
            },
            Op::Deliver {
                target: Target::Member { group: 0, index: 1 },
                payload: Payload::Echo(vec![1]),
            },
            Op::Deliver {
                target: Target::Routed {
                    group: 1,
                    context: ctx(None, 0),
                },
                payload: Payload::Panic,
            },
            Op::ScaleTo { group: 0, count: 1 },
            Op::Deliver {
                target: Target::Identity { seed: 1, index: 2 },
                payload: Payload::Echo(vec![]),
            },
            Op::ScaleTo { group: 1, count: 6 },
            Op::Shutdown,
            Op::Route {
                group: 1,
                context: ctx(None, 0),
                via_router: true,
            },
            Op::Deliver {
                target: Target::Unknown(7),
                payload: Payload::Fail,
            },
        ],
    };
    run(&scenario).unwrap();
}

/// The byte-built scenarios reach every operation, and every kind of daemon:
/// those whose `requirements()`, `load()` and `Drop` panic included.
#[test]
fn every_operation_and_every_kind_is_generated() {
    let mut seen = [false; 11];
    let mut kinds = Vec::new();
    for seed in 1..400 {
        for op in scenario(seed).ops {
            if let Op::Spawn { kind, .. } = op {
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            let i = match op {
                Op::Spawn { .. } => 0,
                Op::ScaleTo { .. } => 1,
                Op::AddNode(_) => 2,
                Op::NodeFailed(_) => 3,
                Op::NodeRecovered(_) => 4,
                Op::GroupNodeFailure { .. } => 5,
                Op::GroupNodeRecovery { .. } => 6,
                Op::Route { .. } => 7,
                Op::Deliver { .. } => 8,
                Op::Shutdown => 9,
                Op::Remove { .. } => 10,
            };
            seen[i] = true;
        }
    }
    assert_eq!(seen, [true; 11]);
    for kind in [
        Kind::Plain,
        Kind::Tagged,
        Kind::Volatile,
        Kind::Missing,
        Kind::Broken,
        Kind::Unplaceable,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} is never spawned");
    }
}
