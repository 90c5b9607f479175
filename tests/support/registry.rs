//! A real registry for the image tests: Debian's `docker-registry`
//! (distribution 2.8), started on 127.0.0.1 with a free port and a
//! temporary storage directory, stopped and removed when dropped.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Where Debian installs the registry.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Set to `1` (as `.ci/run` does) to make a missing registry a test
/// failure instead of a skip.
pub const REQUIRE_REGISTRY_ENV: &str = "MONOCORE_REQUIRE_REGISTRY";

/// A running registry.
pub struct TestRegistry {
    child: Child,
    // Declared before `dir`: stopped before its key files go.
    _token_server: Option<crate::token::TokenServer>,
    dir: tempfile::TempDir,
    port: u16,
}

/// Basic-auth credentials the registry requires (`htpasswd`).
pub struct BasicAuth<'a> {
    /// The user.
    pub user: &'a str,
    /// The password.
    pub password: &'a str,
}

/// How a registry authenticates.
pub enum Auth<'a> {
    /// HTTP basic auth against an `htpasswd` file.
    Basic(BasicAuth<'a>),
    /// Bearer tokens from a token server (started here, on 127.0.0.1) that
    /// hands them out for these basic-auth credentials; see
    /// [`crate::token`].
    Token(BasicAuth<'a>),
}

impl TestRegistry {
    /// Starts a registry that anyone may pull from and push to.
    pub fn start() -> Result<Self, String> {
        Self::start_with(None)
    }

    /// Starts a registry; with `auth`, every request needs those
    /// credentials.
    pub fn start_with(auth: Option<BasicAuth<'_>>) -> Result<Self, String> {
        Self::start_auth(auth.map(Auth::Basic))
    }

    /// Starts a registry with `auth`.
    pub fn start_auth(auth: Option<Auth<'_>>) -> Result<Self, String> {
        if !Path::new(REGISTRY_BIN).exists() {
            return Err(format!(
                "{REGISTRY_BIN} is missing: install it with ./scripts/setup.sh (apt-get install docker-registry)"
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("monocore-registry-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let port = free_port()?;
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("storage").display()
        );
        let mut token_server = None;
        if let Some(Auth::Token(auth)) = &auth {
            let server = crate::token::TokenServer::start(dir.path(), auth.user, auth.password)?;
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                server.realm(),
                crate::token::SERVICE,
                crate::token::ISSUER,
                server.cert().display()
            ));
            token_server = Some(server);
        }
        if let Some(Auth::Basic(auth)) = auth {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", auth.user, auth.password])
                .output()
                .map_err(|e| {
                    format!("htpasswd (apache2-utils, installed by ./scripts/setup.sh): {e}")
                })?;
            if !out.status.success() {
                return Err(format!(
                    "htpasswd failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            std::fs::write(&htpasswd, &out.stdout).map_err(|e| e.to_string())?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: monocore-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.path().join("registry.log")).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot start {REGISTRY_BIN}: {e}"))?;
        let registry = Self {
            child,
            _token_server: token_server,
            dir,
            port,
        };
        registry.wait_ready()?;
        Ok(registry)
    }

    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let request = format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n", self.port);
                let mut reply = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut reply).is_ok()
                    && reply.starts_with("HTTP/1.")
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "the registry did not answer within 30 s; its log: {}",
            self.log()
        ))
    }

    /// `127.0.0.1:PORT`, the registry part of a reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry's log (its access log included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many `GET`s of blob `digest` (`sha256:…`) the registry served.
    pub fn blob_gets(&self, digest: &str) -> usize {
        let needle = format!("/blobs/{digest} HTTP");
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET ") && l.contains(&needle))
            .count()
    }

    /// The file where the registry keeps blob `digest` (`sha256:…`).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(hex.get(..2).unwrap_or_default())
            .join(hex)
            .join("data")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// A registry for `test`, or `None` after the loud skip line (or a panic
/// with [`REQUIRE_REGISTRY_ENV`]`=1`) when it cannot start.
pub fn registry_for(test: &str, auth: Option<BasicAuth<'_>>) -> Option<TestRegistry> {
    registry_with(test, auth.map(Auth::Basic))
}

/// [`registry_for`] with any [`Auth`].
#[expect(
    clippy::panic,
    reason = "test support: with MONOCORE_REQUIRE_REGISTRY=1 a missing registry fails the test"
)]
pub fn registry_with(test: &str, auth: Option<Auth<'_>>) -> Option<TestRegistry> {
    match TestRegistry::start_auth(auth) {
        Ok(registry) => Some(registry),
        Err(reason) if std::env::var_os(REQUIRE_REGISTRY_ENV).is_some_and(|v| v == "1") => {
            panic!("{test}: no registry, and {REQUIRE_REGISTRY_ENV}=1: {reason}")
        }
        Err(reason) => {
            crate::skip(test, &reason);
            None
        }
    }
}
