//! `-e K=V`, `-e NAME` (this process's value passed through) and
//! `--env-file FILE`.

use std::{fmt, path::PathBuf, str::FromStr};

use monocore::{MonocoreError, config::EnvPair};

/// One `-e` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnvFlag {
    /// `K=V`.
    Pair(EnvPair),
    /// `NAME`: this process's value of NAME, if it has one.
    Name(String),
}

impl FromStr for EnvFlag {
    type Err = MonocoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('=') {
            return s.parse().map(Self::Pair);
        }
        // The name's own rules, checked now.
        EnvPair::try_new(s, "")?;
        Ok(Self::Name(s.to_owned()))
    }
}

impl fmt::Display for EnvFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pair(pair) => pair.fmt(f),
            Self::Name(name) => f.write_str(name),
        }
    }
}

impl EnvFlag {
    /// The variable the guest gets: `NAME` takes this process's value, and
    /// is left out (as docker does) when NAME is not set here.
    pub(crate) fn resolve(&self) -> Option<EnvPair> {
        match self {
            Self::Pair(pair) => Some(pair.clone()),
            Self::Name(name) => {
                let value = std::env::var_os(name)?;
                let value = value.to_string_lossy().into_owned();
                EnvPair::try_new(name.as_str(), value.as_str()).ok()
            }
        }
    }
}

/// Why an `--env-file` could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EnvFileError {
    /// The file could not be read.
    #[error("--env-file {}: cannot read it", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line is not `K=V` or `NAME`.
    #[error("--env-file {}:{line}: the line is not `NAME=value` or `NAME`", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        #[source]
        source: Box<MonocoreError>,
    },
}

/// The variables of the `--env-file` files, in order.
pub(crate) fn read_env_files(paths: &[PathBuf]) -> Result<Vec<EnvPair>, EnvFileError> {
    let mut pairs = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|source| EnvFileError::Read {
            path: path.clone(),
            source,
        })?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let flag: EnvFlag = line.parse().map_err(|source| EnvFileError::Line {
                path: path.clone(),
                line: n + 1,
                source: Box::new(source),
            })?;
            pairs.extend(flag.resolve());
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_alone_passes_this_process_value_or_nothing() {
        let path = std::env::var("PATH").unwrap();
        let flag: EnvFlag = "PATH".parse().unwrap();
        assert_eq!(flag.resolve().unwrap().get_value(), &path);
        let unset: EnvFlag = "MONOCORE_SURELY_UNSET_VARIABLE".parse().unwrap();
        assert_eq!(unset.resolve(), None);
        assert!("A B".parse::<EnvFlag>().is_err() || "".parse::<EnvFlag>().is_err());
        assert!("".parse::<EnvFlag>().is_err());
    }

    #[test]
    fn env_files_skip_comments_and_say_which_line_is_bad() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("env");
        std::fs::write(&file, "# comment\n\nA=1\nB=x=y\n  C=\n").unwrap();
        let pairs = read_env_files(std::slice::from_ref(&file)).unwrap();
        let text: Vec<String> = pairs.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["A=1", "B=x=y", "C="]);
        std::fs::write(&file, "A=1\n=oops\n").unwrap();
        let error = read_env_files(std::slice::from_ref(&file)).unwrap_err();
        // The file and line; the cause, once, as the source.
        assert!(
            error
                .to_string()
                .ends_with("env:2: the line is not `NAME=value` or `NAME`"),
            "{error}"
        );
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some("invalid environment variable \"=oops\": the name before `=` is empty")
        );
    }
}
