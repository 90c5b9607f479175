use std::{
    fs,
    io::Write,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
};

use super::*;

/// A tar stream written header by header, hostile paths included (no
/// validation: that is the point).
#[derive(Default)]
struct Tar(Vec<u8>);

impl Tar {
    fn entry(&mut self, path: &str, typeflag: u8, mode: u32, data: &[u8], link: &str) -> &mut Self {
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
        block[..path.len()].copy_from_slice(path.as_bytes());
        block[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
        block[108..116].copy_from_slice(b"0000000\0");
        block[116..124].copy_from_slice(b"0000000\0");
        block[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        block[136..148].copy_from_slice(b"14000000000\0");
        block[156] = typeflag;
        block[157..157 + link.len()].copy_from_slice(link.as_bytes());
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.0.extend_from_slice(&block);
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().div_ceil(512) * 512, 0);
        self
    }

    fn file(&mut self, path: &str, data: &str) -> &mut Self {
        self.entry(path, b'0', 0o644, data.as_bytes(), "")
    }

    fn dir(&mut self, path: &str) -> &mut Self {
        self.entry(path, b'5', 0o755, b"", "")
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.0);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

fn diff_id(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        super::super::digest::hex(&Sha256::digest(bytes))
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn unpack(root: &Path, layers: &[Vec<u8>], limits: Limits) -> Result<UnpackStats, ImageError> {
    let mut unpacker = Unpacker::new(root, limits).unwrap();
    for (i, layer) in layers.iter().enumerate() {
        unpacker.apply(
            &gzip(layer)[..],
            Compression::Gzip,
            &format!("layer{i}"),
            &diff_id(layer),
        )?;
    }
    Ok(unpacker.finish())
}

/// Every path under `dir` with its kind, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            let rel = entry
                .path()
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string();
            if kind.is_dir() {
                stack.push(entry.path());
                out.push(format!("{rel}/"));
            } else if kind.is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    fs::read_link(entry.path()).unwrap().display()
                ));
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn layers_stack_with_whiteouts_and_opaque_dirs() {
    let root = tempfile::tempdir().unwrap();
    let lower = Tar::default()
        .dir("etc/")
        .file("etc/keep", "k")
        .file("etc/gone", "g")
        .dir("opq/")
        .file("opq/old", "o")
        .dir("opq/sub/")
        .file("opq/sub/old", "o")
        .dir("tree/")
        .file("tree/a", "a")
        .finish();
    let upper = Tar::default()
        .file("etc/.wh.gone", "")
        .file(".wh.tree", "")
        .dir("opq/")
        .file("opq/new", "n")
        .dir("opq/sub/")
        .file("opq/.wh..wh..opq", "")
        .file("opq/sub/new", "n")
        .file(".wh.nothing-there", "")
        .finish();
    let stats = unpack(root.path(), &[lower, upper], Limits::default()).unwrap();
    assert_eq!(
        listing(root.path()),
        [
            "etc/",
            "etc/keep",
            "opq/",
            "opq/new",
            "opq/sub/",
            "opq/sub/new"
        ]
    );
    assert_eq!(stats.skipped_devices, 0);
}

#[test]
fn an_opaque_marker_before_its_entries_keeps_them() {
    let root = tempfile::tempdir().unwrap();
    let lower = Tar::default().dir("d/").file("d/old", "o").finish();
    let upper = Tar::default()
        .dir("d/")
        .file("d/.wh..wh..opq", "")
        .file("d/new", "n")
        .finish();
    unpack(root.path(), &[lower, upper], Limits::default()).unwrap();
    assert_eq!(listing(root.path()), ["d/", "d/new"]);
}

/// A host directory next to the root, with a file that must not change.
struct Outside {
    dir: tempfile::TempDir,
}

impl Outside {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("victim"), "original").unwrap();
        Self { dir }
    }

    fn assert_untouched(&self) {
        assert_eq!(listing(self.dir.path()), ["victim"]);
        assert_eq!(
            fs::read_to_string(self.dir.path().join("victim")).unwrap(),
            "original"
        );
        assert_eq!(
            fs::metadata(self.dir.path().join("victim"))
                .unwrap()
                .nlink(),
            1
        );
    }
}

