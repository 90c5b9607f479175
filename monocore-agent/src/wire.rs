//! The little-endian wire encoding shared by the run spec and the control
//! channel: fixed-size integers, length-prefixed strings (`u32` length,
//! then the bytes) and counted lists. The reader checks every length
//! against the bytes that remain before it allocates.

use std::fmt;

/// Why bytes could not be encoded or decoded.
///
/// It wraps no other error, so it has no [`source`](std::error::Error::source).
/// (`Display` and `Error` are written out rather than derived with
/// `thiserror`: this crate has no dependencies, because monocore's build
/// script compiles it with `rustc` alone for the static agent.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The bytes ended inside `field`.
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A string in `field` holds a NUL byte.
    Nul {
        /// The field.
        field: &'static str,
    },
    /// A length does not fit a `u32`.
    TooLong {
        /// The length.
        len: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { field } => write!(f, "the bytes end inside `{field}`"),
            Self::Nul { field } => write!(f, "a string in `{field}` holds a NUL byte"),
            Self::TooLong { len } => write!(
                f,
                "a count or length of {len} does not fit a u32 (at most {})",
                u32::MAX
            ),
        }
    }
}

impl std::error::Error for WireError {}

/// Appends encoded values to a buffer.
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn new(start: Vec<u8>) -> Self {
        Self(start)
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }

    pub(crate) fn u8(&mut self, n: u8) {
        self.0.push(n);
    }

    pub(crate) fn u16(&mut self, n: u16) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    pub(crate) fn u32(&mut self, n: u32) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    pub(crate) fn i32(&mut self, n: i32) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    /// A count or length, which must fit a `u32`.
    pub(crate) fn count(&mut self, n: usize) -> Result<(), WireError> {
        let n = u32::try_from(n).map_err(|_| WireError::TooLong { len: n })?;
        self.u32(n);
        Ok(())
    }

    /// Length-prefixed bytes (any bytes).
    pub(crate) fn bytes(&mut self, b: &[u8]) -> Result<(), WireError> {
        self.count(b.len())?;
        self.0.extend_from_slice(b);
        Ok(())
    }

    /// Length-prefixed bytes that must not hold a NUL (a future C string).
    pub(crate) fn string(&mut self, field: &'static str, s: &[u8]) -> Result<(), WireError> {
        if s.contains(&0) {
            return Err(WireError::Nul { field });
        }
        self.bytes(s)
    }

    /// A counted list of strings.
    pub(crate) fn strings(
        &mut self,
        field: &'static str,
        list: &[Vec<u8>],
    ) -> Result<(), WireError> {
        self.count(list.len())?;
        list.iter().try_for_each(|s| self.string(field, s))
    }
}

/// Reads encoded values from a byte slice.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// How many bytes are left.
    pub(crate) fn remaining(&self) -> usize {
        self.0.len()
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(WireError::Truncated { field })?;
        self.0 = rest;
        Ok(*head)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        self.take::<1>(field).map(|[b]| b)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        self.take::<2>(field).map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        self.take::<4>(field).map(u32::from_le_bytes)
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, WireError> {
        self.take::<4>(field).map(i32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        self.take::<8>(field).map(u64::from_le_bytes)
    }

    /// Length-prefixed bytes (any bytes).
    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<Vec<u8>, WireError> {
        let len = usize::try_from(self.u32(field)?).map_err(|_| WireError::Truncated { field })?;
        if len > self.0.len() {
            return Err(WireError::Truncated { field });
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(s.to_vec())
    }

    /// Length-prefixed bytes without a NUL.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<Vec<u8>, WireError> {
        let s = self.bytes(field)?;
        if s.contains(&0) {
            return Err(WireError::Nul { field });
        }
        Ok(s)
    }

    /// A list whose items take at least `min_item` bytes each: a count that
    /// the remaining bytes cannot hold is refused before any allocation.
    pub(crate) fn list<T>(
        &mut self,
        field: &'static str,
        min_item: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, WireError>,
    ) -> Result<Vec<T>, WireError> {
        let n = usize::try_from(self.u32(field)?).map_err(|_| WireError::Truncated { field })?;
        if n > self.0.len() / min_item.max(1) {
            return Err(WireError::Truncated { field });
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(item(self)?);
        }
        Ok(items)
    }

    /// A counted list of strings.
    pub(crate) fn strings(&mut self, field: &'static str) -> Result<Vec<Vec<u8>>, WireError> {
        self.list(field, 4, |r| r.string(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_which_field_or_length() {
        assert_eq!(
            WireError::Truncated { field: "args" }.to_string(),
            "the bytes end inside `args`"
        );
        assert_eq!(
            WireError::Nul { field: "env" }.to_string(),
            "a string in `env` holds a NUL byte"
        );
        assert_eq!(
            WireError::TooLong { len: 1 << 33 }.to_string(),
            "a count or length of 8589934592 does not fit a u32 (at most 4294967295)"
        );
    }
}
