//! The flags of `monocore run`, their parsers, and the config they make
//! (with `--config FILE` under them).
//!
//! Long flag names are the `vm!` keys (`--ram`, `--vcpus`, `--mapped-dirs`,
//! `--port-map`, …; also spelled with `_`); the earlier names (`--cpus`,
//! `--volume`, `--port`, `--rlimit`) stay as aliases.

use std::{path::PathBuf, time::Duration};

use clap::Args;
use monocore::{
    config::{AllowEntry, DEFAULT_RAM_MIB, EnvPair, PathPair, PortPair},
    vm::{LinuxRlimit, LogLevel, MicroVmConfig},
};

use crate::{env_flags::EnvFlag, image};

/// The file `--config` without a value reads.
pub(crate) const DISCOVERED_CONFIG: &str = "monocore.toml";

#[derive(Args, Debug)]
#[command(override_usage = "monocore run [OPTIONS] [IMAGE] [CMD [ARGS]...]")]
#[command(after_help = "\
The first word is the IMAGE when it names one with a tag, digest or \
repository path (alpine:3.20, ghcr.io/org/app, x@sha256:…); otherwise it \
is the command, run in the default busybox root. Everything after CMD, \
flags too, belongs to CMD. `--` still works: `monocore run alpine -- ls -l`.")]
pub(crate) struct RunArgs {
    /// Read the VM's config from this TOML file (the `vm!` keys, as
    /// `config check` reads them); flags override its values (list flags
    /// add to its lists). Relative paths in it are resolved against the
    /// file's directory. `--config` without a value reads ./monocore.toml
    /// (put it last or before another flag: a word after it is its value);
    /// no file is read unless asked.
    #[arg(
        short = 'c',
        long,
        value_name = "FILE",
        num_args = 0..=1,
        require_equals = false,
        default_missing_value = DISCOVERED_CONFIG
    )]
    pub(crate) config: Option<PathBuf>,

    /// An OCI image to boot (what a first word with a tag or a path means;
    /// needed for a bare name: `--image alpine`).
    #[arg(long, value_name = "IMAGE", conflicts_with = "root")]
    pub(crate) image: Option<String>,

    #[command(flatten)]
    pub(crate) image_flags: image::RunImageFlags,

    /// Root filesystem directory. Without it (and without IMAGE or a
    /// config file), a private copy of a minimal busybox rootfs (prepared
    /// once in the cache directory) is used.
    #[arg(long, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,

    /// Guest memory: MiB (512), or with a suffix (512M, 1G). Default: 1024.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, visible_alias = "memory")]
    pub(crate) ram: Option<u32>,

    /// Number of vCPUs (1-128 on x86_64). Default: 1.
    #[arg(long, value_name = "N", visible_alias = "cpus")]
    pub(crate) vcpus: Option<u8>,

    /// Share a host directory with the guest over virtio-fs (repeatable).
    #[arg(
        short = 'v',
        long = "mapped-dirs",
        value_name = "HOST:GUEST",
        visible_alias = "volume",
        alias = "mapped_dirs"
    )]
    pub(crate) mapped_dirs: Vec<PathPair>,

    /// Publish host 127.0.0.1:HOST to guest GUEST (repeatable; needs
    /// --net).
    #[arg(
        short = 'p',
        long = "port-map",
        value_name = "HOST:GUEST",
        visible_alias = "port",
        alias = "port_map"
    )]
    pub(crate) port_map: Vec<PortPair>,

    /// Give the guest a network interface (`net = true`) whose host end is
    /// a passt process in a network namespace of its own: the guest can
    /// connect only to what --allow lists, and -p ports are published on
    /// the host's 127.0.0.1. Without it (and without --tsi) the guest has
    /// no network at all.
    #[arg(long)]
    pub(crate) net: bool,

    /// Let the guest connect to HOST:PORT over TCP (repeatable; needs
    /// --net): ADDR:PORT, ADDR/PREFIX:PORT or NAME:PORT, IPv4 only; a name
    /// is resolved on the host when the VM starts. The host itself is
    /// 127.0.0.1:PORT, which the guest reaches as host.monocore.internal.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) allow: Vec<AllowEntry>,

    /// Network through libkrun's TSI instead (`local_only = false`): the
    /// guest can connect to anything the host can reach and listen on host
    /// ports, with no allow-list; -p is libkrun's port map. Excludes --net.
    /// Needs libkrunfw's kernel: the compat kernel (kvm_pvm hosts) has no
    /// TSI.
    #[arg(long)]
    pub(crate) tsi: bool,

    /// `false` is `--tsi`; `true` turns TSI off (what a config file said
    /// otherwise).
    #[arg(
        long,
        value_name = "BOOL",
        conflicts_with = "tsi",
        alias = "local_only"
    )]
    pub(crate) local_only: Option<bool>,

    /// The guest's IPv4 address.
    #[arg(long, value_name = "ADDR", value_parser = monocore_rules::parse_ipv4)]
    pub(crate) ip: Option<std::net::Ipv4Addr>,

    /// Set an environment variable in the guest (repeatable). `-e NAME`
    /// passes this process's value of NAME (nothing if it is unset). The
    /// host's environment is never copied otherwise.
    #[arg(short = 'e', long = "env", value_name = "K=V|NAME")]
    pub(crate) env: Vec<EnvFlag>,

    /// Read variables from FILE (repeatable): one `K=V` or `NAME` per line,
    /// as `-e` takes them; blank lines and lines starting with `#` are
    /// skipped. `-e` wins over the file for the same name.
    #[arg(long, value_name = "FILE")]
    pub(crate) env_file: Vec<PathBuf>,

    /// Guest working directory (absolute).
    #[arg(short = 'w', long, value_name = "DIR")]
    pub(crate) workdir: Option<String>,

    /// Resource limit for the guest command (repeatable).
    #[arg(
        long = "rlimits",
        value_name = "RLIMIT_X=SOFT:HARD",
        visible_alias = "rlimit"
    )]
    pub(crate) rlimits: Vec<LinuxRlimit>,

    /// Kill the VM after this many seconds (exit code 124).
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub(crate) timeout: Option<Duration>,

    /// Write the guest console to FILE instead of this terminal.
    #[arg(long, value_name = "FILE")]
    pub(crate) console: Option<String>,

    /// VMM log level: off, error, warn, info, debug, trace (any case, or
    /// 0-5). Default: off.
    #[arg(long, value_name = "LEVEL", alias = "log_level")]
    pub(crate) log_level: Option<LogLevel>,

    /// Validate and print the config as JSON (the `vm!` keys) instead of
    /// booting. The config is checked against the kernel this host boots
    /// (on a host that cannot boot, against libkrunfw's).
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Try to boot even when `monocore doctor` says this host cannot.
    #[arg(long)]
    pub(crate) force: bool,

    /// Forward this terminal's input to the command (it then runs over the
    /// VM's control channel instead of on the console).
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,

    /// Give the command a terminal: a pseudo-terminal in the guest, this
    /// terminal in raw mode meanwhile (`-it` for a shell; ^C goes to the
    /// guest).
    #[arg(short = 't', long)]
    pub(crate) tty: bool,

    /// Keep the VM running after the command ends, until `monocore stop ID`;
    /// `monocore exec ID -- CMD` runs more commands in it. The ID is printed
    /// on stderr, and `monocore ps` lists it.
    #[arg(long)]
    pub(crate) keep: bool,

    /// Run CMD in a sandbox claimed from the warm pool NAME (`monocore pool
    /// start NAME`): no boot to wait for; the VM is destroyed when CMD ends.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["keep", "kernel", "dry_run", "force"])]
    pub(crate) pool: Option<String>,

    /// Boot this ELF kernel (a vmlinux) instead of the one monocore picks
    /// (libkrunfw's, or on kvm_pvm hosts the compat kernel).
    #[arg(long, value_name = "VMLINUX")]
    pub(crate) kernel: Option<PathBuf>,

    /// [IMAGE] CMD [ARGS]...: the command to run in the guest (default: a
    /// hello message from inside the guest, or the image's own command).
    #[arg(
        value_name = "CMD",
        trailing_var_arg = true,
        num_args = 0..
    )]
    pub(crate) words: Vec<String>,
}

