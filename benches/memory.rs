//! Heap accounting for the writer bench: a counting global allocator, the
//! bytes a group and a roster version retain, and 100,000 groups spawned and
//! removed in one runtime (issue 16).
//!
//! The counting allocator adds one relaxed atomic add per allocation to
//! everything the writer bench times.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use replica_router::*;

use crate::harness::{self, fmt_ns, quantile_ns};

/// Counts the bytes currently allocated, over every thread.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counter is a side effect
// that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which is `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap bytes allocated now, over every thread.
pub(crate) fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Heap bytes retained per group and per roster version.
pub(crate) fn per_group() -> Vec<String> {
    let mut lines = vec![
        "| members | strategy | groups | bytes per group (all) | bytes per roster version |"
            .to_owned(),
        "|---|---|---|---|---|".to_owned(),
    ];
    for (members, groups) in [(3u8, 1000u32), (255, 20)] {
        for strategy in [
            Strategy::RoundRobin,
            Strategy::ConsistentHash,
            Strategy::Adaptive,
        ] {
            let runtime = harness::runtime(u64::from(members));
            let before = live();
            let handles: Vec<ReplicaGroup> = (0..groups)
                .map(|n| harness::spawn(&runtime, n, members, strategy))
                .collect();
            let per_group = (live() - before) as f64 / f64::from(groups);

            // Pin every group's roster, then publish a new one in each.
            let mut routers: Vec<Router> = handles.iter().map(|g| g.router()).collect();
            for r in &mut routers {
                r.route(&RequestContext::new()).unwrap();
            }
            let before = live();
            runtime
                .node_failed(handles[0].replicas()[0].node_id)
                .unwrap();
            let per_roster = (live() - before) as f64 / f64::from(groups);
            lines.push(format!(
                "| {members} | {strategy:?} | {groups} | {per_group:.0} | {per_roster:.0} |"
            ));
            drop(routers);
            drop(handles);
            runtime.shutdown();
        }
    }
    lines
}

/// What [`lifecycle`] measured.
pub(crate) struct Lifecycle {
    pub(crate) groups: u32,
    /// Every `spawn` call, in order.
    pub(crate) spawns: Vec<Duration>,
    /// Every `remove` call, in order.
    pub(crate) removes: Vec<Duration>,
    /// Heap bytes per live group (the bench's own `Vec` of handles excluded).
    pub(crate) bytes_per_group: f64,
    /// Heap bytes still allocated once every group was removed and its
    /// handle dropped, against before the first spawn.
    pub(crate) bytes_left: isize,
    /// The same after the runtime shut down.
    pub(crate) bytes_left_after_shutdown: isize,
}

/// Spawns `groups` groups of 3 round-robin replicas in one runtime (3 nodes),
/// routes once through each (`route_event`, so this thread's route cache
/// sees every group), then removes them all, timing each call.
pub(crate) fn lifecycle(groups: u32) -> Lifecycle {
    let runtime = harness::runtime(3);
    // One group spawned and removed first, so one-time state (the writer's
    // tables, this thread's route cache) is not counted per group.
    let warm = harness::spawn(&runtime, u32::MAX, 3, Strategy::RoundRobin);
    warm.route_event(&RequestContext::new()).unwrap();
    warm.remove().unwrap();
    drop(warm);

    let before = live();
    let mut handles = Vec::with_capacity(groups as usize);
    let mut spawns = Vec::with_capacity(groups as usize);
    for n in 0..groups {
        let start = Instant::now();
        let g = harness::spawn(&runtime, n, 3, Strategy::RoundRobin);
        spawns.push(start.elapsed());
        handles.push(g);
    }
    let own = (handles.capacity() * std::mem::size_of::<ReplicaGroup>()
        + spawns.capacity() * std::mem::size_of::<Duration>()) as isize;
    let bytes_per_group = (live() - before - own) as f64 / f64::from(groups);
    for g in &handles {
        g.route_event(&RequestContext::new()).unwrap();
    }
    let mut removes = Vec::with_capacity(groups as usize);
    for g in &handles {
        let start = Instant::now();
        g.remove().unwrap();
        removes.push(start.elapsed());
    }
    drop(handles);
    let own = ((spawns.capacity() + removes.capacity()) * std::mem::size_of::<Duration>()) as isize;
    let bytes_left = live() - before - own;
    runtime.shutdown();
    drop(runtime);
    Lifecycle {
        groups,
        spawns,
        removes,
        bytes_per_group,
        bytes_left,
        bytes_left_after_shutdown: live() - before - own,
    }
}

impl Lifecycle {
    /// Prints the part's table and byte counts as markdown.
    pub(crate) fn print(&self) {
        let groups = self.groups;
        println!("\n### {groups} groups of 3 (RoundRobin) spawned, then removed, in one runtime\n");
        let mean = |c: &[Duration]| {
            fmt_ns(c.iter().sum::<Duration>().as_nanos() as f64 / c.len().max(1) as f64)
        };
        println!("| call | mean | median | p99 | mean per tenth of the calls, first to last |");
        println!("|---|---|---|---|---|");
        for (call, times) in [("spawn", &self.spawns), ("remove", &self.removes)] {
            let tenths: Vec<String> = times.chunks(times.len().div_ceil(10)).map(mean).collect();
            let mut sorted = times.clone();
            println!(
                "| {call} | {} | {} | {} | {} |",
                mean(times),
                fmt_ns(quantile_ns(&mut sorted, 0.5)),
                fmt_ns(quantile_ns(&mut sorted, 0.99)),
                tenths.join(" · "),
            );
        }
        println!("\n- bytes per live group: {:.0}", self.bytes_per_group);
        println!(
            "- bytes left after every group was removed: {}",
            self.bytes_left
        );
        println!(
            "- bytes left after the runtime shut down: {} (negative: the runtime's own state went too)",
            self.bytes_left_after_shutdown
        );
    }
}
