//! The guest command: the exec path, the arguments and the environment
//! entries, as the guest agent receives them (in its run spec file, any
//! bytes but NUL) and `execve`s them.

use crate::limits::{MAX_PATH_LEN, MAX_STRING_LEN, command_size, command_space};
use crate::pair::{Excerpt, check_env_name};
use crate::{Field, RuleError};

/// Why an exec path, argument or environment entry cannot reach the guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestStringError {
    /// A NUL byte, which ends a C string: the guest would see less.
    #[error(
        "{} holds a NUL byte at byte {index}, which no argument, environment entry or path can carry",
        Excerpt(value)
    )]
    ContainsNul {
        /// The string.
        value: String,
        /// The byte offset of the first NUL.
        index: usize,
    },
    /// Longer than the guest's `execve` (or `PATH_MAX`, for a path) takes.
    #[error("{len} bytes is too long: at most {max} bytes are allowed")]
    TooLong {
        /// The string's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An empty exec path: there is no program to run.
    #[error("the exec path is empty: name the program to run, such as \"/bin/sh\"")]
    EmptyExec,
}

fn check_string(s: &str, max: usize) -> Result<(), GuestStringError> {
    if s.len() > max {
        return Err(GuestStringError::TooLong { len: s.len(), max });
    }
    match s.find('\0') {
        Some(index) => Err(GuestStringError::ContainsNul {
            value: s.to_owned(),
            index,
        }),
        None => Ok(()),
    }
}

/// Checks an exec path: not empty, no NUL, at most [`MAX_PATH_LEN`] bytes.
/// Any other character (spaces, quotes, UTF-8) is fine: the agent executes
/// it as given (looked up in the `PATH` of the config's env when it holds no
/// `/`).
///
/// ```
/// use monocore_rules::check_exec;
/// assert!(check_exec("/bin/my program").is_ok());
/// assert!(check_exec("").is_err());
/// assert!(check_exec("/bin/a\0b").is_err());
/// ```
pub fn check_exec(s: &str) -> Result<(), GuestStringError> {
    if s.is_empty() {
        return Err(GuestStringError::EmptyExec);
    }
    check_string(s, MAX_PATH_LEN)
}

/// Checks one argument: no NUL, at most [`MAX_STRING_LEN`] bytes. Spaces,
/// quotes, newlines, tabs and any UTF-8 reach the guest unchanged.
///
/// ```
/// use monocore_rules::check_arg;
/// assert!(check_arg("tab\there, \"quotes\", ünïcode\n").is_ok());
/// assert!(check_arg("nul\0").is_err());
/// ```
pub fn check_arg(s: &str) -> Result<(), GuestStringError> {
    check_string(s, MAX_STRING_LEN)
}

/// Checks one environment entry given as name and value: the name is not
/// empty and holds no `=` or NUL; `NAME=value` holds no NUL and is at most
/// [`MAX_STRING_LEN`] bytes. Any other name reaches the guest unchanged
/// (`KRUN_INIT` too: nothing but the agent reads the environment).
///
/// ```
/// use monocore_rules::check_env;
/// assert!(check_env("ÜNICODE", "ü\n").is_ok());
/// assert!(check_env("KRUN_INIT", "/x").is_ok());
/// assert!(check_env("A=B", "c").is_err());
/// assert!(check_env("", "c").is_err());
/// ```
pub fn check_env(name: &str, value: &str) -> Result<(), RuleError> {
    check_env_name(name).map_err(|kind| RuleError::EnvName {
        name: name.to_owned(),
        kind,
    })?;
    let len = name.len().saturating_add(1).saturating_add(value.len());
    if len > MAX_STRING_LEN {
        return Err(GuestStringError::TooLong {
            len,
            max: MAX_STRING_LEN,
        }
        .into());
    }
    if let Some(index) = value.find('\0') {
        return Err(GuestStringError::ContainsNul {
            value: format!("{name}={value}"),
            index: index.saturating_add(name.len()).saturating_add(1),
        }
        .into());
    }
    Ok(())
}

/// Whether a command has arguments but no program to run them: such
/// arguments would be silently dropped, so this is an error.
///
/// ```
/// use monocore_rules::check_args_have_exec;
/// assert!(check_args_have_exec(false, 2).is_err());
/// assert!(check_args_have_exec(true, 2).is_ok());
/// assert!(check_args_have_exec(false, 0).is_ok());
/// ```
pub fn check_args_have_exec(has_exec: bool, arg_count: usize) -> Result<(), RuleError> {
    if !has_exec && arg_count > 0 {
        return Err(RuleError::ArgsWithoutExec { count: arg_count });
    }
    Ok(())
}

