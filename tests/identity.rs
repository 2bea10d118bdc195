//! Guarantee 2 of the crate docs: deterministic identities, and secrets never printed.

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use replica_router::*;
use replica_router_testkit::support::*;

/// Independent recomputation of the identity formula in guarantee 2.
fn expected(seed: &[u8; 32], index: u8) -> ([u8; 32], [u8; 32], u64) {
    let mut material = Vec::with_capacity(33);
    material.extend_from_slice(seed);
    material.push(index);
    let secret = blake3::derive_key("replica-router v1 replica", &material);
    let public = SigningKey::from_bytes(&secret).verifying_key().to_bytes();
    let digest = blake3::derive_key("replica-router v1 origin", &public);
    let origin = u64::from_le_bytes(digest[..8].try_into().unwrap());
    (secret, public, origin)
}

fn expected_group_id(seed: &[u8; 32]) -> u32 {
    u32::from_le_bytes(blake3::hash(seed).as_bytes()[..4].try_into().unwrap())
}

/// A seed whose renderings are easy to spot: bytes 0xA0..=0xBF.
fn distinctive_seed() -> [u8; 32] {
    std::array::from_fn(|i| 0xA0 + i as u8)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every way `bytes` could appear in Debug output: lower/upper hex, and the
/// decimal list `Debug` of an array produces (compact and pretty).
fn assert_not_rendered(text: &str, bytes: &[u8], what: &str) {
    let squashed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let lower = hex(bytes);
    assert!(
        !text.contains(&lower),
        "{what} shows lower-case hex: {text}"
    );
    assert!(
        !text.contains(&lower.to_uppercase()),
        "{what} shows upper-case hex: {text}"
    );
    // A run of six bytes is enough to identify a leak in either rendering.
    for window in bytes.windows(6) {
        let decimal: Vec<String> = window.iter().map(u8::to_string).collect();
        let decimal = decimal.join(",");
        assert!(
            !squashed.contains(&decimal),
            "{what} shows decimal bytes {decimal}: {text}"
        );
        let h = hex(window);
        assert!(!text.contains(&h), "{what} shows hex run {h}: {text}");
    }
}

#[test]
fn identity_matches_the_documented_derivation() {
    for s in [seed(0), seed(7), distinctive_seed()] {
        for index in [0u8, 1, 2, 17, 254, 255] {
            let id = derive_replica_identity(&s, index);
            let (_, public, origin) = expected(&s, index);
            assert_eq!(id.entity_id(), public, "entity id of {index}");
            assert_eq!(id.origin_hash(), origin, "origin hash of {index}");
            assert_eq!(id.index(), index);
            assert_eq!(id.verifying_key().to_bytes(), public);
        }
    }
}

#[test]
fn same_inputs_give_same_identity_and_different_inputs_differ() {
    let s = distinctive_seed();
    let a = derive_replica_identity(&s, 3);
    let b = derive_replica_identity(&s, 3);
    assert_eq!(a.origin_hash(), b.origin_hash());
    assert_eq!(a.entity_id(), b.entity_id());
    let mut hashes = std::collections::HashSet::new();
    for index in 0..=255u8 {
        assert!(hashes.insert(derive_replica_identity(&s, index).origin_hash()));
    }
    assert_ne!(
        derive_replica_identity(&seed(1), 0).origin_hash(),
        derive_replica_identity(&seed(2), 0).origin_hash()
    );
}

#[test]
fn identity_signs_with_the_derived_key() {
    let s = distinctive_seed();
    let id = derive_replica_identity(&s, 5);
    let (secret, public, _) = expected(&s, 5);
    let msg = b"replica five says hello";
    let sig = id.sign(msg);
    let vk = VerifyingKey::from_bytes(&public).unwrap();
    vk.verify(msg, &sig)
        .expect("signature verifies under the entity id");
    // ed25519 signatures are deterministic: the independently derived key
    // produces the very same signature.
    assert_eq!(SigningKey::from_bytes(&secret).sign(msg), sig);
}

#[test]
fn group_id_is_first_four_le_bytes_of_blake3_of_seed() {
    let rt = runtime(3, 1);
    for b in [1u8, 2, 0xA5] {
        let g = ReplicaGroup::spawn(&rt, "echo", config(2, b, Strategy::RoundRobin)).unwrap();
        assert_eq!(g.group_id(), expected_group_id(&seed(b)));
    }
    rt.shutdown();
}

#[test]
fn spawned_members_carry_the_derived_identities() {
    let rt = runtime(5, 2);
    let s = distinctive_seed();
    let with_seed = ReplicaGroupConfig {
        group_seed: s,
        ..config(5, 0, Strategy::RoundRobin)
    };
    let g = ReplicaGroup::spawn(&rt, "echo", with_seed).unwrap();
    for m in g.replicas() {
        let (_, public, origin) = expected(&s, m.index);
        assert_eq!(m.entity_id_bytes, public);
        assert_eq!(m.origin_hash, origin);
    }
    rt.shutdown();
}

#[test]
fn identity_survives_a_second_runtime() {
    // "on every machine": two independent runtimes give the same members.
    let a = runtime(4, 2);
    let b = runtime(4, 2);
    let ga = ReplicaGroup::spawn(&a, "echo", config(3, 9, Strategy::RoundRobin)).unwrap();
    let gb = ReplicaGroup::spawn(&b, "echo", config(3, 9, Strategy::RoundRobin)).unwrap();
    assert_eq!(ga.replicas(), gb.replicas());
    assert_eq!(ga.group_id(), gb.group_id());
    a.shutdown();
    b.shutdown();
}

#[test]
fn config_debug_redacts_the_seed() {
    let s = distinctive_seed();
    let cfg = ReplicaGroupConfig {
        replica_count: 3,
        group_seed: s,
        lb_strategy: Strategy::ConsistentHash,
        host_config: DaemonHostConfig::default(),
    };
    for text in [format!("{cfg:?}"), format!("{cfg:#?}")] {
        assert_not_rendered(&text, &s, "ReplicaGroupConfig Debug");
        assert!(text.contains("replica_count"), "{text}");
        assert!(text.contains("ConsistentHash"), "{text}");
    }
}

#[test]
fn identity_debug_shows_no_secret_and_no_seed() {
    let s = distinctive_seed();
    for index in [0u8, 200] {
        let id = derive_replica_identity(&s, index);
        let (secret, public, origin) = expected(&s, index);
        for text in [format!("{id:?}"), format!("{id:#?}")] {
            assert_not_rendered(&text, &secret, "ReplicaIdentity Debug (signing key)");
            assert_not_rendered(&text, &s, "ReplicaIdentity Debug (seed)");
            assert!(
                text.contains(&format!("{origin:x}")),
                "Debug shows the origin hash: {text}"
            );
            assert!(
                text.contains(&hex(&public)),
                "Debug shows the public key: {text}"
            );
        }
    }
}

#[test]
fn group_member_and_runtime_debug_show_no_secret() {
    let rt = runtime(4, 2);
    let s = distinctive_seed();
    let with_seed = ReplicaGroupConfig {
        group_seed: s,
        ..config(3, 0, Strategy::RoundRobin)
    };
    let g = ReplicaGroup::spawn(&rt, "echo", with_seed).unwrap();
    let mut texts = vec![
        format!("{g:?}"),
        format!("{g:#?}"),
        format!("{rt:?}"),
        format!("{:?}", g.router()),
    ];
    for m in g.replicas() {
        texts.push(format!("{m:?}"));
        texts.push(format!("{m:#?}"));
        let (secret, _, _) = expected(&s, m.index);
        for t in &texts {
            assert_not_rendered(t, &secret, "Debug output (signing key)");
        }
    }
    for t in &texts {
        assert_not_rendered(t, &s, "Debug output (seed)");
    }
    rt.shutdown();
}
