//! passt, the guest network's host end: found, started in the namespace
//! of [`super::namespace`] with one end of a socketpair, and checked to
//! answer before the VM starts.

use std::{
    io::{Read, Write},
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::{net::UnixStream, process::CommandExt},
    },
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use monocore_rules::egress::{GATEWAY, GUEST_ADDR, GUEST_PREFIX};

use super::NetError;

/// The guest's MAC address (locally administered).
pub(crate) const GUEST_MAC: [u8; 6] = [0x02, 0x6d, 0x63, 0x00, 0x00, 0x02];
/// passt's own MAC address.
const PASST_MAC: &str = "02:6d:63:00:00:01";
/// How long passt may take to answer its first frame.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this much of passt's error output is kept.
const STDERR_LIMIT: usize = 4096;

/// Where `scripts/install-passt.sh` installs passt (Debian forky's, with
/// its own loader and libc), unless `MONOCORE_PASST_DIR` says otherwise.
pub const DEFAULT_PASST_DIR: &str = "/opt/monocore/passt";

/// How passt is run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PasstBinary {
    /// A dynamic loader to run it with (`--library-path` its directory),
    /// for the private install.
    loader: Option<PathBuf>,
    /// The passt executable.
    passt: PathBuf,
}

impl PasstBinary {
    /// The command that runs passt (its arguments to be added).
    fn command(&self) -> Command {
        match &self.loader {
            Some(loader) => {
                let mut command = Command::new(loader);
                if let Some(dir) = self.passt.parent() {
                    command.arg("--library-path").arg(dir);
                }
                command.arg("--argv0").arg("passt").arg(&self.passt);
                command
            }
            None => Command::new(&self.passt),
        }
    }

    /// The passt executable.
    pub(crate) fn path(&self) -> &Path {
        &self.passt
    }
}

/// Finds passt: `MONOCORE_PASST` (a passt executable), else the private
/// install in `MONOCORE_PASST_DIR` or [`DEFAULT_PASST_DIR`], else `passt`
/// on `PATH`.
pub(crate) fn find() -> Result<PasstBinary, NetError> {
    if let Some(path) = std::env::var_os("MONOCORE_PASST") {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(PasstBinary {
                loader: None,
                passt: path,
            })
        } else {
            Err(NetError::PasstNotExecutable(path))
        };
    }
    let dir = std::env::var_os("MONOCORE_PASST_DIR")
        .map_or_else(|| PathBuf::from(DEFAULT_PASST_DIR), PathBuf::from);
    let (loader, passt) = (dir.join("ld-linux-x86-64.so.2"), dir.join("passt"));
    if is_executable(&loader) && is_executable(&passt) {
        return Ok(PasstBinary {
            loader: Some(loader),
            passt,
        });
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join("passt"))
        .find(|p| is_executable(p))
        .map(|passt| PasstBinary {
            loader: None,
            passt,
        })
        .ok_or(NetError::PasstNotFound)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The arguments passt runs with: foreground, IPv4 only, the guest's fixed
/// address (no DHCP, NDP or router advertisements: the agent configures
/// the guest), no ICMP, `lo` as its template interface (the namespace has
/// no other), and `forwards` as `-t` port forwards into the guest.
fn args(fd: i32, forwards: &[(u16, u16)]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--foreground",
        "--quiet",
        "--ipv4-only",
        "--no-dhcp",
        "--no-ndp",
        "--no-dhcpv6",
        "--no-ra",
        "--no-icmp",
        "--runas",
        "65534",
        "--interface",
        "lo",
        "--mac-addr",
        PASST_MAC,
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    args.extend([
        "--address".to_owned(),
        GUEST_ADDR.to_string(),
        "--netmask".to_owned(),
        GUEST_PREFIX.to_string(),
        "--gateway".to_owned(),
        GATEWAY.to_string(),
        "--fd".to_owned(),
        fd.to_string(),
    ]);
    for (inner, guest) in forwards {
        args.push("--tcp-ports".to_owned());
        args.push(format!("127.0.0.1/{inner}:{guest}"));
    }
    args
}

