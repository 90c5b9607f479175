//! A bounded reader of tar streams (POSIX ustar and pax, GNU long names):
//! the layers are hostile, so every length is checked before anything is
//! allocated, and no extension header may be larger than
//! [`MAX_EXTENSION`]. Entry data is never buffered: the caller reads it
//! through [`TarReader::read_data`] or lets the next call skip it.

use std::io::{self, Read};

/// A pax or GNU long-name header carries at most this many bytes.
pub(crate) const MAX_EXTENSION: u64 = 1 << 20;

const BLOCK: usize = 512;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Dir,
    Fifo,
}

/// One entry's header, with pax and GNU extensions applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) path: Vec<u8>,
    pub(crate) link: Vec<u8>,
    pub(crate) kind: Kind,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: i64,
    pub(crate) size: u64,
}

/// Why a stream is not a tar this reader accepts.
#[derive(Debug)]
pub(crate) enum TarError {
    /// Reading the (decompressed) stream failed.
    Io(io::Error),
    /// The archive is malformed, at this offset.
    Format { offset: u64, reason: String },
}

impl From<io::Error> for TarError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Reads entries from `inner`; see the module docs.
pub(crate) struct TarReader<R> {
    inner: R,
    offset: u64,
    /// Data bytes of the current entry not read yet.
    remaining: u64,
    /// Padding after the current entry's data.
    padding: u64,
    done: bool,
}

#[derive(Default)]
struct Extensions {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<i64>,
}

