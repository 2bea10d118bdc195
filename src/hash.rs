//! The cheap, stable hashes of the route path: routing keys, sessions, zone
//! and tag names. xxh3 with a fixed seed gives the same value on every
//! machine; blake3 is for identities only.

/// Hashes a routing key, zone or tag name.
#[inline]
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Spreads a 64-bit value over 64 bits (splitmix64's finaliser), so that
/// sessions numbered 1, 2, 3… land on unrelated slots.
#[inline]
pub(crate) fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