/// Starts passt in `netns` with `theirs`, one end of a socketpair, and
/// waits for it to answer an ARP request sent over the other, `ours`, on
/// the guest's behalf. passt ends when its socket closes: when every copy
/// of `ours` is closed, at the latest when this process ends.
pub(crate) fn start(
    binary: &PasstBinary,
    netns: &OwnedFd,
    theirs: OwnedFd,
    ours: &OwnedFd,
    forwards: &[(u16, u16)],
) -> Result<(), NetError> {
    let spawn_error = |source| NetError::PasstSpawn {
        path: binary.path().to_path_buf(),
        source,
    };
    let their_fd = theirs.as_raw_fd();
    let ns_fd = netns.as_raw_fd();
    let mut command = binary.command();
    command
        .args(args(their_fd, forwards))
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the closure makes only async-signal-safe system calls
    // (setns, prctl, getppid, fcntl) on fds that stay open until spawn
    // returns.
    unsafe {
        command.pre_exec(move || {
            if libc::setns(ns_fd, libc::CLONE_NEWNET) != 0
                || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                || libc::fcntl(their_fd, libc::F_SETFD, 0) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() == 1 {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(spawn_error)?;
    drop(theirs);
    let stderr = collect_stderr(&mut child);
    let probed = ours
        .try_clone()
        .map_err(|e| e.to_string())
        .and_then(|fd| probe(&UnixStream::from(fd)));
    if let Err(why) = probed {
        let _ = child.kill();
        let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
        // passt has ended, so its stderr reaches its end and the reader
        // returns what it kept.
        let text = stderr
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default();
        return Err(NetError::PasstFailed(format!(
            "{why}; passt {status}: {}",
            text.trim()
        )));
    }
    // Reaps passt whenever it ends.
    let _ = std::thread::Builder::new()
        .name("monocore-passt".into())
        .spawn(move || child.wait());
    Ok(())
}

/// Reads passt's error output to its end (so that passt never blocks on
/// it) and returns its first [`STDERR_LIMIT`] bytes.
fn collect_stderr(child: &mut Child) -> Option<std::thread::JoinHandle<String>> {
    let mut pipe = child.stderr.take()?;
    std::thread::Builder::new()
        .name("monocore-passt-log".into())
        .spawn(move || {
            let mut text = String::new();
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                if let Some(bytes) = buf.get(..n)
                    && text.len() < STDERR_LIMIT
                {
                    text.push_str(&String::from_utf8_lossy(bytes));
                }
            }
            text
        })
        .ok()
}

/// An ARP request from the guest's address for the gateway's, as passt's
/// stream socket carries frames: a 32-bit big-endian length, then the
/// Ethernet frame.
fn arp_request() -> Vec<u8> {
    let mut frame = Vec::with_capacity(46);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&GUEST_MAC);
    frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    frame.extend_from_slice(&GUEST_MAC);
    frame.extend_from_slice(&GUEST_ADDR.octets());
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&GATEWAY.octets());
    let mut out = u32::try_from(frame.len())
        .unwrap_or(0)
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(&frame);
    out
}

/// Sends [`arp_request`] and waits for passt's ARP reply (passt may send
/// other frames first, such as its own ARP request for the guest).
fn probe(stream: &UnixStream) -> Result<(), String> {
    let mut stream = stream;
    stream
        .set_read_timeout(Some(START_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&arp_request())
        .map_err(|e| format!("writing to it: {e}"))?;
    for _ in 0..8 {
        let mut len = [0u8; 4];
        stream
            .read_exact(&mut len)
            .map_err(|e| format!("no answer to an ARP request: {e}"))?;
        let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
        if !(14..=65550).contains(&len) {
            return Err(format!("a {len}-byte frame in answer to an ARP request"));
        }
        let mut frame = vec![0u8; len];
        stream
            .read_exact(&mut frame)
            .map_err(|e| format!("a cut frame in answer to an ARP request: {e}"))?;
        let arp_reply =
            frame.get(12..14) == Some(&[0x08, 0x06]) && frame.get(20..22) == Some(&[0, 2]);
        if arp_reply {
            return stream.set_read_timeout(None).map_err(|e| e.to_string());
        }
    }
    Err("no ARP reply among its first 8 frames".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passt_that_does_not_answer_is_an_error_with_its_own_words() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("passt");
        std::fs::write(
            &script,
            "#!/bin/sh\necho 'no such option: --frobnicate' >&2\nexit 1\n",
        )
        .unwrap();
        let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
        std::fs::set_permissions(&script, mode).unwrap();
        let binary = PasstBinary {
            loader: None,
            passt: script,
        };
        let netns = OwnedFd::from(std::fs::File::open("/proc/self/ns/net").unwrap());
        let (ours, theirs) = UnixStream::pair().unwrap();
        match start(
            &binary,
            &netns,
            OwnedFd::from(theirs),
            &OwnedFd::from(ours),
            &[],
        ) {
            Err(NetError::PasstFailed(text)) => {
                // Whether passt ended before or after the request was
                // written, the error says so, with passt's status and words.
                assert!(
                    text.contains("no answer to an ARP request") || text.contains("writing to it"),
                    "{text}"
                );
                assert!(text.contains("passt exit status: 1"), "{text}");
                assert!(text.contains("no such option: --frobnicate"), "{text}");
            }
            Err(NetError::PasstSpawn { source, .. })
                if source.raw_os_error() == Some(libc::EPERM) =>
            {
                eprintln!(
                    "SKIPPED: a_passt_that_does_not_answer_is_an_error_with_its_own_words: setns needs CAP_SYS_ADMIN: {source}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
