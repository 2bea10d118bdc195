//! What lives under the cluster prefix in etcd, and how it parses.
//!
//! ```text
//! <prefix>/nodes/<id>    NodeRecord as JSON, under the node's lease
//! <prefix>/failed/<id>   FailureMarker as JSON: the node's failure, decided
//! <prefix>/groups/<gid>  GroupIntent as JSON: kind, seed, replica count, strategy
//! ```
//!
//! A node's key vanishing (its lease expired) is not yet its failure: after
//! the debounce window some process writes the failure marker, in a
//! transaction that checks the node is still absent. Every process applies
//! the marker, not the vanishing, so all of them fail the node at the same
//! revision, and a node back within the window is never failed at all.

use serde::{Deserialize, Serialize};

use crate::{NodeInfo, Strategy};

/// A node as its process registers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Node id.
    pub id: u64,
    /// Zone, if any.
    #[serde(default)]
    pub zone: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Weight (default 100).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// A random id of the process holding the node, to tell two processes
    /// claiming one node id apart.
    pub instance: String,
}

fn default_weight() -> u32 {
    crate::DEFAULT_NODE_WEIGHT
}

impl NodeRecord {
    /// The record of `node`, held by process `instance`.
    pub fn new(node: &NodeInfo, instance: &str) -> Self {
        NodeRecord {
            id: node.id(),
            zone: node.zone().map(str::to_owned),
            tags: node.tags().map(str::to_owned).collect(),
            weight: node.weight(),
            instance: instance.to_owned(),
        }
    }

    /// The node it describes.
    pub fn node_info(&self) -> NodeInfo {
        let mut node = NodeInfo::new(self.id).with_weight(self.weight);
        if let Some(zone) = &self.zone {
            node = node.with_zone(zone);
        }
        self.tags.iter().fold(node, |n, t| n.with_tag(t))
    }
}

/// The decision that a node failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureMarker {
    /// The revision at which the node's key vanished.
    pub vanished_at: i64,
}

/// A group every router process spawns and keeps at `replica_count`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupIntent {
    /// Daemon kind.
    pub kind: String,
    /// The 32-byte group seed, hex.
    pub seed: String,
    /// Replica count.
    pub replica_count: u8,
    /// Strategy name, as in `Strategy`'s `Debug` (e.g. `"RoundRobin"`).
    pub strategy: String,
}

impl std::fmt::Debug for GroupIntent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupIntent")
            .field("kind", &self.kind)
            .field("seed", &"<redacted>")
            .field("replica_count", &self.replica_count)
            .field("strategy", &self.strategy)
            .finish()
    }
}

impl GroupIntent {
    /// The intent of a group of `kind` with `seed`, `count` replicas and `strategy`.
    pub fn new(kind: &str, seed: &[u8; 32], count: u8, strategy: Strategy) -> Self {
        GroupIntent {
            kind: kind.to_owned(),
            seed: seed.iter().map(|b| format!("{b:02x}")).collect(),
            replica_count: count,
            strategy: format!("{strategy:?}"),
        }
    }

    /// The seed, or why it is not 64 hex digits.
    pub fn seed_bytes(&self) -> Result<[u8; 32], String> {
        let s = self.seed.as_bytes();
        if s.len() != 64 {
            return Err(format!("seed has {} hex digits, not 64", s.len()));
        }
        let mut seed = [0u8; 32];
        for (i, pair) in s.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| "seed is not hex".to_owned())?;
            seed[i] = u8::from_str_radix(text, 16)
                .map_err(|_| format!("seed digit {text:?} is not hex"))?;
        }
        Ok(seed)
    }

    /// The strategy, or why the name is unknown.
    pub fn strategy(&self) -> Result<Strategy, String> {
        Strategy::ALL
            .into_iter()
            .find(|s| format!("{s:?}") == self.strategy)
            .ok_or_else(|| format!("unknown strategy {:?}", self.strategy))
    }
}

/// One key under the prefix, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    Node(u64),
    Failed(u64),
    Group(u32),
}

/// Classifies `key` (with `prefix` stripped), or says why it is not ours.
pub(crate) fn parse_key(prefix: &str, key: &[u8]) -> Result<Key, String> {
    let key = std::str::from_utf8(key).map_err(|_| "key is not UTF-8".to_owned())?;
    let rest = key
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| format!("key {key:?} is outside prefix {prefix:?}"))?;
    let (kind, id) = rest
        .split_once('/')
        .ok_or_else(|| format!("key {key:?} has no id"))?;
    let number = |id: &str| {
        id.parse::<u64>()
            .map_err(|_| format!("key {key:?}: id {id:?} is not a number"))
    };
    match kind {
        "nodes" => number(id).map(Key::Node),
        "failed" => number(id).map(Key::Failed),
        "groups" => u32::try_from(number(id)?)
            .map(Key::Group)
            .map_err(|_| format!("key {key:?}: group id out of range")),
        _ => Err(format!("key {key:?} is of no known kind")),
    }
}

/// The key of node `id`.
pub(crate) fn node_key(prefix: &str, id: u64) -> String {
    format!("{prefix}/nodes/{id}")
}

/// The failure marker key of node `id`.
pub(crate) fn failed_key(prefix: &str, id: u64) -> String {
    format!("{prefix}/failed/{id}")
}

/// The intent key of group `group_id`.
pub(crate) fn group_key(prefix: &str, group_id: u32) -> String {
    format!("{prefix}/groups/{group_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        assert_eq!(
            parse_key("/rr", node_key("/rr", 7).as_bytes()),
            Ok(Key::Node(7))
        );
        assert_eq!(
            parse_key("/rr", failed_key("/rr", 7).as_bytes()),
            Ok(Key::Failed(7))
        );
        assert_eq!(
            parse_key("/rr", group_key("/rr", 9).as_bytes()),
            Ok(Key::Group(9))
        );
        assert!(parse_key("/rr", b"/rr/nodes/x").is_err());
        assert!(parse_key("/rr", b"/rr/what/1").is_err());
        assert!(parse_key("/rr", b"/other/nodes/1").is_err());
    }

    #[test]
    fn intents_round_trip_and_reject_bad_fields() {
        let intent = GroupIntent::new("echo", &[0xab; 32], 3, Strategy::LeastLoad);
        assert_eq!(intent.seed_bytes(), Ok([0xab; 32]));
        assert_eq!(intent.strategy(), Ok(Strategy::LeastLoad));
        let bad = GroupIntent {
            seed: "zz".repeat(32),
            strategy: "Fastest".into(),
            ..intent.clone()
        };
        assert!(bad.seed_bytes().is_err());
        assert!(bad.strategy().is_err());
        assert!(!format!("{intent:?}").contains("abab"));
    }

    #[test]
    fn node_records_round_trip() {
        let node = NodeInfo::new(3)
            .with_zone("z1")
            .with_tag("gpu")
            .with_weight(7);
        assert_eq!(NodeRecord::new(&node, "i").node_info(), node);
    }
}
