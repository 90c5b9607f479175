//! The host side of the guest agent's files: the VM's private root, the run
//! spec, and the agent's report.
//!
//! Every VM boots from a private root filesystem that monocore makes for the
//! run (never the user's root filesystem, which monocore does not write):
//! `guest/` in its run directory (see [`crate::state::run_dir`] for the
//! names, which are `monocore_agent::paths`' as the guest sees them), with
//! the agent (embedded in this library, static), its run spec, and, once
//! the guest wrote it, its report; plus `dev/`, `proc/` and `sys/` for
//! libkrun's init.
//!
//! libkrun's init runs the agent as the VM's command (`KRUN_INIT`); the
//! command itself, its arguments, environment, working directory, limits
//! and mounts travel in the spec, not on the kernel command line. The user's
//! root filesystem and each mapped directory are virtio-fs shares the agent
//! mounts inside the guest, so mount points are created by the guest in its
//! own view of its root, where no symlink can lead out of it.

use std::{
    fs,
    io::Read,
    os::{
        fd::OwnedFd,
        unix::fs::{DirBuilderExt, OpenOptionsExt},
    },
};

use monocore_agent::{
    paths,
    report::{MAX_REPORT_LEN, Report},
    spec::{Mount, Rlimit, Spec},
};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::{
    config::MicroVmConfig,
    error::{HelperError, InvalidMicroVmConfigError, MonocoreError, MonocoreResult, ReportError},
    state::RunPaths,
};

/// The agent binary, built statically by this crate's build script.
const AGENT_BIN: &[u8] = include_bytes!(env!("MONOCORE_AGENT_BIN"));

/// The virtio-fs tag of the user's root filesystem.
pub(crate) const ROOT_TAG: &str = "monocore_root";

/// The virtio-fs tag of mapped directory `index`.
pub(crate) fn mapped_dir_tag(index: usize) -> String {
    format!("monocore_{index}")
}

/// The agent's path as the guest sees it (libkrun's `KRUN_INIT`).
pub(crate) const AGENT_GUEST_PATH: &str = paths::AGENT;

fn nul_error(field: &'static str, value: &[u8]) -> MonocoreError {
    MonocoreError::NulInString {
        field,
        value: String::from_utf8_lossy(value).into_owned(),
    }
}

/// The run spec for `config`, with `flags` (`monocore_agent::spec::FLAG_*`).
pub(crate) fn spec_for(config: &MicroVmConfig, flags: u32) -> MonocoreResult<Spec> {
    use monocore_rules::egress;
    let net = config.net.then_some(monocore_agent::spec::NetSpec {
        address: egress::GUEST_ADDR,
        prefix: egress::GUEST_PREFIX,
        gateway: egress::GATEWAY,
        mtu: egress::GUEST_MTU,
    });
    let flags = if net.is_some() {
        flags | monocore_agent::spec::FLAG_NET
    } else {
        flags
    };
    let spec = Spec {
        root_tag: ROOT_TAG.into(),
        flags,
        net,
        exec: config
            .exec_path
            .as_ref()
            .map(|p| p.as_str().into())
            .unwrap_or_default(),
        workdir: config
            .workdir_path
            .as_ref()
            .map(|p| p.as_str().into())
            .unwrap_or_default(),
        args: config.args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env: config
            .env
            .iter()
            .map(|e| e.to_string().into_bytes())
            .collect(),
        mounts: config
            .mapped_dirs
            .iter()
            .enumerate()
            .map(|(index, dir)| {
                let guest = monocore_rules::normalize_mount_point(dir.get_guest().as_str())
                    .map_err(|e| {
                        InvalidMicroVmConfigError::rule(
                            monocore_rules::Field::MappedDirs.at(index),
                            e,
                        )
                    })?;
                Ok(Mount {
                    tag: mapped_dir_tag(index).into_bytes(),
                    guest_path: guest.into_bytes(),
                })
            })
            .collect::<MonocoreResult<_>>()?,
        rlimits: config
            .rlimits
            .iter()
            .map(|l| Rlimit {
                resource: l.get_resource().as_int(),
                soft: *l.get_soft(),
                hard: *l.get_hard(),
            })
            .collect(),
    };
    // Name the field with a NUL before the spec encoder would refuse it.
    for (field, values) in [
        ("exec_path", std::slice::from_ref(&spec.exec)),
        ("workdir_path", std::slice::from_ref(&spec.workdir)),
        ("args", spec.args.as_slice()),
        ("env", spec.env.as_slice()),
    ] {
        if let Some(value) = values.iter().find(|v| v.contains(&0)) {
            return Err(nul_error(field, value));
        }
    }
    Ok(spec)
}

