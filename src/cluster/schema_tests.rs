use super::*;

#[test]
fn keys_round_trip() {
    let p = "/rr";
    assert_eq!(parse_key(p, node_key(p, 7).as_bytes()), Ok(Key::Node(7)));
    assert_eq!(
        parse_key(p, failed_key(p, 7).as_bytes()),
        Ok(Key::Failed(7))
    );
    assert_eq!(parse_key(p, group_key(p, 9).as_bytes()), Ok(Key::Group(9)));
    assert_eq!(
        parse_key(p, checkpoint_key(p, 1234).as_bytes()),
        Ok(Key::Checkpoint(1234))
    );
    assert!(checkpoint_key(p, 99) < checkpoint_key(p, 100));
    assert!(parse_key(p, b"/rr/nodes/x").is_err());
    assert!(parse_key(p, b"/rr/what/1").is_err());
    assert!(parse_key(p, b"/other/nodes/1").is_err());
}

fn intent() -> Intent {
    Intent {
        kind: "echo".into(),
        seed: [0xab; 32],
        replica_count: 3,
        strategy: Strategy::LeastLoad,
    }
}

#[test]
fn intents_round_trip_sealed_and_bound_to_their_key() {
    let secret = ClusterSecret::new([9; 32]);
    let value = encode_intent(&secret, "/rr/groups/1", &intent());
    let text = String::from_utf8(value.clone()).unwrap();
    assert!(!text.contains(&to_hex(&[0xab; 32])), "{text}");
    assert!(text.contains("\"strategy\":\"least_load\""), "{text}");
    assert!(text.contains("\"schema\":1"), "{text}");
    assert_eq!(
        decode_intent(Some(&secret), "/rr/groups/1", &value),
        Ok(intent())
    );
    assert!(matches!(
        decode_intent(Some(&secret), "/rr/groups/2", &value),
        Err(RecordError::Unopenable(_))
    ));
    assert!(matches!(
        decode_intent(Some(&ClusterSecret::new([8; 32])), "/rr/groups/1", &value),
        Err(RecordError::Unopenable(_))
    ));
    assert!(matches!(
        decode_intent(None, "/rr/groups/1", &value),
        Err(RecordError::Unopenable(_))
    ));
    assert!(!format!("{:?}", intent()).contains("ab"));
}

#[test]
fn unknown_versions_and_bad_fields_are_refused() {
    let secret = ClusterSecret::new([9; 32]);
    let value = encode_intent(&secret, "/rr/groups/1", &intent());
    let text = String::from_utf8(value).unwrap();
    let v2 = text.replace("\"schema\":1", "\"schema\":2");
    assert_eq!(
        decode_intent(Some(&secret), "/rr/groups/1", v2.as_bytes()),
        Err(RecordError::UnknownVersion(2))
    );
    let bad = text.replace("least_load", "Fastest");
    assert!(matches!(
        decode_intent(Some(&secret), "/rr/groups/1", bad.as_bytes()),
        Err(RecordError::Malformed(_))
    ));
    assert!(matches!(
        decode_node(b"{not json"),
        Err(RecordError::Malformed(_))
    ));
    assert!(matches!(
        decode_node(br#"{"id":1,"weight":1,"instance":"x"}"#),
        Err(RecordError::Malformed(_))
    ));
    assert_eq!(
        decode_marker(br#"{"schema":7,"vanished_at":1}"#),
        Err(RecordError::UnknownVersion(7))
    );
}

#[test]
fn strategies_have_stable_names() {
    for s in Strategy::ALL {
        assert_eq!(strategy_from_name(strategy_name(s)), Some(s));
    }
    assert_eq!(strategy_name(Strategy::ConsistentHash), "consistent_hash");
}

#[test]
fn node_records_round_trip() {
    let node = NodeInfo::new(3)
        .with_zone("z1")
        .with_tag("gpu")
        .with_weight(7);
    let record = NodeRecord::new(&node, "i");
    assert_eq!(decode_node(&record.to_json()).unwrap().node_info(), node);
}
