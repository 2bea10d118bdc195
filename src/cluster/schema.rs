//! What lives under the cluster prefix in etcd, and how it parses.
//!
//! ```text
//! <prefix>/nodes/<id>                 NodeRecord, JSON, under the node's lease
//! <prefix>/failed/<id>                the node's failure, decided (JSON)
//! <prefix>/groups/<group id>          a group intent, JSON, its seed sealed
//! <prefix>/checkpoints/<revision>     a sealed checkpoint (binary, see checkpoint)
//! ```
//!
//! Every JSON record carries `"schema": 1`; a record of any other version is
//! refused (counted and logged, never applied), so a newer writer cannot be
//! misread by an older reader. Strategies are stored by explicit names
//! (`"round_robin"`, `"consistent_hash"`, ...), never by `Debug` text. A
//! group record looks like
//!
//! ```json
//! {"schema":1,"kind":"echo","replica_count":3,"strategy":"round_robin",
//!  "seed":{"aead":"xchacha20poly1305","nonce":"<48 hex>","sealed":"<96 hex>"}}
//! ```
//!
//! where `sealed` is the 32-byte seed sealed under the cluster secret with
//! the record's own key as associated data (see the `seal` module).
//!
//! A node's key vanishing (its lease expired) is not yet its failure: after
//! the debounce window some process writes the failure marker, in a
//! transaction that checks the node is still absent. Every process applies
//! the marker, not the vanishing, so all of them fail the node at the same
//! revision, and a node back within the window is never failed at all.

use serde::{Deserialize, Serialize};

use super::options::ClusterSecret;
use super::seal::{open, seal, Purpose, Sealed, NONCE_LEN};
use crate::{NodeInfo, Strategy};

/// The version of every record this crate writes, and the only one it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The AEAD name in a sealed seed.
const AEAD: &str = "xchacha20poly1305";

/// A node as its process registers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Always [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Node id.
    pub id: u64,
    /// Zone, if any.
    #[serde(default)]
    pub zone: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Weight.
    pub weight: u32,
    /// A random id of the process holding the node, to tell two processes
    /// claiming one node id apart.
    pub instance: String,
}

impl NodeRecord {
    /// The record of `node`, held by process `instance`.
    pub fn new(node: &NodeInfo, instance: &str) -> Self {
        NodeRecord {
            schema: SCHEMA_VERSION,
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

    /// The record as stored in etcd.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The decision that a node failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FailureMarker {
    pub(crate) schema: u32,
    /// The revision at which the node's key vanished.
    pub(crate) vanished_at: i64,
}

impl FailureMarker {
    pub(crate) fn new(vanished_at: i64) -> Self {
        FailureMarker {
            schema: SCHEMA_VERSION,
            vanished_at,
        }
    }
}

/// A sealed seed as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SealedSeed {
    aead: String,
    nonce: String,
    sealed: String,
}

/// A group intent as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct GroupRecord {
    schema: u32,
    kind: String,
    replica_count: u8,
    strategy: String,
    seed: SealedSeed,
}

/// A group every router process spawns and keeps at `replica_count`, as the
/// feed knows it (the seed opened).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Intent {
    pub(crate) kind: String,
    pub(crate) seed: [u8; 32],
    pub(crate) replica_count: u8,
    pub(crate) strategy: Strategy,
}

impl std::fmt::Debug for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intent")
            .field("kind", &self.kind)
            .field("seed", &"<redacted>")
            .field("replica_count", &self.replica_count)
            .field("strategy", &self.strategy)
            .finish()
    }
}

/// Why a stored value is not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordError {
    /// Not a record of ours: bad JSON, a missing field, a wrong id.
    Malformed(String),
    /// A record of a schema version this crate does not know.
    UnknownVersion(u64),
    /// A sealed value this process cannot open (no secret, the wrong
    /// secret, moved from another key, or altered).
    Unopenable(String),
}

#[derive(Deserialize)]
struct Versioned {
    schema: Option<u64>,
}

/// Parses a JSON record of the current schema version.
fn parse<T: for<'de> Deserialize<'de>>(what: &str, value: &[u8]) -> Result<T, RecordError> {
    let malformed = |e: serde_json::Error| RecordError::Malformed(format!("{what}: {e}"));
    match serde_json::from_slice::<Versioned>(value)
        .map_err(malformed)?
        .schema
    {
        None => return Err(RecordError::Malformed(format!("{what}: no schema version"))),
        Some(v) if v != u64::from(SCHEMA_VERSION) => return Err(RecordError::UnknownVersion(v)),
        Some(_) => {}
    }
    serde_json::from_slice(value).map_err(malformed)
}

