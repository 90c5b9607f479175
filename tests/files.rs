//! Files in and out of a running VM through the guest agent
//! (`VmHandle::files`), with one real boot: a 10 MiB round trip byte for
//! byte, a tree copied in and out, symlinks that point out of the root in
//! either direction (none escapes: a canary directory beside the host
//! destination stays empty), a container's files, and reads of endless
//! streams cut off at their limit. Runs where `tests/exec.rs` runs (see
//! there), and checks that nothing is left.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code may panic

use std::{
    fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::Path,
    time::{Duration, Instant},
};

use monocore::{
    MonocoreError,
    vm::{
        GuestCommand, GuestContainer, GuestFileError, GuestFileKind, GuestStep, MicroVm,
        MicroVmConfig, SpawnOptions, VmHandle,
    },
};
use monocore_suite::{assert_nothing_left, busybox_rootfs, may_boot};

const TEST: &str = "files_go_in_and_out_byte_for_byte_and_never_escape";

/// The time a 10 MiB transfer gets: about 20 s on the development host
/// (nested virtualization), with room for a busy machine.
const SLOW: Duration = Duration::from_secs(600);

/// `len` bytes that are not a repeating pattern (xorshift).
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn file_error<T: std::fmt::Debug>(result: Result<T, MonocoreError>) -> GuestFileError {
    match result {
        Err(MonocoreError::GuestFile(e)) => e,
        other => panic!("{other:?}"),
    }
}

/// Whether the trees at `a` and `b` are the same: names, kinds, bytes,
/// link targets and permission bits.
fn assert_same_tree(a: &Path, b: &Path) {
    let (ma, mb) = (
        fs::symlink_metadata(a).unwrap(),
        fs::symlink_metadata(b).unwrap(),
    );
    assert_eq!(ma.file_type(), mb.file_type(), "{}", b.display());
    assert_eq!(
        ma.permissions().mode() & 0o777,
        mb.permissions().mode() & 0o777,
        "{}",
        b.display()
    );
    if ma.is_symlink() {
        assert_eq!(fs::read_link(a).unwrap(), fs::read_link(b).unwrap());
    } else if ma.is_file() {
        assert!(
            fs::read(a).unwrap() == fs::read(b).unwrap(),
            "{}",
            b.display()
        );
    } else {
        let names = |d: &Path| {
            let mut n: Vec<_> = fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(a), names(b), "{}", b.display());
        for name in names(a) {
            assert_same_tree(&a.join(&name), &b.join(&name));
        }
    }
}

#[test]
fn files_go_in_and_out_byte_for_byte_and_never_escape() {
    if !may_boot(TEST) {
        return;
    }
    let runs = tempfile::tempdir().unwrap();
    let root = busybox_rootfs().unwrap();
    let vm = MicroVm::from_config(MicroVmConfig::new(root.path(), 256)).unwrap();
    let mut vm = vm
        .spawn_with(&SpawnOptions::new().runs_dir(runs.path()).idle(true))
        .unwrap();
    let pid = vm.pid();
    round_trip_of_10_mib(&mut vm);
    a_tree_goes_in_and_comes_back_the_same(&mut vm);
    links_out_of_the_root_lead_a_write_or_read_no_higher_than_it(&mut vm, root.path());
    a_copy_out_never_writes_beside_its_destination(&mut vm);
    endless_streams_are_cut_off_at_the_limit(&mut vm);
    a_container_s_files_are_its_own(&mut vm);
    vm.shutdown().unwrap();
    drop(vm);
    assert_nothing_left(pid, runs.path());
}

