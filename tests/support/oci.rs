//! OCI images built by the tests themselves, byte by byte (hostile entries
//! included: this writer validates nothing), and pushed to a
//! [`TestRegistry`](crate::registry::TestRegistry) with `oci-client`.

use std::io::Write;

use oci_client::{
    Client, Reference,
    client::{ClientConfig, ClientProtocol},
    secrets::RegistryAuth,
};
use serde_json::json;
use sha2::Digest as _;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A tar stream, header by header.
#[derive(Default, Clone)]
pub struct Tar(Vec<u8>);

impl Tar {
    pub fn new() -> Self {
        Self::default()
    }

    /// Any entry: `typeflag` `0` file, `1` hardlink, `2` symlink, `4` block
    /// device, `5` directory, `6` FIFO. Paths over 100 bytes get a pax
    /// header.
    pub fn entry(
        &mut self,
        path: &str,
        typeflag: u8,
        mode: u32,
        data: &[u8],
        link: &str,
    ) -> &mut Self {
        if path.len() > 100 {
            let record = |len: usize| format!("{len} path={path}\n");
            let mut len = record(0).len();
            while record(len).len() != len {
                len = record(len).len();
            }
            let pax = record(len);
            self.raw("pax", b'x', 0o644, pax.as_bytes(), "");
            return self.raw("long", typeflag, mode, data, link);
        }
        self.raw(path, typeflag, mode, data, link)
    }

    fn raw(&mut self, path: &str, typeflag: u8, mode: u32, data: &[u8], link: &str) -> &mut Self {
        let mut block = [0u8; 512];
        let put = |block: &mut [u8; 512], at: usize, bytes: &[u8]| {
            for (i, b) in bytes.iter().enumerate() {
                if let Some(slot) = block.get_mut(at + i) {
                    *slot = *b;
                }
            }
        };
        put(&mut block, 0, path.as_bytes());
        put(&mut block, 100, format!("{mode:07o}\0").as_bytes());
        put(&mut block, 108, b"0000000\0");
        put(&mut block, 116, b"0000000\0");
        put(&mut block, 124, format!("{:011o}\0", data.len()).as_bytes());
        put(&mut block, 136, b"14000000000\0");
        put(&mut block, 156, &[typeflag]);
        put(&mut block, 157, link.as_bytes());
        put(&mut block, 257, b"ustar\0");
        put(&mut block, 263, b"00");
        put(&mut block, 148, b"        ");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        put(&mut block, 148, format!("{sum:06o}\0 ").as_bytes());
        self.0.extend_from_slice(&block);
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().div_ceil(512) * 512, 0);
        self
    }

    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.entry(path, b'0', 0o644, data, "")
    }

    pub fn executable(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.entry(path, b'0', 0o755, data, "")
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.entry(path, b'5', 0o755, b"", "")
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(path, b'2', 0o777, b"", target)
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(path, b'1', 0o644, b"", target)
    }

    /// The archive, with its end-of-archive blocks.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.0.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// A busybox root as one layer: `/bin/busybox` and applet links, `/etc`.
pub fn busybox_layer() -> Result<Tar, String> {
    let busybox = monocore::rootfs::find_busybox().map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&busybox).map_err(|e| e.to_string())?;
    let mut tar = Tar::new();
    tar.dir("bin/").executable("bin/busybox", &bytes);
    for applet in [
        "sh", "echo", "cat", "ls", "env", "pwd", "id", "true", "test", "stat",
    ] {
        tar.symlink(&format!("bin/{applet}"), "busybox");
    }
    tar.dir("etc/")
        .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        .file("etc/group", b"root:x:0:\n")
        .dir("tmp/")
        .dir("root/");
    Ok(tar)
}

/// How a layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    fn media_type(self) -> &'static str {
        match self {
            Self::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Self::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Self::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }

    fn compress(self, tar: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Self::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(tar).map_err(|e| e.to_string())?;
                e.finish().map_err(|e| e.to_string())
            }
            Self::Zstd => zstd::encode_all(tar, 3).map_err(|e| e.to_string()),
            Self::None => Ok(tar.to_vec()),
        }
    }
}

