//! `monocore run --pool NAME`: the run's command in a sandbox claimed from
//! a warm pool (`monocore pool start NAME`, see `pool_server.rs`), with no
//! boot to wait for.

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    process::ExitCode,
    time::Duration,
};

use monocore::vm::{GuestCommand, MicroVm, RunningVm};
use serde_json::{Value, json};

use crate::{
    EXIT_MONOCORE_FAILED,
    attach::{Attach, Ended},
    fail, fail_explained, flag_errors, image,
    output::{errln, step},
    pool_server::socket_path,
    run::{EXIT_USAGE, Input, Root, exit_code_of, stopped_exit_code, timed_out},
    run_args::{RunArgs, build_config},
    terminal,
};

/// The longest answer read from the pool.
const MAX_ANSWER: u64 = 64 << 10;

/// A claim as the pool server answered it.
struct Claim {
    id: String,
    container: Option<String>,
    warm: bool,
}

pub(crate) fn run(name: &str, args: &RunArgs, input: Input) -> ExitCode {
    let socket = match socket_path(name) {
        Ok(socket) => socket,
        Err(message) => {
            errln!("error: --pool: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Without a root of its own, the claim runs in the pool's root.
    let own_root = args.root.is_some() || input.image_ref.is_some() || input.file.is_some();
    let root = if own_root {
        match Root::prepare(args, &input) {
            Ok(root) => Some(root),
            Err(code) => return code,
        }
    } else {
        None
    };
    if let Some(signal) = terminal::stop_signal() {
        return stopped_exit_code(signal, "no sandbox was claimed");
    }
    let Input {
        words,
        env_from_files,
        file,
        ..
    } = input;
    // Checked here as any run's config is; the pool's root stands in for
    // the one the claim does not bring (`/`, only to pass the checks).
    let root_path = root
        .as_ref()
        .map_or_else(|| Some("/".into()), |r| r.path.clone());
    let mut config = build_config(args, file, root_path, &words, env_from_files);
    if let Some(rootfs) = root.as_ref().and_then(|r| r.image.as_ref())
        && let Err(e) = image::apply(rootfs, &args.image_flags, &mut config)
    {
        return fail(&e);
    }
    if let Err(e) = MicroVm::from_config(config.clone()) {
        return fail_explained(&flag_errors::explain(&e, &config), &e);
    }
    let request = json!({
        "config": config,
        "own_root": own_root,
        "ram_given": args.ram.is_some(),
        "vcpus_given": args.vcpus.is_some(),
    });
    let Ok(conn) = UnixStream::connect(&socket) else {
        errln!(
            "monocore: error: no pool {name} is running (start one with `monocore pool start {name}`)"
        );
        return ExitCode::from(EXIT_MONOCORE_FAILED);
    };
    let claim = match claim(&conn, &request) {
        Ok(Ok(claim)) => claim,
        Ok(Err(message)) => {
            errln!("monocore: error: pool {name}: {message}");
            return ExitCode::from(EXIT_MONOCORE_FAILED);
        }
        Err(code) => return code,
    };
    step!(
        "claimed VM {} from pool {name} ({})",
        claim.id,
        if claim.warm {
            "booted ahead"
        } else {
            "booted for this claim"
        }
    );
    let code = run_command(&claim, &config, args);
    // Closing the connection ends the sandbox.
    drop(conn);
    code
}

/// Sends the request and reads the answer: the claim, or the pool's error
/// message. A stop signal while the pool works ends the wait.
fn claim(conn: &UnixStream, request: &Value) -> Result<Result<Claim, String>, ExitCode> {
    let mut writer = conn;
    writeln!(writer, "{request}").map_err(|e| fail(&e))?;
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| fail(&e))?;
    let mut reader = BufReader::new(conn.take(MAX_ANSWER));
    let mut line = Vec::new();
    loop {
        if let Some(signal) = terminal::stop_signal() {
            return Err(stopped_exit_code(signal, "the claim was abandoned"));
        }
        match reader.read_until(b'\n', &mut line) {
            Ok(_) if line.ends_with(b"\n") => break,
            Ok(0) => {
                errln!("monocore: error: the pool ended the connection before it answered");
                return Err(ExitCode::from(EXIT_MONOCORE_FAILED));
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(fail(&e)),
        }
    }
    let answer: Value = serde_json::from_slice(&line).map_err(|e| fail(&e))?;
    if let Some(message) = answer.get("error").and_then(Value::as_str) {
        return Ok(Err(message.to_owned()));
    }
    let Some(id) = answer.get("id").and_then(Value::as_str) else {
        errln!("monocore: error: the pool's answer names no VM: {answer}");
        return Err(ExitCode::from(EXIT_MONOCORE_FAILED));
    };
    Ok(Ok(Claim {
        id: id.to_owned(),
        container: answer
            .get("container")
            .and_then(Value::as_str)
            .map(str::to_owned),
        warm: answer.get("warm").and_then(Value::as_bool).unwrap_or(false),
    }))
}

/// Runs the config's command in the claimed VM, attached here.
fn run_command(claim: &Claim, config: &monocore::vm::MicroVmConfig, args: &RunArgs) -> ExitCode {
    let vm = match RunningVm::find(&claim.id) {
        Ok(vm) => vm,
        Err(e) => return fail(&e),
    };
    let mut command =
        GuestCommand::new(config.exec_path.as_ref().map_or("/bin/sh", |p| p.as_str()))
            .args(&config.args);
    for pair in &config.env {
        command = command.env(pair.get_name(), pair.get_value());
    }
    if let Some(dir) = &config.workdir_path {
        command = command.current_dir(dir.as_str());
    }
    if let Some(container) = &claim.container {
        command = command.in_container(container);
    }
    let attach = Attach {
        interactive: args.interactive,
        tty: args.tty,
        timeout: args.timeout,
    };
    match vm
        .exec(attach.command(command))
        .and_then(|process| attach.run(process))
    {
        Ok(Ended::Exited(status)) => exit_code_of(status),
        Ok(Ended::Stopped(signal)) => stopped_exit_code(signal, "the sandbox was destroyed"),
        Ok(Ended::TimedOut) => timed_out(args.timeout),
        Err(e) => fail(&e),
    }
}