fn round_trip_of_10_mib(vm: &mut VmHandle) {
    let started = Instant::now();
    vm.files().write_file("/tmp/first", "", 0o644).unwrap();
    println!("first write_file (the boot): {:?}", started.elapsed());
    let big = noise(10 << 20, 7);
    let started = Instant::now();
    vm.files()
        .timeout(SLOW)
        .write_file("/tmp/big", &big, 0o640)
        .unwrap();
    println!("write_file 10 MiB: {:?}", started.elapsed());
    let started = Instant::now();
    let back = vm.files().timeout(SLOW).read_file("/tmp/big").unwrap();
    println!("read_file 10 MiB: {:?}", started.elapsed());
    assert!(back == big, "the 10 MiB came back different");
    let meta = vm.files().symlink_metadata("/tmp/big").unwrap();
    assert_eq!(
        (meta.kind, meta.mode, meta.size),
        (GuestFileKind::File, 0o640, 10 << 20)
    );
    // The mode is exact (no umask), set-user-ID included; an empty file.
    vm.files().write_file("/tmp/suid", b"", 0o4711).unwrap();
    assert_eq!(
        vm.files().symlink_metadata("/tmp/suid").unwrap().mode,
        0o4711
    );
    assert_eq!(vm.files().read_file("/tmp/suid").unwrap(), b"");
    // A read that fits exactly is whole; one byte less is cut off.
    assert_eq!(
        vm.files()
            .timeout(SLOW)
            .read_file_max("/tmp/big", 10 << 20)
            .unwrap()
            .len(),
        10 << 20
    );
    let err = file_error(
        vm.files()
            .timeout(SLOW)
            .read_file_max("/tmp/big", (10 << 20) - 1),
    );
    assert!(matches!(err, GuestFileError::TooLarge { .. }), "{err:?}");
    // Missing things are the agent's typed failures.
    let err = file_error(vm.files().read_file("/no/such"));
    assert!(
        matches!(
            err,
            GuestFileError::Guest {
                errno: libc::ENOENT,
                ..
            }
        ),
        "{err:?}"
    );
    let err = file_error(vm.files().write_file("/no/such/dir/f", b"x", 0o644));
    assert!(
        matches!(
            err,
            GuestFileError::Guest {
                step: GuestStep::Resolve,
                errno: libc::ENOENT,
                ..
            }
        ),
        "{err:?}"
    );
    let err = file_error(vm.files().write_file("/tmp", b"x", 0o644));
    assert!(
        matches!(
            err,
            GuestFileError::Guest {
                step: GuestStep::Write,
                ..
            }
        ),
        "{err:?}"
    );
}