/// Fills the fresh, empty private root of the run `run` for `spec`: the
/// agent, its spec, the directory it mounts the user's root on, and the
/// mount points libkrun's init needs.
pub(crate) fn install(run: &RunPaths, spec: &Spec) -> MonocoreResult<()> {
    let encoded = spec.encode().map_err(HelperError::Spec)?;
    let mut dirs = fs::DirBuilder::new();
    dirs.mode(0o755);
    let root = run.guest_root();
    let agent = run.guest_file(paths::AGENT);
    let agent_dir = agent.parent().unwrap_or(&root).to_path_buf();
    for dir in [agent_dir, run.guest_file(paths::NEW_ROOT)] {
        dirs.create(dir)?;
    }
    for dir in ["dev", "proc", "sys"] {
        dirs.create(root.join(dir))?;
    }
    let write = |guest_path: &str, bytes: &[u8], mode: u32| {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(run.guest_file(guest_path))
            .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
    };
    write(paths::AGENT, AGENT_BIN, 0o755)?;
    write(paths::SPEC, &encoded, 0o644)?;
    Ok(())
}

/// Whether the guest agent has said it is ready (it listens on the control
/// channel from then on).
pub(crate) fn agent_ready(run: &RunPaths) -> bool {
    matches!(read_report(run), Ok(Report::Ready))
}

/// What the agent reported, read from the run `run`'s private root after
/// the VM ended.
///
/// The guest can write anything there: the file is opened without following
/// a symlink anywhere on its path, must be a regular file, and at most
/// [`MAX_REPORT_LEN`] + 1 bytes are read. `Err` says what was found instead
/// of a report.
pub(crate) fn read_report(run: &RunPaths) -> Result<Report, ReportError> {
    let root = rustix::fs::open(
        run.guest_root(),
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| ReportError::Root(e.into()))?;
    let report = paths::REPORT.trim_start_matches('/');
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    let fd = match rustix::fs::openat2(
        &root,
        report,
        flags,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    ) {
        // No openat2 (Linux before 5.6): one component at a time, none of
        // them followed if it is a symlink.
        Err(rustix::io::Errno::NOSYS) => open_each(&root, report, flags),
        other => other,
    }
    .map_err(|e| match e {
        rustix::io::Errno::NOENT => ReportError::Missing,
        e => ReportError::Open(e.into()),
    })?;
    let file = fs::File::from(fd);
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(ReportError::NotAFile);
    }
    let mut bytes = Vec::new();
    file.take(MAX_REPORT_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(ReportError::Read)?;
    Report::parse(&bytes).map_err(ReportError::Invalid)
}

