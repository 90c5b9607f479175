//! `monocore::image` against a real registry (Debian's `docker-registry`
//! on 127.0.0.1, a free port, temporary storage), with images the tests
//! build and push themselves.

// Test code: a failed expectation should panic with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use monocore::{
    MonocoreError,
    image::{self, Credentials, ImageError, Limits, PullOptions, PullPolicy},
};
use monocore_suite::{
    oci::{Compression, Image, Pusher, Tar, busybox_layer},
    registry::{Auth, BasicAuth, registry_for, registry_with},
};
use serde_json::json;

/// A private cache, runs directory and no docker config.
struct Cache {
    dir: tempfile::TempDir,
}

impl Cache {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn options(&self) -> PullOptions {
        PullOptions {
            cache_dir: Some(self.dir.path().join("images")),
            runs_dir: Some(self.dir.path().join("runs")),
            docker_config: Some(PathBuf::new()),
            ..PullOptions::default()
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("images").join(rel)
    }

    fn names(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path(rel))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn image_error(result: Result<impl std::fmt::Debug, MonocoreError>) -> ImageError {
    match result {
        Err(MonocoreError::Image(e)) => e,
        other => panic!("expected an image error, got {other:?}"),
    }
}

fn three_layer_image() -> Image {
    let base = busybox_layer().unwrap();
    let mut middle = Tar::new();
    middle
        .dir("etc/")
        .file("etc/motd", b"hello\n")
        .file("etc/removed", b"x")
        .dir("app/")
        .file("app/old", b"old")
        .dir("app/sub/")
        .file("app/sub/old", b"old");
    let mut top = Tar::new();
    top.file("etc/.wh.removed", b"")
        .dir("app/")
        .file("app/.wh..wh..opq", b"")
        .file("app/new", b"new")
        .entry("dev/null-ish", b'3', 0o666, b"", "");
    Image::new(
        &[&base, &middle, &top],
        json!({
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo from-cmd"],
            "Env": ["PATH=/bin", "GREETING=image"],
            "WorkingDir": "/app",
            "User": "root",
        }),
    )
}

#[test]
fn a_multi_layer_image_unpacks_with_whiteouts_and_an_opaque_dir() {
    let Some(registry) = registry_for(
        "a_multi_layer_image_unpacks_with_whiteouts_and_an_opaque_dir",
        None,
    ) else {
        return;
    };
    let built = three_layer_image().build().unwrap();
    Pusher::new(&registry.host(), None)
        .unwrap()
        .push("test/app", "v1", &built)
        .unwrap();
    let cache = Cache::new();
    let reference = format!("{}/test/app:v1", registry.host());
    let rootfs = image::pull(&reference, &cache.options()).unwrap();
    let root = rootfs.path().to_path_buf();
    assert_eq!(
        fs::read_to_string(root.join("etc/motd")).unwrap(),
        "hello\n"
    );
    assert!(
        !root.join("etc/removed").exists(),
        "the whiteout was not honoured"
    );
    assert!(
        !root.join("app/old").exists() && !root.join("app/sub").exists(),
        "the opaque dir kept lower entries"
    );
    assert_eq!(fs::read_to_string(root.join("app/new")).unwrap(), "new");
    assert!(!root.join("etc/.wh.removed").exists() && !root.join("app/.wh..wh..opq").exists());
    assert!(
        !root.join("dev/null-ish").exists(),
        "a device node was created"
    );
    assert!(root.join("bin/busybox").is_file());

    let record = rootfs.record();
    assert_eq!(record.reference, reference);
    assert_eq!(record.manifest_digest.to_string(), built.manifest_digest);
    assert_eq!(record.config_digest.to_string(), built.config_digest);
    assert_eq!(record.layers.len(), 3);
    let config = rootfs.config();
    assert_eq!(config.entrypoint, ["/bin/sh", "-c"]);
    assert_eq!(config.working_dir.as_deref(), Some("/app"));

    // The VM's root is a private copy: a guest's writes never reach the
    // cached tree, and it is removed with the `ImageRootfs`.
    fs::write(root.join("app/new"), "changed by the guest").unwrap();
    let template = cache.path(&format!("rootfs/{}", record.config_digest.hex()));
    assert_eq!(fs::read_to_string(template.join("app/new")).unwrap(), "new");
    assert_ne!(
        fs::metadata(root.join("bin/busybox")).unwrap().ino(),
        fs::metadata(template.join("bin/busybox")).unwrap().ino()
    );
    drop(rootfs);
    assert!(!root.exists());
    // The cache keeps each blob once, and nothing half-done.
    assert_eq!(cache.names("tmp"), Vec::<String>::new());
    assert_eq!(cache.names("rootfs").len(), 1);
}

/// Everything under `dir` with its size and inode, to prove nothing changed.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, u64, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            out.insert(path, (meta.len(), meta.ino(), meta.nlink()));
        }
    }
    out
}

