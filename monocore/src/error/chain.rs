//! [`ErrorChain`]: an error with all of its causes, for people to read.

use std::{error::Error, fmt};

/// Shows an error followed by each of its [`source`](Error::source)s.
///
/// Many of monocore's errors keep their cause as a `source()` rather than in
/// their own message (the convention of `thiserror`'s `#[source]`), and a
/// `?` out of `main` prints `Debug`. `ErrorChain` prints what a person needs:
/// with `{}`, the messages joined by `: ` on one line; with `{:#}`, one line
/// each, the causes indented under `caused by:`.
///
/// ```
/// use monocore::ErrorChain;
///
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// let error = monocore::MonocoreError::from(monocore::error::StateError::RunDir {
///     dir: "/tmp/x".into(),
///     source: io,
/// });
/// // The message says what failed; the cause is told once, by the chain.
/// assert_eq!(error.to_string(), "cannot create the VM's run directory in /tmp/x");
/// assert_eq!(
///     ErrorChain(&error).to_string(),
///     "cannot create the VM's run directory in /tmp/x: no such file"
/// );
/// assert_eq!(
///     format!("{:#}", ErrorChain(&error)),
///     "cannot create the VM's run directory in /tmp/x\n  caused by: no such file"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let separator = if f.alternate() {
            "\n  caused by: "
        } else {
            ": "
        };
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, "{separator}{error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}
