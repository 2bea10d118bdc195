//! What a group costs in memory, counted by a global allocator that tracks
//! live bytes (issue 16): a 3-replica group holds at most 8 KiB whatever its
//! strategy, a 255-replica consistent-hash group at most 64 KiB, and
//! removing a group gives back everything it held, per-thread route caches
//! included.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Mutex;

use replica_router::*;
use replica_router_testkit::support::*;

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds
// `GlobalAlloc`'s contract; the counter has no effect on the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Tests in this file measure the whole process: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Bytes per group: `groups` groups of `count` replicas with `strategy`,
/// spawned and routed on once each (so rosters and caches are warm).
fn bytes_per_group(
    rt: &DaemonRuntime,
    count: u8,
    strategy: Strategy,
    groups: u32,
    first_seed: u32,
) -> isize {
    let before = live();
    let handles: Vec<ReplicaGroup> = (0..groups)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&(first_seed + i).to_le_bytes());
            let config = ReplicaGroupConfig {
                replica_count: count,
                group_seed: seed,
                lb_strategy: strategy,
                host_config: DaemonHostConfig::default(),
            };
            ReplicaGroup::spawn(rt, "echo", config).unwrap()
        })
        .collect();
    let per_group = (live() - before) / groups as isize;
    for g in &handles {
        g.remove().unwrap();
    }
    drop(handles);
    per_group
}

#[test]
fn a_group_of_three_holds_at_most_8_kib_whatever_its_strategy() {
    let _one = ONE_AT_A_TIME.lock().unwrap();
    let rt = runtime(8, 2);
    for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
        let bytes = bytes_per_group(&rt, 3, strategy, 200, 1_000 * i as u32);
        eprintln!("{strategy:?}: {bytes} bytes per 3-replica group");
        assert!(bytes <= 8 * 1024, "{strategy:?}: {bytes} bytes per group");
    }
    rt.shutdown();
}

#[test]
fn a_consistent_hash_group_of_255_holds_at_most_64_kib() {
    let _one = ONE_AT_A_TIME.lock().unwrap();
    let rt = runtime(255, 4);
    for strategy in [
        Strategy::ConsistentHash,
        Strategy::Adaptive,
        Strategy::RoundRobin,
    ] {
        let bytes = bytes_per_group(&rt, 255, strategy, 16, 50_000);
        eprintln!("{strategy:?}: {bytes} bytes per 255-replica group");
        assert!(bytes <= 64 * 1024, "{strategy:?}: {bytes} bytes per group");
    }
    rt.shutdown();
}

/// Spawns `groups` consistent-hash groups of 10, routes on each through a
/// router and, if `cached`, with `route_event` (this thread's route cache
/// then keeps up to 8 of their rosters), then removes them all.
fn spawn_route_remove(rt: &DaemonRuntime, groups: u8, first_seed: u8, cached: bool) {
    let handles: Vec<ReplicaGroup> = (0..groups)
        .map(|i| {
            let config = config(10, first_seed + i, Strategy::ConsistentHash);
            ReplicaGroup::spawn(rt, "echo", config).unwrap()
        })
        .collect();
    let ctx = RequestContext::new().with_routing_key("k");
    for g in &handles {
        if cached {
            g.route_event(&ctx).unwrap();
        }
        g.router().route(&ctx).unwrap();
    }
    for g in &handles {
        g.remove().unwrap();
    }
}

#[test]
fn removing_groups_gives_back_their_memory_route_caches_included() {
    let _one = ONE_AT_A_TIME.lock().unwrap();
    let rt = runtime(12, 2);
    let keep = ReplicaGroup::spawn(&rt, "echo", config(3, 250, Strategy::RoundRobin)).unwrap();
    let ctx = RequestContext::new();
    // Warm up what is built once and kept: the thread's cache, the layout of
    // a group of 10, the registry's first tables.
    spawn_route_remove(&rt, 10, 1, false);
    keep.route_event(&ctx).unwrap();
    let baseline = live();
    spawn_route_remove(&rt, 40, 100, true);
    // The thread's next route (on any group) drops the removed groups'
    // rosters from its cache.
    keep.route_event(&ctx).unwrap();
    let left = live() - baseline;
    eprintln!("{left} bytes left after removing 40 groups of 10");
    assert!(
        left <= 1024,
        "{left} bytes still held after the groups were removed"
    );
    rt.shutdown();
}
