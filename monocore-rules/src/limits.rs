//! Upper bounds on configuration sizes, each from what really runs the VM:
//! libkrun 1.19.7, the guest agent and the guest kernel's `execve`.
//!
//! A configuration may come from an untrusted source (a TOML file, command-line
//! flags). These bounds also keep every check's cost bounded: a config beyond
//! them is rejected with a typed error instead of being processed.
//!
//! The user's command does not travel on the guest kernel command line: the
//! guest agent reads it from a run spec file and `execve`s it. So an
//! argument, an environment entry or a path may hold any character but NUL,
//! and the bounds are those of `execve` and of Linux paths.
//!
//! Some bounds depend on the architecture monocore-rules is compiled for. The
//! `vm!` macro is compiled for the build host, so when you cross-compile,
//! run-time validation (compiled for the target) has the last word.

/// The most vCPUs a microVM may have.
///
/// On x86_64, libkrun 1.19.7 rounds the vCPU count up to a power of two in a
/// `u8` for the guest's CPUID topology; beyond 128 that overflows and
/// `krun_start_enter` fails with `EINVAL`. Elsewhere the field's type (`u8`)
/// is the bound.
pub const MAX_VCPUS: u8 = if cfg!(target_arch = "x86_64") {
    128
} else {
    u8::MAX
};

/// Interrupt lines libkrun 1.19.7 has for virtio-mmio devices: IRQ 5 to 15
/// on x86_64, 32 to 159 elsewhere (krun-arch `layout.rs`).
const VIRTIO_INTERRUPT_LINES: usize = if cfg!(target_arch = "x86_64") {
    11
} else {
    128
};

/// Virtio devices every VM has: balloon, entropy, console, vsock (the guest
/// agent's control channel, and TSI when it is on), the VM's private root
/// and the user's root filesystem.
const FIXED_VIRTIO_DEVICES: usize = 6;

/// The most directories one microVM can map: every mapped directory is a
/// virtio-fs device with its own interrupt line. With `net`, its virtio-net
/// device takes one line too; TSI shares the vsock device every VM has, and
/// takes none. On x86_64 that is 5, or 4 with `net`; beyond it
/// `krun_start_enter` fails with `EINVAL`.
///
/// ```
/// use monocore_rules::limits::max_mapped_dirs;
/// if cfg!(target_arch = "x86_64") {
///     assert_eq!((max_mapped_dirs(false), max_mapped_dirs(true)), (5, 4));
/// }
/// ```
pub const fn max_mapped_dirs(net: bool) -> usize {
    let devices = FIXED_VIRTIO_DEVICES + if net { 1 } else { 0 };
    VIRTIO_INTERRUPT_LINES.saturating_sub(devices)
}

/// Why [`max_mapped_dirs`] is what it is, for error messages.
pub const MAPPED_DIRS_REASON: &str = if cfg!(target_arch = "x86_64") {
    "libkrun 1.19.7 on x86_64 has 11 interrupt lines for virtio devices: the VM's own 6 devices \
     take 6, `net`'s network device one, and each mapped directory one"
} else {
    "libkrun 1.19.7 has 128 interrupt lines for virtio devices: the VM's own 6 devices take 6, \
     `net`'s network device one, and each mapped directory one"
};

/// The most port mappings one microVM may have: libkrun reads at most 4096
/// entries of the port map.
pub const MAX_PORT_MAPPINGS: usize = 4096;

/// The most entries the egress allow-list (`allow`) may hold. Each entry is
/// a rule of the VM's firewall, and a name is resolved on the host when the
/// VM starts: 64 keeps both small. A network entry (`ADDR/PREFIX:PORT`)
/// covers many addresses in one.
pub const MAX_ALLOW_ENTRIES: usize = 64;

/// The most environment variables one microVM may have.
pub const MAX_ENV_VARS: usize = 4096;

/// The most arguments one microVM command may have.
pub const MAX_ARGS: usize = 4096;

/// The most resource limits one microVM may have (there are 16 resources).
pub const MAX_RLIMITS: usize = 16;

/// The longest single argument or `NAME=value` environment entry, in bytes.
///
/// Linux's `execve` takes strings of at most `MAX_ARG_STRLEN` (32 pages,
/// 128 KiB) *including* the terminating NUL, so one byte less.
pub const MAX_STRING_LEN: usize = 128 * 1024 - 1;

