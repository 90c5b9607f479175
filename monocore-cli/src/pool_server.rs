//! `monocore pool start NAME`: a warm pool that `monocore run --pool NAME`
//! claims sandboxes from, served on a Unix socket in the cache directory.
//!
//! One connection is one claim. The client sends one JSON line (the run's
//! config, and which of root, RAM and vCPUs it chose); the server claims a
//! sandbox and answers one JSON line (the VM's ID and the container its
//! commands run in, or the error). The client then runs its command in the
//! VM through the VM's own control channel, as `monocore exec` does, and
//! the sandbox lives until the connection ends: closed, or its process
//! killed. Then the VM is killed and removed; it is never claimed again.

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::{UnixListener, UnixStream},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use clap::{Args, Subcommand};
use monocore::{
    ErrorChain,
    pool::{Pool, PoolConfig, Sandbox, WhenEmpty},
    state::{cache_dir, ensure_private_dir},
    vm::MicroVmConfig,
};
use serde_json::{Value, json};

use crate::{
    fail,
    output::{errln, note, outln},
    run_args::parse_size,
    terminal,
};

/// The longest claim request read, in bytes.
const MAX_REQUEST: u64 = 1 << 20;
/// The longest pool name.
const MAX_NAME: usize = 64;

/// `monocore pool`.
#[derive(Subcommand, Debug)]
pub(crate) enum PoolCommand {
    /// Keep N VMs booted for `monocore run --pool NAME` (runs until
    /// Ctrl-C or SIGTERM, which end its VMs).
    Start(StartArgs),
}

/// `monocore pool start`.
#[derive(Args, Debug)]
pub(crate) struct StartArgs {
    /// How many VMs to keep booted.
    #[arg(long, default_value_t = 2)]
    size: usize,
    /// Each VM's RAM (MiB, or with a unit: 512M, 1G): the most a claim gets.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "256")]
    ram: u32,
    /// Each VM's vCPUs.
    #[arg(long, value_name = "N", default_value_t = 1)]
    vcpus: u8,
    /// The tree each VM boots on a private copy of (default: the busybox
    /// root); claims without a root of their own run in it.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// When no VM is ready, wait at most this many seconds for one instead
    /// of booting one for the claim.
    #[arg(long, value_name = "SECS")]
    wait: Option<u64>,
    /// The pool's name (letters, digits, `.`, `_`, `-`).
    name: String,
}

/// The pool `name`'s socket: `pools/NAME.sock` in the cache directory.
pub(crate) fn socket_path(name: &str) -> Result<PathBuf, String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid {
        return Err(format!(
            "pool name {name:?}: use 1 to {MAX_NAME} letters, digits, `.`, `_` or `-`, not starting with `.`"
        ));
    }
    Ok(cache_dir().join("pools").join(format!("{name}.sock")))
}

pub(crate) fn pool(command: PoolCommand) -> ExitCode {
    match command {
        PoolCommand::Start(args) => start(&args),
    }
}

fn start(args: &StartArgs) -> ExitCode {
    let socket = match socket_path(&args.name) {
        Ok(socket) => socket,
        Err(message) => {
            errln!("error: {message}");
            return ExitCode::from(crate::run::EXIT_USAGE);
        }
    };
    let mut config = PoolConfig::new(args.size, args.ram).vcpus(args.vcpus);
    if let Some(root) = &args.root {
        config = config.root(root);
    }
    if let Some(secs) = args.wait {
        config = config.when_empty(WhenEmpty::Wait(Duration::from_secs(secs)));
    }
    let listener = match listen(&socket, &args.name) {
        Ok(listener) => listener,
        Err(code) => return code,
    };
    let _socket_file = RemoveOnDrop(socket.clone());
    let pool = match Pool::new(config) {
        Ok(pool) => Arc::new(pool),
        Err(e) => return fail(&e),
    };
    note!(
        "monocore: pool {} boots {} VM(s) of {} MiB and {} vCPU(s); `monocore run --pool {} -- CMD` claims one",
        args.name,
        args.size,
        args.ram,
        args.vcpus,
        args.name
    );
    serve(&listener, &pool, &args.name)
}

