//! File requests of the control channel (see "Files" in
//! [`monocore_agent::control`]): writing, reading, making directories and
//! symlinks, and describing paths, in the VM's root or a container's.
//!
//! The session thread enters the place once (a container as a command's
//! `Place::Join` does; for the VM it only takes a file system context of
//! its own), sets its own umask to 0 so modes apply exactly, and opens the
//! place's `/`. Every path is then resolved from that descriptor with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: its directory, and
//! the last name is handled with a `*at` call on it that never follows a
//! symlink (but a read, which follows it inside the root). Reads and
//! writes move 64 KiB per system call.

mod sys;

use std::{
    ffi::{CStr, CString},
    fs::File,
    io::{Read, Write},
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    sync::atomic::{AtomicU64, Ordering},
};

use monocore_agent::{
    control::{
        AgentMessage, Entry, EntryKind, FileTarget, HostMessage, MAX_DATA, MAX_ENTRIES, MAX_MODE,
        Make, check_link, components, encoded_len,
    },
    report::Step,
};

use super::{
    container::sys::{self as csys, O_DIRECTORY, O_PATH, O_RDONLY},
    session::{Agent, Incoming, SharedOutbox, failed, send},
    setup::{Failure, fail},
};

const ENOENT: i32 = 2;
const EEXIST: i32 = 17;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const EFBIG: i32 = 27;

/// Whether `message` is a file request (one that starts or continues a
/// file session).
pub(super) fn is_request(message: &HostMessage) -> bool {
    matches!(
        message,
        HostMessage::WriteFile { .. }
            | HostMessage::ReadFile { .. }
            | HostMessage::Make { .. }
            | HostMessage::Stat { .. }
    )
}

/// The place a session's requests act in, once entered.
struct Place {
    container: Option<Vec<u8>>,
    /// Its `/`, opened `O_PATH`.
    root: OwnedFd,
}

/// Serves `first` and the file requests after it, until the host sends
/// anything else or goes away.
pub(super) fn serve(
    first: HostMessage,
    input: &mut Incoming,
    outbox: &SharedOutbox,
    agent: &Agent,
) {
    serve_in(None, first, input, outbox, agent);
}

/// [`serve`], in `place` if it is entered already.
fn serve_in(
    mut place: Option<Place>,
    first: HostMessage,
    input: &mut Incoming,
    outbox: &SharedOutbox,
    agent: &Agent,
) {
    let mut request = first;
    while handle(request, &mut place, input, outbox, agent) {
        request = match HostMessage::read(input) {
            Ok(Some(next)) if is_request(&next) => next,
            _ => return,
        };
    }
}

fn report(outbox: &SharedOutbox, f: &Failure) -> bool {
    failed(outbox, f.step, f.errno, f.detail.as_bytes());
    true
}

/// Serves one request; whether the session goes on.
fn handle(
    request: HostMessage,
    place: &mut Option<Place>,
    input: &mut Incoming,
    outbox: &SharedOutbox,
    agent: &Agent,
) -> bool {
    let target = match &request {
        HostMessage::WriteFile { target, .. }
        | HostMessage::ReadFile { target, .. }
        | HostMessage::Make { target, .. }
        | HostMessage::Stat { target, .. } => target,
        _ => return false,
    };
    let root = match enter(place, target, agent) {
        Ok(root) => root,
        Err(f) => {
            // The file's bytes are on their way: take them first.
            if matches!(request, HostMessage::WriteFile { .. }) && !drain(input) {
                return false;
            }
            return report(outbox, &f);
        }
    };
    let path = target.path.as_slice();
    match &request {
        HostMessage::WriteFile { mode, .. } => write_file(root, path, *mode, input, outbox),
        HostMessage::ReadFile { max, .. } => read_file(root, path, *max, outbox),
        HostMessage::Make { make, .. } => match self::make(root, path, make) {
            Ok(()) => send(outbox, &AgentMessage::Done),
            Err(f) => report(outbox, &f),
        },
        HostMessage::Stat { list, .. } => match stat(root, path, *list, outbox) {
            Ok(going_on) => going_on && send(outbox, &AgentMessage::Done),
            Err(f) => report(outbox, &f),
        },
        _ => false,
    }
}

