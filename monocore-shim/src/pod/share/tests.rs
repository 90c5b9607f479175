use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
};

use super::{CONTAINERS, PodShare, ShareError};

/// Mounting needs root (CI runs the tests as root). Elsewhere the test says
/// so, and fails where boots are required.
fn may_mount(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    let reason = "mounting needs root";
    if std::env::var_os("MONOCORE_REQUIRE_BOOT").is_some_and(|v| v == "1") {
        panic!("{test}: {reason}, and MONOCORE_REQUIRE_BOOT=1");
    }
    eprintln!("SKIPPED: {test}: {reason}");
    false
}

struct Fixture {
    _dir: tempfile::TempDir,
    share_dir: PathBuf,
    host: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("file"), "host\n").unwrap();
    fs::create_dir(host.join("dir")).unwrap();
    fs::write(host.join("dir/inside"), "inside\n").unwrap();
    Fixture {
        share_dir: dir.path().join("share"),
        host,
        _dir: dir,
    }
}

fn is_mount_point(path: &Path) -> bool {
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.to_str().unwrap();
    mounts
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(path))
}

#[test]
fn a_directory_and_a_file_are_bound_in_a_slot_and_taken_off_with_it() {
    if !may_mount("a_directory_and_a_file_are_bound_in_a_slot_and_taken_off_with_it") {
        return;
    }
    let f = fixture();
    let share = PodShare::create(&f.share_dir).unwrap();
    let dir = share
        .attach("c1".as_ref(), "root".as_ref(), &f.host.join("dir"), false)
        .unwrap();
    let file = share
        .attach("c1".as_ref(), "m0".as_ref(), &f.host.join("file"), false)
        .unwrap();
    assert_eq!(dir, Path::new("/containers/c1/root"));
    assert_eq!(file, Path::new("/containers/c1/m0"));
    let on_host = |guest: &Path| f.share_dir.join(guest.strip_prefix("/").unwrap());
    assert_eq!(
        fs::read_to_string(on_host(&dir).join("inside")).unwrap(),
        "inside\n"
    );
    // Writes through the share reach the host file, and back.
    fs::write(on_host(&file), "from the guest\n").unwrap();
    assert_eq!(
        fs::read_to_string(f.host.join("file")).unwrap(),
        "from the guest\n"
    );
    assert!(is_mount_point(&on_host(&dir)));

    share.detach("c1".as_ref()).unwrap();
    assert!(!is_mount_point(&on_host(&dir)));
    assert!(!f.share_dir.join(CONTAINERS).join("c1").exists());
    // The sources are untouched.
    assert_eq!(
        fs::read_to_string(f.host.join("dir/inside")).unwrap(),
        "inside\n"
    );
    assert_eq!(
        fs::read_to_string(f.host.join("file")).unwrap(),
        "from the guest\n"
    );
    share.remove().unwrap();
    assert!(!f.share_dir.exists());
}

#[test]
fn a_read_only_bind_refuses_writes_with_erofs() {
    if !may_mount("a_read_only_bind_refuses_writes_with_erofs") {
        return;
    }
    let f = fixture();
    let share = PodShare::create(&f.share_dir).unwrap();
    let dir = share
        .attach("c1".as_ref(), "m1".as_ref(), &f.host.join("dir"), true)
        .unwrap();
    let on_host = f.share_dir.join(dir.strip_prefix("/").unwrap());
    let error = fs::write(on_host.join("new"), "x").unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EROFS), "{error}");
    assert_eq!(
        fs::read_to_string(on_host.join("inside")).unwrap(),
        "inside\n"
    );
    // The source itself stays writable.
    fs::write(f.host.join("dir/new"), "x").unwrap();
    share.remove().unwrap();
    assert!(!is_mount_point(&on_host));
}

#[test]
fn a_symlink_planted_in_the_share_never_leads_a_mount_out_of_it() {
    if !may_mount("a_symlink_planted_in_the_share_never_leads_a_mount_out_of_it") {
        return;
    }
    let f = fixture();
    let outside = f.host.join("outside");
    fs::create_dir(&outside).unwrap();
    let share = PodShare::create(&f.share_dir).unwrap();
    // The guest replaces `containers` by a symlink to a host directory.
    fs::remove_dir(f.share_dir.join(CONTAINERS)).unwrap();
    symlink(&outside, f.share_dir.join(CONTAINERS)).unwrap();
    let error = share
        .attach("c1".as_ref(), "root".as_ref(), &f.host.join("dir"), false)
        .unwrap_err();
    assert!(
        matches!(error, ShareError::Entry { step: "open", .. }),
        "{error:?}"
    );
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing made outside"
    );

    // And a slot that is a symlink.
    fs::remove_file(f.share_dir.join(CONTAINERS)).unwrap();
    fs::create_dir(f.share_dir.join(CONTAINERS)).unwrap();
    symlink(&outside, f.share_dir.join(CONTAINERS).join("c2")).unwrap();
    let error = share
        .attach("c2".as_ref(), "root".as_ref(), &f.host.join("dir"), false)
        .unwrap_err();
    assert!(matches!(error, ShareError::Entry { .. }), "{error:?}");
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing made outside"
    );
    assert!(!is_mount_point(&outside));
    // Detaching a symlinked slot removes the link, not the directory.
    share
        .detach("c2".as_ref())
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(outside.is_dir());
    share.remove().unwrap();
}

#[test]
fn names_are_one_plain_component() {
    if !may_mount("names_are_one_plain_component") {
        return;
    }
    let f = fixture();
    let share = PodShare::create(&f.share_dir).unwrap();
    for bad in ["", ".", "..", "a/b", "/abs"] {
        let slot = share.attach(bad.as_ref(), "root".as_ref(), &f.host.join("dir"), false);
        assert!(matches!(slot, Err(ShareError::Name { .. })), "slot {bad:?}");
        let name = share.attach("c".as_ref(), bad.as_ref(), &f.host.join("dir"), false);
        assert!(matches!(name, Err(ShareError::Name { .. })), "name {bad:?}");
    }
    // A second mount under an existing name is refused.
    share
        .attach("c".as_ref(), "root".as_ref(), &f.host.join("dir"), false)
        .unwrap();
    let again = share.attach("c".as_ref(), "root".as_ref(), &f.host.join("dir"), false);
    assert!(
        matches!(again, Err(ShareError::Entry { step: "create", .. })),
        "{again:?}"
    );
    share.remove().unwrap();
}