/// Binds the pool's socket; a socket left by a pool that was killed is
/// replaced, one that answers is a pool already running.
fn listen(socket: &Path, name: &str) -> Result<UnixListener, ExitCode> {
    let dir = socket.parent().unwrap_or(Path::new("."));
    if let Err(e) = std::fs::create_dir_all(dir).map_err(monocore::MonocoreError::from) {
        return Err(fail(&e));
    }
    if let Err(e) = ensure_private_dir(dir) {
        return Err(fail(&e));
    }
    if UnixStream::connect(socket).is_ok() {
        errln!(
            "monocore: error: pool {name} is already running ({})",
            socket.display()
        );
        return Err(ExitCode::from(crate::EXIT_MONOCORE_FAILED));
    }
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).map_err(|e| fail(&e))?;
    listener.set_nonblocking(true).map_err(|e| fail(&e))?;
    Ok(listener)
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Serves claims until a stop signal; then ends every claimed sandbox and
/// the pool.
fn serve(listener: &UnixListener, pool: &Arc<Pool>, name: &str) -> ExitCode {
    let clients: Arc<Mutex<Vec<UnixStream>>> = Arc::default();
    let mut threads = Vec::new();
    let mut announced = false;
    loop {
        if let Some(signal) = terminal::stop_signal() {
            note!("monocore: pool {name} stopping (signal {signal}): its VMs end");
            break;
        }
        if !announced && pool.ready() == pool.config().size() {
            announced = true;
            let ready = pool.ready();
            outln!(
                "pool {name}: {ready} VM{} ready",
                if ready == 1 { "" } else { "s" }
            );
        }
        match listener.accept() {
            Ok((conn, _)) => {
                if let Ok(copy) = conn.try_clone() {
                    clients
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(copy);
                }
                let pool = Arc::clone(pool);
                let spawned = std::thread::Builder::new()
                    .name("claim".into())
                    .spawn(move || serve_claim(conn, &pool));
                threads.retain(|t: &std::thread::JoinHandle<()>| !t.is_finished());
                match spawned {
                    Ok(thread) => threads.push(thread),
                    Err(e) => errln!("monocore: pool {name}: cannot serve a claim: {e}"),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                errln!("monocore: pool {name}: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    // Every client's connection ends: its sandbox is dropped.
    for conn in clients
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        let _ = conn.shutdown(std::net::Shutdown::Both);
    }
    for thread in threads {
        let _ = thread.join();
    }
    ExitCode::SUCCESS
}

/// One claim: read the request, claim, answer, then hold the sandbox until
/// the client's connection ends.
fn serve_claim(conn: UnixStream, pool: &Pool) {
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    let read = (&mut reader).take(MAX_REQUEST).read_line(&mut line);
    let claimed = match read {
        Ok(n) if n > 0 => claim(pool, &line),
        _ => return,
    };
    let (answer, sandbox) = match claimed {
        Ok(sandbox) => (
            json!({
                "id": sandbox.id(),
                "container": sandbox.container().map(|c| c.to_string_lossy().into_owned()),
                "warm": sandbox.was_warm(),
            }),
            Some(sandbox),
        ),
        Err(e) => (json!({ "error": e }), None),
    };
    let mut writer = &conn;
    if writeln!(writer, "{answer}").is_err() {
        return;
    }
    // Held until the client closes its end (or dies).
    let mut rest = Vec::new();
    let _ = reader.take(MAX_REQUEST).read_to_end(&mut rest);
    drop(sandbox);
}

/// Claims the sandbox a request asks for; the error as the client shows
/// it.
fn claim(pool: &Pool, line: &str) -> Result<Sandbox, String> {
    let bad = |e: serde_json::Error| format!("bad claim request: {e}");
    let request: Value = serde_json::from_str(line).map_err(bad)?;
    let mut config: MicroVmConfig =
        serde_json::from_value(request.get("config").cloned().unwrap_or_default()).map_err(bad)?;
    let defaults = pool.default_claim();
    if !flag(&request, "own_root") {
        config.root_path = defaults.root_path;
    }
    if !flag(&request, "ram_given") {
        config.ram_mib = defaults.ram_mib;
    }
    if !flag(&request, "vcpus_given") {
        config.num_vcpus = defaults.num_vcpus;
    }
    pool.claim(&config).map_err(|e| ErrorChain(&e).to_string())
}

/// A request's boolean `key` (missing: `false`).
fn flag(request: &Value, key: &str) -> bool {
    request.get(key).and_then(Value::as_bool).unwrap_or(false)
}