impl<R: Read> TarReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            offset: 0,
            remaining: 0,
            padding: 0,
            done: false,
        }
    }

    /// The offset in the stream.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The stream, to read what follows the end of the archive.
    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    fn format(&self, reason: impl Into<String>) -> TarError {
        TarError::Format {
            offset: self.offset,
            reason: reason.into(),
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), TarError> {
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(self.format("the stream ends inside an entry"))
            }
            Err(e) => Err(TarError::Io(e)),
        }
    }

    fn skip(&mut self, mut count: u64) -> Result<(), TarError> {
        let mut buf = [0u8; 8192];
        while count > 0 {
            let n = usize::try_from(count.min(buf.len() as u64)).unwrap_or(buf.len());
            let chunk = buf.get_mut(..n).unwrap_or_default();
            self.read_exact(chunk)?;
            count -= n as u64;
        }
        Ok(())
    }

    /// Reads up to `buf.len()` bytes of the current entry's data; 0 at its
    /// end.
    pub(crate) fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining.min(buf.len() as u64)).unwrap_or(buf.len());
        let chunk = buf.get_mut(..want).unwrap_or_default();
        let n = self.inner.read(chunk)?;
        if n == 0 {
            return Err(self.format("the stream ends inside an entry's data"));
        }
        self.offset += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }

    fn finish_entry(&mut self) -> Result<(), TarError> {
        let rest = self.remaining + self.padding;
        self.remaining = 0;
        self.padding = 0;
        self.skip(rest)
    }

    fn read_extension(&mut self, size: u64) -> Result<Vec<u8>, TarError> {
        if size > MAX_EXTENSION {
            return Err(self.format(format!(
                "an extension header of {size} bytes (at most {MAX_EXTENSION} are accepted)"
            )));
        }
        let len = usize::try_from(size).map_err(|_| self.format("extension size"))?;
        let mut data = vec![0u8; len];
        self.read_exact(&mut data)?;
        self.skip(padding_of(size))?;
        Ok(data)
    }

    /// The next entry, or `None` at the end of the archive. Skips what is
    /// left of the previous entry's data.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Header>, TarError> {
        self.finish_entry()?;
        if self.done {
            return Ok(None);
        }
        let mut ext = Extensions::default();
        loop {
            let mut block = [0u8; BLOCK];
            // The end: a zero block (a second one, or EOF, may follow), or a
            // stream that ends cleanly between entries.
            match self.inner.read(&mut block[..1]) {
                Ok(0) => {
                    self.done = true;
                    return Ok(None);
                }
                Ok(_) => self.offset += 1,
                Err(e) => return Err(TarError::Io(e)),
            }
            self.read_exact(&mut block[1..])?;
            if block.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            check_checksum(&block).map_err(|r| self.format(r))?;
            let typeflag = block[156];
            let size = match ext.size {
                Some(size) if !matches!(typeflag, b'x' | b'g' | b'L' | b'K') => size,
                _ => parse_number(&block[124..136])
                    .ok_or_else(|| self.format("a size that is not a number"))?,
            };
            match typeflag {
                b'x' => {
                    let data = self.read_extension(size)?;
                    parse_pax(&data, &mut ext).map_err(|r| self.format(r))?;
                    continue;
                }
                b'g' => {
                    // Global pax headers hold defaults this reader does not
                    // use (it ignores the fields they could set).
                    self.read_extension(size)?;
                    continue;
                }
                b'L' => {
                    ext.path = Some(trim_nul(self.read_extension(size)?));
                    continue;
                }
                b'K' => {
                    ext.link = Some(trim_nul(self.read_extension(size)?));
                    continue;
                }
                _ => {}
            }
            return self.entry(&block, typeflag, size, ext).map(Some);
        }
    }

    fn entry(
        &mut self,
        block: &[u8; BLOCK],
        typeflag: u8,
        size: u64,
        ext: Extensions,
    ) -> Result<Header, TarError> {
        let path = match ext.path {
            Some(path) => path,
            None => header_path(block),
        };
        let link = ext
            .link
            .unwrap_or_else(|| trim_nul(block[157..257].to_vec()));
        let number = |range: std::ops::Range<usize>, what: &str| {
            parse_number(block.get(range).unwrap_or_default())
                .ok_or_else(|| self.format(format!("a {what} that is not a number")))
        };
        let mode = u32::try_from(number(100..108, "mode")? & 0o7777).unwrap_or(0o644);
        let uid = match ext.uid {
            Some(uid) => uid,
            None => u32::try_from(number(108..116, "uid")?)
                .map_err(|_| self.format("a uid above 2^32"))?,
        };
        let gid = match ext.gid {
            Some(gid) => gid,
            None => u32::try_from(number(116..124, "gid")?)
                .map_err(|_| self.format("a gid above 2^32"))?,
        };
        let mtime = match ext.mtime {
            Some(mtime) => mtime,
            None => i64::try_from(number(136..148, "mtime")?).unwrap_or(i64::MAX),
        };
        let kind = match typeflag {
            b'0' | b'\0' | b'7' if path.ends_with(b"/") => Kind::Dir,
            b'0' | b'\0' | b'7' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            other => {
                return Err(self.format(format!(
                    "entry type {:?} (sparse, multi-volume or unknown) is not supported",
                    char::from(other)
                )));
            }
        };
        // Only regular files carry data; skip whatever a header claims for
        // the others.
        self.remaining = size;
        self.padding = padding_of(size);
        if kind != Kind::File {
            self.finish_entry()?;
        }
        Ok(Header {
            path,
            link,
            kind,
            mode,
            uid,
            gid,
            mtime,
            size: if kind == Kind::File { size } else { 0 },
        })
    }
}

fn padding_of(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn trim_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    if let Some(end) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(end);
    }
    bytes
}

/// `prefix/name` for ustar, `name` otherwise.
fn header_path(block: &[u8; BLOCK]) -> Vec<u8> {
    let name = trim_nul(block[..100].to_vec());
    let ustar = &block[257..263] == b"ustar\0";
    let prefix = trim_nul(block[345..500].to_vec());
    if ustar && !prefix.is_empty() {
        let mut path = prefix;
        path.push(b'/');
        path.extend_from_slice(&name);
        path
    } else {
        name
    }
}