#[test]
fn hostile_paths_symlinks_and_hardlinks_stay_in_the_root() {
    let outside = Outside::new();
    let out = outside.dir.path().display().to_string();
    let root = tempfile::tempdir().unwrap();
    let passwd_links = fs::metadata("/etc/passwd").map(|m| m.nlink()).ok();
    let layer = Tar::default()
        .file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
        // Absolute and `..` paths.
        .file(&format!("{out}/victim"), "abs")
        .file("../../../../victim-dotdot", "dotdot")
        // A symlink to the outside directory, then writes through it.
        .entry("escape", b'2', 0o777, b"", &out)
        .file("escape/victim", "through symlink")
        .entry("up", b'2', 0o777, b"", "../../../../../..")
        .file(&format!("up{out}/victim"), "through ..")
        // Hardlinks to the host's files resolve to the image's.
        .entry("passwd-link", b'1', 0o644, b"", "/etc/passwd")
        .entry("victim-link", b'1', 0o644, b"", &format!("{out}/victim"))
        .entry("dev/sda", b'4', 0o600, b"", "")
        .finish();
    let stats = unpack(root.path(), &[layer], Limits::default()).unwrap();
    outside.assert_untouched();
    assert_eq!(
        fs::metadata("/etc/passwd").map(|m| m.nlink()).ok(),
        passwd_links
    );
    let inside = |p: &str| fs::read_to_string(root.path().join(p)).unwrap();
    assert_eq!(inside(&format!("{}/victim", &out[1..])), "through ..");
    assert_eq!(inside("victim-dotdot"), "dotdot");
    assert_eq!(inside("passwd-link"), "root:x:0:0::/root:/bin/sh\n");
    assert_eq!(
        fs::metadata(root.path().join("etc/passwd"))
            .unwrap()
            .nlink(),
        2
    );
    assert_eq!(inside("victim-link"), "through ..");
    // The symlink stays, pointing where the guest will resolve it.
    assert_eq!(
        fs::read_link(root.path().join("escape")).unwrap(),
        outside.dir.path()
    );
    assert!(!root.path().join("dev/sda").exists());
    assert_eq!(stats.skipped_devices, 1);
}

#[test]
fn a_symlinked_file_is_replaced_not_written_through() {
    let outside = Outside::new();
    let root = tempfile::tempdir().unwrap();
    let victim = outside.dir.path().join("victim").display().to_string();
    let lower = Tar::default()
        .entry("f", b'2', 0o777, b"", &victim)
        .finish();
    let upper = Tar::default().file("f", "new").finish();
    unpack(root.path(), &[lower, upper], Limits::default()).unwrap();
    outside.assert_untouched();
    assert_eq!(fs::read_to_string(root.path().join("f")).unwrap(), "new");
    // A whiteout of a symlinked directory removes the link, not its target.
    let lower = Tar::default()
        .entry(
            "d",
            b'2',
            0o777,
            b"",
            &outside.dir.path().display().to_string(),
        )
        .finish();
    let upper = Tar::default()
        .file(".wh.d", "")
        .file("x/.wh.victim", "")
        .finish();
    let root = tempfile::tempdir().unwrap();
    unpack(root.path(), &[lower, upper], Limits::default()).unwrap();
    outside.assert_untouched();
}

#[test]
fn bad_hardlinks_are_refused() {
    for (link, why) in [
        ("missing", "not in the root"),
        ("d", "directory"),
        ("", "root directory"),
    ] {
        let root = tempfile::tempdir().unwrap();
        let layer = Tar::default()
            .dir("d/")
            .entry("l", b'1', 0o644, b"", link)
            .finish();
        let err = unpack(root.path(), &[layer], Limits::default()).unwrap_err();
        assert!(
            matches!(&err, ImageError::Entry { entry, .. } if entry == "l"),
            "{err}"
        );
        assert!(err.to_string().contains(why), "{err}");
    }
}

