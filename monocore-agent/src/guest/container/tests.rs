//! Containers built on the host, in threads whose mount namespaces are
//! their own (so nothing here changes the host's mounts): what a
//! container's processes see, what reaches the directories behind its
//! binds, and the table of names. Needs root (and Linux 5.12); skipped,
//! loudly, without it.

use std::{
    ffi::CString,
    fs,
    io::Write,
    os::unix::fs::{FileTypeExt, symlink},
    path::{Path, PathBuf},
    sync::{Arc, mpsc},
};

use monocore_agent::{
    control::{Bind, ContainerSetup},
    report::Step,
};

use super::{Containers, sys};
use crate::guest::sys::{MS_PRIVATE, MS_REC, mount_fs};

const EROFS: i32 = 30;

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")))
}

/// Runs `f` in a new thread with a private mount namespace of its own.
fn in_private_namespace<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        sys::unshare_thread_mounts().unwrap();
        mount_fs(None, c"/", None, MS_REC | MS_PRIVATE, None).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn bytes(path: &Path) -> Vec<u8> {
    path.as_os_str().as_encoded_bytes().to_vec()
}

fn bind(source: &Path, target: &str, readonly: bool) -> Bind {
    Bind {
        source: bytes(source),
        target: target.as_bytes().to_vec(),
        readonly,
    }
}