fn check_checksum(block: &[u8; BLOCK]) -> Result<(), String> {
    let stored = parse_number(&block[148..156]).ok_or("a checksum that is not a number")?;
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u64::from(b' ')
            } else {
                u64::from(b)
            }
        })
        .sum();
    if sum == stored {
        Ok(())
    } else {
        Err(format!(
            "a header checksum of {stored}, but the header sums to {sum}"
        ))
    }
}

/// A numeric field: octal digits (space or NUL terminated), or GNU base-256
/// (first byte 0x80; a negative one, 0xff, is refused).
fn parse_number(field: &[u8]) -> Option<u64> {
    let (&first, rest) = field.split_first()?;
    if first == 0x80 {
        let mut value: u64 = 0;
        for &b in rest {
            value = value.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(value);
    }
    if first & 0x80 != 0 {
        return None;
    }
    let text: &[u8] = {
        let start = field.iter().position(|&b| b != b' ').unwrap_or(field.len());
        let tail = field.get(start..).unwrap_or_default();
        let end = tail
            .iter()
            .position(|&b| b == b' ' || b == 0)
            .unwrap_or(tail.len());
        tail.get(..end).unwrap_or_default()
    };
    if text.is_empty() {
        return Some(0);
    }
    let mut value: u64 = 0;
    for &b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

/// pax records: `LEN KEY=VALUE\n`, LEN counting the whole record.
fn parse_pax(mut data: &[u8], ext: &mut Extensions) -> Result<(), String> {
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("a pax record without a length")?;
        let len: usize = std::str::from_utf8(data.get(..space).unwrap_or_default())
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("a pax record length that is not a number")?;
        if len <= space + 1 || len > data.len() {
            return Err("a pax record length outside the header".into());
        }
        let record = data.get(space + 1..len).unwrap_or_default();
        data = data.get(len..).unwrap_or_default();
        let record = record
            .strip_suffix(b"\n")
            .ok_or("a pax record without its newline")?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("a pax record without `=`")?;
        let (key, value) = (
            record.get(..eq).unwrap_or_default(),
            record.get(eq + 1..).unwrap_or_default(),
        );
        let number = |what: &str| -> Result<u64, String> {
            std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("pax {what} is not a number"))
        };
        match key {
            b"path" => ext.path = Some(value.to_vec()),
            b"linkpath" => ext.link = Some(value.to_vec()),
            b"size" => ext.size = Some(number("size")?),
            b"uid" => {
                ext.uid = Some(u32::try_from(number("uid")?).map_err(|_| "pax uid above 2^32")?);
            }
            b"gid" => {
                ext.gid = Some(u32::try_from(number("gid")?).map_err(|_| "pax gid above 2^32")?);
            }
            b"mtime" => {
                // Seconds with an optional fraction, possibly negative.
                let text = std::str::from_utf8(value).unwrap_or_default();
                let whole = text.split('.').next().unwrap_or_default();
                ext.mtime = Some(whole.parse().map_err(|_| "pax mtime is not a number")?);
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header block with a valid checksum.
    pub(crate) fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; BLOCK] {
        let mut block = [0u8; BLOCK];
        block[..name.len()].copy_from_slice(name);
        block[100..108].copy_from_slice(b"0000755\0");
        block[108..116].copy_from_slice(b"0001750\0");
        block[116..124].copy_from_slice(b"0001750\0");
        block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        block[136..148].copy_from_slice(b"00000000001\0");
        block[156] = typeflag;
        block[157..157 + link.len()].copy_from_slice(link);
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        block
    }

    fn with_data(mut out: Vec<u8>, data: &[u8]) -> Vec<u8> {
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        out
    }

    #[test]
    fn reads_files_dirs_links_and_pax_and_gnu_names() {
        let mut tar = Vec::new();
        tar.extend_from_slice(&header(b"dir/", b'5', 0, b""));
        tar = with_data(
            [tar, header(b"dir/a", b'0', 5, b"").to_vec()].concat(),
            b"hello",
        );
        tar.extend_from_slice(&header(b"dir/l", b'2', 0, b"../a"));
        let long = "x/".repeat(200);
        let pax = format!("{} path={long}\n", long.len() + 10);
        assert_eq!(pax.len(), long.len() + 10);
        tar = with_data(
            [tar, header(b"pax", b'x', pax.len() as u64, b"").to_vec()].concat(),
            pax.as_bytes(),
        );
        tar.extend_from_slice(&header(b"short", b'0', 0, b""));
        tar = with_data(
            [tar, header(b"././@LongLink", b'L', 4, b"").to_vec()].concat(),
            b"gnu\0",
        );
        tar.extend_from_slice(&header(b"ignored", b'1', 0, b"dir/a"));
        tar.extend_from_slice(&[0u8; 1024]);
        let mut reader = TarReader::new(&tar[..]);
        let e = reader.next_entry().unwrap().unwrap();
        assert_eq!((e.path.as_slice(), e.kind), (&b"dir/"[..], Kind::Dir));
        let e = reader.next_entry().unwrap().unwrap();
        assert_eq!(
            (e.kind, e.size, e.mode, e.uid),
            (Kind::File, 5, 0o755, 1000)
        );
        let mut buf = [0u8; 3];
        assert_eq!(reader.read_data(&mut buf).unwrap(), 3);
        // The rest of the data is skipped by the next call.
        let e = reader.next_entry().unwrap().unwrap();
        assert_eq!((e.kind, e.link.as_slice()), (Kind::Symlink, &b"../a"[..]));
        let e = reader.next_entry().unwrap().unwrap();
        assert_eq!(e.path, long.as_bytes());
        let e = reader.next_entry().unwrap().unwrap();
        assert_eq!((e.path.as_slice(), e.kind), (&b"gnu"[..], Kind::HardLink));
        assert!(reader.next_entry().unwrap().is_none());
    }

    #[test]
    fn hostile_headers_are_errors_not_allocations() {
        let huge = header(b"@LongLink", b'L', 0o77777777777, b"");
        let mut reader = TarReader::new(&huge[..]);
        assert!(matches!(reader.next_entry(), Err(TarError::Format { .. })));
        let mut bad = header(b"a", b'0', 0, b"");
        bad[0] = b'b';
        let mut reader = TarReader::new(&bad[..]);
        let err = reader.next_entry().unwrap_err();
        assert!(matches!(err, TarError::Format { reason, .. } if reason.contains("checksum")));
        let truncated = header(b"a", b'0', 100, b"");
        let mut reader = TarReader::new(&truncated[..]);
        reader.next_entry().unwrap();
        assert!(matches!(reader.next_entry(), Err(TarError::Format { .. })));
        let sparse = header(b"a", b'S', 0, b"");
        assert!(TarReader::new(&sparse[..]).next_entry().is_err());
        for pax in ["5 a\n", "99 path=x\n", "x path=x\n", "9 pathx\n"] {
            let mut tar = header(b"p", b'x', pax.len() as u64, b"").to_vec();
            tar = with_data(tar, pax.as_bytes());
            tar.extend_from_slice(&header(b"a", b'0', 0, b""));
            assert!(TarReader::new(&tar[..]).next_entry().is_err(), "{pax:?}");
        }
    }

    #[test]
    fn numbers_parse_in_octal_and_base_256() {
        assert_eq!(parse_number(b"0000755\0"), Some(0o755));
        assert_eq!(parse_number(b"  12 \0"), Some(0o12));
        assert_eq!(parse_number(b"\0\0\0"), Some(0));
        assert_eq!(parse_number(&[0x80, 0, 0, 1, 0]), Some(256));
        assert_eq!(parse_number(&[0xff, 0xff]), None);
        assert_eq!(parse_number(b"0009"), None);
        assert_eq!(parse_number(&[0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0]), None);
    }
}
