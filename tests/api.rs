//! The public API contract: everything reachable from the crate
//! root, and the trait bounds the contract promises.

use std::error::Error;
use std::fmt::{Debug, Display};

use replica_router::*;
use replica_router_testkit::support::*;

fn copy_debug_eq<T: Copy + Debug + PartialEq + Eq>() {}
fn clone_debug<T: Clone + Debug>() {}
fn error_type<T: Clone + Debug + Display + Error + Send + Sync + 'static>() {}
fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}
fn debug<T: Debug>() {}

#[test]
fn public_types_have_the_promised_traits() {
    copy_debug_eq::<Strategy>();
    copy_debug_eq::<GroupHealth>();
    clone_debug::<MemberInfo>();
    clone_debug::<RequestContext>();
    clone_debug::<ReplicaGroupConfig>();
    clone_debug::<NodeInfo>();
    clone_debug::<Event>();
    clone_debug::<DaemonHostConfig>();
    clone_debug::<ReplicaIdentity>();
    error_type::<GroupError>();
    error_type::<RuntimeError>();
    error_type::<DeliverError>();
    error_type::<DaemonError>();
    send_sync::<DaemonRuntime>();
    send_sync::<ReplicaGroup>();
    send_sync::<RequestContext>();
    send::<Router>();
    debug::<DaemonRuntime>();
    debug::<ReplicaGroup>();
    debug::<Router>();
    debug::<CapabilityFilter>();
    let _: RequestContext = Default::default();
    let _: DaemonHostConfig = Default::default();
    let _: CapabilityFilter = Default::default();
    let _: fn() -> DaemonRuntime = || DaemonRuntime::new(Vec::<NodeInfo>::new());
    let _clone: fn(&DaemonRuntime) -> DaemonRuntime = Clone::clone;
}

#[test]
fn signatures_match_the_contract() {
    let rt: DaemonRuntime = DaemonRuntime::new([NodeInfo::new(1).with_zone("a").with_tag("t")]);
    let r: Result<(), RuntimeError> = rt.register_factory("echo", || Box::new(Echo));
    r.unwrap();
    let r: Result<(), RuntimeError> = rt.start();
    r.unwrap();
    let _: bool = rt.is_ready();
    let r: Result<(), RuntimeError> = rt.add_node(NodeInfo::new(2).with_weight(50));
    r.unwrap();
    let g: ReplicaGroup = ReplicaGroup::spawn(
        &rt,
        "echo",
        ReplicaGroupConfig {
            replica_count: 2,
            group_seed: [3; 32],
            lb_strategy: Strategy::RoundRobin,
            host_config: DaemonHostConfig::default(),
        },
    )
    .unwrap();
    let _: &str = g.kind();
    let ctx = RequestContext::new()
        .with_routing_key(b"k")
        .with_session(1)
        .with_zone("a")
        .require_tag("t");
    let o: Result<u64, GroupError> = g.route_event(&ctx);
    let o = o.unwrap();
    let mut router: Router = g.router();
    let _: Result<u64, GroupError> = router.route(&ctx);
    let out: Result<Vec<bytes::Bytes>, DeliverError> = rt.deliver(o, &Event::new("x"));
    out.unwrap();
    let _: Result<(), GroupError> = g.scale_to(2);
    let _: Result<Vec<u8>, GroupError> = g.on_node_failure(99);
    g.on_node_recovery(99);
    let _: GroupHealth = g.health();
    let _: u32 = g.group_id();
    let members: Vec<MemberInfo> = g.replicas();
    let MemberInfo {
        index,
        origin_hash,
        node_id,
        entity_id_bytes,
        healthy,
    } = members[0].clone();
    let _: (u8, u64, u64, [u8; 32], bool) = (index, origin_hash, node_id, entity_id_bytes, healthy);
    let _: u8 = g.replica_count();
    let _: u8 = g.healthy_count();
    let _: u64 = g.term();
    let id: ReplicaIdentity = derive_replica_identity(&[3; 32], 0);
    let _: u64 = id.origin_hash();
    let _: [u8; 32] = id.entity_id();
    let _: Result<usize, RuntimeError> = rt.node_failed(1);
    let _: Result<usize, RuntimeError> = rt.node_recovered(1);
    let _: () = rt.shutdown();
    let _ = DaemonError::ProcessFailed("x".into());
    let _ = GroupError::NotReady;
    let _ = GroupError::FactoryNotFound(String::new());
    let _ = GroupError::InvalidConfig(String::new());
    let _ = GroupError::PlacementFailed(String::new());
    let _ = GroupError::RegistryFailed(String::new());
    let _ = GroupError::NoHealthyMember;
    let _ = GroupError::ShuttingDown;
}

#[test]
fn errors_display_in_lower_case_and_name_what_they_are_about() {
    let rt = runtime(1, 1);
    let e = ReplicaGroup::spawn(&rt, "nope", config(1, 1, Strategy::RoundRobin)).unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    let e = ReplicaGroup::spawn(&rt, "echo", config(2, 1, Strategy::RoundRobin)).unwrap_err();
    assert!(matches!(e, GroupError::PlacementFailed(_)));
    assert!(e.to_string().contains("echo"), "names the kind: {e}");
    let e = rt.node_failed(77).unwrap_err();
    assert!(e.to_string().contains("77"), "{e}");
    let e = rt.deliver(0xdead_beef, &Event::new("x")).unwrap_err();
    assert!(e.to_string().contains("deadbeef"), "{e}");
    for text in [
        GroupError::NoHealthyMember.to_string(),
        RuntimeError::UnknownNode(1).to_string(),
        DeliverError::UnknownOrigin(1).to_string(),
    ] {
        assert!(text.chars().next().unwrap().is_lowercase(), "{text}");
    }
    rt.shutdown();
}
