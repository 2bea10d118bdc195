//! Deterministic replica identities, derived only from `(group_seed, index)`.
//!
//! A replica destroyed on one node and re-created on another keeps its identity,
//! so its `origin_hash` (the routing address) never changes across failover.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

const REPLICA_CONTEXT: &str = "replica-router v1 replica";
const ORIGIN_CONTEXT: &str = "replica-router v1 origin";

/// The identity of replica `index` of a group: an ed25519 key pair and the
/// origin hash that routes to it.
///
/// The signing key is a secret: `Debug` shows the index, origin hash and public
/// key only.
#[derive(Clone)]
pub struct ReplicaIdentity {
    index: u8,
    signing_key: SigningKey,
    entity_id: [u8; 32],
    origin_hash: u64,
}

/// Derives the identity of replica `index` from the 32-byte group seed.
///
/// The signing key is `blake3::derive_key("replica-router v1 replica", seed ‖ index)`,
/// the entity id is its public key, and the origin hash is the first 8 bytes
/// (little-endian) of `blake3::derive_key("replica-router v1 origin", public key)`.
/// The same inputs give the same identity on every machine.
///
/// ```
/// use replica_router::derive_replica_identity;
/// let a = derive_replica_identity(&[7; 32], 0);
/// let b = derive_replica_identity(&[7; 32], 0);
/// assert_eq!(a.origin_hash(), b.origin_hash());
/// assert_ne!(a.origin_hash(), derive_replica_identity(&[7; 32], 1).origin_hash());
/// ```
pub fn derive_replica_identity(group_seed: &[u8; 32], index: u8) -> ReplicaIdentity {
    let mut material = [0u8; 33];
    material[..32].copy_from_slice(group_seed);
    material[32] = index;
    let secret = blake3::derive_key(REPLICA_CONTEXT, &material);
    let signing_key = SigningKey::from_bytes(&secret);
    let entity_id = signing_key.verifying_key().to_bytes();
    let digest = blake3::derive_key(ORIGIN_CONTEXT, &entity_id);
    let origin_hash = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    ReplicaIdentity {
        index,
        signing_key,
        entity_id,
        origin_hash,
    }
}

/// The group id of a seed: the first 4 bytes (little-endian) of `blake3::hash(seed)`.
pub(crate) fn group_id_of(group_seed: &[u8; 32]) -> u32 {
    let digest = blake3::hash(group_seed);
    u32::from_le_bytes(digest.as_bytes()[..4].try_into().expect("4 bytes"))
}

impl ReplicaIdentity {
    /// The replica's index in its group.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The 64-bit routing address of the replica.
    pub fn origin_hash(&self) -> u64 {
        self.origin_hash
    }

    /// The entity id: the replica's 32-byte ed25519 public key.
    pub fn entity_id(&self) -> [u8; 32] {
        self.entity_id
    }

    /// The replica's public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing_key.verifying_key()
    }

    /// Signs `message` with the replica's key; verify with [`Self::verifying_key`].
    pub fn sign(&self, message: &[u8]) -> ed25519_dalek::Signature {
        self.signing_key.sign(message)
    }
}

impl fmt::Debug for ReplicaIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaIdentity")
            .field("index", &self.index)
            .field("origin_hash", &format_args!("{:#018x}", self.origin_hash))
            .field("entity_id", &Hex(&self.entity_id))
            .finish_non_exhaustive()
    }
}

/// Lower-case hex of a byte string, for `Debug` output.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}
