//! [`ConfigFileErrors`]: every problem in a TOML config file, each located
//! by line and column (see [`crate::config::file`]).

use std::fmt;

/// One problem in a config file, located by line and column (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFileError {
    /// The line of the offending token.
    pub line: usize,
    /// The column (in characters) of the offending token.
    pub column: usize,
    /// The key the problem belongs to, if any.
    pub key: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.column)?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a config file (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the config file:\n{}", .0.len(), list(.0))]
pub struct ConfigFileErrors(pub Vec<ConfigFileError>);

fn list(errors: &[ConfigFileError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}
