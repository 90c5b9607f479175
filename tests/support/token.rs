//! A bearer-token server for a token-auth registry (distribution's `auth:
//! token`), on 127.0.0.1: for requests with the right basic-auth
//! credentials it returns a JWT granting the scope asked for, signed (RS256,
//! with the certificate in `x5c`) by a key made here with the `openssl`
//! command; the registry trusts that certificate (`rootcertbundle`).

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use base64::Engine as _;

/// The `service` the registry and its tokens name.
pub const SERVICE: &str = "monocore-registry";
/// The tokens' issuer.
pub const ISSUER: &str = "monocore-test-tokens";

/// A running token server; stopped when dropped.
pub struct TokenServer {
    port: u16,
    cert: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn openssl(args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenServer {
    /// Starts a server that grants tokens to `user`:`password`; its key and
    /// certificate live in `dir`.
    pub fn start(dir: &Path, user: &str, password: &str) -> Result<Self, String> {
        let key = dir.join("token-key.pem");
        let cert = dir.join("token-cert.pem");
        let (key_s, cert_s) = (key.display().to_string(), cert.display().to_string());
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=monocore-test-tokens",
            "-keyout",
            &key_s,
            "-out",
            &cert_s,
        ])?;
        let der = openssl(&["x509", "-in", &cert_s, "-outform", "DER"])?;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let (stop2, user) = (Arc::clone(&stop), user.to_owned());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    let _ = serve(stream, &expected, &user, &key_s, &x5c);
                }
            }
        });
        Ok(Self {
            port,
            cert,
            stop,
            thread: Some(thread),
        })
    }

    /// The URL the registry sends clients to.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The certificate the registry trusts.
    pub fn cert(&self) -> &Path {
        &self.cert
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one request: a token for the scope asked, or 401.
fn serve(
    stream: TcpStream,
    expected: &str,
    user: &str,
    key: &str,
    x5c: &str,
) -> Result<(), String> {
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut request_line = String::new();
    reader
        .read_line(&mut request_line)
        .map_err(|e| e.to_string())?;
    let mut authorized = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
            && value.trim() == expected
        {
            authorized = true;
        }
    }
    let mut stream = stream;
    if !authorized {
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#;
        let reply = format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return stream
            .write_all(reply.as_bytes())
            .map_err(|e| e.to_string());
    }
    // `GET /token?scope=repository:NAME:ACTIONS&service=…`
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let mut access = Vec::new();
    for pair in query.split('&') {
        if let Some(scope) = pair.strip_prefix("scope=") {
            let scope = scope
                .replace("%3A", ":")
                .replace("%2C", ",")
                .replace("%2F", "/");
            let mut parts = scope.splitn(3, ':');
            if let (Some(kind), Some(name), Some(actions)) =
                (parts.next(), parts.next(), parts.next())
            {
                access.push(serde_json::json!({
                    "type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>(),
                }));
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": user, "aud": SERVICE,
        "exp": now + 3600, "nbf": now - 60, "iat": now - 60,
        "jti": format!("{now}-{}", access.len()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let input_file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::fs::write(input_file.path(), &signing_input).map_err(|e| e.to_string())?;
    let input_path = input_file.path().display().to_string();
    let signature = openssl(&["dgst", "-sha256", "-sign", key, &input_path])?;
    let token = format!("{signing_input}.{}", b64url(&signature));
    let body =
        serde_json::json!({"token": token, "access_token": token, "expires_in": 3600}).to_string();
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(reply.as_bytes())
        .map_err(|e| e.to_string())
}
