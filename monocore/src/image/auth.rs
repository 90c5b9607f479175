//! Registry credentials: `--registry-auth USER:PASSWORD`, or docker's
//! config file (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`), whose `auths` map a registry to a base64
//! `auth` (`user:password`) or to `username` and `password`. Credential
//! helpers (`credsStore`, `credHelpers`) are not run: monocore never
//! executes a program named by a config file.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use base64::Engine as _;
use serde::Deserialize;

use super::ImageError;

/// A user name and password for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, password: <hidden> }}",
            self.username
        )
    }
}

impl std::str::FromStr for Credentials {
    type Err = ImageError;

    /// `USER:PASSWORD` (the password may hold `:`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Self {
                username: user.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err(ImageError::AuthFormat(
                s.split(':').next().unwrap_or_default().to_owned() + ":…",
            )),
        }
    }
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, DockerAuth>,
}

#[derive(Deserialize, Default)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Where docker keeps its config file.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// The keys under which a docker config may list `registry`.
fn keys_for(registry: &str) -> Vec<String> {
    if registry == "docker.io" {
        return vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ];
    }
    vec![
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ]
}

/// The credentials `path` holds for `registry`; `None` when the file does
/// not exist or has none for it.
pub fn from_docker_config(path: &Path, registry: &str) -> Result<Option<Credentials>, ImageError> {
    let bad = |reason: String| ImageError::DockerConfig {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    let config: DockerConfig = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let Some(entry) = keys_for(registry).iter().find_map(|k| config.auths.get(k)) else {
        return Ok(None);
    };
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials {
            username: username.clone(),
            password: password.clone(),
        }));
    }
    let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| bad(format!("the `auth` of {registry} is not base64: {e}")))?;
    let text = String::from_utf8(decoded)
        .map_err(|_| bad(format!("the `auth` of {registry} is not UTF-8")))?;
    text.parse()
        .map(Some)
        .map_err(|_| bad(format!("the `auth` of {registry} is not `user:password`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_flag_or_a_docker_config() {
        let c: Credentials = "me:pa:ss".parse().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "pa:ss"));
        assert!(format!("{c:?}").contains("hidden") && !format!("{c:?}").contains("pa:ss"));
        assert!("nopassword".parse::<Credentials>().is_err());
        assert!(":x".parse::<Credentials>().is_err());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert_eq!(from_docker_config(&path, "r.io").unwrap(), None);
        let auth = base64::engine::general_purpose::STANDARD.encode("u:p");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},
                   "localhost:5000":{{"username":"a","password":"b"}},
                   "bad.io":{{"auth":"!!"}}}},"credsStore":"desktop"}}"#
            ),
        )
        .unwrap();
        let hub = from_docker_config(&path, "docker.io").unwrap().unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("u", "p"));
        let local = from_docker_config(&path, "localhost:5000")
            .unwrap()
            .unwrap();
        assert_eq!(local.username, "a");
        assert_eq!(from_docker_config(&path, "other.io").unwrap(), None);
        assert!(from_docker_config(&path, "bad.io").is_err());
    }
}