fn a_tree_goes_in_and_comes_back_the_same(vm: &mut VmHandle) {
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("src");
    fs::create_dir_all(src.join("sub/deeper")).unwrap();
    fs::write(src.join("a.txt"), "alpha\n").unwrap();
    fs::write(src.join("sub/big.bin"), noise(10 << 20, 11)).unwrap();
    fs::write(src.join("sub/deeper/empty"), "").unwrap();
    fs::set_permissions(src.join("a.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    symlink("/etc", src.join("abs")).unwrap();
    symlink("../../..", src.join("sub/up")).unwrap();
    symlink("sub/big.bin", src.join("rel")).unwrap();
    let started = Instant::now();
    let sent = vm.files().timeout(SLOW).copy_in(&src, "/tmp/tree").unwrap();
    println!("copy_in of a tree ({sent:?}): {:?}", started.elapsed());
    assert_eq!((sent.files, sent.dirs, sent.symlinks), (3, 3, 3));
    assert_eq!(sent.bytes, (10 << 20) + 6);
    let link = vm.files().symlink_metadata("/tmp/tree/abs").unwrap();
    assert_eq!(link.link_target.as_deref(), Some(Path::new("/etc")));
    let out = host.path().join("out");
    let started = Instant::now();
    let got = vm
        .files()
        .timeout(SLOW)
        .copy_out("/tmp/tree", &out)
        .unwrap();
    println!("copy_out of a tree ({got:?}): {:?}", started.elapsed());
    assert_eq!(got, sent);
    assert_same_tree(&src, &out);
    // A second copy out over the first replaces, and is the same.
    vm.files()
        .timeout(SLOW)
        .copy_out("/tmp/tree", &out)
        .unwrap();
    assert_same_tree(&src, &out);
    // One file in, one file out.
    vm.files()
        .copy_in(src.join("a.txt"), "/tmp/a-copy")
        .unwrap();
    vm.files()
        .copy_out("/tmp/a-copy", host.path().join("a-back"))
        .unwrap();
    assert_eq!(fs::read(host.path().join("a-back")).unwrap(), b"alpha\n");
}

/// Symlinks planted in the guest that point at its top, above it, or at a
/// host path: a write through them lands inside the guest's root (a host
/// directory: checked from the host), a final one is replaced, not written
/// through, and a read resolves inside the guest.
fn links_out_of_the_root_lead_a_write_or_read_no_higher_than_it(vm: &mut VmHandle, root: &Path) {
    let mut files = vm.files();
    files.make_dir("/tmp/links", 0o755).unwrap();
    files.symlink("/", "/tmp/links/out").unwrap();
    files.symlink("../../../../..", "/tmp/links/up").unwrap();
    files
        .write_file("/tmp/links/out/x-via-out", "in\n", 0o644)
        .unwrap();
    files
        .write_file("/tmp/links/up/x-via-up", "in\n", 0o644)
        .unwrap();
    for name in ["x-via-out", "x-via-up"] {
        assert_eq!(fs::read(root.join(name)).unwrap(), b"in\n", "{name}");
        assert!(
            !root.parent().unwrap().join(name).exists(),
            "{name} escaped"
        );
        assert!(!Path::new("/").join(name).exists(), "{name} escaped");
    }
    // A final symlink is replaced by the file: its target is untouched.
    let passwd = files.read_file("/etc/passwd").unwrap();
    files.symlink("/etc/passwd", "/tmp/links/pw").unwrap();
    files
        .write_file("/tmp/links/pw", "replaced\n", 0o644)
        .unwrap();
    assert_eq!(files.read_file("/etc/passwd").unwrap(), passwd);
    let pw = files.symlink_metadata("/tmp/links/pw").unwrap();
    assert_eq!(pw.kind, GuestFileKind::File);
    // A link to a host path reads the guest's path of that name.
    let secret = tempfile::tempdir().unwrap();
    fs::write(secret.path().join("secret"), "host secret").unwrap();
    files
        .symlink(secret.path().join("secret"), "/tmp/links/host")
        .unwrap();
    let err = file_error(files.read_file("/tmp/links/host"));
    assert!(
        matches!(
            err,
            GuestFileError::Guest {
                errno: libc::ENOENT,
                ..
            }
        ),
        "{err:?}"
    );
    // `..` in a path is no way out either.
    files
        .write_file("/../../../x-via-dots", "in\n", 0o644)
        .unwrap();
    assert_eq!(fs::read(root.join("x-via-dots")).unwrap(), b"in\n");
}

/// A guest tree whose links point at `/etc`, above the root, and at a host
/// canary directory beside the destination: the copy makes them links,
/// writes nothing beside the destination, and a guest that turns a link
/// the host made into a directory is refused, not followed.
fn a_copy_out_never_writes_beside_its_destination(vm: &mut VmHandle) {
    let host = tempfile::tempdir().unwrap();
    let canary = host.path().join("canary");
    fs::create_dir(&canary).unwrap();
    let dst = host.path().join("dst");
    let mut files = vm.files();
    files.make_dir("/tmp/evil", 0o755).unwrap();
    files.make_dir("/tmp/evil/d", 0o755).unwrap();
    files.write_file("/tmp/evil/d/f", "hi\n", 0o644).unwrap();
    files.symlink("/etc", "/tmp/evil/etc").unwrap();
    files.symlink("../../..", "/tmp/evil/up").unwrap();
    files.symlink(&canary, "/tmp/evil/canary").unwrap();
    files.copy_out("/tmp/evil", &dst).unwrap();
    assert_eq!(fs::read_link(dst.join("etc")).unwrap(), Path::new("/etc"));
    assert_eq!(
        fs::read_link(dst.join("up")).unwrap(),
        Path::new("../../..")
    );
    assert_eq!(fs::read_link(dst.join("canary")).unwrap(), canary);
    assert_eq!(fs::read(dst.join("d/f")).unwrap(), b"hi\n");
    // The link `canary` becomes a directory with a file in it, in the
    // guest; copied again over the first copy, it meets the host's link.
    let out = vm
        .exec(GuestCommand::new("/bin/sh").args([
            "-c",
            "rm /tmp/evil/canary && mkdir /tmp/evil/canary && echo x > /tmp/evil/canary/planted",
        ]))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(out.code(), Some(0));
    let err = file_error(vm.files().copy_out("/tmp/evil", &dst));
    assert!(matches!(err, GuestFileError::Host { .. }), "{err:?}");
    assert_eq!(
        fs::read_dir(&canary).unwrap().count(),
        0,
        "the canary was written"
    );
    let mut beside: Vec<_> = fs::read_dir(host.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    beside.sort();
    assert_eq!(beside, ["canary", "dst"]);
}

fn endless_streams_are_cut_off_at_the_limit(vm: &mut VmHandle) {
    let started = Instant::now();
    let err = file_error(vm.files().read_file_max("/dev/zero", 1 << 20));
    assert!(
        matches!(&err, GuestFileError::TooLarge { path, max } if path == "/dev/zero" && *max == 1 << 20),
        "{err:?}"
    );
    println!("/dev/zero cut off at 1 MiB after {:?}", started.elapsed());
    // A FIFO that `yes` keeps full: it is opened (for reading and writing,
    // so the read never meets its end) under another name and renamed,
    // so it has a writer from the moment it is found.
    let script =
        "mkfifo /tmp/fifo.new && exec 1<>/tmp/fifo.new && mv /tmp/fifo.new /tmp/fifo && exec yes";
    let mut yes = vm
        .exec(GuestCommand::new("/bin/sh").args(["-c", script]))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while vm
        .files()
        .symlink_metadata("/tmp/fifo")
        .map_or(true, |m| m.kind != GuestFileKind::Other)
    {
        assert!(Instant::now() < deadline, "no FIFO");
        std::thread::sleep(Duration::from_millis(100));
    }
    let started = Instant::now();
    let err = file_error(
        vm.files()
            .timeout(Duration::from_secs(60))
            .read_file_max("/tmp/fifo", 4 << 20),
    );
    assert!(
        matches!(err, GuestFileError::TooLarge { max, .. } if max == 4 << 20),
        "{err:?}"
    );
    println!(
        "a FIFO fed by yes cut off at 4 MiB after {:?}",
        started.elapsed()
    );
    // A FIFO cannot be copied.
    let err = file_error(
        vm.files()
            .copy_out("/tmp/fifo", tempfile::tempdir().unwrap().path().join("f")),
    );
    assert!(matches!(err, GuestFileError::Unsupported { .. }), "{err:?}");
    yes.kill().unwrap();
    yes.wait().unwrap();
}

fn a_container_s_files_are_its_own(vm: &mut VmHandle) {
    let mut files = vm.files();
    for dir in ["/srv", "/srv/c", "/srv/data"] {
        files.make_dir(dir, 0o755).unwrap();
    }
    files.write_file("/srv/data/f", "bound\n", 0o644).unwrap();
    let c = GuestContainer::new("c", "/srv/c").bind("/srv/data", "/data", true);
    vm.prepare_container(&c).unwrap();
    let mut files = vm.files_in("c");
    files
        .write_file("/hello", "from the host\n", 0o644)
        .unwrap();
    files.symlink("/", "/top").unwrap();
    files.write_file("/top/via-top", "x", 0o644).unwrap();
    assert_eq!(files.read_file("/hello").unwrap(), b"from the host\n");
    // Its binds are there, as its processes see them, read-only.
    assert_eq!(files.read_file("/data/f").unwrap(), b"bound\n");
    let err = file_error(files.write_file("/data/g", "x", 0o644));
    assert!(
        matches!(
            err,
            GuestFileError::Guest {
                errno: libc::EROFS,
                ..
            }
        ),
        "{err:?}"
    );
    // Its `/` is the VM's /srv/c.
    assert_eq!(
        vm.files().read_file("/srv/c/hello").unwrap(),
        b"from the host\n"
    );
    assert_eq!(vm.files().read_file("/srv/c/via-top").unwrap(), b"x");
    assert!(vm.files().symlink_metadata("/via-top").is_err());
    let err = file_error(vm.files_in("nope").read_file("/x"));
    assert!(
        matches!(
            err,
            GuestFileError::Guest {
                step: GuestStep::Container,
                errno: libc::ENOENT,
                ..
            }
        ),
        "{err:?}"
    );
    vm.discard_container("c").unwrap();
}