#[test]
fn a_hostile_image_changes_nothing_outside_its_root() {
    let test = "a_hostile_image_changes_nothing_outside_its_root";
    let Some(registry) = registry_for(test, None) else {
        return;
    };
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("victim"), "original").unwrap();
    let out = outside.path().display().to_string();
    let passwd = fs::metadata("/etc/passwd").unwrap();
    let mut hostile = Tar::new();
    hostile
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .symlink("escape", &out)
        .file("escape/planted", b"through a symlink")
        .symlink("up", "../../../../../../../..")
        .file(&format!("up{out}/planted"), b"through ..")
        .file(&format!("../../../../../..{out}/planted-dotdot"), b"dotdot")
        .file(&format!("{out}/planted-absolute"), b"absolute")
        .hardlink("passwd-link", "/etc/passwd")
        .hardlink("victim-link", &format!("{out}/victim"))
        .entry("sda", b'4', 0o600, b"", "");
    // `victim-link` resolves in the root, where `…/victim` is not: the
    // unpack refuses it, so give the image its own file there first.
    let mut first = Tar::new();
    first.file(&format!("{out}/victim"), b"the image's own");
    let image = Image::new(&[&first, &hostile], json!({"Cmd": ["/bin/sh"]}));
    let built = image.build().unwrap();
    Pusher::new(&registry.host(), None)
        .unwrap()
        .push("hostile/escape", "v1", &built)
        .unwrap();
    let cache = Cache::new();
    let before = snapshot(outside.path());
    let rootfs = image::pull(
        &format!("{}/hostile/escape:v1", registry.host()),
        &cache.options(),
    )
    .unwrap();
    assert_eq!(
        snapshot(outside.path()),
        before,
        "something outside the root changed"
    );
    assert_eq!(
        fs::read_to_string(outside.path().join("victim")).unwrap(),
        "original"
    );
    let after = fs::metadata("/etc/passwd").unwrap();
    assert_eq!(
        (after.ino(), after.nlink(), after.len()),
        (passwd.ino(), passwd.nlink(), passwd.len())
    );
    // Inside the root, each write landed where the guest will see it.
    let root = rootfs.path();
    let inside = |p: &str| fs::read_to_string(root.join(p.trim_start_matches('/'))).unwrap();
    assert_eq!(inside(&format!("{out}/planted")), "through ..");
    assert_eq!(inside(&format!("{out}/planted-dotdot")), "dotdot");
    assert_eq!(inside(&format!("{out}/planted-absolute")), "absolute");
    assert_eq!(inside("passwd-link"), "root:x:0:0::/root:/bin/sh\n");
    assert_eq!(inside("victim-link"), "the image's own");
    assert_eq!(fs::read_link(root.join("escape")).unwrap(), outside.path());
    assert!(!root.join("sda").exists());
    // The cache holds only what it should.
    assert_eq!(cache.names(""), ["blobs", "locks", "refs", "rootfs", "tmp"]);
}

