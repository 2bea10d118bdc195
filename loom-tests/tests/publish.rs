//! The writer publishing rosters while two readers route (DESIGN 8 and the
//! data flow): one reader routes through a `Router` (its cached snapshot),
//! the other through `ReplicaGroup::route_event` (the per-thread cache),
//! while the main thread asks the writer for a change.
//!
//! Checked in every interleaving:
//! - each reader's roster epoch never decreases;
//! - every snapshot a reader routes on is exactly a roster the writer
//!   published whole (its members as the change left them), never a mix;
//! - a route returns a healthy member of the snapshot it was taken on;
//! - once the call that removed a member (or failed its node) has returned,
//!   no route returns it;
//! - while a group is removed, a route returns a live member or `Removed`,
//!   never a freed replica, and only `Removed` once `remove` returned;
//! - a member a reader routed to can be delivered to, unless a change
//!   removed it: the registry is updated before the roster that names it is
//!   published, and after the roster that drops it.
#![cfg(replica_router_loom)]

use std::collections::BTreeMap;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use loom_tests::support::model;
use replica_router::loom_hooks::{route_observed, Observed};
use replica_router::*;
use replica_router_testkit::support::{config, runtime};

/// Routes per reader.
const ROUTES: usize = 3;

/// What one reader saw on one route.
#[derive(Debug)]
struct Seen {
    /// Whether the main thread's change call had returned before the route.
    after_change: bool,
    /// The epoch of the roster routed on (for `route_event`: the group's
    /// epoch read right after routing).
    epoch: u64,
    /// The snapshot's members, when the route reports them.
    members: Option<Vec<MemberInfo>>,
    routed: Result<u64, GroupError>,
    /// The delivery's outcome, when the reader delivers.
    delivered: Option<Result<(), DeliverError>>,
}

/// Runs one change on the main thread while two readers route `ROUTES`
/// times each (delivering to what they routed to, if `deliver`), and checks
/// what they saw; returns the rosters published before and after the
/// change.
fn race(
    nodes: u64,
    start: u8,
    deliver: bool,
    change: impl FnOnce(&DaemonRuntime, &ReplicaGroup) + 'static,
) -> (Vec<MemberInfo>, Vec<MemberInfo>) {
    let rt = runtime(nodes, 1);
    let group = Arc::new(
        ReplicaGroup::spawn(&rt, "flaky", config(start, 7, Strategy::RoundRobin)).unwrap(),
    );
    let before = group.replicas();
    let before_epoch = group.epoch();
    let changed = Arc::new(AtomicBool::new(false));
    let ctx = RequestContext::new();

    let with_router = {
        let (group, ctx) = (Arc::clone(&group), ctx.clone());
        reader(rt.clone(), Arc::clone(&changed), deliver, move || {
            let mut router = group.router();
            move || {
                let Observed {
                    epoch,
                    members,
                    routed,
                } = route_observed(&mut router, &ctx);
                (epoch, Some(members), routed)
            }
        })
    };
    let with_route_event = {
        let group = Arc::clone(&group);
        reader(rt.clone(), Arc::clone(&changed), deliver, move || {
            move || {
                let routed = group.route_event(&ctx);
                (group.epoch(), None, routed)
            }
        })
    };

    change(&rt, &group);
    changed.store(true, Ordering::Release);
    let after = group.replicas();
    let after_epoch = group.epoch();
    assert_eq!(
        after_epoch,
        before_epoch + 1,
        "one change publishes one roster, before its call returns"
    );

    let seen = vec![
        with_router.join().unwrap(),
        with_route_event.join().unwrap(),
    ];
    drop(group);
    rt.shutdown();
    check(&seen, &before, &after, after_epoch);
    (before, after)
}

/// A route's epoch, the snapshot's members (when the route reports them),
/// and the member routed to.
type Observation = (u64, Option<Vec<MemberInfo>>, Result<u64, GroupError>);

/// A reader thread: sets up its `route` (a `Router`, say), then `ROUTES`
/// times notes whether the change has returned, routes, and delivers to the
/// member it routed to, if `deliver`.
fn reader<R: FnMut() -> Observation>(
    rt: DaemonRuntime,
    changed: Arc<AtomicBool>,
    deliver: bool,
    route: impl FnOnce() -> R + Send + 'static,
) -> thread::JoinHandle<Vec<Seen>> {
    thread::spawn(move || {
        let mut route = route();
        (0..ROUTES)
            .map(|_| {
                let after_change = changed.load(Ordering::Acquire);
                let (epoch, members, routed) = route();
                let delivered = (deliver && routed.is_ok()).then(|| {
                    rt.deliver(*routed.as_ref().unwrap(), &Event::new("x"))
                        .map(drop)
                });
                Seen {
                    after_change,
                    epoch,
                    members,
                    routed,
                    delivered,
                }
            })
            .collect()
    })
}