/// The longest guest or host path, and the exec path, in bytes: Linux's
/// `PATH_MAX` (4096) includes the terminating NUL.
pub const MAX_PATH_LEN: usize = 4096 - 1;

/// The guest command's size as `execve` counts it, when the config sets no
/// `RLIMIT_STACK`: a quarter of the guest's default 8 MiB stack limit.
pub const DEFAULT_COMMAND_SPACE: usize = 2 * 1024 * 1024;

/// The bytes the guest command may take, as `execve` counts them (see
/// [`command_size`]), with this `RLIMIT_STACK` soft limit in force (`None`:
/// the guest's default of 8 MiB).
///
/// Linux allows a quarter of the stack limit, at most 6 MiB and at least
/// 128 KiB (`bprm_stack_limits`); the agent sets the config's limits before
/// it executes the command, so the config's own `RLIMIT_STACK` counts.
///
/// ```
/// use monocore_rules::limits::{command_space, DEFAULT_COMMAND_SPACE};
/// assert_eq!(command_space(None), DEFAULT_COMMAND_SPACE);
/// assert_eq!(command_space(Some(1 << 20)), 256 * 1024);
/// assert_eq!(command_space(Some(u64::MAX)), 6 << 20);
/// assert_eq!(command_space(Some(0)), 128 * 1024);
/// ```
pub fn command_space(stack_soft_limit: Option<u64>) -> usize {
    const MAX: u64 = 6 * 1024 * 1024;
    const MIN: u64 = 128 * 1024;
    let Some(stack) = stack_soft_limit else {
        return DEFAULT_COMMAND_SPACE;
    };
    let space = (stack / 4).clamp(MIN, MAX);
    usize::try_from(space).unwrap_or(DEFAULT_COMMAND_SPACE)
}

/// The bytes a command takes as `execve` counts them: every string of
/// `argv` (the exec path, then the arguments) and `envp` with its NUL, plus
/// a pointer (8 bytes) for each.
///
/// ```
/// use monocore_rules::limits::command_size;
/// // "/bin/echo\0" + "hi\0" + "A=b\0", and three pointers.
/// assert_eq!(command_size(&[9, 2], &[3]), 10 + 3 + 4 + 3 * 8);
/// ```
pub fn command_size(argv_lens: &[usize], env_lens: &[usize]) -> usize {
    argv_lens
        .iter()
        .chain(env_lens)
        .map(|len| len.saturating_add(1 + 8))
        .fold(0, usize::saturating_add)
}

/// The largest TOML config file, in bytes, read or parsed.
///
/// Checked before parsing, so a huge (or endless, like `/dev/zero`) file is
/// a typed error, never an out-of-memory. 1 MiB holds any useful config many
/// times over.
pub const MAX_CONFIG_FILE_LEN: usize = 1024 * 1024;

/// The largest config, in bytes of JSON, sent to the VM helper process.
///
/// Every config that passes validation fits many times over: its strings
/// are bounded by the limits above (the command by at most 6 MiB, each
/// byte escaped to at most 6 by JSON; a few mapped directories; 4096 port
/// mappings). The helper refuses a larger length before reading, and never
/// allocates more than it has read.
pub const MAX_HELPER_CONFIG_LEN: usize = 64 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_space_follows_the_stack_limit() {
        assert_eq!(command_space(Some(8 << 20)), DEFAULT_COMMAND_SPACE);
        assert_eq!(command_space(Some(4 << 20)), 1 << 20);
        assert_eq!(command_space(Some(100 << 20)), 6 << 20);
        assert_eq!(command_space(Some(4096)), 128 * 1024);
    }

    #[test]
    fn command_size_counts_nuls_and_pointers_and_saturates() {
        assert_eq!(command_size(&[], &[]), 0);
        assert_eq!(command_size(&[0], &[]), 9);
        assert_eq!(command_size(&[usize::MAX], &[1]), usize::MAX);
    }

    #[test]
    fn mapped_dirs_fit_the_interrupt_lines_left_by_net() {
        assert_eq!(max_mapped_dirs(false), max_mapped_dirs(true) + 1);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(max_mapped_dirs(false), 5);
            assert_eq!(MAX_VCPUS, 128);
        }
    }
}