#[test]
fn a_decompression_bomb_is_refused_and_nothing_is_kept() {
    let Some(registry) = registry_for("a_decompression_bomb_is_refused_and_nothing_is_kept", None)
    else {
        return;
    };
    // 256 MiB of zeros, a few KiB with zstd; the limit is 64 MiB. (The
    // unit tests unpack a gzip bomb.)
    let mut bomb = Tar::new();
    bomb.file("bomb", &vec![0u8; 256 << 20]);
    let mut image = Image::new(&[&bomb], json!({}));
    image.layers[0].1 = Compression::Zstd;
    let built = image.build().unwrap();
    assert!(
        built.blobs[0].1.len() < 64 << 10,
        "{}",
        built.blobs[0].1.len()
    );
    Pusher::new(&registry.host(), None)
        .unwrap()
        .push("hostile/bomb", "v1", &built)
        .unwrap();
    let cache = Cache::new();
    let options = PullOptions {
        limits: Limits {
            max_bytes: 64 << 20,
            ..Limits::default()
        },
        ..cache.options()
    };
    let err = image_error(image::pull(
        &format!("{}/hostile/bomb:v1", registry.host()),
        &options,
    ));
    assert!(
        matches!(err, ImageError::UnpackLimit { what: "bytes", limit, .. } if limit == 64 << 20),
        "{err}"
    );
    assert_eq!(cache.names("rootfs"), Vec::<String>::new());
    assert_eq!(cache.names("tmp"), Vec::<String>::new());
    assert_eq!(cache.names("refs"), Vec::<String>::new());
}

