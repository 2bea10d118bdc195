//! Checkpoints: the state placement depends on at one revision, encoded
//! canonically, sealed, and stored under `<prefix>/checkpoints/<revision>`.
//!
//! A checkpoint holds the writer's state (every node with its liveness;
//! every group's kind, seed, strategy, placement by index, unhealthy
//! indices, reported-failed nodes and term, in spawn order) and the feed's
//! own (node views, intents, pending intents). A runtime restored from it
//! makes exactly the choices the original makes on every later change.
//!
//! Stored value: `b"RRCP"`, a format byte (1), the 24-byte nonce, then the
//! canonical encoding sealed under the cluster secret with the checkpoint's
//! key as associated data. The digest two processes compare is BLAKE3 of
//! the canonical encoding.

use std::collections::{BTreeMap, BTreeSet};

use super::codec::{DecodeError, Decoder, Encoder};
use super::options::ClusterSecret;
use super::schema::{strategy_from_name, strategy_name, Intent};
use super::seal::{open, seal, Purpose, Sealed, NONCE_LEN};
use super::state::{FeedState, NodeView};
use super::status::FeedStats;
use crate::control::{GroupSnapshot, NodeState, WriterState};
use crate::NodeInfo;

const MAGIC: &[u8; 4] = b"RRCP";
const FORMAT: u8 = 1;

/// Everything placement depends on, at `revision`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub(crate) revision: i64,
    pub(crate) writer: WriterState,
    pub(crate) feed: FeedState,
}

/// Why a stored checkpoint is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckpointError {
    Malformed(String),
    UnknownFormat(u8),
    Unopenable,
}

impl std::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointError::Malformed(why) => write!(f, "malformed checkpoint: {why}"),
            CheckpointError::UnknownFormat(v) => write!(f, "checkpoint of unknown format {v}"),
            CheckpointError::Unopenable => {
                f.write_str("checkpoint does not open under this secret")
            }
        }
    }
}

impl Checkpoint {
    /// The canonical encoding.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        e.i64(self.revision);
        e.len(self.writer.nodes.len());
        for node in &self.writer.nodes {
            encode_node(&mut e, &node.info);
            e.bool(node.alive);
        }
        e.len(self.writer.groups.len());
        for g in &self.writer.groups {
            e.str(&g.kind);
            e.raw(&g.seed);
            e.str(strategy_name(g.strategy));
            e.len(g.placement.len());
            g.placement.iter().for_each(|n| e.u64(*n));
            e.len(g.unhealthy.len());
            g.unhealthy.iter().for_each(|i| e.u8(*i));
            e.len(g.reported_failed.len());
            g.reported_failed.iter().for_each(|n| e.u64(*n));
            e.u64(g.term);
        }
        e.len(self.feed.nodes.len());
        for (id, view) in &self.feed.nodes {
            e.u64(*id);
            e.bool(view.present);
            e.bool(view.failed);
            e.i64(view.vanished_at);
        }
        for intents in [&self.feed.intents, &self.feed.pending] {
            e.len(intents.len());
            for (gid, intent) in intents {
                e.u32(*gid);
                e.str(&intent.kind);
                e.raw(&intent.seed);
                e.u8(intent.replica_count);
                e.str(strategy_name(intent.strategy));
            }
        }
        e.into_bytes()
    }

    /// Decodes a canonical encoding.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Checkpoint, DecodeError> {
        let mut d = Decoder::new(bytes);
        let revision = d.i64()?;
        let mut writer = WriterState::default();
        for _ in 0..d.len(14)? {
            let info = decode_node(&mut d)?;
            writer.nodes.push(NodeState {
                info,
                alive: d.bool()?,
            });
        }
        for _ in 0..d.len(60)? {
            let kind = d.str()?;
            let seed = d.seed()?;
            let strategy = strategy(&mut d)?;
            let placement = (0..d.len(8)?).map(|_| d.u64()).collect::<Result<_, _>>()?;
            let unhealthy = (0..d.len(1)?)
                .map(|_| d.u8())
                .collect::<Result<BTreeSet<_>, _>>()?;
            let reported_failed = (0..d.len(8)?)
                .map(|_| d.u64())
                .collect::<Result<BTreeSet<_>, _>>()?;
            writer.groups.push(GroupSnapshot {
                kind,
                seed,
                strategy,
                placement,
                unhealthy,
                reported_failed,
                term: d.u64()?,
            });
        }
        let mut feed = FeedState::default();
        for _ in 0..d.len(18)? {
            let id = d.u64()?;
            let view = NodeView {
                present: d.bool()?,
                failed: d.bool()?,
                vanished_at: d.i64()?,
            };
            feed.nodes.insert(id, view);
        }
        for intents in [&mut feed.intents, &mut feed.pending] {
            for _ in 0..d.len(45)? {
                let gid = d.u32()?;
                let intent = Intent {
                    kind: d.str()?,
                    seed: d.seed()?,
                    replica_count: d.u8()?,
                    strategy: strategy(&mut d)?,
                };
                intents.insert(gid, intent);
            }
        }
        d.finish()?;
        Ok(Checkpoint {
            revision,
            writer,
            feed,
        })
    }

    /// The digest processes compare: BLAKE3 of the canonical encoding.
    pub(crate) fn digest(encoded: &[u8]) -> [u8; 32] {
        *blake3::hash(encoded).as_bytes()
    }
}

