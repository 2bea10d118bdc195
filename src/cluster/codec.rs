//! A canonical binary encoding for checkpoints: fixed-width little-endian
//! integers and length-prefixed byte strings, written in one defined order.
//! The same state always encodes to the same bytes, so a digest of the
//! bytes compares two processes' states.
//!
//! Decoding trusts nothing: every length is checked against what is left
//! before anything is allocated, and trailing bytes are an error.

/// Writes values in order.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn i64(&mut self, v: i64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// A length: collections here are far below 2^32 elements.
    pub(crate) fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.bytes.extend_from_slice(v);
    }

    pub(crate) fn str(&mut self, v: &str) {
        self.len(v.len());
        self.raw(v.as_bytes());
    }
}

/// Reads values in the order they were written.
#[derive(Debug)]
pub(crate) struct Decoder<'a> {
    rest: &'a [u8],
}

/// Why bytes do not decode.
pub(crate) type DecodeError = String;

impl<'a> Decoder<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Decoder { rest: bytes }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(format!(
                "truncated: {n} bytes wanted, {} left",
                self.rest.len()
            ));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("{b} is not a boolean")),
        }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        self.array().map(i64::from_le_bytes)
    }

    pub(crate) fn seed(&mut self) -> Result<[u8; 32], DecodeError> {
        self.array()
    }

    /// A count of elements each at least `min_size` bytes long: refused if
    /// the rest cannot hold them, so a forged count allocates nothing.
    pub(crate) fn len(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size.max(1)) > self.rest.len() {
            return Err(format!(
                "a count of {n} does not fit in {} bytes",
                self.rest.len()
            ));
        }
        Ok(n)
    }

    pub(crate) fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.len(1)?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a string is not UTF-8".to_owned())
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes", self.rest.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_forged_lengths_are_refused() {
        let mut e = Encoder::default();
        e.u8(7);
        e.bool(true);
        e.u32(9);
        e.u64(u64::MAX);
        e.i64(-3);
        e.str("zone");
        let bytes = e.into_bytes();
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.u8(), Ok(7));
        assert_eq!(d.bool(), Ok(true));
        assert_eq!(d.u32(), Ok(9));
        assert_eq!(d.u64(), Ok(u64::MAX));
        assert_eq!(d.i64(), Ok(-3));
        assert_eq!(d.str().as_deref(), Ok("zone"));
        assert!(d.finish().is_ok());
        assert!(Decoder::new(&[0xff, 0xff, 0xff, 0xff]).str().is_err());
        assert!(Decoder::new(&[2]).bool().is_err());
        assert!(Decoder::new(&[1, 2]).u32().is_err());
        assert!(Decoder::new(&[1]).finish().is_err());
    }
}