/// A scratch tree: two container roots with a marker each, the pod's shm
/// mount point, an emptyDir, a read-only volume, two files to bind, and
/// symlinks planted in the first root that point at its top or above it.
fn scratch(name: &str) -> PathBuf {
    let base = std::env::temp_dir().join(format!("monocore-agent-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    for dir in ["c1/etc", "c2", "shm", "vol", "ro"] {
        fs::create_dir_all(base.join(dir)).unwrap();
    }
    fs::write(base.join("c1/c1-marker"), "c1").unwrap();
    fs::write(base.join("c2/c2-marker"), "c2").unwrap();
    fs::write(base.join("ro/secret"), "token").unwrap();
    fs::write(base.join("log"), "").unwrap();
    fs::write(base.join("hosts"), "127.0.0.1 pod\n").unwrap();
    symlink("/", base.join("c1/escape")).unwrap();
    symlink("../..", base.join("c1/up")).unwrap();
    base
}

fn setup(base: &Path, name: &str, readonly_root: bool) -> ContainerSetup {
    ContainerSetup {
        name: name.as_bytes().to_vec(),
        root: bytes(&base.join(name)),
        readonly_root,
        hostname: None,
        binds: vec![
            bind(&base.join("vol"), "/vol", false),
            bind(&base.join("ro"), "/ro", true),
            bind(&base.join("log"), "/dev/termination-log", false),
            bind(&base.join("hosts"), "/etc/hosts", false),
            bind(&base.join("vol"), "/escape/planted", false),
            bind(&base.join("log"), "/up/made-file", false),
        ],
    }
}

fn errno_of(result: std::io::Result<()>) -> Option<i32> {
    result.err().and_then(|e| e.raw_os_error())
}

/// What the first container's process sees, checked from inside it.
fn look_around_in_c1() {
    assert_eq!(fs::read_to_string("/c1-marker").unwrap(), "c1");
    assert!(!Path::new("/c2-marker").exists());
    assert!(!Path::new("/shm").exists() && !Path::new("/c1").exists());
    assert!(
        fs::read_to_string("/proc/self/status")
            .unwrap()
            .contains("Pid:")
    );
    let null = fs::metadata("/dev/null").unwrap();
    assert!(null.file_type().is_char_device());
    fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    assert!(Path::new("/dev/pts/ptmx").exists());
    fs::write("/dev/shm/from-c1", "shared").unwrap();
    fs::write("/dev/from-c1", "c1's own /dev").unwrap();
    fs::write("/vol/from-c1", "empty dir").unwrap();
    assert_eq!(fs::read_to_string("/ro/secret").unwrap(), "token");
    assert_eq!(errno_of(fs::write("/ro/secret", "x")), Some(EROFS));
    assert_eq!(errno_of(fs::write("/ro/new", "x")), Some(EROFS));
    // The root is read-only, its binds are not.
    assert_eq!(errno_of(fs::write("/new-in-root", "x")), Some(EROFS));
    let mut log = fs::OpenOptions::new()
        .append(true)
        .open("/dev/termination-log")
        .unwrap();
    log.write_all(b"bye").unwrap();
    assert_eq!(fs::read_to_string("/etc/hosts").unwrap(), "127.0.0.1 pod\n");
    // The planted links led the binds to the container's own top.
    assert!(Path::new("/planted/from-c1").exists());
    assert!(Path::new("/made-file").is_file());
}

#[test]
fn containers_see_their_own_root_and_share_the_pod_s_volumes_and_shm() {
    if !is_root() {
        eprintln!("SKIPPED: containers_see_their_own_root_…: needs root");
        return;
    }
    let base = scratch("containers");
    let shm = CString::new(bytes(&base.join("shm"))).unwrap();
    let before = fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
    let b = base.clone();
    in_private_namespace(move || {
        let containers = Arc::new(Containers::with_templates(&shm));
        let (ready_tx, ready) = mpsc::channel();
        let (done, done_rx) = mpsc::channel::<()>();
        let first = {
            let (containers, b) = (Arc::clone(&containers), b.clone());
            std::thread::spawn(move || {
                let created = containers.create(&setup(&b, "c1", true)).unwrap();
                look_around_in_c1();
                ready_tx.send(()).unwrap();
                done_rx.recv().unwrap();
                drop(created);
            })
        };
        ready.recv().unwrap();
        // A second container sees the shared volume and shm, not c1's root.
        let (c, b2) = (Arc::clone(&containers), b.clone());
        std::thread::spawn(move || {
            let mut second = setup(&b2, "c2", false);
            second.binds.truncate(1);
            let _created = c.create(&second).unwrap();
            assert_eq!(fs::read_to_string("/c2-marker").unwrap(), "c2");
            assert!(!Path::new("/c1-marker").exists());
            assert_eq!(fs::read_to_string("/dev/shm/from-c1").unwrap(), "shared");
            // Its `/dev` is its own: not c1's file there.
            assert!(!Path::new("/dev/from-c1").exists());
            assert_eq!(fs::read_to_string("/vol/from-c1").unwrap(), "empty dir");
            fs::write("/c2-was-here", "rw root").unwrap();
        })
        .join()
        .unwrap();
        // Joining c1 by name: its root and its binds.
        let c = Arc::clone(&containers);
        std::thread::spawn(move || {
            c.join(b"c1").unwrap();
            assert_eq!(fs::read_to_string("/c1-marker").unwrap(), "c1");
            assert_eq!(fs::read_to_string("/dev/termination-log").unwrap(), "bye");
        })
        .join()
        .unwrap();
        // A live name cannot be created again.
        let c = Arc::clone(&containers);
        let again = std::thread::spawn(move || c.create(&setup(&b, "c1", true)).err())
            .join()
            .unwrap()
            .unwrap();
        assert_eq!((again.step, again.errno), (Step::Container, 17));
        done.send(()).unwrap();
        first.join().unwrap();
        // Once its first process has ended, c1 is gone.
        let c = Arc::clone(&containers);
        let gone = std::thread::spawn(move || c.join(b"c1").err())
            .join()
            .unwrap()
            .unwrap();
        assert_eq!((gone.step, gone.errno), (Step::Container, 2));
        assert!(gone.detail.contains("c1"), "{}", gone.detail);
    });
    // On the host: what the containers wrote through their binds, and
    // nothing outside their roots.
    assert_eq!(fs::read_to_string(base.join("log")).unwrap(), "bye");
    assert!(base.join("vol/from-c1").is_file());
    assert!(base.join("c1/planted").is_dir() && base.join("c1/made-file").is_file());
    assert!(base.join("c2/c2-was-here").is_file());
    assert!(!base.join("planted").exists() && !base.join("made-file").exists());
    assert!(!base.parent().unwrap().join("made-file").exists());
    // The templates (the pod's shm among them) and the containers' `/dev`s
    // were mounted in the containers' own namespace: here are only their
    // empty mount points (and where `/dev`s are built).
    let mut points: Vec<_> = fs::read_dir(base.join("shm"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    points.sort();
    assert_eq!(points, ["proc", "shm", "spare", "sys"]);
    for point in ["proc", "shm", "sys"] {
        assert_eq!(
            fs::read_dir(base.join("shm").join(point)).unwrap().count(),
            0
        );
    }
    let after = fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
    assert_eq!(before, after, "the host's mounts changed");
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn an_unknown_container_or_a_bad_bind_is_a_failure_not_a_panic() {
    if !is_root() {
        eprintln!("SKIPPED: an_unknown_container_…: needs root");
        return;
    }
    let base = scratch("failures");
    let shm = CString::new(bytes(&base.join("shm"))).unwrap();
    let b = base.clone();
    let (unknown, missing, name_again) = in_private_namespace(move || {
        let containers = Arc::new(Containers::with_templates(&shm));
        let unknown = containers.join(b"nobody").err().map(|f| (f.step, f.errno));
        let c = Arc::clone(&containers);
        let b2 = b.clone();
        let missing = std::thread::spawn(move || {
            let mut bad = setup(&b2, "c2", false);
            bad.binds
                .insert(0, bind(&b2.join("no-such-source"), "/x", false));
            c.create(&bad).err().map(|f| (f.step, f.errno, f.detail))
        })
        .join()
        .unwrap();
        // The failed container's name is free again.
        let c = Arc::clone(&containers);
        let name_again = std::thread::spawn(move || c.create(&setup(&b, "c2", false)).is_ok())
            .join()
            .unwrap();
        (unknown, missing, name_again)
    });
    assert_eq!(unknown, Some((Step::Container, 2)));
    let (step, errno, detail) = missing.unwrap();
    assert_eq!((step, errno), (Step::Bind { index: 0 }, 2));
    assert!(
        detail.starts_with("source ") && detail.ends_with("no-such-source"),
        "{detail}"
    );
    assert!(name_again);
    fs::remove_dir_all(&base).unwrap();
}

#[test]
fn a_prepared_container_is_kept_until_discarded_and_only_it_can_be() {
    if !is_root() {
        eprintln!("SKIPPED: a_prepared_container_is_kept_…: needs root");
        return;
    }
    let base = scratch("prepared");
    let shm = CString::new(bytes(&base.join("shm"))).unwrap();
    let b = base.clone();
    in_private_namespace(move || {
        let containers = Arc::new(Containers::with_templates(&shm));
        // Prepared by a thread that then ends, as a session does.
        let (c, b1) = (Arc::clone(&containers), b.clone());
        std::thread::spawn(move || c.prepare(&setup(&b1, "c1", true)).unwrap())
            .join()
            .unwrap();
        // Its commands join it: its root and binds are there, and stay
        // after a joined command has ended.
        for _ in 0..2 {
            let c = Arc::clone(&containers);
            std::thread::spawn(move || {
                c.join(b"c1").unwrap();
                assert_eq!(fs::read_to_string("/c1-marker").unwrap(), "c1");
                assert_eq!(fs::read_to_string("/etc/hosts").unwrap(), "127.0.0.1 pod\n");
                assert_eq!(errno_of(fs::write("/new-in-root", "x")), Some(EROFS));
            })
            .join()
            .unwrap();
        }
        // A container a command created is not the host's to discard.
        let (c, b2, (made_tx, made), (end, end_rx)) = (
            Arc::clone(&containers),
            b.clone(),
            mpsc::channel(),
            mpsc::channel::<()>(),
        );
        let owner = std::thread::spawn(move || {
            let created = c.create(&setup(&b2, "c2", false)).unwrap();
            made_tx.send(()).unwrap();
            end_rx.recv().unwrap();
            drop(created);
        });
        made.recv().unwrap();
        let busy = containers.discard(b"c2").unwrap_err();
        assert_eq!((busy.step, busy.errno), (Step::Container, 16));
        end.send(()).unwrap();
        owner.join().unwrap();
        // Discarded: gone, its name free, and a second discard is ENOENT.
        containers.discard(b"c1").unwrap();
        let gone = containers.join(b"c1").unwrap_err();
        assert_eq!((gone.step, gone.errno), (Step::Container, 2));
        let again = containers.discard(b"c1").unwrap_err();
        assert_eq!((again.step, again.errno), (Step::Container, 2));
        let c = Arc::clone(&containers);
        std::thread::spawn(move || c.prepare(&setup(&b, "c1", true)).unwrap())
            .join()
            .unwrap();
        containers.discard(b"c1").unwrap();
    });
    fs::remove_dir_all(&base).unwrap();
}