/// Checks what the readers saw against the two published rosters; `gone`
/// are the members that must not be routed to once the change returned.
fn check(seen: &[Vec<Seen>], before: &[MemberInfo], after: &[MemberInfo], after_epoch: u64) {
    let published: BTreeMap<u64, &[MemberInfo]> =
        [(after_epoch - 1, before), (after_epoch, after)].into();
    let gone: Vec<u64> = before
        .iter()
        .filter(|b| {
            !after
                .iter()
                .any(|a| a.origin_hash == b.origin_hash && a.healthy)
        })
        .map(|b| b.origin_hash)
        .collect();
    for reader in seen {
        let mut last = 0;
        for s in reader {
            assert!(s.epoch >= last, "epoch went back: {reader:?}");
            last = s.epoch;
            let roster = published
                .get(&s.epoch)
                .unwrap_or_else(|| panic!("epoch {} was never published: {s:?}", s.epoch));
            if let Some(members) = &s.members {
                assert_eq!(
                    members, roster,
                    "a snapshot differs from the roster published"
                );
            }
            if s.routed == Err(GroupError::Removed) {
                assert!(
                    after.is_empty() && s.epoch == after_epoch,
                    "Removed on a roster the removal did not publish: {s:?}"
                );
                continue;
            }
            assert!(
                !(s.after_change && after.is_empty()),
                "routed on a removed group after remove returned: {s:?}"
            );
            let origin = *s.routed.as_ref().expect("a healthy member is always left");
            if s.members.is_some() {
                assert!(
                    roster.iter().any(|m| m.origin_hash == origin && m.healthy),
                    "routed to {origin:#x}, not a healthy member of its snapshot: {s:?}"
                );
            }
            if s.after_change {
                assert!(
                    !gone.contains(&origin),
                    "routed to a removed member after the change returned: {s:?}"
                );
            }
            match &s.delivered {
                None | Some(Ok(())) => {}
                Some(Err(DeliverError::UnknownOrigin(o))) if gone.contains(o) => {}
                Some(Err(e)) => panic!("delivery to a routed member failed: {e} ({s:?})"),
            }
        }
    }
}

/// `scale_to(to)` on a group of 2 (over `nodes` nodes) while the readers
/// route.
fn scaling(nodes: u64, to: u8, deliver: bool) {
    let (before, after) = race(nodes, 2, deliver, move |_, group| {
        group.scale_to(to).unwrap();
    });
    assert_eq!((before.len(), after.len()), (2, usize::from(to)));
}

/// Node 1, holding member 0 of a group of 2 (over `nodes` nodes), fails
/// while the readers route; `replaced` members find a new node.
fn node_failure(nodes: u64, replaced: usize, deliver: bool) -> (Vec<MemberInfo>, Vec<MemberInfo>) {
    race(nodes, 2, deliver, move |rt, _| {
        assert_eq!(rt.node_failed(1), Ok(replaced));
    })
}

/// Growth: the new member is registered before the roster naming it is
/// published, so every routed member can be delivered to.
#[test]
fn growth_publishes_only_registered_members() {
    model("growth", || scaling(3, 3, true));
}

/// Shrink: once `scale_to` returned, the removed member is never routed to;
/// until then, a reader may route to it and find it gone at delivery, which
/// `dispatch` re-routes.
#[test]
fn shrink_never_routes_to_removed_member_after_the_call_returns() {
    model("shrink", || scaling(2, 1, false));
}

/// Node failure with no free node: the member stays, unhealthy, and is
/// never routed to once `node_failed` returned.
#[test]
fn failed_node_member_is_never_routed_after_the_call_returns() {
    model("failed_node", || {
        let (_, after) = node_failure(2, 0, false);
        assert!(after.iter().any(|m| !m.healthy));
    });
}

/// Failover with a free node: the member moves with its identity, its
/// registry entry is swapped in one step, so a member routed to on either
/// roster can always be delivered to.
#[test]
fn failover_keeps_every_routed_member_deliverable() {
    model("failover", || {
        let (before, after) = node_failure(3, 1, true);
        assert_eq!(after[0].origin_hash, before[0].origin_hash);
        assert_ne!(after[0].node_id, before[0].node_id);
    });
}

/// Removal: a concurrent route sees a live member or `Removed`, never a
/// freed replica; once `remove` returned every route is `Removed`, and a
/// delivery to a member routed to before finds it gone (`UnknownOrigin`).
#[test]
fn removal_routes_see_a_live_member_or_removed() {
    model("removal", || {
        let (before, after) = race(2, 2, true, |_, group| group.remove().unwrap());
        assert_eq!(before.len(), 2);
        assert!(after.is_empty());
    });
}
