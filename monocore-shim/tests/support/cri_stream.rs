//! `kubectl exec`'s streams: the URL a CRI `Exec` answers points at the CRI
//! plugin's streaming server (on 127.0.0.1 in these tests), which kubelet
//! proxies `kubectl exec` to. This client speaks its WebSocket protocol,
//! `v4.channel.k8s.io`: each message is binary, its first byte the channel
//! (0 stdin, 1 stdout, 2 stderr, 3 the command's status as JSON, sent
//! last, 4 a terminal resize as JSON).

use std::{
    io::ErrorKind,
    net::{Ipv4Addr, SocketAddr, TcpStream},
    time::Duration,
};

use tungstenite::{
    Message, WebSocket,
    client::IntoClientRequest,
    http::{HeaderValue, Uri},
};

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const RESIZE: u8 = 4;

/// What came back from a command.
#[derive(Debug, Default)]
pub struct Streams {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The status message (a Kubernetes `Status`, JSON).
    pub status: String,
}

impl Streams {
    /// The exit code the status gives: 0 for `Success`, the `ExitCode`
    /// cause's for a `NonZeroExitCode` failure.
    pub fn exit_code(&self) -> Option<i32> {
        if self.status.contains(r#""status":"Success""#) {
            return Some(0);
        }
        let cause = self.status.split(r#""reason":"ExitCode""#).nth(1)?;
        let message = cause.split(r#""message":""#).nth(1)?;
        message.split('"').next()?.parse().ok()
    }
}

/// A command's streams, open.
pub struct ExecStream {
    socket: WebSocket<TcpStream>,
}

impl ExecStream {
    /// Connects to `url` (what `Exec` answered), which must be on
    /// 127.0.0.1: no test sends traffic anywhere else.
    pub fn connect(url: &str) -> Self {
        let uri: Uri = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
        let host: Ipv4Addr = uri
            .host()
            .and_then(|h| h.parse().ok())
            .unwrap_or_else(|| panic!("{url}: not an IPv4 address"));
        assert!(host.is_loopback(), "{url}: not on 127.0.0.1");
        let port = uri.port_u16().unwrap_or(80);
        let stream = TcpStream::connect(SocketAddr::from((host, port))).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let mut request = url
            .replacen("http://", "ws://", 1)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("v4.channel.k8s.io"),
        );
        let (socket, response) = tungstenite::client(request, stream)
            .unwrap_or_else(|e| panic!("the WebSocket handshake with {url} failed: {e}"));
        assert_eq!(
            response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok()),
            Some("v4.channel.k8s.io")
        );
        Self { socket }
    }

    fn send(&mut self, channel: u8, data: &[u8]) {
        let message = [&[channel][..], data].concat();
        self.socket.send(Message::binary(message)).unwrap();
    }

    /// Writes `data` to the command's stdin.
    pub fn stdin(&mut self, data: &[u8]) {
        self.send(STDIN, data);
    }

    /// Resizes its terminal, as `kubectl exec -t` does when the user's
    /// terminal changes.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let size = format!(r#"{{"Width":{cols},"Height":{rows}}}"#);
        self.send(RESIZE, size.as_bytes());
    }

    /// Reads everything until the server closes the connection.
    pub fn finish(mut self) -> Streams {
        let mut streams = Streams::default();
        loop {
            let data = match self.socket.read() {
                Ok(Message::Binary(data)) => data,
                Ok(Message::Close(_)) => break,
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    break;
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => break,
                Err(e) => panic!("reading the exec streams: {e}"),
            };
            let Some((&channel, body)) = data.split_first() else {
                continue;
            };
            match channel {
                STDOUT => streams.stdout.extend_from_slice(body),
                STDERR => streams.stderr.extend_from_slice(body),
                STATUS => streams.status.push_str(&String::from_utf8_lossy(body)),
                _ => {}
            }
        }
        streams
    }
}