/// The program the agent runs when the config names none.
pub const DEFAULT_EXEC: &str = "/bin/sh";

/// Checks that the command fits the guest's `execve`: `argv` (the exec path,
/// or [`DEFAULT_EXEC`], then the arguments) and the environment, counted as
/// [`command_size`] does, within [`command_space`] for the config's
/// `RLIMIT_STACK` soft limit (`stack`).
///
/// ```
/// use monocore_rules::check_command_size;
/// assert!(check_command_size(Some(9), &[2], &[3], None).is_ok());
/// assert!(check_command_size(Some(9), &[3 << 20], &[], None).is_err());
/// assert!(check_command_size(Some(9), &[3 << 20], &[], Some(64 << 20)).is_ok());
/// ```
pub fn check_command_size(
    exec_len: Option<usize>,
    arg_lens: &[usize],
    env_lens: &[usize],
    stack: Option<u64>,
) -> Result<(), RuleError> {
    let mut argv = Vec::with_capacity(arg_lens.len().saturating_add(1));
    argv.push(exec_len.unwrap_or(DEFAULT_EXEC.len()));
    argv.extend_from_slice(arg_lens);
    let size = command_size(&argv, env_lens);
    let max = command_space(stack);
    if size > max {
        return Err(RuleError::CommandTooLarge { size, max });
    }
    Ok(())
}

/// Where a [`RuleError::CommandTooLarge`] is reported: the arguments if
/// there are any, else the environment, else the exec path.
pub fn command_field(has_args: bool, has_env: bool) -> Field {
    if has_args {
        Field::Args
    } else if has_env {
        Field::Env
    } else {
        Field::Exec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EnvPairErrorKind;

    #[test]
    fn any_character_but_nul_reaches_the_guest() {
        for s in [
            "",
            " ",
            "a\"b",
            "two words",
            "tab\t",
            "new\nline",
            "ü€😀",
            "\u{7f}",
        ] {
            assert_eq!(check_arg(s), Ok(()), "{s:?}");
        }
        assert_eq!(
            check_arg("ab\0cd"),
            Err(GuestStringError::ContainsNul {
                value: "ab\0cd".into(),
                index: 2
            })
        );
    }

    #[test]
    fn strings_are_bounded_by_execve() {
        assert_eq!(check_arg(&"a".repeat(MAX_STRING_LEN)), Ok(()));
        assert_eq!(
            check_arg(&"a".repeat(MAX_STRING_LEN + 1)),
            Err(GuestStringError::TooLong {
                len: MAX_STRING_LEN + 1,
                max: MAX_STRING_LEN
            })
        );
        assert_eq!(check_exec(&"/".repeat(MAX_PATH_LEN)), Ok(()));
        assert!(check_exec(&"/".repeat(MAX_PATH_LEN + 1)).is_err());
        assert_eq!(check_exec(""), Err(GuestStringError::EmptyExec));
    }

    #[test]
    fn env_entries() {
        assert_eq!(check_env("A", ""), Ok(()));
        assert_eq!(
            check_env("A=B", "c"),
            Err(RuleError::EnvName {
                name: "A=B".into(),
                kind: EnvPairErrorKind::NameHoldsEquals
            })
        );
        assert_eq!(
            check_env("A", "x\0"),
            Err(GuestStringError::ContainsNul {
                value: "A=x\0".into(),
                index: 3
            }
            .into())
        );
        let long = "v".repeat(MAX_STRING_LEN - 1);
        assert_eq!(check_env("A", &long[1..]), Ok(()));
        assert!(check_env("A", &long).is_err());
    }

    #[test]
    fn the_command_size_counts_the_default_exec() {
        let space = command_space(None);
        // "/bin/sh" + NUL + pointer, then one argument.
        let fits = space - (7 + 9) - 9;
        assert_eq!(check_command_size(None, &[fits], &[], None), Ok(()));
        assert_eq!(
            check_command_size(None, &[fits + 1], &[], None),
            Err(RuleError::CommandTooLarge {
                size: space + 1,
                max: space
            })
        );
        assert_eq!(command_field(true, true), Field::Args);
        assert_eq!(command_field(false, true), Field::Env);
        assert_eq!(command_field(false, false), Field::Exec);
    }
}
