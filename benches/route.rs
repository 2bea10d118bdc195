//! Route-path benchmarks: our `Router::route` and `route_event` side by side
//! with the mutex-guarded design they replace, in the same process.
//!
//! `cargo bench --bench route`. Two-thread scenarios report the time per
//! route while both threads route at once (wall time ÷ routes per thread).

#![allow(missing_docs)] // criterion_group! generates undocumented items.

mod baselines;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use baselines::MutexGroup;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use replica_router::*;

struct Noop;
impl MeshDaemon for Noop {
    fn name(&self) -> &str {
        "noop"
    }
    fn process(&mut self, _: &Event) -> Result<Vec<bytes::Bytes>, DaemonError> {
        Ok(Vec::new())
    }
}

fn group(members: u8, strategy: Strategy) -> (DaemonRuntime, Arc<ReplicaGroup>) {
    let runtime = DaemonRuntime::new((0..u64::from(members)).map(NodeInfo::new));
    runtime.register_factory("noop", || Box::new(Noop)).unwrap();
    runtime.start().unwrap();
    let config = ReplicaGroupConfig {
        replica_count: members,
        group_seed: [members; 32],
        lb_strategy: strategy,
        host_config: DaemonHostConfig::default(),
    };
    let group = ReplicaGroup::spawn(&runtime, "noop", config).unwrap();
    (runtime, Arc::new(group))
}

/// Runs `f` `iters` times on each of `threads` threads at once; the time per
/// call on one thread.
fn parallel<S: Send + 'static>(
    threads: usize,
    iters: u64,
    make: impl Fn() -> S,
    f: fn(&mut S),
) -> Duration {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let mut state = make();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    f(&mut state);
                }
                start.elapsed()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap()
}

fn round_robin(c: &mut Criterion) {
    let ctx = RequestContext::new();
    for members in [3u8, 8, 255] {
        let (_rt, g) = group(members, Strategy::RoundRobin);
        let hashes: Vec<u64> = g.replicas().iter().map(|m| m.origin_hash).collect();
        let mutex = Arc::new(MutexGroup::new(hashes));
        let mut bench = c.benchmark_group(format!("round_robin/{members}_members"));
        bench.bench_function("mutex_baseline/1_thread", |b| {
            b.iter(|| black_box(mutex.route()))
        });
        let mut router = g.router();
        bench.bench_function("router/1_thread", |b| {
            b.iter(|| black_box(router.route(&ctx)))
        });
        bench.bench_function("route_event/1_thread", |b| {
            b.iter(|| black_box(g.route_event(&ctx)))
        });
        {
            let mutex = Arc::clone(&mutex);
            bench.bench_function("mutex_baseline/2_threads", |b| {
                b.iter_custom(|iters| {
                    parallel(
                        2,
                        iters,
                        || Arc::clone(&mutex),
                        |m| {
                            black_box(m.route());
                        },
                    )
                })
            });
        }
        bench.bench_function("router/2_threads", |b| {
            b.iter_custom(|iters| {
                parallel(
                    2,
                    iters,
                    || g.router(),
                    |r| {
                        black_box(r.route(&RequestContext::new())).ok();
                    },
                )
            })
        });
        bench.bench_function("route_event/2_threads", |b| {
            b.iter_custom(|iters| {
                parallel(
                    2,
                    iters,
                    || Arc::clone(&g),
                    |g| {
                        black_box(g.route_event(&RequestContext::new())).ok();
                    },
                )
            })
        });
        bench.finish();
    }
}

fn strategies(c: &mut Criterion) {
    // Keyed routes cycle through 1,024 keys, so the Maglev table is read at
    // many slots rather than one that stays in L1.
    let keyed: Vec<RequestContext> = (0..1024)
        .map(|k| RequestContext::new().with_routing_key(format!("user-{k}")))
        .collect();
    let plain = RequestContext::new();
    for members in [8u8, 255] {
        let mut bench = c.benchmark_group(format!("strategy/{members}_members"));
        for strategy in Strategy::ALL {
            let (_rt, g) = group(members, strategy);
            let mut router = g.router();
            bench.bench_function(BenchmarkId::new("router", format!("{strategy:?}")), |b| {
                b.iter(|| black_box(router.route(black_box(&plain))))
            });
            if matches!(strategy, Strategy::ConsistentHash | Strategy::Adaptive) {
                let mut i = 0;
                bench.bench_function(
                    BenchmarkId::new("router_keyed", format!("{strategy:?}")),
                    |b| {
                        b.iter(|| {
                            i = (i + 1) & 1023;
                            black_box(router.route(&keyed[i]))
                        })
                    },
                );
            }
        }
        bench.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = round_robin, strategies
}
criterion_main!(benches);
