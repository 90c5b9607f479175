//! `monocore run IMAGE`, `monocore pull` and `monocore images` against a
//! real registry on 127.0.0.1 (see `tests/support/registry.rs`).

// Test code: a failed expectation should panic with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::Command;

use common::{monocore_in as monocore, private_cache};
use monocore::vm::MicroVmConfig;
use monocore_suite::{
    may_boot,
    oci::{Built, Image, Pusher, busybox_layer},
    output_of as run,
    registry::{TestRegistry, registry_for},
};
use serde_json::json;

/// A busybox image with a config to apply, pushed as `busybox:test`.
fn push_busybox(registry: &TestRegistry) -> Built {
    let built = Image::new(
        &[&busybox_layer().unwrap()],
        json!({
            "Cmd": ["/bin/sh", "-c", "echo from the image's Cmd"],
            "Env": ["PATH=/bin", "GREETING=from-image", "OTHER=kept"],
            "WorkingDir": "/tmp",
        }),
    )
    .build()
    .unwrap();
    Pusher::new(&registry.host(), None)
        .unwrap()
        .push("busybox", "test", &built)
        .unwrap();
    built
}

#[test]
fn run_dry_run_shows_the_image_config_under_the_flags() {
    let Some(registry) = registry_for("run_dry_run_shows_the_image_config_under_the_flags", None)
    else {
        return;
    };
    push_busybox(&registry);
    let cache = tempfile::tempdir().unwrap();
    let image = format!("localhost:{}/busybox:test", registry.port());
    let (code, out, err) = run(monocore(cache.path())
        .args(["run", "--dry-run", "-e", "GREETING=from-flag", &image])
        .args(["--", "/bin/echo", "hi"]));
    assert_eq!(code, 0, "{err}");
    let config: MicroVmConfig = serde_json::from_str(&out).unwrap();
    assert_eq!(config.exec_path.as_ref().unwrap().as_str(), "/bin/echo");
    assert_eq!(config.args, ["hi"]);
    let env: Vec<String> = config.env.iter().map(ToString::to_string).collect();
    assert_eq!(env, ["PATH=/bin", "OTHER=kept", "GREETING=from-flag"]);
    assert_eq!(config.workdir_path.as_ref().unwrap().as_str(), "/tmp");
    // The VM's private copy, in the cache's runs, removed when run ends.
    assert!(
        config.root_path.starts_with(cache.path().join("runs")),
        "{config:?}"
    );
    assert!(!config.root_path.exists());
    assert!(err.contains("downloaded"), "no progress lines: {err}");

    // Without a command: the image's Cmd; -w wins over WorkingDir.
    let (code, out, err) =
        run(monocore(cache.path()).args(["run", "--dry-run", "-w", "/", &image]));
    assert_eq!(code, 0, "{err}");
    let config: MicroVmConfig = serde_json::from_str(&out).unwrap();
    assert_eq!(config.exec_path.unwrap().as_str(), "/bin/sh");
    assert_eq!(config.args, ["-c", "echo from the image's Cmd"]);
    assert_eq!(config.workdir_path.unwrap().as_str(), "/");
    // Cached: the second run did not ask the registry.
    assert!(!err.contains("resolved"), "{err}");

    // An IMAGE and --root are exclusive; a bad reference is a clear error.
    let (code, _, err) = run(monocore(cache.path()).args(["run", "--root", "/", &image]));
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(monocore(cache.path()).args(["run", "--dry-run", "Bad/Image"]));
    assert_eq!(code, 125);
    assert!(
        err.contains("invalid image reference \"Bad/Image\""),
        "{err}"
    );
}

