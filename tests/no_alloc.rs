//! Guarantee 10: "Nothing on the route path allocates", and `with_routing_key`
//! hashes the key eagerly and never allocates. Checked with a counting
//! global allocator that counts only on the thread under test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use replica_router::*;
use replica_router_testkit::support::*;

struct CountingAllocator;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator may run while thread locals are torn down.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged; the
// bookkeeping touches only const-initialised thread locals, which never
// allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(|c| c.get())
}

#[test]
fn routing_allocates_nothing_on_any_strategy() {
    let rt = runtime_on((1..=6).map(|id| {
        NodeInfo::new(id)
            .with_zone(&zone_of(id, 3))
            .with_tag(if id % 2 == 0 { "even" } else { "odd" })
    }));
    let contexts = [
        RequestContext::new(),
        RequestContext::new().with_routing_key("user-42"),
        RequestContext::new().with_session(7),
        RequestContext::new().with_zone("z1"),
        RequestContext::new().require_tag("even"),
        RequestContext::new()
            .with_zone("z2")
            .require_tag("odd")
            .with_routing_key("k"),
    ];
    for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
        let g = ReplicaGroup::spawn(&rt, "echo", config(6, 1 + i as u8, strategy)).unwrap();
        let mut router = g.router();
        // Warm up: the first route_event on a thread fills its cache slot.
        for ctx in &contexts {
            router.route(ctx).unwrap();
            g.route_event(ctx).unwrap();
        }
        let n = allocations(|| {
            for _ in 0..1_000 {
                for ctx in &contexts {
                    router.route(ctx).unwrap();
                    g.route_event(ctx).unwrap();
                }
            }
        });
        assert_eq!(n, 0, "{strategy:?}: routing allocated {n} times");
        // After a change, the next routes pick up the new roster without allocating.
        g.scale_to(5).unwrap();
        let n = allocations(|| {
            for ctx in &contexts {
                router.route(ctx).unwrap();
                g.route_event(ctx).unwrap();
            }
        });
        assert_eq!(
            n, 0,
            "{strategy:?}: refreshing the snapshot allocated {n} times"
        );
    }
    rt.shutdown();
}

#[test]
fn with_routing_key_and_session_allocate_nothing() {
    let key = String::from("a-rather-long-routing-key-that-would-need-a-heap-copy");
    let n = allocations(|| {
        for _ in 0..1_000 {
            let ctx = RequestContext::new().with_routing_key(&key).with_session(3);
            assert!(ctx.routing_key_hash().is_some());
            let ctx = RequestContext::new().with_routing_key(key.as_bytes());
            drop(ctx);
        }
    });
    assert_eq!(n, 0, "with_routing_key allocated {n} times");
    // The key is hashed, not stored: the same key gives the same hash,
    // whatever type carries it.
    assert_eq!(
        RequestContext::new()
            .with_routing_key(&key)
            .routing_key_hash(),
        RequestContext::new()
            .with_routing_key(bytes::Bytes::from(key.clone()))
            .routing_key_hash()
    );
}
