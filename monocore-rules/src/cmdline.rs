//! The command-line string rule: exec path, arguments, working directory and
//! environment entries reach the guest through the kernel command line, so
//! they must be printable ASCII (space `0x20` to tilde `0x7E`).

use crate::limits::MAX_STRING_LEN;

/// Why a command-line string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandLineError {
    /// The string contains a character outside printable ASCII.
    #[error(
        "{found:?} at byte {index} is not allowed: only printable ASCII (space to `~`) may appear"
    )]
    InvalidChar {
        /// The first offending character.
        found: char,
        /// Its byte offset in the string.
        index: usize,
    },
    /// The string is longer than [`MAX_STRING_LEN`].
    #[error("{len} bytes is too long: at most {max} bytes are allowed")]
    TooLong {
        /// The string's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Checks that `s` is printable ASCII with no NUL or control character, and no
/// longer than [`MAX_STRING_LEN`].
///
/// ```
/// use monocore_rules::validate_command_line;
/// assert!(validate_command_line("Hello, World!").is_ok());
/// assert!(validate_command_line("tab\there").is_err());
/// ```
pub fn validate_command_line(s: &str) -> Result<(), CommandLineError> {
    if s.len() > MAX_STRING_LEN {
        return Err(CommandLineError::TooLong {
            len: s.len(),
            max: MAX_STRING_LEN,
        });
    }
    match s.char_indices().find(|&(_, c)| !matches!(c, ' '..='~')) {
        Some((index, found)) => Err(CommandLineError::InvalidChar { found, index }),
        None => Ok(()),
    }
}

/// Whether a command has arguments but no program to run them: such
/// arguments would be silently dropped, so this is an error both at run time
/// and in the `vm!` macro.
///
/// ```
/// use monocore_rules::cmdline::args_without_exec;
/// assert!(args_without_exec(false, 2));
/// assert!(!args_without_exec(true, 2));
/// assert!(!args_without_exec(false, 0));
/// ```
pub fn args_without_exec(has_exec: bool, arg_count: usize) -> bool {
    !has_exec && arg_count > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_ascii_is_accepted() {
        for s in [
            "",
            " ",
            "~",
            "hello world",
            "!@#$%^&*()",
            "path/to/file",
            "a=b",
        ] {
            assert_eq!(validate_command_line(s), Ok(()), "{s:?}");
        }
    }

    #[test]
    fn control_and_non_ascii_characters_are_rejected_with_position() {
        assert_eq!(
            validate_command_line("ab\ncd"),
            Err(CommandLineError::InvalidChar {
                found: '\n',
                index: 2
            })
        );
        assert_eq!(
            validate_command_line("\0"),
            Err(CommandLineError::InvalidChar {
                found: '\0',
                index: 0
            })
        );
        assert_eq!(
            validate_command_line("x\u{7f}"),
            Err(CommandLineError::InvalidChar {
                found: '\u{7f}',
                index: 1
            })
        );
        assert_eq!(
            validate_command_line("héllo"),
            Err(CommandLineError::InvalidChar {
                found: 'é',
                index: 1
            })
        );
    }

    #[test]
    fn args_need_an_exec_path() {
        assert!(args_without_exec(false, 1));
        assert!(!args_without_exec(true, 1));
        assert!(!args_without_exec(true, 0));
        assert!(!args_without_exec(false, 0));
    }

    #[test]
    fn overlong_string_is_rejected() {
        let s = "a".repeat(MAX_STRING_LEN + 1);
        assert_eq!(
            validate_command_line(&s),
            Err(CommandLineError::TooLong {
                len: MAX_STRING_LEN + 1,
                max: MAX_STRING_LEN
            })
        );
        assert!(validate_command_line(&"a".repeat(MAX_STRING_LEN)).is_ok());
    }
}