pub(crate) fn decode_node(value: &[u8]) -> Result<NodeRecord, RecordError> {
    parse("node record", value)
}

pub(crate) fn decode_marker(value: &[u8]) -> Result<FailureMarker, RecordError> {
    parse("failure marker", value)
}

/// The stored form of `intent` under `key`, its seed sealed.
pub(crate) fn encode_intent(secret: &ClusterSecret, key: &str, intent: &Intent) -> Vec<u8> {
    let sealed = seal(secret, Purpose::Seed, key.as_bytes(), &intent.seed);
    let record = GroupRecord {
        schema: SCHEMA_VERSION,
        kind: intent.kind.clone(),
        replica_count: intent.replica_count,
        strategy: strategy_name(intent.strategy).to_owned(),
        seed: SealedSeed {
            aead: AEAD.to_owned(),
            nonce: to_hex(&sealed.nonce),
            sealed: to_hex(&sealed.ciphertext),
        },
    };
    serde_json::to_vec(&record).unwrap_or_default()
}

/// The intent stored under `key`, its seed opened with `secret`.
pub(crate) fn decode_intent(
    secret: Option<&ClusterSecret>,
    key: &str,
    value: &[u8],
) -> Result<Intent, RecordError> {
    let record: GroupRecord = parse("group record", value)?;
    let strategy = strategy_from_name(&record.strategy)
        .ok_or_else(|| RecordError::Malformed(format!("unknown strategy {:?}", record.strategy)))?;
    if record.seed.aead != AEAD {
        return Err(RecordError::Malformed(format!(
            "seed sealed with unknown AEAD {:?}",
            record.seed.aead
        )));
    }
    let nonce: [u8; NONCE_LEN] = from_hex(&record.seed.nonce)
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| RecordError::Malformed("seed nonce is not 24 hex bytes".into()))?;
    let ciphertext = from_hex(&record.seed.sealed)
        .ok_or_else(|| RecordError::Malformed("sealed seed is not hex".into()))?;
    let secret = secret.ok_or_else(|| RecordError::Unopenable("no cluster secret".into()))?;
    let sealed = Sealed { nonce, ciphertext };
    let seed: [u8; 32] = open(secret, Purpose::Seed, key.as_bytes(), &sealed)
        .ok_or_else(|| {
            RecordError::Unopenable("the seed does not open under this secret and key".into())
        })?
        .try_into()
        .map_err(|_| RecordError::Malformed("the sealed seed is not 32 bytes".into()))?;
    Ok(Intent {
        kind: record.kind,
        seed,
        replica_count: record.replica_count,
        strategy,
    })
}

/// The stored name of `strategy`.
pub fn strategy_name(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::RoundRobin => "round_robin",
        Strategy::Random => "random",
        Strategy::WeightedRoundRobin => "weighted_round_robin",
        Strategy::WeightedRandom => "weighted_random",
        Strategy::LeastConnections => "least_connections",
        Strategy::WeightedLeastConnections => "weighted_least_connections",
        Strategy::PowerOfTwo => "power_of_two",
        Strategy::ConsistentHash => "consistent_hash",
        Strategy::LeastLatency => "least_latency",
        Strategy::LeastLoad => "least_load",
        Strategy::Adaptive => "adaptive",
    }
}

/// The strategy stored as `name`, if it is one.
pub fn strategy_from_name(name: &str) -> Option<Strategy> {
    Strategy::ALL
        .into_iter()
        .find(|s| strategy_name(*s) == name)
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let s = text.as_bytes();
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// One key under the prefix, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    Node(u64),
    Failed(u64),
    Group(u32),
    Checkpoint(i64),
}

/// Classifies `key`, or says why it is not ours.
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
        "checkpoints" => i64::try_from(number(id)?)
            .map(Key::Checkpoint)
            .map_err(|_| format!("key {key:?}: revision out of range")),
        _ => Err(format!("key {key:?} is of no known kind")),
    }
}

/// The prefix every key of the cluster starts with (with its slash, so that
/// `/rr` does not also watch `/rr2`).
pub(crate) fn watch_prefix(prefix: &str) -> String {
    format!("{prefix}/")
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

/// Where checkpoints live; zero-padded revisions sort in revision order.
pub(crate) fn checkpoints_prefix(prefix: &str) -> String {
    format!("{prefix}/checkpoints/")
}

/// The key of the checkpoint at `revision`.
pub(crate) fn checkpoint_key(prefix: &str, revision: i64) -> String {
    format!("{prefix}/checkpoints/{revision:020}")
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
