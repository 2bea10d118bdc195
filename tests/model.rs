//! Model-based tests on stable: the `replica_router::fuzzing` interpreter
//! (the same one `fuzz/`'s `ops` target drives) over scenarios built by
//! `arbitrary` from seeded pseudo-random bytes. After every operation the
//! runtime must agree with the plain reference model of DESIGN.md.
//!
//! `MODEL_CASES` sets the number of scenarios (default 2,000) and
//! `MODEL_SEED` the first seed, to replay or widen a run.

use arbitrary::{Arbitrary, Unstructured};
use replica_router::fuzzing::{run, Op, Scenario};

/// xorshift64*: the byte source scenarios are built from.
struct Bytes(u64);

impl Bytes {
    fn fill(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The scenario seed `seed` builds: up to 1.5 KiB of input, so up to a few
/// dozen operations.
fn scenario(seed: u64) -> Scenario {
    let mut source = Bytes(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let len = 64 + (seed as usize * 7919) % 1536;
    let data = source.fill(len);
    Scenario::arbitrary_take_rest(Unstructured::new(&data)).expect("any bytes make a scenario")
}

#[test]
fn runtime_agrees_with_the_reference_model_on_generated_scenarios() {
    let cases = env("MODEL_CASES", 2_000);
    let first = env("MODEL_SEED", 1);
    let mut ops = 0;
    for seed in first..first + cases {
        let scenario = scenario(seed);
        ops += scenario.ops.len().min(replica_router::fuzzing::MAX_OPS);
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

/// A scenario written out: growth, failover with and without a free node,
/// recovery, shrink, routes and deliveries of every kind, then shutdown.
#[test]
fn a_written_scenario_agrees_with_the_model() {
    use replica_router::fuzzing::*;
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

/// The byte-built scenarios reach every operation.
#[test]
fn every_operation_is_generated() {
    let mut seen = [false; 10];
    for seed in 1..400 {
        for op in scenario(seed).ops {
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
            };
            seen[i] = true;
        }
    }
    assert_eq!(seen, [true; 10]);
}