#[test]
fn a_multi_arch_index_gives_this_hosts_image() {
    let Some(registry) = registry_for("a_multi_arch_index_gives_this_hosts_image", None) else {
        return;
    };
    let host = monocore_suite::oci::host_arch();
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    let mut images = Vec::new();
    for arch in [other, host] {
        let mut marker = Tar::new();
        marker.file("arch", arch.as_bytes());
        let mut image = Image::new(&[&marker], json!({"Cmd": ["/bin/sh"]}));
        image.architecture = arch.to_owned();
        images.push(image.build().unwrap());
    }
    let pusher = Pusher::new(&registry.host(), None).unwrap();
    let index = pusher
        .push_index(
            "multi/arch",
            "v1",
            &[&images[0], &images[1]],
            &[other, host],
        )
        .unwrap();
    let cache = Cache::new();
    let rootfs = image::pull(
        &format!("{}/multi/arch:v1", registry.host()),
        &cache.options(),
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(rootfs.path().join("arch")).unwrap(),
        host
    );
    assert_eq!(rootfs.record().platform, format!("linux/{host}"));
    assert_eq!(
        rootfs.record().index_digest.as_ref().unwrap().to_string(),
        index
    );
    // By digest too.
    let by_digest = image::pull(
        &format!("{}/multi/arch@{index}", registry.host()),
        &cache.options(),
    )
    .unwrap();
    assert_eq!(
        by_digest.record().manifest_digest,
        rootfs.record().manifest_digest
    );

    // An index without this host's platform names what it has.
    pusher
        .push_index("multi/other", "v1", &[&images[0]], &[other])
        .unwrap();
    let err = image_error(image::pull(
        &format!("{}/multi/other:v1", registry.host()),
        &cache.options(),
    ));
    match err {
        ImageError::NoMatchingPlatform {
            wanted, available, ..
        } => {
            assert_eq!(wanted, format!("linux/{host}"));
            assert_eq!(available, [format!("linux/{other}")]);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_basic_auth_registry_needs_credentials_from_options_or_docker_config() {
    let auth = BasicAuth {
        user: "alice",
        password: "s3cret:pw",
    };
    let Some(registry) = registry_for(
        "a_basic_auth_registry_needs_credentials_from_options_or_docker_config",
        Some(auth),
    ) else {
        return;
    };
    let mut layer = Tar::new();
    layer.file("secret", b"s");
    let built = Image::new(&[&layer], json!({"Cmd": ["/bin/sh"]}))
        .build()
        .unwrap();
    Pusher::new(&registry.host(), Some(("alice", "s3cret:pw")))
        .unwrap()
        .push("private/app", "v1", &built)
        .unwrap();
    let reference = format!("{}/private/app:v1", registry.host());

    let cache = Cache::new();
    let err = image_error(image::pull(&reference, &cache.options()));
    assert!(matches!(err, ImageError::Registry { .. }), "{err}");
    let wrong = PullOptions {
        credentials: Some("alice:wrong".parse::<Credentials>().unwrap()),
        ..cache.options()
    };
    assert!(matches!(
        image_error(image::pull(&reference, &wrong)),
        ImageError::Registry { .. }
    ));

    let right = PullOptions {
        credentials: Some("alice:s3cret:pw".parse().unwrap()),
        ..cache.options()
    };
    let rootfs = image::pull(&reference, &right).unwrap();
    assert!(rootfs.path().join("secret").is_file());

    // From a docker config file, in a fresh cache.
    let cache = Cache::new();
    let docker = cache.dir.path().join("config.json");
    use base64::Engine as _;
    let encode = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    fs::write(
        &docker,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            registry.host(),
            encode(b"alice:s3cret:pw")
        ),
    )
    .unwrap();
    let from_file = PullOptions {
        docker_config: Some(docker),
        ..cache.options()
    };
    assert!(
        image::pull(&reference, &from_file)
            .unwrap()
            .path()
            .join("secret")
            .is_file()
    );
}

#[test]
fn a_token_auth_registry_hands_out_bearer_tokens_for_credentials() {
    let test = "a_token_auth_registry_hands_out_bearer_tokens_for_credentials";
    let auth = Auth::Token(BasicAuth {
        user: "bob",
        password: "hunter2",
    });
    let Some(registry) = registry_with(test, Some(auth)) else {
        return;
    };
    let mut layer = Tar::new();
    layer.file("token", b"t");
    let built = Image::new(&[&layer], json!({"Cmd": ["/bin/sh"]}))
        .build()
        .unwrap();
    Pusher::new(&registry.host(), Some(("bob", "hunter2")))
        .unwrap()
        .push("tok/app", "v1", &built)
        .unwrap();
    let reference = format!("{}/tok/app:v1", registry.host());
    let cache = Cache::new();
    // Anonymous: the token server refuses, so does the registry.
    assert!(matches!(
        image_error(image::pull(&reference, &cache.options())),
        ImageError::Registry { .. }
    ));
    let options = PullOptions {
        credentials: Some("bob:hunter2".parse().unwrap()),
        ..cache.options()
    };
    let rootfs = image::pull(&reference, &options).unwrap();
    assert!(rootfs.path().join("token").is_file());
}

#[test]
fn a_corrupted_blob_is_a_digest_mismatch_and_nothing_is_kept() {
    let Some(registry) = registry_for(
        "a_corrupted_blob_is_a_digest_mismatch_and_nothing_is_kept",
        None,
    ) else {
        return;
    };
    let mut layer = Tar::new();
    layer.file("data", &[7u8; 100_000]);
    let built = Image::new(&[&layer], json!({"Cmd": ["/bin/sh"]}))
        .build()
        .unwrap();
    Pusher::new(&registry.host(), None)
        .unwrap()
        .push("bad/blob", "v1", &built)
        .unwrap();
    // Flip one byte of the stored layer: the registry serves it as is.
    let stored = registry.blob_file(&built.layer_digests[0]);
    let mut bytes = fs::read(&stored).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&stored, &bytes).unwrap();

    let cache = Cache::new();
    let err = image_error(image::pull(
        &format!("{}/bad/blob:v1", registry.host()),
        &cache.options(),
    ));
    match &err {
        ImageError::DigestMismatch { expected, .. } => {
            assert_eq!(*expected, built.layer_digests[0])
        }
        other => panic!("{other}"),
    }
    let hex = built.layer_digests[0].trim_start_matches("sha256:");
    assert!(!cache.names("blobs/sha256").contains(&hex.to_owned()));
    assert_eq!(cache.names("tmp"), Vec::<String>::new());
    assert_eq!(cache.names("rootfs"), Vec::<String>::new());
}

#[test]
fn four_parallel_pulls_download_once_and_make_one_entry() {
    let Some(registry) = registry_for("four_parallel_pulls_download_once_and_make_one_entry", None)
    else {
        return;
    };
    let mut big = Tar::new();
    big.file(
        "big",
        &(0..8 << 20)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    );
    let built = Image::new(
        &[&busybox_layer().unwrap(), &big],
        json!({"Cmd": ["/bin/sh"]}),
    )
    .build()
    .unwrap();
    Pusher::new(&registry.host(), None)
        .unwrap()
        .push("par/img", "v1", &built)
        .unwrap();
    let cache = Arc::new(Cache::new());
    let reference = format!("{}/par/img:v1", registry.host());
    let reports: Vec<_> = (0..4)
        .map(|_| {
            let (cache, reference) = (Arc::clone(&cache), reference.clone());
            std::thread::spawn(move || {
                image::pull_image(&reference, &cache.options()).map(|i| i.report().clone())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    for digest in &built.layer_digests {
        assert_eq!(
            registry.blob_gets(digest),
            1,
            "{digest} was downloaded more than once"
        );
    }
    let downloaded: usize = reports.iter().map(|r| r.downloaded_blobs).sum();
    assert_eq!(downloaded, built.blobs.len(), "{reports:?}");
    assert_eq!(cache.names("rootfs").len(), 1);
    assert_eq!(cache.names("refs").len(), 1);
    assert_eq!(cache.names("tmp"), Vec::<String>::new());
}

#[test]
fn an_interrupted_pull_resumes_and_a_stale_unpack_is_redone() {
    let Some(registry) = registry_for(
        "an_interrupted_pull_resumes_and_a_stale_unpack_is_redone",
        None,
    ) else {
        return;
    };
    let mut layer = Tar::new();
    layer.file(
        "data",
        &(0..4 << 20).map(|i| (i % 253) as u8).collect::<Vec<_>>(),
    );
    let built = Image::new(&[&layer], json!({"Cmd": ["/bin/sh"]}))
        .build()
        .unwrap();
    Pusher::new(&registry.host(), None)
        .unwrap()
        .push("int/img", "v1", &built)
        .unwrap();
    let (layer_digest, layer_bytes) = built.blobs[0].clone();
    let hex = layer_digest.trim_start_matches("sha256:");
    let cache = Cache::new();
    // What a killed pull leaves: half a download, a half-made root.
    image::prune(&cache.options()).unwrap();
    let half = layer_bytes.len() / 2;
    fs::write(cache.path(&format!("tmp/blob-{hex}")), &layer_bytes[..half]).unwrap();
    let config_hex = built.config_digest.trim_start_matches("sha256:");
    fs::create_dir_all(cache.path(&format!("tmp/rootfs-{config_hex}/junk"))).unwrap();

    let image =
        image::pull_image(&format!("{}/int/img:v1", registry.host()), &cache.options()).unwrap();
    let report = image.report();
    // The layer's download resumed where it stopped.
    assert_eq!(
        report.downloaded_bytes,
        (layer_bytes.len() - half + built.blobs[1].1.len()) as u64,
        "{report:?}"
    );
    let rootfs = image.rootfs_in(&cache.dir.path().join("runs")).unwrap();
    assert!(!rootfs.path().join("junk").exists());
    assert_eq!(
        fs::metadata(rootfs.path().join("data")).unwrap().len(),
        4 << 20
    );
    assert_eq!(cache.names("tmp"), Vec::<String>::new());

    // A partial download with wrong bytes is thrown away and fetched again.
    let cache = Cache::new();
    image::prune(&cache.options()).unwrap();
    fs::write(cache.path(&format!("tmp/blob-{hex}")), vec![0u8; half]).unwrap();
    image::pull(&format!("{}/int/img:v1", registry.host()), &cache.options()).unwrap();
    assert_eq!(cache.names("tmp"), Vec::<String>::new());
}

#[test]
fn layers_are_shared_and_remove_and_prune_free_what_no_image_uses() {
    let Some(registry) = registry_for(
        "layers_are_shared_and_remove_and_prune_free_what_no_image_uses",
        None,
    ) else {
        return;
    };
    let base = busybox_layer().unwrap();
    let mut a = Tar::new();
    a.file("a", b"a");
    let mut b = Tar::new();
    b.file("b", b"b");
    let mut zstd_image = Image::new(&[&base, &b], json!({"Cmd": ["/bin/sh"]}));
    zstd_image.layers[1].1 = Compression::Zstd;
    let image_a = Image::new(&[&base, &a], json!({"Cmd": ["/bin/sh"]}))
        .build()
        .unwrap();
    let image_b = zstd_image.build().unwrap();
    let pusher = Pusher::new(&registry.host(), None).unwrap();
    pusher.push("share/a", "v1", &image_a).unwrap();
    pusher.push("share/b", "v1", &image_b).unwrap();
    let cache = Cache::new();
    let ref_a = format!("{}/share/a:v1", registry.host());
    let ref_b = format!("{}/share/b:v1", registry.host());
    image::pull_image(&ref_a, &cache.options()).unwrap();
    let second = image::pull_image(&ref_b, &cache.options()).unwrap();
    assert_eq!(
        second.report().cached_blobs,
        1,
        "the shared base layer was fetched again"
    );
    assert_eq!(image_a.layer_digests[0], image_b.layer_digests[0]);
    // 2 configs, 2 manifests, 3 distinct layers.
    assert_eq!(cache.names("blobs/sha256").len(), 7);
    assert!(
        second
            .rootfs_in(&cache.dir.path().join("runs"))
            .unwrap()
            .path()
            .join("b")
            .is_file()
    );

    let listed = image::list(&cache.options()).unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|r| r.reference.as_str())
            .collect::<Vec<_>>(),
        [ref_a.as_str(), ref_b.as_str()]
    );
    assert!(
        listed
            .iter()
            .all(|r| r.unpacked_bytes > 1_000_000 && r.compressed_bytes() > 100_000)
    );

    // A cached reference needs no registry.
    drop(registry);
    let offline = image::pull_image(&ref_a, &cache.options()).unwrap();
    assert!(offline.report().from_cache);

    let (known, freed) = image::remove(&ref_a, &cache.options()).unwrap();
    assert!(known && freed > 0);
    assert_eq!(
        cache.names("blobs/sha256").len(),
        4,
        "the shared layer must stay"
    );
    assert_eq!(cache.names("rootfs").len(), 1);
    let never = PullOptions {
        policy: PullPolicy::Never,
        ..cache.options()
    };
    assert!(matches!(
        image_error(image::pull_image(&ref_a, &never)),
        ImageError::NotCached(_)
    ));
    image::remove(&ref_b, &cache.options()).unwrap();
    assert_eq!(cache.names("blobs/sha256"), Vec::<String>::new());
    assert_eq!(cache.names("rootfs"), Vec::<String>::new());
    assert_eq!(image::prune(&cache.options()).unwrap(), 0);
}

#[test]
fn registry_tests_leave_no_registry_running() {
    let Some(registry) = registry_for("registry_tests_leave_no_registry_running", None) else {
        return;
    };
    let port = registry.port();
    drop(registry);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn vm_with_an_image_pulls_and_applies_the_image_config() {
    let Some(registry) = registry_for("vm_with_an_image_pulls_and_applies_the_image_config", None)
    else {
        return;
    };
    let built = three_layer_image().build().unwrap();
    Pusher::new(&registry.host(), None)
        .unwrap()
        .push("test/app", "v1", &built)
        .unwrap();
    let cache = Cache::new();
    let reference = format!("{}/test/app:v1", registry.host());
    let image_config = monocore::vm! {
        image: reference,
        ram: 128,
        args: ["echo from-args"],
        env: ["GREETING=vm"],
    };
    let (config, rootfs) = image_config.pull(&cache.options()).unwrap();
    assert_eq!(config.root_path, rootfs.path());
    assert_eq!(config.exec_path.as_ref().unwrap().as_str(), "/bin/sh");
    assert_eq!(config.args, ["-c", "echo from-args"]);
    let env: Vec<String> = config.env.iter().map(ToString::to_string).collect();
    assert_eq!(env, ["PATH=/bin", "GREETING=vm"]);
    assert_eq!(config.workdir_path.as_ref().unwrap().as_str(), "/app");
    monocore::vm::MicroVm::from_config(config).unwrap();
}
