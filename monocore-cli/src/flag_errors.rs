//! The command line's words for a config error: which flag it came from,
//! and its fix in flags, not config keys (`-p 8080:80` without `--net` says
//! "add `--net`", not "set `net` to true").
//!
//! The flag comes from the error's [`ConfigPath`], never from its message.

use monocore::{
    ConfigPath, Field, Fix, InvalidMicroVmConfigError, MonocoreError, vm::MicroVmConfig,
};

/// The flag that set `at`, with the offending value where there is one.
fn flag(at: ConfigPath, config: &MicroVmConfig) -> String {
    let nth = |values: Vec<String>| {
        at.index
            .and_then(|i| values.get(i).cloned())
            .map(|v| format!(" {}", shell_word(&v)))
            .unwrap_or_default()
    };
    match at.field {
        Field::Root => format!("--root {}", shell_word(&config.root_path.to_string_lossy())),
        Field::Ram => format!("--ram {}", config.ram_mib),
        Field::Vcpus => format!("--vcpus {}", config.num_vcpus),
        Field::Exec => "the command (CMD)".to_owned(),
        Field::Args => match at.index {
            Some(i) => format!("argument {} of the command (CMD)", i + 1),
            None => "the command (CMD)".to_owned(),
        },
        Field::Env => format!(
            "-e/--env{}",
            nth(config.env.iter().map(ToString::to_string).collect())
        ),
        Field::Workdir => format!(
            "-w/--workdir {}",
            shell_word(config.workdir_path.as_ref().map_or("", |w| w.as_str()))
        ),
        Field::MappedDirs => format!(
            "-v/--mapped-dirs{}",
            nth(config.mapped_dirs.iter().map(ToString::to_string).collect())
        ),
        Field::PortMap => format!(
            "-p/--port-map{}",
            nth(config.port_map.iter().map(ToString::to_string).collect())
        ),
        Field::Net => "--net".to_owned(),
        Field::Allow => format!(
            "--allow{}",
            nth(config.allow.iter().map(ToString::to_string).collect())
        ),
        Field::Rlimits => format!(
            "--rlimits{}",
            nth(config.rlimits.iter().map(ToString::to_string).collect())
        ),
        Field::Console => "--console".to_owned(),
        Field::LocalOnly => "--tsi".to_owned(),
        Field::LogLevel => "--log-level".to_owned(),
        Field::Ip => "--ip".to_owned(),
    }
}

/// `s` as a shell word: quoted when it is empty or holds anything but
/// plain characters.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || "/._-:=,+@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}

/// The fix in flags.
fn fix(fix: Fix) -> &'static str {
    match fix {
        Fix::AddExec => "give the command (CMD)",
        Fix::EnableNetworking => {
            "add `--net` (each -p port then listens on the host's 127.0.0.1), or `--tsi`, or leave out `-p`"
        }
        Fix::DisableNetworking => "leave out `--tsi`",
        Fix::EnableNet => "add `--net`",
        Fix::FewerMappedDirs => "pass fewer `-v` (or share one parent directory)",
        Fix::RemoveIp => "leave out the guest IP",
        _ => "",
    }
}

fn describe(error: &InvalidMicroVmConfigError, config: &MicroVmConfig) -> String {
    let hint = error
        .kind
        .fix()
        .map(fix)
        .filter(|f| !f.is_empty())
        .map(|f| format!("; {f}"))
        .unwrap_or_default();
    format!("{}: {}{hint}", flag(error.at, config), error.kind)
}

/// `error` in the command line's words when it is about the config built
/// from the flags; otherwise its own text.
pub fn explain(error: &MonocoreError, config: &MicroVmConfig) -> String {
    match error {
        MonocoreError::InvalidMicroVmConfig(e) => describe(e, config),
        MonocoreError::HostCannotRun(e) => {
            format!("this host cannot run this microVM: {}", describe(e, config))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_names_its_flag_and_the_fix_in_flags() {
        let mut config = MicroVmConfig::new("/no/such root", 0);
        config.port_map = vec!["8080:80".parse().unwrap()];
        config.workdir_path = Some("".into());
        let errors = config.validation_errors();
        let text: Vec<String> = errors.iter().map(|e| describe(e, &config)).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("--root \"/no/such root\": root path does not exist")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("--ram 0: ")), "{text:?}");
        assert!(
            text.iter()
                .any(|t| t.starts_with("-w/--workdir \"\": guest path is empty")),
            "{text:?}"
        );
        let port = text
            .iter()
            .find(|t| t.starts_with("-p/--port-map 8080:80: "))
            .unwrap();
        assert!(
            port.ends_with(
                "; add `--net` (each -p port then listens on the host's 127.0.0.1), or `--tsi`, or leave out `-p`"
            ),
            "{port}"
        );
        assert!(!port.contains("set `net` to true"), "{port}");
    }

    #[test]
    fn net_and_allow_errors_name_their_flags() {
        let mut config = MicroVmConfig::new("/r", 1);
        config.allow = ["pypi.org:443", "x.org:1", "PyPI.org.:443"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let text: Vec<String> = config
            .value_errors()
            .iter()
            .map(|e| describe(e, &config))
            .collect();
        assert_eq!(
            text,
            [
                "--allow pypi.org:443: allow-list entry pypi.org:443 needs `net`, which is off: without it the guest has no network interface, and the allow-list opens nothing; add `--net`",
                "--allow pypi.org:443: allow-list entry pypi.org:443 is listed twice: each entry may be listed once",
            ]
        );
        config.allow.clear();
        config.net = true;
        config.local_only = false;
        let text: Vec<String> = config
            .value_errors()
            .iter()
            .map(|e| describe(e, &config))
            .collect();
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(
            text[0].starts_with("--net: `net` and TSI exclude each other"),
            "{text:?}"
        );
        assert!(text[0].ends_with("; leave out `--tsi`"), "{text:?}");
    }
}