#[test]
fn a_decompression_bomb_is_a_typed_error() {
    let root = tempfile::tempdir().unwrap();
    // 64 MiB of zeros: about 64 KiB once gzip'd.
    let zeros = vec![0u8; 64 << 20];
    let layer = Tar::default()
        .entry("bomb", b'0', 0o644, &zeros, "")
        .finish();
    let limits = Limits {
        max_bytes: 8 << 20,
        ..Limits::default()
    };
    let err = unpack(root.path(), &[layer], limits).unwrap_err();
    assert!(
        matches!(err, ImageError::UnpackLimit { what: "bytes", limit, .. } if limit == 8 << 20),
        "{err}"
    );
    // Entry counts are bounded too.
    let mut many = Tar::default();
    for i in 0..20 {
        many.file(&format!("f{i}"), "");
    }
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let root = tempfile::tempdir().unwrap();
    let err = unpack(root.path(), &[many.finish()], limits).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::UnpackLimit {
                what: "entries",
                limit: 10,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_wrong_diff_id_is_a_digest_mismatch() {
    let root = tempfile::tempdir().unwrap();
    let layer = Tar::default().file("a", "a").finish();
    let mut unpacker = Unpacker::new(root.path(), Limits::default()).unwrap();
    let err = unpacker
        .apply(
            &gzip(&layer)[..],
            Compression::Gzip,
            "l",
            &diff_id(b"other"),
        )
        .unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
}

#[test]
fn modes_times_long_names_fifos_and_zstd_are_kept() {
    let root = tempfile::tempdir().unwrap();
    let long = format!("{}/file", "d".repeat(150));
    let layer = Tar::default()
        .entry("bin/", b'5', 0o555, b"", "")
        .entry("bin/tool", b'0', 0o4755, b"#!", "")
        .entry("tmp/", b'5', 0o1777, b"", "")
        .file(&long, "long")
        .entry("fifo", b'6', 0o640, b"", "")
        .finish();
    let compressed = zstd::encode_all(&layer[..], 1).unwrap();
    let mut unpacker = Unpacker::new(root.path(), Limits::default()).unwrap();
    unpacker
        .apply(&compressed[..], Compression::Zstd, "l", &diff_id(&layer))
        .unwrap();
    unpacker.finish();
    let mode = |p: &str| {
        fs::symlink_metadata(root.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    let privileged = rustix::process::geteuid().is_root();
    assert_eq!(mode("bin/tool"), 0o4755);
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("bin"), if privileged { 0o555 } else { 0o755 });
    assert_eq!(fs::read_to_string(root.path().join(&long)).unwrap(), "long");
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &fs::symlink_metadata(root.path().join("fifo"))
            .unwrap()
            .file_type()
    ));
    // mtime 0o14000000000 seconds, on files and (set last) on directories.
    let mtime = fs::metadata(root.path().join("bin/tool")).unwrap().mtime();
    assert_eq!(mtime, 0o14000000000);
    assert_eq!(
        fs::metadata(root.path().join("bin")).unwrap().mtime(),
        0o14000000000
    );
}

#[test]
fn media_types_map_to_compressions() {
    for (media_type, compression) in [
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Some(Compression::Gzip),
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            Some(Compression::Zstd),
        ),
        (
            "application/vnd.oci.image.layer.v1.tar",
            Some(Compression::None),
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Some(Compression::Gzip),
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            Some(Compression::Gzip),
        ),
        ("application/vnd.oci.image.layer.v1.tar+bzip2", None),
        ("text/plain", None),
    ] {
        assert_eq!(
            Compression::of_media_type(media_type),
            compression,
            "{media_type}"
        );
    }
}
