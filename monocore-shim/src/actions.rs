//! containerd's ways of running the shim binary, each an action:
//!
//! - `start`: start the long-running shim and print its socket address;
//! - `delete`: clean up after a shim that died;
//! - no action, with `-socket`: be the long-running shim and serve the task
//!   API there.
//!
//! `containerd_shim::run` does these too, but speaks only the task API v3
//! (containerd 2) and answers `start` in JSON, which containerd 1.6 cannot
//! read. These serve the same handlers under both the v2 and v3 service
//! names and answer with the bare address, which every containerd since
//! 1.5 reads.

use std::{
    io::Write,
    os::{fd::IntoRawFd, unix::net::UnixListener},
    path::Path,
    sync::Arc,
    time::SystemTime,
};

use containerd_shim::{
    DeleteResponse, Error, ExitSignal, Flags, StartOpts, info,
    protos::{protobuf::Message, shim_sync::create_task, ttrpc::Server},
    util::write_address,
};

use crate::{
    events::timestamp,
    pod::{kind, share::PodShare},
    rootfs, runs,
    service::Service,
};

/// The environment variable with containerd's TTRPC address (for events).
const TTRPC_ADDRESS: &str = "TTRPC_ADDRESS";

/// containerd 1.6 calls `/containerd.task.v2.Task/…`, containerd 2 `v3`:
/// the same messages under two names.
const TASK_V3: &str = "/containerd.task.v3.Task/";
const TASK_V2: &str = "/containerd.task.v2.Task/";

fn other(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("{context}: {e}"))
}

/// The id whose shim serves task `id`, from the bundle's (the current
/// directory's) spec: a pod's sandbox for a pod's container (one shim per
/// pod), else the task itself. A spec that cannot be read groups nothing:
/// `create` reports it.
fn grouping(id: &str) -> Result<String, Error> {
    let Ok(spec) = crate::spec::read_value(Path::new(".")) else {
        return Ok(id.to_owned());
    };
    let kind = kind::classify(id, spec.get("annotations"))
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    Ok(kind::grouping(id, &kind))
}

