//! [`GuestFiles`]: files in and out of a running VM, through its guest
//! agent's control channel (no shared writable host directory needed).
//!
//! Each call is one file session (see "Files" in
//! `monocore_agent::control`): [`session`] sends its requests and checks
//! every answer, [`tree`] walks a copy, [`host`] makes a copy's entries on
//! the host without following a symlink.

mod host;
mod session;
mod tree;

use std::{
    ffi::OsString,
    os::unix::{
        ffi::{OsStrExt, OsStringExt},
        net::UnixStream,
    },
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use monocore_agent::control::{EntryKind, Make};

use self::session::{Session, guest_bytes};
use crate::{
    error::MonocoreResult,
    runtime::{RunningVm, VmHandle},
};

/// What kind of file a [`GuestMetadata`] describes.
pub use monocore_agent::control::EntryKind as GuestFileKind;

/// The VM a [`GuestFiles`] reaches.
#[derive(Debug)]
enum Vm<'a> {
    Handle(&'a mut VmHandle),
    Running(&'a RunningVm),
}

/// Files in a running VM, or in one of its containers: read and written
/// through the guest agent. Made by [`VmHandle::files`] (or
/// [`files_in`](VmHandle::files_in) for a container) and
/// [`RunningVm::files`].
///
/// ```no_run
/// use monocore::vm::{MicroVm, MicroVmConfig, SpawnOptions};
/// let root = monocore::rootfs::prepare_template()?;
/// let vm = MicroVm::from_config(MicroVmConfig::new(root, 256))?;
/// let mut handle = vm.spawn_with(&SpawnOptions::new().idle(true))?;
/// let mut files = handle.files();
/// files.write_file("/tmp/in.txt", b"hello\n", 0o644)?;
/// assert_eq!(files.read_file("/tmp/in.txt")?, b"hello\n");
/// files.copy_in("./src", "/work/src")?;
/// files.copy_out("/work/out", "./out")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// - **Paths** are absolute guest paths, resolved by the agent inside the
///   root of the VM (or the container): a symlink or `..` on the way leads
///   no higher than that root, whatever the guest planted.
/// - **Writes** are atomic: the bytes go to a new file that is then renamed
///   over the path, with exactly the mode given. A file or symlink already
///   at the path is replaced (a final symlink is never followed or written
///   through); a directory there is an error. The parent must exist.
/// - **Reads** follow symlinks (inside the root) and take at most
///   [`max_bytes`](Self::max_bytes) (64 MiB unless set): a guest that has
///   more to send, or sends an endless stream, is cut off with
///   [`GuestFileError::TooLarge`](crate::error::GuestFileError::TooLarge),
///   and nothing past the limit is kept.
/// - **Copies** take a file, a symlink or a whole tree; symlinks are copied
///   as symlinks and never followed, on either side. A copy out makes
///   every entry under its host destination without following a symlink
///   there, keeps only the permission bits of the guest's modes (never
///   set-user-ID, set-group-ID or sticky), and takes at most `max_bytes`
///   bytes and [`max_entries`](Self::max_entries) entries in all.
/// - **Time**: each call (the wait for a booting agent included) ends
///   within [`timeout`](Self::timeout) (5 minutes unless set), with
///   [`GuestFileError::TimedOut`](crate::error::GuestFileError::TimedOut)
///   past it.
#[derive(Debug)]
pub struct GuestFiles<'a> {
    vm: Vm<'a>,
    container: Option<Vec<u8>>,
    max_bytes: u64,
    max_entries: u64,
    timeout: Duration,
}

/// A guest file, as [`GuestFiles::symlink_metadata`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestMetadata {
    /// Its kind (a symlink is not followed).
    pub kind: GuestFileKind,
    /// Its permission, set-user-ID, set-group-ID and sticky bits.
    pub mode: u32,
    /// Its size in bytes.
    pub size: u64,
    /// A symlink's target.
    pub link_target: Option<PathBuf>,
}

/// What a copy copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopySummary {
    /// Regular files.
    pub files: u64,
    /// Directories (made or merged into).
    pub dirs: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// The bytes of the files.
    pub bytes: u64,
}

impl<'a> GuestFiles<'a> {
    /// The most bytes a read (or a whole copy out) takes unless
    /// [`max_bytes`](Self::max_bytes) says otherwise: 64 MiB.
    pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
    /// The most entries a copy out takes unless
    /// [`max_entries`](Self::max_entries) says otherwise.
    pub const DEFAULT_MAX_ENTRIES: u64 = 1 << 16;
    /// The time each call has unless [`timeout`](Self::timeout) says
    /// otherwise: 5 minutes, as long as `exec` waits for a booting agent
    /// (under nested virtualization a boot takes 20 s, and the channel
    /// moves about 1 MB/s).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

