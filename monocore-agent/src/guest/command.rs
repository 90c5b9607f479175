//! Building the commands the agent runs: the main command and every
//! command executed over the control channel.

use std::{
    ffi::OsStr,
    os::unix::{ffi::OsStrExt, process::CommandExt},
    path::Path,
    process::Command,
};

use super::sys;
use monocore_agent::{control::User, spec::Rlimit};

/// The `PATH` searched when the command's environment has none (Docker's
/// default).
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What to run.
pub(crate) struct Program<'a> {
    /// The program; empty means `/bin/sh`.
    pub(crate) exec: &'a [u8],
    pub(crate) args: &'a [Vec<u8>],
    /// The whole environment, `NAME=value`.
    pub(crate) env: &'a [Vec<u8>],
    /// Empty means `/`.
    pub(crate) workdir: &'a [u8],
    pub(crate) rlimits: &'a [Rlimit],
    /// The user to run as; `None`: the agent's (root).
    pub(crate) user: Option<&'a User>,
}

impl Program<'_> {
    /// The program as given (`argv[0]`).
    pub(crate) fn exec(&self) -> &[u8] {
        if self.exec.is_empty() {
            b"/bin/sh"
        } else {
            self.exec
        }
    }

    /// The working directory.
    pub(crate) fn workdir(&self) -> &[u8] {
        if self.workdir.is_empty() {
            b"/"
        } else {
            self.workdir
        }
    }

    /// A `Command` for it: the program resolved, `argv[0]` as given, exactly
    /// the environment given, the working directory, and the resource limits
    /// set in the child just before it executes the program.
    pub(crate) fn command(&self) -> Command {
        let exec = self.exec();
        let mut command = Command::new(OsStr::from_bytes(&resolve(exec, self.env)));
        command
            .arg0(OsStr::from_bytes(exec))
            .args(self.args.iter().map(|a| OsStr::from_bytes(a)))
            .env_clear()
            .current_dir(OsStr::from_bytes(self.workdir()));
        for entry in self.env {
            let mut parts = entry.splitn(2, |&b| b == b'=');
            if let (Some(name), Some(value)) = (parts.next(), parts.next())
                && !name.is_empty()
            {
                command.env(OsStr::from_bytes(name), OsStr::from_bytes(value));
            }
        }
        let limits = self.rlimits.to_vec();
        let user = self.user.cloned();
        if !limits.is_empty() || user.is_some() {
            // SAFETY: the closure runs in the forked child before exec and
            // only makes system calls (setrlimit, then setgroups, setresgid
            // and setresuid: the limits are set while the child may still
            // raise them), which are async-signal-safe; it allocates
            // nothing (the limits and groups were copied before the fork).
            unsafe {
                command.pre_exec(move || {
                    for limit in &limits {
                        sys::set_rlimit(limit.resource, limit.soft, limit.hard)
                            .map_err(std::io::Error::from_raw_os_error)?;
                    }
                    if let Some(user) = &user {
                        sys::set_user(user.uid, user.gid, &user.groups)
                            .map_err(std::io::Error::from_raw_os_error)?;
                    }
                    Ok(())
                });
            }
        }
        command
    }
}

/// The limits a command gets: the VM's, each replaced by `own`'s limit
/// for the same resource, then `own`'s others.
pub(crate) fn merged_limits(vm: &[Rlimit], own: &[Rlimit]) -> Vec<Rlimit> {
    vm.iter()
        .filter(|limit| !own.iter().any(|o| o.resource == limit.resource))
        .chain(own)
        .copied()
        .collect()
}

/// The program to execute: `exec` as given when it names a path; otherwise
/// looked up in the environment's `PATH`, or in [`DEFAULT_PATH`] when the
/// environment has none.
pub(crate) fn resolve(exec: &[u8], env: &[Vec<u8>]) -> Vec<u8> {
    if exec.contains(&b'/') {
        return exec.to_vec();
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .unwrap_or(DEFAULT_PATH.as_bytes());
    path.split(|&b| b == b':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| [dir, b"/", exec].concat())
        .find(|candidate| Path::new(OsStr::from_bytes(candidate)).is_file())
        .unwrap_or_else(|| exec.to_vec())
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn a_path_is_used_as_given_and_a_name_is_looked_up() {
        assert_eq!(resolve(b"/no/such/prog", &[]), b"/no/such/prog");
        assert_eq!(resolve(b"./prog", &[]), b"./prog");
        // `sh` exists in the default PATH of any Linux host running tests.
        let sh = resolve(b"sh", &[]);
        assert!(sh.ends_with(b"/sh") && sh.starts_with(b"/"), "{sh:?}");
        // The environment's PATH wins; a name found nowhere stays a name.
        let dir = std::env::temp_dir();
        let env = vec![[b"PATH=".as_slice(), dir.as_os_str().as_bytes()].concat()];
        assert_eq!(
            resolve(b"no-such-program-here", &env),
            b"no-such-program-here"
        );
    }

    #[test]
    fn a_command_gets_exactly_its_environment_limits_and_directory() {
        let env = vec![b"ONLY=this".to_vec(), b"=no-name".to_vec()];
        let limits = [Rlimit {
            resource: 7,
            soft: 77,
            hard: 88,
        }];
        let program = Program {
            exec: b"sh",
            args: &[
                b"-c".to_vec(),
                b"printf '%s|' \"$ONLY\" \"$(pwd)\" \"$(ulimit -n)\"; env | grep -c =".to_vec(),
            ],
            env: &env,
            workdir: b"/tmp",
            rlimits: &limits,
            user: None,
        };
        let out = program.command().output().unwrap();
        assert!(out.status.success(), "{out:?}");
        // `sh` adds PWD (and may add others) on its own; the command got ONLY.
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("this|/tmp|77|"), "{text}");
    }

    #[test]
    fn a_command_s_own_limits_replace_the_vm_s_for_their_resource() {
        let limit = |resource, soft| Rlimit {
            resource,
            soft,
            hard: 100,
        };
        let merged = merged_limits(&[limit(7, 1), limit(4, 2)], &[limit(7, 3), limit(6, 4)]);
        assert_eq!(merged, [limit(4, 2), limit(7, 3), limit(6, 4)]);
    }

    #[test]
    fn a_command_runs_as_its_user_with_exactly_its_groups() {
        // Only root can change its user.
        if std::fs::read_to_string("/proc/self/status")
            .is_ok_and(|s| !s.lines().any(|l| l.starts_with("Uid:\t0\t")))
        {
            eprintln!("skipped: not root");
            return;
        }
        let user = User {
            uid: 4321,
            gid: 8765,
            groups: vec![11, 12],
        };
        let program = Program {
            exec: b"/bin/sh",
            args: &[b"-c".to_vec(), b"id -u; id -g; id -G".to_vec()],
            env: &[],
            workdir: b"/",
            rlimits: &[],
            user: Some(&user),
        };
        let out = program.command().output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "4321\n8765\n8765 11 12\n"
        );
    }
}
