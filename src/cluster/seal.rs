//! Sealing under the cluster secret: XChaCha20-Poly1305 (RustCrypto's
//! `chacha20poly1305`) with a random 192-bit nonce per record, so nonces
//! never repeat in practice however many records one secret seals.
//!
//! The associated data names what is sealed and where: a domain string and
//! the record's etcd key. A sealed seed copied under another group's key, or
//! a checkpoint under another revision's key, does not open.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::options::ClusterSecret;

/// Nonce length of XChaCha20-Poly1305.
pub(crate) const NONCE_LEN: usize = 24;

/// What a sealed value is, bound into its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Seed,
    Checkpoint,
}

impl Purpose {
    fn domain(self) -> &'static [u8] {
        match self {
            Purpose::Seed => b"replica-router v1 sealed seed\0",
            Purpose::Checkpoint => b"replica-router v1 sealed checkpoint\0",
        }
    }
}

/// A sealed value: its nonce and the ciphertext with its tag.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Sealed {
    pub(crate) nonce: [u8; NONCE_LEN],
    pub(crate) ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({} bytes)", self.ciphertext.len())
    }
}

/// The AEAD key: derived from the secret, so the raw secret keys nothing.
fn cipher(secret: &ClusterSecret) -> XChaCha20Poly1305 {
    let key = blake3::derive_key("replica-router v1 cluster seal key", secret.bytes());
    XChaCha20Poly1305::new(&key.into())
}

fn aad(purpose: Purpose, key: &[u8]) -> Vec<u8> {
    [purpose.domain(), key].concat()
}

/// Seals `plaintext` for the etcd key `key`.
pub(crate) fn seal(
    secret: &ClusterSecret,
    purpose: Purpose,
    key: &[u8],
    plaintext: &[u8],
) -> Sealed {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let aad = aad(purpose, key);
    let ciphertext = cipher(secret)
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        // Encryption fails only past 2^38 bytes; nothing here comes close.
        .unwrap_or_default();
    Sealed {
        nonce: nonce.into(),
        ciphertext,
    }
}

/// Opens `sealed` as stored under `key`: `None` with the wrong secret, under
/// another key, or if anything was altered.
pub(crate) fn open(
    secret: &ClusterSecret,
    purpose: Purpose,
    key: &[u8],
    sealed: &Sealed,
) -> Option<Vec<u8>> {
    let aad = aad(purpose, key);
    cipher(secret)
        .decrypt(
            XNonce::from_slice(&sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &aad,
            },
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_secret_under_their_own_key() {
        let secret = ClusterSecret::new([1; 32]);
        let sealed = seal(&secret, Purpose::Seed, b"/rr/groups/1", b"seed");
        assert_eq!(
            open(&secret, Purpose::Seed, b"/rr/groups/1", &sealed).as_deref(),
            Some(&b"seed"[..])
        );
        assert!(open(
            &ClusterSecret::new([2; 32]),
            Purpose::Seed,
            b"/rr/groups/1",
            &sealed
        )
        .is_none());
        assert!(open(&secret, Purpose::Seed, b"/rr/groups/2", &sealed).is_none());
        assert!(open(&secret, Purpose::Checkpoint, b"/rr/groups/1", &sealed).is_none());
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert!(open(&secret, Purpose::Seed, b"/rr/groups/1", &altered).is_none());
        let again = seal(&secret, Purpose::Seed, b"/rr/groups/1", b"seed");
        assert_ne!(again.nonce, sealed.nonce, "a fresh nonce per record");
    }
}