/// The positional words split into the image and the command.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Words {
    pub(crate) image: Option<String>,
    pub(crate) command: Vec<String>,
}

/// Whether `word` names an image rather than a command: it has a tag, a
/// digest, or a repository path, and is not a file path.
fn looks_like_image(word: &str) -> bool {
    !word.starts_with(['/', '.', '-'])
        && !word.contains(['=', ' '])
        && word.contains([':', '@', '/'])
}

impl RunArgs {
    /// Splits the words: `[IMAGE] -- CMD…` as before, or `[IMAGE] CMD…`
    /// where the first word is an image only when it looks like one (and
    /// no root was given another way).
    pub(crate) fn words(&self) -> Result<Words, String> {
        let root_given = self.root.is_some() || self.image.is_some();
        if let Some(at) = self.words.iter().position(|w| w == "--") {
            let (before, after) = self.words.split_at(at);
            let command = after.get(1..).unwrap_or_default().to_vec();
            return match before {
                [] => Ok(Words {
                    image: None,
                    command,
                }),
                [image] if !root_given => Ok(Words {
                    image: Some(image.clone()),
                    command,
                }),
                _ => Err(format!(
                    "{:?} before `--`: only an IMAGE goes there (with --root or --image, \
                     nothing); put the command after `--`, or leave out `--`",
                    before.join(" ")
                )),
            };
        }
        match self.words.split_first() {
            Some((first, _))
                if self.image.is_none() && self.root.is_some() && looks_like_image(first) =>
            {
                Err(format!(
                    "{first:?} names an IMAGE, and an IMAGE and --root exclude each other; \
                     to run a command named so, put it after `--`"
                ))
            }
            Some((first, rest)) if !root_given && looks_like_image(first) => Ok(Words {
                image: Some(first.clone()),
                command: rest.to_vec(),
            }),
            _ => Ok(Words {
                image: None,
                command: self.words.clone(),
            }),
        }
    }
}

