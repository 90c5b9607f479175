//! Upper bounds on configuration sizes.
//!
//! A configuration may come from an untrusted source (a TOML file, command-line
//! flags). These bounds keep every check's cost bounded: a config beyond them
//! is rejected with a typed error instead of being processed.

/// The most vCPUs a microVM may have (the field is a `u8`; 0 is rejected).
pub const MAX_VCPUS: u8 = u8::MAX;

/// The most virtio-fs mapped directories one microVM may have.
pub const MAX_MAPPED_DIRS: usize = 1024;

/// The most port mappings one microVM may have.
pub const MAX_PORT_MAPPINGS: usize = 4096;

/// The most environment variables one microVM may have.
pub const MAX_ENV_VARS: usize = 4096;

/// The most arguments one microVM command may have.
pub const MAX_ARGS: usize = 4096;

/// The most resource limits one microVM may have (there are 16 resources).
pub const MAX_RLIMITS: usize = 16;

/// The longest single string (argument, path, env entry) in bytes.
///
/// Linux limits one argument or environment string to `MAX_ARG_STRLEN`
/// (32 pages, 128 KiB); anything longer could not reach the guest's `execve`.
pub const MAX_STRING_LEN: usize = 128 * 1024;

/// The longest guest or host path in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_LEN: usize = 4096;

/// The most bytes the guest command may take on the guest kernel command
/// line: the exec path, the workdir, and every argument and `NAME=value`
/// environment entry plus 3 bytes each (libkrun writes them as ` "…"`).
///
/// libkrun 1.19.7 passes all of these on the guest kernel command line, which
/// holds 64 KiB on x86_64 (`CMDLINE_MAX_SIZE`), and it `unwrap`s the insert:
/// a longer command makes libkrun panic inside `krun_start_enter` (aborting
/// the helper, or your process with `MicroVm::start`). Half of that is left
/// for libkrun's own parameters (`KRUN_INIT=`, `KRUN_RLIMITS=`, one entry per
/// virtio device). It also bounds what one config makes monocore copy and
/// send to the helper.
pub const MAX_COMMAND_LINE_TOTAL: usize = 32 * 1024;

/// The largest TOML config file, in bytes, read or parsed.
///
/// Checked before parsing, so a huge (or endless, like `/dev/zero`) file is
/// a typed error, never an out-of-memory. 1 MiB holds any useful config many
/// times over.
pub const MAX_CONFIG_FILE_LEN: usize = 1024 * 1024;

/// The largest config, in bytes of JSON, sent to the VM helper process.
///
/// Every config that passes validation fits: its strings are bounded by the
/// limits above (at worst 1024 mapped directories with two 4096-byte paths
/// each, every byte a control character that JSON escapes to 6 bytes, about
/// 48 MiB, plus the escaped command line). The helper refuses a
/// larger length before reading, and never allocates more than it has read.
pub const MAX_HELPER_CONFIG_LEN: usize = 64 * 1024 * 1024;

/// The bytes one argument or environment entry of `len` bytes takes on the
/// guest kernel command line (` "…"`).
pub const fn quoted_len(len: usize) -> usize {
    len.saturating_add(3)
}

/// Checks the total size of the guest command (see
/// [`MAX_COMMAND_LINE_TOTAL`]).
///
/// ```
/// use monocore_rules::limits::{check_command_line_total, MAX_COMMAND_LINE_TOTAL};
/// assert!(check_command_line_total(MAX_COMMAND_LINE_TOTAL).is_ok());
/// assert!(check_command_line_total(MAX_COMMAND_LINE_TOTAL + 1).is_err());
/// ```
pub fn check_command_line_total(total: usize) -> Result<(), CommandLineTotalError> {
    if total > MAX_COMMAND_LINE_TOTAL {
        return Err(CommandLineTotalError {
            total,
            max: MAX_COMMAND_LINE_TOTAL,
        });
    }
    Ok(())
}

/// The guest command (exec path, args, env, workdir) is too large in total.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the guest command (exec path, arguments, environment, workdir) takes {total} bytes of the guest kernel command line: at most {max} are allowed"
)]
pub struct CommandLineTotalError {
    /// The total size in bytes.
    pub total: usize,
    /// The limit.
    pub max: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_total_is_bounded_inclusively() {
        assert_eq!(check_command_line_total(0), Ok(()));
        assert_eq!(check_command_line_total(MAX_COMMAND_LINE_TOTAL), Ok(()));
        assert_eq!(
            check_command_line_total(MAX_COMMAND_LINE_TOTAL + 1),
            Err(CommandLineTotalError {
                total: MAX_COMMAND_LINE_TOTAL + 1,
                max: MAX_COMMAND_LINE_TOTAL
            })
        );
        // A usize that would overflow a naive sum is still rejected.
        assert!(check_command_line_total(usize::MAX).is_err());
    }
}
