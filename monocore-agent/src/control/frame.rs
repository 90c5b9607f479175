//! Frames: a message's bytes, its length checked against its kind's bound
//! before its body is read; and why a frame could not be read, encoded or
//! decoded.

use std::{
    fmt,
    io::{self, Read},
};

use super::{MAX_DATA, MAX_DATA_FRAME_LEN, MAX_FRAME_LEN};
use crate::wire::{Reader, WireError, Writer};

/// Why a frame could not be read, encoded or decoded.
#[derive(Debug)]
pub enum ControlError {
    /// Reading or writing the connection failed (the `source`).
    Io(io::Error),
    /// A frame announced more bytes than its kind may have.
    FrameTooLong {
        /// The announced length.
        len: usize,
    },
    /// A frame has no kind byte, or an unknown kind.
    UnknownKind {
        /// The kind byte (0 for an empty frame).
        kind: u8,
    },
    /// A frame's body does not decode (the `source` says why).
    Body(WireError),
    /// A frame's body has bytes after its fields.
    TrailingBytes,
    /// The connection ended in the middle of a frame.
    Truncated,
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(_) => f.write_str("reading or writing the control channel failed"),
            Self::FrameTooLong { len } => write!(f, "control frame of {len} bytes is too long"),
            Self::UnknownKind { kind } => write!(f, "control frame of unknown kind {kind:#04x}"),
            Self::Body(_) => f.write_str("malformed control frame"),
            Self::TrailingBytes => f.write_str("control frame with bytes after its fields"),
            Self::Truncated => f.write_str("control channel ended inside a frame"),
        }
    }
}

impl std::error::Error for ControlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Body(e) => Some(e),
            Self::FrameTooLong { .. }
            | Self::UnknownKind { .. }
            | Self::TrailingBytes
            | Self::Truncated => None,
        }
    }
}

impl From<WireError> for ControlError {
    fn from(e: WireError) -> Self {
        Self::Body(e)
    }
}

impl From<io::Error> for ControlError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

pub(super) fn frame(
    kind: u8,
    body: impl FnOnce(&mut Writer) -> Result<(), WireError>,
) -> Result<Vec<u8>, ControlError> {
    let mut w = Writer::new(vec![0, 0, 0, 0, kind]);
    body(&mut w)?;
    let mut bytes = w.finish();
    let len = u32::try_from(bytes.len() - 4)
        .map_err(|_| ControlError::FrameTooLong { len: bytes.len() })?;
    if let Some(head) = bytes.get_mut(..4) {
        head.copy_from_slice(&len.to_le_bytes());
    }
    Ok(bytes)
}

pub(super) fn done(r: &Reader<'_>) -> Result<(), ControlError> {
    if r.remaining() == 0 {
        Ok(())
    } else {
        Err(ControlError::TrailingBytes)
    }
}

/// How much of a frame's body is allocated before its bytes have arrived: a
/// full data frame (its length prefix and kind included).
const READ_PIECE: usize = MAX_DATA + 16;

/// Reads one frame: `None` at a clean end before its first byte. A length
/// above the limit for its kind (`large(kind)`: up to [`MAX_FRAME_LEN`],
/// else [`MAX_DATA_FRAME_LEN`]) is refused before the body is read.
pub(super) fn read_frame(
    reader: &mut impl Read,
    large: impl Fn(u8) -> bool,
) -> Result<Option<(u8, Vec<u8>)>, ControlError> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        let Some(rest) = head.get_mut(got..) else {
            break;
        };
        match reader.read(rest) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ControlError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = usize::try_from(u32::from_le_bytes(head)).unwrap_or(usize::MAX);
    if len == 0 {
        return Err(ControlError::UnknownKind { kind: 0 });
    }
    let mut kind = [0u8; 1];
    reader.read_exact(&mut kind).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ControlError::Truncated,
        _ => ControlError::Io(e),
    })?;
    let [kind] = kind;
    let limit = if large(kind) {
        MAX_FRAME_LEN
    } else {
        MAX_DATA_FRAME_LEN
    };
    if len > limit {
        return Err(ControlError::FrameTooLong { len });
    }
    // In pieces of at most a data frame, each read whole as it arrives:
    // a data frame takes one read (two through a buffer), and a length
    // that lies costs no more than one piece.
    let body_len = len - 1;
    let mut body = Vec::new();
    while body.len() < body_len {
        let start = body.len();
        body.resize(start + (body_len - start).min(READ_PIECE), 0);
        let piece = body.get_mut(start..).unwrap_or_default();
        reader.read_exact(piece).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => ControlError::Truncated,
            _ => ControlError::Io(e),
        })?;
    }
    Ok(Some((kind, body)))
}
