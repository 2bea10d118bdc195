//! Seeded pseudo-random numbers and bytes, and the inputs `arbitrary`
//! builds from them: the fuzz targets' logic, run on stable.

use std::fs;
use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};

/// xorshift64*: a small, fast, seeded generator. Scripts built from a seed
/// replay exactly; none of this is fit for secrets.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value, zero included).
    pub fn seeded(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `len` pseudo-random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next_u64() >> 56) as u8).collect()
    }
}

/// The value `arbitrary` builds from `data`, as a fuzz target's
/// `fuzz_target!(|input: T| ...)` receives it.
///
/// # Panics
///
/// When `T` cannot be built from `data`; the fuzz targets' inputs can be
/// built from any bytes.
pub fn from_bytes<T: for<'a> Arbitrary<'a>>(data: &[u8]) -> T {
    T::arbitrary_take_rest(Unstructured::new(data)).expect("any bytes build an input")
}

/// The value `arbitrary` builds from seed `seed`'s pseudo-random bytes:
/// between 64 and 64 + `spread` bytes of them (`spread` > 0), so that seeds
/// give inputs of every size up to that.
///
/// # Panics
///
/// As [`from_bytes`].
pub fn generate<T: for<'a> Arbitrary<'a>>(seed: u64, spread: usize) -> T {
    let len = 64 + (seed as usize).wrapping_mul(7919) % spread;
    from_bytes(&XorShift::seeded(seed).bytes(len))
}

/// The committed seed inputs of fuzz target `target`
/// (`fuzz/corpus/<target>/seed-*`, in name order): inputs coverage-guided
/// fuzzing found, replayed by the stable tests as regression inputs.
pub fn fuzz_seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut seeds: Vec<(String, Vec<u8>)> = entries
        .map(|entry| entry.expect("a readable corpus entry").path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            name.starts_with("seed-").then(|| {
                let data = fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
                (name, data)
            })
        })
        .collect();
    seeds.sort();
    seeds
}

/// The environment variable `name` as a number, or `default` when it is
/// unset or not a number: case counts, seeds, durations.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