    fn new(vm: Vm<'a>, container: Option<OsString>) -> Self {
        Self {
            vm,
            container: container.map(OsString::into_vec),
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Files of the VM of `handle`, or of its running container
    /// `container`.
    pub(crate) fn of_handle(handle: &'a mut VmHandle, container: Option<OsString>) -> Self {
        Self::new(Vm::Handle(handle), container)
    }

    /// Files of the running VM `vm`, or of its running container
    /// `container`.
    pub(crate) fn of_running(vm: &'a RunningVm, container: Option<OsString>) -> Self {
        Self::new(Vm::Running(vm), container)
    }

    /// Each call ends within `timeout` (the connection, the wait for a
    /// booting agent and every transfer included).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A read, or a whole copy out, takes at most `max` bytes.
    pub fn max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = max;
        self
    }

    /// A copy out takes at most `max` entries (files, directories and
    /// symlinks below the one copied).
    pub fn max_entries(mut self, max: u64) -> Self {
        self.max_entries = max;
        self
    }

    /// A new file session, which must end by the deadline it is given.
    fn session(&mut self) -> MonocoreResult<Session> {
        let deadline = Instant::now() + self.timeout;
        let conn: UnixStream = match &mut self.vm {
            Vm::Handle(handle) => handle.connect(self.timeout)?.0,
            Vm::Running(vm) => vm.connect(self.timeout)?.0,
        };
        Ok(Session::new(
            conn,
            self.container.clone(),
            deadline,
            self.timeout,
        ))
    }

    /// Writes `bytes` to the guest file `path` with `mode` (permissions
    /// and the set-user-ID, set-group-ID and sticky bits, exactly: no
    /// umask), replacing what is there (see [`GuestFiles`]).
    pub fn write_file(
        &mut self,
        path: impl AsRef<Path>,
        bytes: impl AsRef<[u8]>,
        mode: u32,
    ) -> MonocoreResult<()> {
        let path = guest_bytes(path.as_ref());
        self.session()?
            .write(path, mode, &mut bytes.as_ref(), Path::new("<bytes>"))
            .map(drop)
    }

    /// The bytes of the guest file `path`, at most
    /// [`max_bytes`](Self::max_bytes) of them.
    pub fn read_file(&mut self, path: impl AsRef<Path>) -> MonocoreResult<Vec<u8>> {
        let max = self.max_bytes;
        self.read_file_max(path, max)
    }

    /// The bytes of the guest file `path`, at most `max` of them: a file
    /// with more is [`GuestFileError::TooLarge`](crate::error::GuestFileError::TooLarge).
    pub fn read_file_max(&mut self, path: impl AsRef<Path>, max: u64) -> MonocoreResult<Vec<u8>> {
        let path = guest_bytes(path.as_ref());
        let mut bytes = Vec::new();
        self.session()?
            .read(path, max, max, &mut bytes, Path::new("<memory>"))?;
        Ok(bytes)
    }

    /// Makes the guest directory `path` with `mode`; an existing directory
    /// (not a symlink to one) is left as it is.
    pub fn make_dir(&mut self, path: impl AsRef<Path>, mode: u32) -> MonocoreResult<()> {
        let path = guest_bytes(path.as_ref());
        self.session()?.make(path, Make::Dir { mode })
    }

    /// Makes the guest symlink `link` pointing at `target` (as
    /// [`std::os::unix::fs::symlink`]), replacing a file or symlink there.
    pub fn symlink(
        &mut self,
        target: impl AsRef<Path>,
        link: impl AsRef<Path>,
    ) -> MonocoreResult<()> {
        let link = guest_bytes(link.as_ref());
        let target = guest_bytes(target.as_ref()).to_vec();
        self.session()?.make(link, Make::Symlink { target })
    }

    /// What the guest path `path` is, without following a final symlink.
    /// A missing path is a
    /// [`GuestFileError::Guest`](crate::error::GuestFileError::Guest) error
    /// with `ENOENT`.
    pub fn symlink_metadata(&mut self, path: impl AsRef<Path>) -> MonocoreResult<GuestMetadata> {
        let path = guest_bytes(path.as_ref());
        let (entry, _) = self.session()?.stat(path, false, 0)?;
        Ok(GuestMetadata {
            kind: entry.kind,
            mode: entry.mode,
            size: entry.size,
            link_target: (entry.kind == EntryKind::Symlink)
                .then(|| PathBuf::from(OsString::from_vec(entry.link))),
        })
    }

    /// Copies the host file, symlink or directory tree `host_src` to the
    /// guest path `guest_dst` (the path the copy gets: an existing
    /// directory there is merged into). Directories are made with their
    /// mode plus the owner's `rwx`; host symlinks are copied as symlinks.
    /// A host entry that is not a file, directory or symlink is
    /// [`GuestFileError::Unsupported`](crate::error::GuestFileError::Unsupported).
    pub fn copy_in(
        &mut self,
        host_src: impl AsRef<Path>,
        guest_dst: impl AsRef<Path>,
    ) -> MonocoreResult<CopySummary> {
        let dst = guest_bytes(guest_dst.as_ref());
        tree::copy_in(&mut self.session()?, host_src.as_ref(), dst)
    }

    /// Copies the guest file, symlink or directory tree `guest_src` to the
    /// host path `host_dst` (its parent must exist; an existing directory
    /// there is merged into, a file or symlink replaced), within
    /// [`max_bytes`](Self::max_bytes) and [`max_entries`](Self::max_entries)
    /// (see [`GuestFiles`]).
    pub fn copy_out(
        &mut self,
        guest_src: impl AsRef<Path>,
        host_dst: impl AsRef<Path>,
    ) -> MonocoreResult<CopySummary> {
        let src = guest_src.as_ref().as_os_str().as_bytes();
        let (max_bytes, max_entries) = (self.max_bytes, self.max_entries);
        tree::copy_out(
            &mut self.session()?,
            src,
            host_dst.as_ref(),
            max_bytes,
            max_entries,
        )
    }
}

#[cfg(test)]
mod tests;