/// Opens `relative` under `dir` one component at a time with `O_NOFOLLOW`
/// (the directories with `O_DIRECTORY`, the last with `flags`).
fn open_each(dir: &OwnedFd, relative: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let mut components = relative.split('/').filter(|c| !c.is_empty()).peekable();
    let mut current: Option<OwnedFd> = None;
    while let Some(component) = components.next() {
        let at = current.as_ref().unwrap_or(dir);
        let last = components.peek().is_none();
        let component_flags = if last {
            flags
        } else {
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW
        };
        current = Some(rustix::fs::openat(
            at,
            component,
            component_flags,
            Mode::empty(),
        )?);
    }
    current.ok_or(rustix::io::Errno::INVAL)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::config::EnvPair;

    #[test]
    fn the_spec_carries_the_command_verbatim() {
        let root = tempfile::tempdir().unwrap();
        let mut config = MicroVmConfig::new(root.path(), 128);
        config.exec_path = Some("/bin/sh".into());
        config.args = vec!["-c".into(), "echo \"a b\" 'c'".into()];
        config.env = vec![EnvPair::new("KRUN_INIT", "plain \"value\"")];
        config.workdir_path = Some("/work dir".into());
        config.mapped_dirs = vec![format!("{}:/data/", root.path().display()).parse().unwrap()];
        config.rlimits = vec!["RLIMIT_NOFILE=10:20".parse().unwrap()];
        let spec = spec_for(&config, 0).unwrap();
        assert_eq!(spec.root_tag, b"monocore_root");
        assert_eq!(spec.exec, b"/bin/sh");
        assert_eq!(spec.args[1], b"echo \"a b\" 'c'");
        assert_eq!(spec.env, [b"KRUN_INIT=plain \"value\"".to_vec()]);
        assert_eq!(spec.workdir, b"/work dir");
        assert_eq!(
            spec.mounts,
            [Mount {
                tag: b"monocore_0".to_vec(),
                guest_path: b"/data".to_vec()
            }]
        );
        assert_eq!(
            spec.rlimits,
            [Rlimit {
                resource: 7,
                soft: 10,
                hard: 20
            }]
        );

        config.args.push("nul\0".into());
        assert!(matches!(
            spec_for(&config, 0),
            Err(MonocoreError::NulInString { field: "args", .. })
        ));
    }

    #[test]
    fn the_private_root_holds_the_agent_and_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunPaths::new(dir.path());
        fs::create_dir(run.guest_root()).unwrap();
        let spec = Spec {
            root_tag: ROOT_TAG.into(),
            ..Spec::default()
        };
        install(&run, &spec).unwrap();
        let agent = fs::read(run.guest_file(paths::AGENT)).unwrap();
        assert_eq!(agent.get(..4), Some(&b"\x7fELF"[..]));
        let encoded = fs::read(run.guest_file(paths::SPEC)).unwrap();
        assert_eq!(Spec::decode(&encoded).unwrap(), spec);
        assert!(run.guest_file(paths::NEW_ROOT).is_dir());
    }

    /// A run directory with an empty private root.
    fn run_dir() -> (tempfile::TempDir, RunPaths) {
        let dir = tempfile::tempdir().unwrap();
        let run = RunPaths::new(dir.path());
        fs::create_dir(run.guest_root()).unwrap();
        (dir, run)
    }

    #[test]
    fn the_report_is_read_without_following_guest_symlinks() {
        let (_dir, run) = run_dir();
        let report = run.guest_file(paths::REPORT);
        let meta = report.parent().unwrap().to_path_buf();
        fs::create_dir(&meta).unwrap();
        assert!(matches!(read_report(&run), Err(ReportError::Missing)));
        fs::write(&report, "ready\n").unwrap();
        assert_eq!(read_report(&run).unwrap(), Report::Ready);

        // A symlink to a host file, as the file or as its directory.
        let secret = tempfile::NamedTempFile::new().unwrap();
        fs::write(secret.path(), "ready\n").unwrap();
        fs::remove_file(&report).unwrap();
        symlink(secret.path(), &report).unwrap();
        assert!(matches!(read_report(&run), Err(ReportError::Open(_))));
        let elsewhere = tempfile::tempdir().unwrap();
        fs::write(
            elsewhere.path().join(report.file_name().unwrap()),
            "ready\n",
        )
        .unwrap();
        fs::remove_dir_all(&meta).unwrap();
        symlink(elsewhere.path(), &meta).unwrap();
        assert!(matches!(read_report(&run), Err(ReportError::Open(_))));

        // A FIFO never blocks the host; a huge file is read only so far.
        fs::remove_file(&meta).unwrap();
        fs::create_dir(&meta).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &report,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert!(matches!(read_report(&run), Err(ReportError::NotAFile)));
        fs::remove_file(&report).unwrap();
        fs::write(&report, vec![b'x'; 10 << 20]).unwrap();
        assert!(matches!(read_report(&run), Err(ReportError::Invalid(_))));
    }

    #[test]
    fn without_openat2_no_component_is_followed() {
        // The fallback for kernels before 5.6, tested directly.
        let (_dir, run) = run_dir();
        let guest = run.guest_root();
        let root =
            rustix::fs::open(&guest, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
        fs::create_dir(guest.join(".monocore")).unwrap();
        fs::write(guest.join(".monocore/status"), "ready\n").unwrap();
        assert!(open_each(&root, ".monocore/status", flags).is_ok());
        let elsewhere = tempfile::tempdir().unwrap();
        fs::write(elsewhere.path().join("status"), "ready\n").unwrap();
        fs::remove_dir_all(guest.join(".monocore")).unwrap();
        symlink(elsewhere.path(), guest.join(".monocore")).unwrap();
        assert_eq!(
            open_each(&root, ".monocore/status", flags).unwrap_err(),
            rustix::io::Errno::NOTDIR
        );
        fs::remove_file(guest.join(".monocore")).unwrap();
        fs::create_dir(guest.join(".monocore")).unwrap();
        symlink(
            elsewhere.path().join("status"),
            guest.join(".monocore/status"),
        )
        .unwrap();
        assert_eq!(
            open_each(&root, ".monocore/status", flags).unwrap_err(),
            rustix::io::Errno::LOOP
        );
    }
}