/// Checks `target`, and enters its place if this session has not yet; the
/// place's root.
fn enter<'p>(
    place: &'p mut Option<Place>,
    target: &FileTarget,
    agent: &Agent,
) -> Result<BorrowedFd<'p>, Failure> {
    if let Err(e) = target.check() {
        let step = match e.field {
            monocore_agent::control::FileField::Container => Step::Container,
            _ => Step::Resolve,
        };
        return Err(fail(step, e.to_string().as_bytes())(EINVAL));
    }
    if place.is_none() {
        match &target.container {
            Some(name) => agent.containers.join(name)?,
            None => sys::own_umask(true).map_err(fail(Step::Container, b"unshare"))?,
        }
        if target.container.is_some() {
            // The join gave the thread a file system context of its own.
            sys::own_umask(false).map_err(fail(Step::Container, b"umask"))?;
        }
        let root = csys::open_path(c"/", O_PATH | O_DIRECTORY | O_RDONLY)
            .map_err(fail(Step::Container, b"/"))?;
        *place = Some(Place {
            container: target.container.clone(),
            root,
        });
    }
    match place {
        Some(p) if p.container == target.container => Ok(p.root.as_fd()),
        _ => Err(fail(Step::Container, b"another place than this session's")(
            EINVAL,
        )),
    }
}

/// `path`'s components as a path relative to the root (`.` for the root).
fn relative(parts: &[&[u8]]) -> Result<CString, i32> {
    if parts.is_empty() {
        return Ok(c".".to_owned());
    }
    CString::new(parts.join(&b'/')).map_err(|_| EINVAL)
}

/// Where `path` is: its directory, resolved inside `root`, and its last
/// name; or, for a path that names a directory by itself (`/`, or one
/// ending in `..`), that directory and no name.
fn locate(root: BorrowedFd<'_>, path: &[u8]) -> Result<(OwnedFd, Option<CString>), Failure> {
    let parts: Vec<&[u8]> = components(path).collect();
    let resolve = |parts: &[&[u8]]| {
        relative(parts)
            .and_then(|p| csys::open_in_root(root, &p, O_PATH | O_DIRECTORY))
            .map_err(fail(Step::Resolve, path))
    };
    match parts.split_last() {
        Some((last, parent)) if *last != b".." => {
            let name = CString::new(*last).map_err(|_| fail(Step::Resolve, path)(EINVAL))?;
            Ok((resolve(parent)?, Some(name)))
        }
        _ => Ok((resolve(&parts)?, None)),
    }
}

/// A name for a new entry beside the one it will replace.
fn temp_name() -> CString {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    CString::new(format!(".monocore-{:x}-{n:x}.tmp", std::process::id())).unwrap_or_default()
}