#[test]
fn run_boots_an_image_with_its_config() {
    let test = "run_boots_an_image_with_its_config";
    let Some(registry) = registry_for(test, None) else {
        return;
    };
    if !may_boot(test) {
        return;
    }
    push_busybox(&registry);
    // A private image cache, with the host's compat kernel (on kvm_pvm hosts).
    let cache = private_cache();
    let image = format!("localhost:{}/busybox:test", registry.port());
    let (code, out, err) = run(monocore(cache.path())
        .args(["run", "--ram", "128", &image, "--"])
        .args(["/bin/echo", "hi"]));
    assert_eq!((code, out.trim()), (0, "hi"), "stderr: {err}");
    // The image's Env and WorkingDir reach the guest.
    let (code, out, err) = run(monocore(cache.path())
        .args(["run", "--ram", "128", &image, "--"])
        .args(["sh", "-c", "echo $GREETING $(pwd)"]));
    assert_eq!((code, out.trim()), (0, "from-image /tmp"), "stderr: {err}");
    // Nothing of the runs is left behind.
    let runs = cache.path().join("runs");
    let left: Vec<_> = std::fs::read_dir(&runs).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn pull_images_rm_and_prune() {
    let Some(registry) = registry_for("pull_images_rm_and_prune", None) else {
        return;
    };
    let built = push_busybox(&registry);
    let cache = tempfile::tempdir().unwrap();
    let image = format!("{}/busybox:test", registry.host());
    let (code, out, err) = run(monocore(cache.path()).args(["pull", &image]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("{image}: {}", built.manifest_digest)),
        "{out}"
    );
    // Not a terminal: plain lines, one per step.
    assert!(
        err.contains("resolved")
            && err.contains("downloaded")
            && err.contains("unpacking layer 1/1"),
        "{err}"
    );
    assert!(!err.contains('\r'), "{err:?}");

    let (code, out, _) = run(monocore(cache.path()).args(["images"]));
    assert_eq!(code, 0);
    let line = out
        .lines()
        .find(|l| l.starts_with(&image))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains(&format!("sha256:{}", &built.config_digest[7..19])),
        "{line}"
    );
    assert!(line.contains(" MB"), "sizes: {line}");
    assert!(out.contains("1 image(s) in"), "{out}");

    let (code, out, err) = run(monocore(cache.path()).args(["images", "rm", &image]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("removed {image}")) && out.contains("freed"),
        "{out}"
    );
    let (code, _, err) = run(monocore(cache.path()).args(["images", "rm", &image]));
    assert_eq!(code, 125);
    assert!(err.contains("is not in the cache"), "{err}");
    let (code, out, _) = run(monocore(cache.path()).args(["images", "prune"]));
    assert_eq!((code, out.trim()), (0, "freed 0 B"));
}

#[test]
fn four_parallel_pull_processes_download_once() {
    let Some(registry) = registry_for("four_parallel_pull_processes_download_once", None) else {
        return;
    };
    let built = push_busybox(&registry);
    let cache = tempfile::tempdir().unwrap();
    let image = format!("{}/busybox:test", registry.host());
    let children: Vec<_> = (0..4)
        .map(|_| {
            monocore(cache.path())
                .args(["pull", &image])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for digest in built.layer_digests.iter().chain([&built.config_digest]) {
        assert_eq!(registry.blob_gets(digest), 1, "{digest}");
    }
    let rootfs: Vec<_> = std::fs::read_dir(cache.path().join("images/rootfs"))
        .unwrap()
        .collect();
    assert_eq!(rootfs.len(), 1);
}

#[test]
fn pull_on_a_terminal_redraws_a_progress_line_per_layer() {
    let Some(registry) = registry_for("pull_on_a_terminal_redraws_a_progress_line_per_layer", None)
    else {
        return;
    };
    let built = push_busybox(&registry);
    let cache = tempfile::tempdir().unwrap();
    let image = format!("{}/busybox:test", registry.host());
    // `script` (util-linux) runs the command on a pseudo-terminal.
    let command = format!("{} pull {image}", env!("CARGO_BIN_EXE_monocore"));
    let (code, out, err) = run(Command::new("script")
        .env("MONOCORE_CACHE_DIR", cache.path())
        .env("DOCKER_CONFIG", cache.path().join("no-docker-config"))
        .args(["-qec", &command, "/dev/null"]));
    assert_eq!(code, 0, "{out}{err}");
    let layer = &built.layer_digests[0][7..19];
    // Bytes and rate, redrawn in place, then the layer's final line.
    assert!(out.contains(&format!("\r\x1b[K{layer}: ")), "{out:?}");
    assert!(out.contains("/s)"), "{out:?}");
    assert!(out.contains(&format!("{layer}: downloaded")), "{out:?}");
}
