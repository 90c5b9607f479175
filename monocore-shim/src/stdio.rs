//! Where the task's output goes: the FIFOs (or files) containerd names in
//! `create`.
//!
//! A FIFO is opened read-write. That never blocks (containerd may not have
//! opened its end yet), and while the shim or the VM holds it, the FIFO
//! always has a reader: when containerd restarts, writes wait in the pipe
//! instead of failing with `EPIPE` (which would kill the VM's helper).

use std::{fs::File, fs::OpenOptions};

use crate::error::ShimError;

/// Opens the output target `uri` (`what` is `stdout` or `stderr`): a FIFO
/// or file path, `file://PATH`, or nothing (`/dev/null`).
pub fn open_output(what: &'static str, uri: &str) -> Result<File, ShimError> {
    let fail = |path: &str| {
        let path = path.to_owned();
        move |source| ShimError::Stdio { what, path, source }
    };
    if uri.is_empty() {
        return OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(fail("/dev/null"));
    }
    if let Some(path) = uri.strip_prefix("file://") {
        return OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(fail(path));
    }
    if uri.contains("://") {
        return Err(ShimError::StdioScheme {
            what,
            uri: uri.to_owned(),
        });
    }
    OpenOptions::new()
        .read(true)
        .append(true)
        .open(uri)
        .map_err(fail(uri))
}

/// The stdin FIFO `path` (empty: none), opened for reading without
/// waiting for a writer; with it, a write end this shim holds until
/// containerd's `CloseIO` says the input has ended, so that the reader sees
/// end of input only then (and after what was written before).
pub fn open_input(path: &str) -> Result<Option<(File, File)>, ShimError> {
    if path.is_empty() {
        return Ok(None);
    }
    let fail = |source| ShimError::Stdio {
        what: "stdin",
        path: path.to_owned(),
        source,
    };
    use std::os::unix::fs::OpenOptionsExt;
    let reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(fail)?;
    let keeper = OpenOptions::new().write(true).open(path).map_err(fail)?;
    // Reads block from now on.
    let flags = rustix::fs::fcntl_getfl(&reader).map_err(|e| fail(e.into()))?;
    rustix::fs::fcntl_setfl(&reader, flags - rustix::fs::OFlags::NONBLOCK)
        .map_err(|e| fail(e.into()))?;
    Ok(Some((reader, keeper)))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    #[test]
    fn a_fifo_opens_without_a_reader_and_delivers_what_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stdout");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No reader yet: this must not block.
        let mut writer = open_output("stdout", fifo.to_str().unwrap()).unwrap();
        let mut reader = File::open(&fifo).unwrap();
        writer.write_all(b"hello\n").unwrap();
        drop(writer);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello\n");
    }

    #[test]
    fn files_append_and_empty_means_dev_null() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "old\n").unwrap();
        let uri = format!("file://{}", path.display());
        open_output("stderr", &uri)
            .unwrap()
            .write_all(b"new\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\nnew\n");
        open_output("stdout", "")
            .unwrap()
            .write_all(b"gone")
            .unwrap();
    }

    #[test]
    fn other_schemes_and_missing_paths_are_errors() {
        let err = open_output("stdout", "binary:///usr/bin/logger?id=1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "stdout `binary:///usr/bin/logger?id=1`: only FIFOs and file:// paths are supported"
        );
        let err = open_output("stderr", "/no/such/fifo").unwrap_err();
        assert_eq!(err.to_string(), "cannot open stderr /no/such/fifo");
    }
}