pub fn digest(bytes: &[u8]) -> String {
    let hash = sha2::Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// An image: layers (bottom first) and the `config` part of its config
/// (Entrypoint, Cmd, Env, WorkingDir, User).
pub struct Image {
    pub layers: Vec<(Vec<u8>, Compression)>,
    pub run_config: serde_json::Value,
    pub architecture: String,
}

/// The blobs of a built image, ready to push.
pub struct Built {
    /// `(digest, bytes)` of the config and each compressed layer.
    pub blobs: Vec<(String, Vec<u8>)>,
    pub config_digest: String,
    pub layer_digests: Vec<String>,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
}

impl Image {
    /// One layer per tar, gzip'd, for this host's architecture.
    pub fn new(layers: &[&Tar], run_config: serde_json::Value) -> Self {
        Self {
            layers: layers
                .iter()
                .map(|t| (t.finish(), Compression::Gzip))
                .collect(),
            run_config,
            architecture: host_arch().to_owned(),
        }
    }

    pub fn build(&self) -> Result<Built, String> {
        let mut blobs = Vec::new();
        let mut layer_descriptors = Vec::new();
        let mut diff_ids = Vec::new();
        let mut layer_digests = Vec::new();
        for (tar, compression) in &self.layers {
            let compressed = compression.compress(tar)?;
            let d = digest(&compressed);
            diff_ids.push(digest(tar));
            layer_descriptors.push(json!({
                "mediaType": compression.media_type(),
                "digest": d,
                "size": compressed.len(),
            }));
            layer_digests.push(d.clone());
            blobs.push((d, compressed));
        }
        let config = json!({
            "architecture": self.architecture,
            "os": "linux",
            "config": self.run_config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = serde_json::to_vec(&config).map_err(|e| e.to_string())?;
        let config_digest = digest(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": layer_descriptors,
        }))
        .map_err(|e| e.to_string())?;
        blobs.push((config_digest.clone(), config));
        Ok(Built {
            blobs,
            config_digest,
            layer_digests,
            manifest_digest: digest(&manifest),
            manifest,
        })
    }
}

/// This host's architecture as OCI names it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Pushes to one registry over plain HTTP.
pub struct Pusher {
    runtime: tokio::runtime::Runtime,
    client: Client,
    host: String,
    auth: RegistryAuth,
}

impl Pusher {
    pub fn new(host: &str, credentials: Option<(&str, &str)>) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::Http,
            ..ClientConfig::default()
        });
        let auth = match credentials {
            Some((u, p)) => RegistryAuth::Basic(u.into(), p.into()),
            None => RegistryAuth::Anonymous,
        };
        Ok(Self {
            runtime,
            client,
            host: host.to_owned(),
            auth,
        })
    }

    fn reference(&self, repo: &str, tag: &str) -> Reference {
        Reference::with_tag(self.host.clone(), repo.into(), tag.into())
    }

    /// Pushes the blobs and the manifest of `image` as `repo:tag`.
    pub fn push(&self, repo: &str, tag: &str, image: &Built) -> Result<(), String> {
        let reference = self.reference(repo, tag);
        self.runtime.block_on(async {
            self.client
                .auth(&reference, &self.auth, oci_client::RegistryOperation::Push)
                .await
                .map_err(|e| format!("auth: {e}"))?;
            for (d, bytes) in &image.blobs {
                self.client
                    .push_blob(&reference, bytes.clone(), d)
                    .await
                    .map_err(|e| format!("push blob {d}: {e}"))?;
            }
            self.client
                .push_manifest_raw(
                    &reference,
                    image.manifest.clone(),
                    http::HeaderValue::from_static(OCI_MANIFEST),
                )
                .await
                .map_err(|e| format!("push manifest: {e}"))?;
            Ok(())
        })
    }

    /// Pushes each image by digest, then an index of them as `repo:tag`;
    /// returns the index's digest.
    pub fn push_index(
        &self,
        repo: &str,
        tag: &str,
        images: &[&Built],
        archs: &[&str],
    ) -> Result<String, String> {
        let mut manifests = Vec::new();
        for (image, arch) in images.iter().zip(archs) {
            self.push(repo, &format!("{tag}-{arch}"), image)?;
            manifests.push(json!({
                "mediaType": OCI_MANIFEST,
                "digest": image.manifest_digest,
                "size": image.manifest.len(),
                "platform": {"os": "linux", "architecture": arch},
            }));
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        }))
        .map_err(|e| e.to_string())?;
        let reference = self.reference(repo, tag);
        self.runtime
            .block_on(self.client.push_manifest_raw(
                &reference,
                index.clone(),
                http::HeaderValue::from_static(OCI_INDEX),
            ))
            .map_err(|e| format!("push index: {e}"))?;
        Ok(digest(&index))
    }
}
