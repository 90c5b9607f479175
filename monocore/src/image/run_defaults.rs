//! The image config's run defaults (Entrypoint, Cmd, Env, WorkingDir,
//! User), and how they combine with explicit settings, as `docker run`
//! combines them.

use serde::{Deserialize, Serialize};

use super::{ImageError, manifest::RawRunConfig};
use crate::config::{EnvPair, MicroVmConfig};

/// What an image asks a container to run with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `Entrypoint`: the program (and first arguments) every command runs
    /// through.
    pub entrypoint: Vec<String>,
    /// `Cmd`: the default command (or the entrypoint's default arguments).
    pub cmd: Vec<String>,
    /// `Env`: `NAME=value` entries.
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
    /// `User`: `user`, `uid`, `user:group` or `uid:gid`.
    pub user: Option<String>,
}

impl From<RawRunConfig> for ImageConfig {
    fn from(raw: RawRunConfig) -> Self {
        Self {
            entrypoint: raw.entrypoint.unwrap_or_default(),
            cmd: raw.cmd.unwrap_or_default(),
            env: raw.env.unwrap_or_default(),
            working_dir: raw.working_dir.filter(|w| !w.is_empty()),
            user: raw.user.filter(|u| !u.is_empty()),
        }
    }
}

/// Explicit settings that the image's defaults do not override; see
/// [`ImageConfig::apply`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOverrides {
    /// Replaces the image's `Entrypoint` (`docker run --entrypoint`);
    /// `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<String>>,
}

impl ImageConfig {
    /// Fills `config` with this image's defaults where `config` leaves
    /// them open, the way `docker run IMAGE [CMD...]` does:
    ///
    /// * the command is the entrypoint (or `overrides.entrypoint`) followed
    ///   by `config`'s command (`exec_path` and `args`) if it has one, else
    ///   by the image's `Cmd`; `config.args` without an `exec_path` replace
    ///   `Cmd` (they are the entrypoint's arguments);
    /// * the environment is the image's `Env`, with `config.env` entries
    ///   replacing those of the same name and adding the others;
    /// * `workdir_path` is `config`'s, else the image's `WorkingDir`
    ///   (relative ones are taken from `/`).
    ///
    /// The result is checked when the VM is built, like any config: an
    /// image's values are as untrusted as its layers. An image whose
    /// command ends up empty is an error that asks for one.
    ///
    /// `User` is not applied: the guest command runs as root (uid 0) in
    /// the VM; [`user`](Self::user) shows what the image asked for.
    pub fn apply(
        &self,
        config: &mut MicroVmConfig,
        overrides: &RunOverrides,
        reference: &str,
    ) -> Result<(), ImageError> {
        let entrypoint = overrides.entrypoint.as_ref().unwrap_or(&self.entrypoint);
        let command: Vec<String> = match config.exec_path.take() {
            Some(exec) => std::iter::once(exec.to_string())
                .chain(config.args.drain(..))
                .collect(),
            None if !config.args.is_empty() => std::mem::take(&mut config.args),
            // An explicit entrypoint drops the image's Cmd, as in docker.
            None if overrides.entrypoint.is_some() => Vec::new(),
            None => self.cmd.clone(),
        };
        let mut argv = entrypoint.iter().cloned().chain(command);
        let exec = argv.next().ok_or_else(|| ImageError::Config {
            reference: reference.to_owned(),
            reason: "the image has no Entrypoint or Cmd: give the command to run".into(),
        })?;
        config.exec_path = Some(exec.into());
        config.args = argv.collect();

        let mut env = Vec::with_capacity(self.env.len() + config.env.len());
        for entry in &self.env {
            let pair: EnvPair = entry.parse().map_err(|e| ImageError::Config {
                reference: reference.to_owned(),
                reason: format!("its Env entry is unusable: {e}"),
            })?;
            if !config.env.iter().any(|c| c.get_name() == pair.get_name()) {
                env.push(pair);
            }
        }
        env.append(&mut config.env);
        config.env = env;

        if config.workdir_path.is_none()
            && let Some(dir) = &self.working_dir
        {
            let dir = if dir.starts_with('/') {
                dir.clone()
            } else {
                format!("/{dir}")
            };
            config.workdir_path = Some(dir.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: vec!["/entry".into(), "-x".into()],
            cmd: vec!["default".into()],
            env: vec!["PATH=/usr/bin:/bin".into(), "A=image".into()],
            working_dir: Some("srv".into()),
            user: Some("nobody".into()),
        }
    }

    fn applied(config: &mut MicroVmConfig, overrides: &RunOverrides) -> (String, Vec<String>) {
        image().apply(config, overrides, "img").unwrap();
        (
            config.exec_path.clone().unwrap().to_string(),
            config.args.clone(),
        )
    }

    #[test]
    fn explicit_settings_override_the_image_like_docker_run() {
        let none = RunOverrides::default();
        let mut config = MicroVmConfig::new("/r", 128);
        assert_eq!(
            applied(&mut config, &none),
            ("/entry".into(), vec!["-x".into(), "default".into()])
        );
        assert_eq!(config.workdir_path.as_ref().unwrap().as_str(), "/srv");
        assert_eq!(
            config
                .env
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["PATH=/usr/bin:/bin", "A=image"]
        );

        // A command replaces Cmd, not the entrypoint; env and workdir win.
        let mut config = MicroVmConfig::new("/r", 128);
        config.exec_path = Some("/bin/echo".into());
        config.args = vec!["hi".into()];
        config.env = vec!["A=mine".parse().unwrap(), "B=new".parse().unwrap()];
        config.workdir_path = Some("/tmp".into());
        assert_eq!(
            applied(&mut config, &none),
            (
                "/entry".into(),
                vec!["-x".into(), "/bin/echo".into(), "hi".into()]
            )
        );
        assert_eq!(
            config
                .env
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["PATH=/usr/bin:/bin", "A=mine", "B=new"]
        );
        assert_eq!(config.workdir_path.as_ref().unwrap().as_str(), "/tmp");

        // --entrypoint replaces it and drops Cmd; an empty one clears it.
        let mut config = MicroVmConfig::new("/r", 128);
        let sh = RunOverrides {
            entrypoint: Some(vec!["/bin/sh".into()]),
        };
        assert_eq!(applied(&mut config, &sh), ("/bin/sh".into(), vec![]));
        let mut config = MicroVmConfig::new("/r", 128);
        config.exec_path = Some("/bin/true".into());
        let clear = RunOverrides {
            entrypoint: Some(vec![]),
        };
        assert_eq!(applied(&mut config, &clear), ("/bin/true".into(), vec![]));

        // Args alone are the entrypoint's arguments.
        let mut config = MicroVmConfig::new("/r", 128);
        config.args = vec!["--flag".into()];
        assert_eq!(
            applied(&mut config, &none),
            ("/entry".into(), vec!["-x".into(), "--flag".into()])
        );
    }

    #[test]
    fn an_image_without_a_command_or_with_bad_env_is_an_error() {
        let empty = ImageConfig::default();
        let mut config = MicroVmConfig::new("/r", 128);
        let err = empty
            .apply(&mut config, &RunOverrides::default(), "img")
            .unwrap_err();
        assert!(err.to_string().contains("no Entrypoint or Cmd"), "{err}");
        let bad = ImageConfig {
            cmd: vec!["/x".into()],
            env: vec!["=oops".into()],
            ..ImageConfig::default()
        };
        let err = bad
            .apply(&mut config, &RunOverrides::default(), "img")
            .unwrap_err();
        assert!(err.to_string().contains("Env entry"), "{err}");
    }
}
