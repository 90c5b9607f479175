use super::*;

/// The static busybox these tests build trees from. `./scripts/setup.sh`
/// installs it (the README's test command runs it first); without it these
/// tests fail with the fix, never pass silently.
fn busybox() -> Option<PathBuf> {
    match find_busybox() {
        Ok(p) => Some(p),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn template_holds_busybox_and_applets() {
    let Some(bb) = busybox() else { return };
    let cache = tempfile::tempdir().unwrap();
    let t = prepare_template_in(cache.path(), &bb).unwrap();
    assert!(t.join("bin/busybox").is_file());
    assert_eq!(
        fs::read_link(t.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert!(t.join("proc").is_dir() && t.join("dev").is_dir());
    assert_eq!(
        fs::metadata(t.join("tmp")).unwrap().permissions().mode() & 0o7777,
        0o1777
    );
    // Idempotent: a second call returns the same tree, and leaves no staging dirs.
    assert_eq!(prepare_template_in(cache.path(), &bb).unwrap(), t);
    let names: Vec<_> = fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn a_dead_builds_staging_dir_is_swept_and_a_live_one_is_not() {
    let Some(bb) = busybox() else { return };
    let cache = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    let dead = cache.path().join(format!(".staging-{gone}-x"));
    fs::create_dir_all(dead.join("bin")).unwrap();
    // A build in progress in this process: its pid lives.
    let live = cache
        .path()
        .join(format!(".staging-{}-x", std::process::id()));
    fs::create_dir(&live).unwrap();
    prepare_template_in(cache.path(), &bb).unwrap();
    assert!(!dead.exists(), "a dead build's staging dir survived");
    assert!(live.exists(), "a live build's staging dir was swept");
    // A dead pid whose directory is still locked (a build in another pid
    // namespace) stays too.
    let held = cache.path().join(format!(".staging-{gone}-y"));
    fs::create_dir(&held).unwrap();
    let lock = fs::File::open(&held).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockShared).unwrap();
    sweep_staging(cache.path());
    assert!(held.exists());
    drop(lock);
    sweep_staging(cache.path());
    assert!(!held.exists());
}

#[test]
fn concurrent_preparations_yield_one_complete_template() {
    let Some(bb) = busybox() else { return };
    let cache = tempfile::tempdir().unwrap();
    let results: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| prepare_template_in(cache.path(), &bb).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    let names: Vec<_> = fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "leftover staging dirs: {names:?}");
    assert_eq!(
        fs::read(results[0].join("bin/busybox")).unwrap().len(),
        fs::read(&bb).unwrap().len()
    );
}

#[test]
fn run_copies_are_private_and_removed_on_drop() {
    let Some(bb) = busybox() else { return };
    let cache = tempfile::tempdir().unwrap();
    let t = prepare_template_in(cache.path(), &bb).unwrap();
    let runs = tempfile::tempdir().unwrap();
    let copy = RunRootfs::copy_of(&t, runs.path()).unwrap();
    let path = copy.path().to_path_buf();
    // A guest writing into its copy does not touch the template.
    fs::write(path.join("bin/busybox"), "trojan").unwrap();
    assert_ne!(fs::read(t.join("bin/busybox")).unwrap(), b"trojan");
    assert_eq!(
        fs::read_link(path.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    drop(copy);
    assert!(!path.exists());
    assert_eq!(fs::read_dir(runs.path()).unwrap().count(), 0);
}

#[test]
fn a_copy_whose_process_died_is_removed_by_the_next_one() {
    let Some(bb) = busybox() else { return };
    let cache = tempfile::tempdir().unwrap();
    let t = prepare_template_in(cache.path(), &bb).unwrap();
    let runs = tempfile::tempdir().unwrap();
    let live = RunRootfs::copy_of(&t, runs.path()).unwrap();
    // What a killed process leaves: its copy and lock file, with no one
    // holding the lock (the kernel drops a dead process's locks).
    let dead = runs.path().join("run-dead");
    fs::create_dir_all(dead.join("guest/bin")).unwrap();
    fs::write(dead.join("lock"), b"").unwrap();
    let next = RunRootfs::copy_of(&t, runs.path()).unwrap();
    assert!(!dead.exists(), "a dead copy survived");
    assert!(live.path().join("bin/busybox").is_file());
    assert!(next.path().join("bin/busybox").is_file());
    assert_eq!(
        fs::metadata(next.path()).unwrap().permissions().mode() & 0o777,
        0o755
    );
}

#[test]
fn a_copy_into_an_unsafe_parent_is_refused() {
    // Another user pre-creating the runs directory as a symlink to a
    // directory they control: nothing is copied there.
    let base = tempfile::tempdir().unwrap();
    let theirs = base.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    let runs = base.path().join("runs");
    std::os::unix::fs::symlink(&theirs, &runs).unwrap();
    let err = RunRootfs::copy_of(base.path(), &runs).unwrap_err();
    assert!(
        matches!(
            err,
            crate::MonocoreError::State(crate::error::StateError::UnsafeDir { .. })
        ),
        "{err}"
    );
    let err = prepare_template_in(&runs, Path::new("/bin/sh")).unwrap_err();
    assert!(
        matches!(
            err,
            RootfsError::State(crate::error::StateError::UnsafeDir { .. })
        ),
        "{err}"
    );
    assert_eq!(fs::read_dir(&theirs).unwrap().count(), 0);
}

#[test]
fn a_missing_busybox_says_how_to_install_it_and_debug_does_not() {
    // As the README shows them.
    let error = crate::MonocoreError::from(RootfsError::BusyboxNotFound {
        searched: BUSYBOX_PATHS.iter().map(PathBuf::from).collect(),
    });
    assert_eq!(
        error.to_string(),
        "no static busybox found at [\"/usr/bin/busybox\", \"/bin/busybox\"]: install it with \
         `apt-get install busybox-static` (or run ./scripts/setup.sh), or give the VM another \
         root filesystem (`monocore run --root DIR`)"
    );
    assert_eq!(
        format!("{error:?}"),
        "RootfsPrepare(BusyboxNotFound { searched: [\"/usr/bin/busybox\", \"/bin/busybox\"] })"
    );
}

#[test]
fn missing_busybox_is_a_typed_error() {
    let cache = tempfile::tempdir().unwrap();
    let err = prepare_template_in(cache.path(), Path::new("/no/busybox")).unwrap_err();
    assert!(matches!(err, RootfsError::Io { .. }), "{err:?}");
}
