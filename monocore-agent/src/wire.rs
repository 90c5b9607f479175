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
    /// A tag or flag byte in `field` has a value its field does not know.
    BadTag {
        /// The field.
        field: &'static str,
        /// The byte found.
        tag: u8,
    },
    /// A list in `field` has more entries than its field allows.
    TooMany {
        /// The field.
        field: &'static str,
        /// How many entries it announces.
        count: usize,
        /// The most it may have.
        max: usize,
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
            Self::BadTag { field, tag } => write!(f, "`{field}` has the unknown tag {tag}"),
            Self::TooMany { field, count, max } => {
                write!(
                    f,
                    "`{field}` has {count} entries, at most {max} are allowed"
                )
            }
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

    /// A flag: 0 or 1.
    pub(crate) fn bool(&mut self, b: bool) {
        self.u8(u8::from(b));
    }

    /// The count of a list that may have at most `max` entries.
    pub(crate) fn count_max(
        &mut self,
        field: &'static str,
        n: usize,
        max: usize,
    ) -> Result<(), WireError> {
        if n > max {
            return Err(WireError::TooMany {
                field,
                count: n,
                max,
            });
        }
        self.count(n)
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

    /// A flag: 0 or 1, any other byte is [`WireError::BadTag`].
    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, WireError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(WireError::BadTag { field, tag }),
        }
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
        item: impl FnMut(&mut Self) -> Result<T, WireError>,
    ) -> Result<Vec<T>, WireError> {
        self.list_max(field, min_item, usize::MAX, item)
    }

    /// [`list`](Self::list) with at most `max` entries: a larger count is
    /// [`WireError::TooMany`], before any allocation.
    pub(crate) fn list_max<T>(
        &mut self,
        field: &'static str,
        min_item: usize,
        max: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, WireError>,
    ) -> Result<Vec<T>, WireError> {
        let n = usize::try_from(self.u32(field)?).map_err(|_| WireError::Truncated { field })?;
        if n > max {
            return Err(WireError::TooMany {
                field,
                count: n,
                max,
            });
        }
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
        assert_eq!(
            WireError::BadTag {
                field: "place",
                tag: 7
            }
            .to_string(),
            "`place` has the unknown tag 7"
        );
        assert_eq!(
            WireError::TooMany {
                field: "binds",
                count: 5000,
                max: 1024
            }
            .to_string(),
            "`binds` has 5000 entries, at most 1024 are allowed"
        );
    }

    #[test]
    fn flags_are_zero_or_one_and_a_list_over_its_maximum_is_refused_before_reading() {
        assert_eq!(Reader::new(&[1]).bool("f"), Ok(true));
        assert_eq!(
            Reader::new(&[2]).bool("f"),
            Err(WireError::BadTag { field: "f", tag: 2 })
        );
        let mut bytes = 3u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 12]);
        let read = Reader::new(&bytes).list_max("l", 4, 2, |r| r.u32("l"));
        assert_eq!(
            read,
            Err(WireError::TooMany {
                field: "l",
                count: 3,
                max: 2
            })
        );
        assert_eq!(
            Reader::new(&bytes).list_max("l", 4, 3, |r| r.u32("l")),
            Ok(vec![0, 0, 0])
        );
        let mut w = Writer::new(Vec::new());
        assert!(w.count_max("l", 3, 2).is_err());
        assert!(w.count_max("l", 2, 2).is_ok());
    }
}