/// Makes a new entry with `create` under a fresh temporary name in `dir`
/// (another name if that one is taken); the name.
fn create_temp<T>(mut create: impl FnMut(&CStr) -> Result<T, i32>) -> Result<(CString, T), i32> {
    let mut attempts = 0;
    loop {
        let name = temp_name();
        match create(&name) {
            Ok(made) => return Ok((name, made)),
            Err(EEXIST) if attempts < 16 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Renames `temp` over `name` in `dir`, or removes it.
fn replace(dir: BorrowedFd<'_>, temp: &CStr, name: &CStr) -> Result<(), i32> {
    sys::rename_in(dir, temp, name).inspect_err(|_| {
        let _ = sys::unlink_in(dir, temp);
    })
}

/// Reads the host's `Data` frames up to the empty one, discarding them;
/// whether they ended so.
fn drain(input: &mut Incoming) -> bool {
    loop {
        match HostMessage::read(input) {
            Ok(Some(HostMessage::Data(data))) if data.is_empty() => return true,
            Ok(Some(HostMessage::Data(_))) => {}
            _ => return false,
        }
    }
}

/// A file being written: its directory, its temporary name, and it.
struct Writing {
    dir: OwnedFd,
    temp: CString,
    name: CString,
    file: File,
}

fn start_write(root: BorrowedFd<'_>, path: &[u8], mode: u32) -> Result<Writing, Failure> {
    if mode > MAX_MODE {
        return Err(fail(Step::Write, path)(EINVAL));
    }
    let (dir, name) = locate(root, path)?;
    let name = name.ok_or_else(|| fail(Step::Write, path)(EISDIR))?;
    let (temp, fd) = create_temp(|temp| sys::create_new(dir.as_fd(), temp, mode))
        .map_err(fail(Step::Write, path))?;
    Ok(Writing {
        dir,
        temp,
        name,
        file: File::from(fd),
    })
}

/// `WriteFile`: the bytes that follow go to a new file, renamed over
/// `path` once complete. Whether the session goes on.
fn write_file(
    root: BorrowedFd<'_>,
    path: &[u8],
    mode: u32,
    input: &mut Incoming,
    outbox: &SharedOutbox,
) -> bool {
    let mut writing = start_write(root, path, mode);
    let mut error: Option<i32> = None;
    let complete = loop {
        match HostMessage::read(input) {
            Ok(Some(HostMessage::Data(data))) if data.is_empty() => break true,
            Ok(Some(HostMessage::Data(data))) => {
                if let (Ok(w), None) = (&mut writing, error)
                    && let Err(e) = w.file.write_all(&data)
                {
                    error = Some(e.raw_os_error().unwrap_or(5));
                }
            }
            _ => break false,
        }
    };
    let w = match writing {
        Ok(w) => w,
        Err(f) => return complete && report(outbox, &f),
    };
    drop(w.file);
    let written = match (complete, error) {
        (false, _) => Err(EINVAL),
        (true, Some(e)) => Err(e),
        (true, None) => Ok(()),
    };
    let done = written.and_then(|()| replace(w.dir.as_fd(), &w.temp, &w.name));
    if done.is_err() {
        let _ = sys::unlink_in(w.dir.as_fd(), &w.temp);
    }
    if !complete {
        // The host went away (or sent something else) mid-file.
        return false;
    }
    match done {
        Ok(()) => send(outbox, &AgentMessage::Done),
        Err(e) => report(outbox, &fail(Step::Write, path)(e)),
    }
}

/// `ReadFile`: the file's bytes in `Data` frames, then `Done`; `EFBIG`
/// past `max`. Whether the session goes on.
fn read_file(root: BorrowedFd<'_>, path: &[u8], max: u64, outbox: &SharedOutbox) -> bool {
    let parts: Vec<&[u8]> = components(path).collect();
    // Not blocking on a FIFO without a writer; blocking afterwards.
    let opened = relative(&parts)
        .and_then(|p| csys::open_in_root(root, &p, O_RDONLY | sys::O_NONBLOCK))
        .and_then(|fd| sys::set_blocking(fd.as_fd()).map(|()| fd));
    let mut file = match opened {
        Ok(fd) => File::from(fd),
        Err(e) => return report(outbox, &fail(Step::Read, path)(e)),
    };
    let mut buf = vec![0u8; MAX_DATA];
    let mut sent: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return send(outbox, &AgentMessage::Done),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return report(
                    outbox,
                    &fail(Step::Read, path)(e.raw_os_error().unwrap_or(5)),
                );
            }
        };
        sent = sent.saturating_add(n as u64);
        if sent > max {
            return report(outbox, &fail(Step::Read, path)(EFBIG));
        }
        let data = buf.get(..n).unwrap_or_default().to_vec();
        if !send(outbox, &AgentMessage::Data(data)) {
            return false;
        }
    }
}

/// `Make`: a directory (an existing one is kept) or a symlink (replacing
/// a file or symlink there).
fn make(root: BorrowedFd<'_>, path: &[u8], make: &Make) -> Result<(), Failure> {
    let (dir, name) = locate(root, path)?;
    match make {
        Make::Dir { mode } if *mode > MAX_MODE => Err(fail(Step::Make, path)(EINVAL)),
        Make::Dir { mode } => {
            let Some(name) = name else {
                // The path names a directory by itself: it is there.
                return Ok(());
            };
            match csys::make_dir(dir.as_fd(), &name, *mode) {
                Err(EEXIST) => match sys::stat_at(dir.as_fd(), &name) {
                    Ok(st) if st.mode & sys::S_IFMT == sys::S_IFDIR => Ok(()),
                    _ => Err(EEXIST),
                },
                other => other,
            }
            .map_err(fail(Step::Make, path))
        }
        Make::Symlink { target } => {
            check_link(target).map_err(|_| fail(Step::Make, path)(EINVAL))?;
            let name = name.ok_or_else(|| fail(Step::Make, path)(EEXIST))?;
            let link =
                CString::new(target.as_slice()).map_err(|_| fail(Step::Make, path)(EINVAL))?;
            let (temp, ()) = create_temp(|temp| csys::make_symlink(&link, dir.as_fd(), temp))
                .map_err(fail(Step::Make, path))?;
            replace(dir.as_fd(), &temp, &name).map_err(fail(Step::Make, path))
        }
    }
}

