//! OCI image archives of a busybox root file system, for `ctr image
//! import`: one uncompressed layer, shared by every image of the archive,
//! each image named by its index entry's `io.containerd.image.name`
//! annotation (the name `ctr image import` gives it).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use super::IMAGE;

/// One image of an archive: its name and its config's `Cmd`.
#[derive(Debug, Clone, Copy)]
pub struct ImageSpec<'a> {
    /// The name `ctr image import` gives it, such as [`IMAGE`].
    pub name: &'a str,
    /// The image config's `Cmd`.
    pub cmd: &'a [&'a str],
}

/// Builds an OCI image archive (`oci-layout`, `index.json`, blobs) of a
/// busybox root file system in `dir`, named [`IMAGE`] (`Cmd` `/bin/sh`).
/// Returns the archive's path.
pub fn build_image(dir: &Path) -> PathBuf {
    build_images(
        dir,
        &[ImageSpec {
            name: IMAGE,
            cmd: &["/bin/sh"],
        }],
    )
}

/// Builds an OCI image archive in `dir` (under `dir/image`, which must not
/// exist) holding each of `images`: the same busybox layer, a config with
/// its `Cmd`, a manifest, and an index entry with its name. Returns the
/// archive's path.
pub fn build_images(dir: &Path, images: &[ImageSpec<'_>]) -> PathBuf {
    let work = dir.join("image");
    let rootfs = work.join("rootfs");
    let blobs = work.join("layout/blobs/sha256");
    fs::create_dir_all(&rootfs).unwrap();
    fs::create_dir_all(&blobs).unwrap();
    monocore_suite::populate_busybox_rootfs(&rootfs).unwrap();
    let layer = work.join("layer.tar");
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
            "-C",
        ])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg("."));
    let add = |bytes: &[u8]| -> (String, usize) {
        let file = work.join("blob");
        fs::write(&file, bytes).unwrap();
        let digest = sha256(&file);
        fs::rename(&file, blobs.join(&digest)).unwrap();
        (digest, bytes.len())
    };
    let (layer_digest, layer_size) = add(&fs::read(&layer).unwrap());
    let mut entries = Vec::new();
    for image in images {
        let cmd = serde_json::to_string(image.cmd).unwrap();
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":{cmd}}},"rootfs":{{"type":"layers","diff_ids":["sha256:{layer_digest}"]}}}}"#
        );
        let (config_digest, config_size) = add(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{config_digest}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{layer_digest}","size":{layer_size}}}]}}"#
        );
        let (manifest_digest, manifest_size) = add(manifest.as_bytes());
        entries.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{manifest_digest}","size":{manifest_size},"annotations":{{"io.containerd.image.name":"{}"}}}}"#,
            image.name
        ));
    }
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
        entries.join(",")
    );
    fs::write(work.join("layout/index.json"), index).unwrap();
    fs::write(
        work.join("layout/oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = work.join("image.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(work.join("layout"))
        .arg("-cf")
        .arg(&archive)
        .arg("."));
    archive
}

fn sha256(file: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(file));
    out.split_whitespace().next().unwrap().to_owned()
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