fn encode_node(e: &mut Encoder, node: &NodeInfo) {
    e.u64(node.id());
    match node.zone() {
        Some(zone) => {
            e.bool(true);
            e.str(zone);
        }
        None => e.bool(false),
    }
    let tags: Vec<&str> = node.tags().collect();
    e.len(tags.len());
    tags.iter().for_each(|t| e.str(t));
    e.u32(node.weight());
}

fn decode_node(d: &mut Decoder<'_>) -> Result<NodeInfo, DecodeError> {
    let mut node = NodeInfo::new(d.u64()?);
    if d.bool()? {
        node = node.with_zone(&d.str()?);
    }
    for _ in 0..d.len(4)? {
        node = node.with_tag(&d.str()?);
    }
    Ok(node.with_weight(d.u32()?))
}

fn strategy(d: &mut Decoder<'_>) -> Result<crate::Strategy, DecodeError> {
    let name = d.str()?;
    strategy_from_name(&name).ok_or_else(|| format!("unknown strategy {name:?}"))
}

/// The stored form of an encoded checkpoint under `key`.
pub(crate) fn seal_checkpoint(secret: &ClusterSecret, key: &str, encoded: &[u8]) -> Vec<u8> {
    let sealed = seal(secret, Purpose::Checkpoint, key.as_bytes(), encoded);
    [&MAGIC[..], &[FORMAT], &sealed.nonce, &sealed.ciphertext].concat()
}

/// Opens a stored checkpoint: its canonical encoding.
pub(crate) fn open_checkpoint(
    secret: Option<&ClusterSecret>,
    key: &str,
    value: &[u8],
) -> Result<Vec<u8>, CheckpointError> {
    let header = MAGIC.len() + 1 + NONCE_LEN;
    if value.len() < header || &value[..MAGIC.len()] != MAGIC {
        return Err(CheckpointError::Malformed("no checkpoint header".into()));
    }
    if value[MAGIC.len()] != FORMAT {
        return Err(CheckpointError::UnknownFormat(value[MAGIC.len()]));
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&value[MAGIC.len() + 1..header]);
    let sealed = Sealed {
        nonce,
        ciphertext: value[header..].to_vec(),
    };
    let secret = secret.ok_or(CheckpointError::Unopenable)?;
    open(secret, Purpose::Checkpoint, key.as_bytes(), &sealed).ok_or(CheckpointError::Unopenable)
}

/// Opens and decodes a stored checkpoint, checking it is for `revision`.
pub(crate) fn load_checkpoint(
    secret: Option<&ClusterSecret>,
    key: &str,
    revision: i64,
    value: &[u8],
) -> Result<Checkpoint, CheckpointError> {
    let encoded = open_checkpoint(secret, key, value)?;
    let checkpoint = Checkpoint::decode(&encoded).map_err(CheckpointError::Malformed)?;
    if checkpoint.revision != revision {
        return Err(CheckpointError::Malformed(format!(
            "checkpoint of revision {} under the key of {revision}",
            checkpoint.revision
        )));
    }
    Ok(checkpoint)
}