/// The entry `name` of `dir` (`dir` itself for an empty name), never
/// following a symlink.
fn describe(dir: BorrowedFd<'_>, name: &CStr) -> Result<Entry, i32> {
    let st = sys::stat_at(dir, name)?;
    let kind = match st.mode & sys::S_IFMT {
        sys::S_IFREG => EntryKind::File,
        sys::S_IFDIR => EntryKind::Dir,
        sys::S_IFLNK => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    let link = if kind == EntryKind::Symlink {
        sys::read_link_at(dir, name)?
    } else {
        Vec::new()
    };
    Ok(Entry {
        name: name.to_bytes().to_vec(),
        kind,
        mode: st.mode & MAX_MODE,
        size: st.size,
        link,
    })
}

/// `Stat`: `path`'s entry, then a directory's entries with `list`, in
/// `Entries` frames of at most about [`MAX_DATA`] bytes. `Ok(false)` when
/// the host went away.
fn stat(
    root: BorrowedFd<'_>,
    path: &[u8],
    list: bool,
    outbox: &SharedOutbox,
) -> Result<bool, Failure> {
    let (dir, name) = locate(root, path)?;
    let name = name.unwrap_or_default();
    let mut top = describe(dir.as_fd(), &name).map_err(fail(Step::Stat, path))?;
    top.name.clear();
    if !list || top.kind != EntryKind::Dir {
        return Ok(send(outbox, &AgentMessage::Entries(vec![top])));
    }
    let listed = if name.is_empty() {
        sys::open_at(dir.as_fd(), c".", O_RDONLY | O_DIRECTORY)
    } else {
        sys::open_at(dir.as_fd(), &name, O_RDONLY | O_DIRECTORY | sys::O_NOFOLLOW)
    }
    .map_err(fail(Step::Stat, path))?;
    let mut batch = vec![top];
    let mut bytes = 0;
    let mut going_on = true;
    let mut error = None;
    sys::each_name(listed.as_fd(), |child| {
        match describe(listed.as_fd(), child) {
            Ok(entry) => {
                bytes += encoded_len(&entry);
                batch.push(entry);
            }
            // Gone since it was listed.
            Err(ENOENT) => return true,
            Err(e) => {
                error = Some(e);
                return false;
            }
        }
        if bytes >= MAX_DATA || batch.len() >= MAX_ENTRIES {
            going_on = send(outbox, &AgentMessage::Entries(std::mem::take(&mut batch)));
            bytes = 0;
        }
        going_on
    })
    .map_err(fail(Step::Stat, path))?;
    if let Some(e) = error {
        return Err(fail(Step::Stat, path)(e));
    }
    if going_on && !batch.is_empty() {
        going_on = send(outbox, &AgentMessage::Entries(batch));
    }
    Ok(going_on)
}

#[cfg(test)]
mod tests {
    use std::{
        ffi::CString,
        fs,
        io::BufReader,
        os::unix::{fs::symlink, net::UnixStream},
        path::Path,
        sync::{Mutex, mpsc},
    };

    use monocore_agent::control::ControlError;

    use super::*;
    use crate::guest::{container::Containers, session::outbox};

    /// A fresh directory of its own, removed when dropped.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "monocore-agent-files-{name}-{}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn agent() -> Agent {
        Agent {
            rlimits: Vec::new(),
            running: Mutex::new(Vec::new()),
            containers: Containers::default(),
            events: mpsc::channel().0,
        }
    }

    fn at(path: &str) -> FileTarget {
        FileTarget {
            container: None,
            path: path.as_bytes().to_vec(),
        }
    }

    /// What the agent answers `requests`, served in `root` as the place's
    /// `/`.
    fn serve_at(root: &Path, requests: &[HostMessage]) -> Vec<AgentMessage> {
        let (mut host, far) = UnixStream::pair().unwrap();
        for request in requests {
            request.write(&mut host).unwrap();
        }
        host.shutdown(std::net::Shutdown::Write).unwrap();
        let path = CString::new(root.as_os_str().as_encoded_bytes()).unwrap();
        let place = Place {
            container: None,
            root: csys::open_path(&path, O_PATH | O_DIRECTORY | O_RDONLY).unwrap(),
        };
        let mut input = BufReader::new(File::from(OwnedFd::from(far.try_clone().unwrap())));
        let out = outbox(File::from(OwnedFd::from(far)));
        let first = HostMessage::read(&mut input).unwrap().unwrap();
        serve_in(Some(place), first, &mut input, &out, &agent());
        drop(out);
        drop(input);
        let mut answers = Vec::new();
        loop {
            match AgentMessage::read(&mut host) {
                Ok(Some(m)) => answers.push(m),
                Ok(None) | Err(ControlError::Io(_)) => return answers,
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn write(path: &str, bytes: &[u8]) -> Vec<HostMessage> {
        vec![
            HostMessage::WriteFile {
                target: at(path),
                mode: 0o640,
            },
            HostMessage::Data(bytes.to_vec()),
            HostMessage::Data(Vec::new()),
        ]
    }

    fn failed_errno(answer: &AgentMessage) -> (Step, i32) {
        match answer {
            AgentMessage::Failed(monocore_agent::report::Report::Failed {
                step, errno, ..
            }) => (*step, *errno),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn writes_through_links_out_of_the_root_land_inside_it() {
        let dir = TempDir::new("write");
        let (root, canary) = (dir.path().join("root"), dir.path().join("canary"));
        fs::create_dir_all(root.join("d")).unwrap();
        fs::create_dir(&canary).unwrap();
        fs::write(canary.join("file"), "canary").unwrap();
        symlink("/", root.join("d/out")).unwrap();
        symlink("../../../..", root.join("d/up")).unwrap();
        symlink(canary.join("file"), root.join("final")).unwrap();
        let mut requests = write("/d/out/a", b"1");
        requests.extend(write("/d/up/b", b"2"));
        requests.extend(write("/final", b"3"));
        requests.extend(write("/../../c", b"4"));
        let answers = serve_at(&root, &requests);
        assert_eq!(answers, vec![AgentMessage::Done; 4]);
        for (name, bytes) in [("a", "1"), ("b", "2"), ("final", "3"), ("c", "4")] {
            assert_eq!(
                fs::read_to_string(root.join(name)).unwrap(),
                bytes,
                "{name}"
            );
        }
        // The final symlink was replaced, its target (outside) untouched.
        assert!(
            !fs::symlink_metadata(root.join("final"))
                .unwrap()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(canary.join("file")).unwrap(), "canary");
        let mut beside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        beside.sort();
        assert_eq!(beside, ["canary", "root"]);
        // Exactly the mode, and no temporary file left.
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(root.join("a")).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        assert!(
            fs::read_dir(&root).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp"))
        );
    }

    #[test]
    fn reads_resolve_inside_the_root_and_stop_at_the_limit() {
        let dir = TempDir::new("read");
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        fs::write(dir.path().join("secret"), "host").unwrap();
        symlink(dir.path().join("secret"), root.join("abs")).unwrap();
        fs::write(root.join("big"), vec![7u8; 3 * MAX_DATA]).unwrap();
        let read = |path: &str, max| HostMessage::ReadFile {
            target: at(path),
            max,
        };
        let answers = serve_at(
            &root,
            &[read("/abs", 100), read("/big", 2 * MAX_DATA as u64)],
        );
        // The link's target is looked up inside the root, where it is not.
        assert_eq!(failed_errno(&answers[0]), (Step::Read, ENOENT));
        assert_eq!(answers[1], AgentMessage::Data(vec![7u8; MAX_DATA]));
        assert_eq!(answers[2], AgentMessage::Data(vec![7u8; MAX_DATA]));
        assert_eq!(failed_errno(&answers[3]), (Step::Read, EFBIG));
        assert_eq!(answers.len(), 4);
    }

    #[test]
    fn stat_lists_without_following_and_make_replaces_links() {
        let dir = TempDir::new("stat");
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("d/sub")).unwrap();
        fs::write(root.join("d/f"), "12345").unwrap();
        symlink("/", root.join("d/top")).unwrap();
        let answers = serve_at(
            &root,
            &[
                HostMessage::Make {
                    target: at("/d/sub"),
                    make: Make::Dir { mode: 0o700 },
                },
                HostMessage::Make {
                    target: at("/d/top"),
                    make: Make::Symlink {
                        target: b"../..".to_vec(),
                    },
                },
                HostMessage::Make {
                    target: at("/d/f"),
                    make: Make::Dir { mode: 0o700 },
                },
                HostMessage::Stat {
                    target: at("/d"),
                    list: true,
                },
            ],
        );
        assert_eq!(answers[..2], [AgentMessage::Done, AgentMessage::Done]);
        assert_eq!(failed_errno(&answers[2]), (Step::Make, EEXIST));
        let AgentMessage::Entries(entries) = &answers[3] else {
            panic!("{answers:?}")
        };
        assert_eq!(answers[4], AgentMessage::Done);
        let find = |name: &[u8]| entries.iter().find(|e| e.name == name).unwrap();
        assert_eq!(
            (entries[0].name.as_slice(), entries[0].kind),
            (&b""[..], EntryKind::Dir)
        );
        assert_eq!((find(b"f").kind, find(b"f").size), (EntryKind::File, 5));
        assert_eq!(find(b"sub").kind, EntryKind::Dir);
        assert_eq!(
            (find(b"top").kind, find(b"top").link.as_slice()),
            (EntryKind::Symlink, &b"../.."[..])
        );
        assert_eq!(entries.len(), 4);
    }
}