/// `512`, `512M`, `512MiB` → 512 MiB; `1G`, `1GiB` → 1024 MiB.
pub(crate) fn parse_size(s: &str) -> Result<u32, String> {
    let bad = || format!("{s:?} is not a size: give MiB (512), or a number with M or G (512M, 1G)");
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => 1,
        "g" | "gb" | "gib" => 1024,
        _ => return Err(bad()),
    };
    n.checked_mul(factor)
        .and_then(|mib| u32::try_from(mib).ok())
        .ok_or_else(|| format!("{s:?} is too large: at most {} MiB", u32::MAX))
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 1e9 => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!("{s:?} is not a number of seconds greater than 0")),
    }
}

/// The default guest command: a hello message from inside the guest.
fn default_command() -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        "echo Hello from inside a monocore microVM: kernel $(uname -r), $(nproc) vCPU".into(),
    ]
}

/// Puts `pairs` over `env`: a name already there gets the new value.
fn merge_env(env: &mut Vec<EnvPair>, pairs: impl IntoIterator<Item = EnvPair>) {
    for pair in pairs {
        match env.iter_mut().find(|e| e.get_name() == pair.get_name()) {
            Some(slot) => *slot = pair,
            None => env.push(pair),
        }
    }
}

/// The config: `base` (from `--config`, else the defaults on `root`) with
/// the flags over it. `image` says whether an image will add its defaults
/// (then no default command is set).
pub(crate) fn build_config(
    args: &RunArgs,
    base: Option<MicroVmConfig>,
    root: Option<PathBuf>,
    words: &Words,
    env_from_files: Vec<EnvPair>,
) -> MicroVmConfig {
    let from_file = base.is_some();
    let mut config = base.unwrap_or_else(|| MicroVmConfig::new(PathBuf::new(), DEFAULT_RAM_MIB));
    if let Some(root) = root {
        config.root_path = root;
    }
    if let Some(ram) = args.ram {
        config.ram_mib = ram;
    }
    if let Some(vcpus) = args.vcpus {
        config.num_vcpus = vcpus;
    }
    config.mapped_dirs.extend(args.mapped_dirs.iter().cloned());
    config.port_map.extend(args.port_map.iter().cloned());
    if args.net {
        config.net = true;
    }
    config.allow.extend(args.allow.iter().cloned());
    if args.tsi {
        config.local_only = false;
    }
    if let Some(local_only) = args.local_only {
        config.local_only = local_only;
    }
    if args.ip.is_some() {
        config.assigned_ip = args.ip;
    }
    merge_env(&mut config.env, env_from_files);
    merge_env(
        &mut config.env,
        args.env.iter().filter_map(EnvFlag::resolve),
    );
    if let Some(dir) = &args.workdir {
        config.workdir_path = Some(dir.as_str().into());
    }
    config.rlimits.extend(args.rlimits.iter().cloned());
    if let Some(console) = &args.console {
        config.console_output = Some(console.as_str().into());
    }
    if let Some(level) = args.log_level {
        config.log_level = level;
    }
    let mut command = words.command.clone();
    let image = words.image.is_some() || args.image.is_some();
    if command.is_empty() && !image && !(from_file && config.exec_path.is_some()) {
        command = default_command();
    }
    if !command.is_empty() {
        let exec = command.remove(0);
        config.exec_path = Some(exec.into());
        config.args = command;
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_mib_and_m_and_g_suffixes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("512M"), Ok(512));
        assert_eq!(parse_size("512MiB"), Ok(512));
        assert_eq!(parse_size("1G"), Ok(1024));
        assert_eq!(parse_size("2g"), Ok(2048));
        assert!(parse_size("1T").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("4194304G").unwrap_err().contains("too large"));
    }

    #[test]
    fn images_are_told_from_commands() {
        for image in [
            "alpine:3.20",
            "ghcr.io/org/app",
            "x@sha256:00",
            "localhost:5000/a",
        ] {
            assert!(looks_like_image(image), "{image}");
        }
        for command in ["echo", "/bin/sh", "./run.sh", "alpine", "A=1", "-c"] {
            assert!(!looks_like_image(command), "{command}");
        }
    }
}