/// Whether a shim answers on `address` (`unix://PATH`).
fn is_served(address: &str) -> bool {
    let path = address.strip_prefix("unix://").unwrap_or(address);
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// `start`: starts the long-running shim for `flags.id` (this program
/// again), records its address in the bundle (the current directory) so
/// that containerd re-attaches to it after a restart, and prints it. One
/// shim per container, or per pod: a pod's container gets the address of
/// the shim that serves its sandbox.
pub fn start(flags: &Flags) -> Result<(), Error> {
    let opts = StartOpts {
        id: flags.id.clone(),
        publish_binary: flags.publish_binary.clone(),
        address: flags.address.clone(),
        ttrpc_address: std::env::var(TTRPC_ADDRESS).unwrap_or_default(),
        namespace: flags.namespace.clone(),
        debug: flags.debug,
        ..Default::default()
    };
    let grouping = grouping(&opts.id)?;
    let pod_address = opts.socket_address(&grouping);
    let address = if grouping != opts.id && is_served(&pod_address) {
        pod_address
    } else {
        containerd_shim::spawn(opts, &grouping, Vec::new())?.1
    };
    write_address(&address)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(address.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| other("write the shim address", e))
}

/// `delete`: containerd's clean-up after a shim that died. Its VM died
/// with it (the helper ends when the shim's end of its lifeline closes);
/// what may be left is the root file system's mount in the bundle, the
/// VM's run directory, and the shim's socket.
pub fn delete(flags: &Flags) -> Result<(), Error> {
    let bundle = if flags.bundle.is_empty() {
        std::env::current_dir().map_err(|e| other("the bundle", e))?
    } else {
        flags.bundle.clone().into()
    };
    // A pod's shim serves all of the pod's tasks: containerd may call this
    // for one of them while that shim lives on (it deleted the task, and
    // its connection for that task closed). The live shim owns what is
    // left, and its socket must stay.
    if !served_address(&bundle).is_some_and(|address| is_served(&address)) {
        release_pod_mounts(&bundle, flags)?;
        rootfs::unmount_all(&bundle.join("rootfs"))
            .map_err(|e| Error::Other(crate::error::chain(&e)))?;
        runs::remove(&flags.namespace, &flags.id)
            .map_err(|e| other("remove the runs directory", e))?;
        remove_socket(&bundle);
    }
    let response = DeleteResponse {
        exit_status: 128 + 9,
        exited_at: Some(timestamp(SystemTime::now())).into(),
        ..Default::default()
    };
    let mut stdout = std::io::stdout().lock();
    response.write_to_writer(&mut stdout)?;
    stdout.flush().map_err(|e| other("write the response", e))
}

/// A pod's mounts in its share, which outlive a shim that died: all of
/// them for its sandbox (before its runs directory, which holds the share,
/// is removed), a container's own for a container.
fn release_pod_mounts(bundle: &Path, flags: &Flags) -> Result<(), Error> {
    let Ok(spec) = crate::spec::read_value(bundle) else {
        return Ok(());
    };
    let Ok(kind) = kind::classify(&flags.id, spec.get("annotations")) else {
        return Ok(());
    };
    let sandbox = match &kind {
        kind::TaskKind::Standalone => return Ok(()),
        kind::TaskKind::Sandbox => &flags.id,
        kind::TaskKind::Container { sandbox } => sandbox,
    };
    let dir = crate::pod::sandbox::share_dir(&runs::dir(&flags.namespace, sandbox));
    let share = match PodShare::open_existing(&dir) {
        Ok(share) => share,
        // No share: nothing of the pod's is mounted.
        Err(_) if !dir.exists() => return Ok(()),
        Err(e) => return Err(Error::Other(crate::error::chain(&e))),
    };
    let released = match kind {
        kind::TaskKind::Container { .. } => share.detach(std::ffi::OsStr::new(&flags.id)),
        _ => share.remove(),
    };
    released.map_err(|e| Error::Other(crate::error::chain(&e)))
}

/// The address in the bundle's `address` file (`unix://PATH`).
fn served_address(bundle: &Path) -> Option<String> {
    let address = std::fs::read_to_string(bundle.join("address")).ok()?;
    Some(address.trim().to_owned())
}

/// Removes the socket named in the bundle's `address` file, if it is still
/// there and a socket.
fn remove_socket(bundle: &Path) {
    use std::os::unix::fs::FileTypeExt;
    let Some(address) = served_address(bundle) else {
        return;
    };
    let path = Path::new(address.strip_prefix("unix://").unwrap_or(&address));
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

/// The long-running shim: serves the task API on `flags.socket` until
/// `shutdown` (with no task left) ends it.
pub fn serve(flags: &Flags) -> Result<(), Error> {
    containerd_shim::logger::init(flags.debug, "info", &flags.namespace, &flags.id)?;
    ignore_termination_signals();
    let exit = Arc::new(ExitSignal::default());
    let socket = flags
        .socket
        .strip_prefix("unix://")
        .unwrap_or(&flags.socket);
    let service = Service::new(
        std::env::var(TTRPC_ADDRESS).unwrap_or_default(),
        flags.namespace.clone(),
        socket.into(),
        Arc::clone(&exit),
    );
    let task: Arc<dyn containerd_shim::Task + Send + Sync> = Arc::new(service);
    let mut methods = create_task(Arc::clone(&task));
    for (path, handler) in create_task(task) {
        if let Some(method) = path.strip_prefix(TASK_V3) {
            methods.insert(format!("{TASK_V2}{method}"), handler);
        }
    }
    let listener = listen(Path::new(socket))?;
    let mut server = Server::new()
        .add_listener(listener.into_raw_fd())?
        .register_service(methods);
    server.start()?;
    server_started();
    info!("serving the task API on {socket}");
    exit.wait();
    info!("shutting down");
    server.shutdown();
    let _ = std::fs::remove_file(socket);
    Ok(())
}

fn listen(socket: &Path) -> Result<UnixListener, Error> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| other("create the socket directory", e))?;
    }
    let fail = |e| other(&format!("listen on {}", socket.display()), e);
    match UnixListener::bind(socket) {
        // A socket left by a shim that was killed: nobody answers on it.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Err(fail(e));
            }
            std::fs::remove_file(socket).map_err(fail)?;
            UnixListener::bind(socket).map_err(fail)
        }
        bound => bound.map_err(fail),
    }
}

/// Tells the `start` process, which reads this process's stdout until it
/// closes, that the socket is being served: stdout becomes stderr.
fn server_started() {
    // SAFETY: plain syscall on the standard descriptors.
    unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) };
}

/// SIGTERM, SIGINT and SIGHUP do not end the shim (nor, with it, the VM):
/// containerd ends it with `shutdown`. A handler, not `SIG_IGN`, so that
/// the VM helpers it starts get the default action back at `exec`.
fn ignore_termination_signals() {
    extern "C" fn ignore(_: libc::c_int) {}
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: `ignore` is async-signal-safe (it does nothing); the
        // handler stays valid for the life of the process.
        unsafe {
            libc::signal(
                signal,
                ignore as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}