/// Keeps the digests of this process's own last checkpoints, to verify the
/// ones other processes write.
#[derive(Debug, Default)]
pub(crate) struct OwnDigests {
    recent: BTreeMap<i64, [u8; 32]>,
}

impl OwnDigests {
    const KEPT: usize = 16;

    pub(crate) fn insert(&mut self, revision: i64, digest: [u8; 32]) {
        self.recent.insert(revision, digest);
        while self.recent.len() > Self::KEPT {
            self.recent.pop_first();
        }
    }

    /// Opens a stored checkpoint and compares it with this process's own
    /// digest at its revision, counting the outcome in `stats`.
    pub(crate) fn verify(
        &self,
        secret: Option<&ClusterSecret>,
        revision: i64,
        key: &str,
        value: &[u8],
        stats: &mut FeedStats,
    ) {
        let encoded = match open_checkpoint(secret, key, value) {
            Ok(encoded) => encoded,
            Err(e) => {
                stats.checkpoints_refused += 1;
                tracing::warn!(revision, %e, "checkpoint refused");
                return;
            }
        };
        match self.recent.get(&revision) {
            Some(own) if *own == Checkpoint::digest(&encoded) => stats.checkpoints_verified += 1,
            Some(_) => {
                stats.checkpoint_mismatches += 1;
                tracing::error!(
                    revision,
                    "checkpoint differs from this process's state at its revision: processes disagree"
                );
            }
            None => tracing::debug!(
                revision,
                "checkpoint from before this process's own, not verified"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Strategy;

    fn sample() -> Checkpoint {
        let mut writer = WriterState::default();
        writer.nodes.push(NodeState {
            info: NodeInfo::new(1)
                .with_zone("a")
                .with_tag("gpu")
                .with_weight(7),
            alive: true,
        });
        writer.groups.push(GroupSnapshot {
            kind: "echo".into(),
            seed: [3; 32],
            strategy: Strategy::ConsistentHash,
            placement: vec![1, 2],
            unhealthy: [1].into(),
            reported_failed: [9].into(),
            term: 4,
        });
        let mut feed = FeedState::default();
        feed.nodes.insert(
            1,
            NodeView {
                present: true,
                failed: false,
                vanished_at: 0,
            },
        );
        let intent = Intent {
            kind: "echo".into(),
            seed: [3; 32],
            replica_count: 2,
            strategy: Strategy::ConsistentHash,
        };
        feed.intents.insert(5, intent.clone());
        feed.pending.insert(6, intent);
        Checkpoint {
            revision: 77,
            writer,
            feed,
        }
    }

    #[test]
    fn checkpoints_round_trip_canonically_and_sealed() {
        let cp = sample();
        let bytes = cp.encode();
        assert_eq!(Checkpoint::decode(&bytes), Ok(cp.clone()));
        assert_eq!(Checkpoint::decode(&bytes).unwrap().encode(), bytes);
        let secret = ClusterSecret::new([5; 32]);
        let stored = seal_checkpoint(&secret, "/rr/checkpoints/77", &bytes);
        assert!(
            !stored.windows(32).any(|w| w == [3; 32]),
            "the seed is sealed"
        );
        assert_eq!(
            load_checkpoint(Some(&secret), "/rr/checkpoints/77", 77, &stored),
            Ok(cp)
        );
        assert_eq!(
            load_checkpoint(Some(&secret), "/rr/checkpoints/78", 78, &stored),
            Err(CheckpointError::Unopenable)
        );
        let mut future = stored.clone();
        future[4] = 2;
        assert_eq!(
            load_checkpoint(Some(&secret), "/rr/checkpoints/77", 77, &future),
            Err(CheckpointError::UnknownFormat(2))
        );
        for cut in [0, 10, bytes.len() - 1] {
            assert!(Checkpoint::decode(&bytes[..cut]).is_err());
        }
    }
}
