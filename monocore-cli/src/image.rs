//! `monocore pull`, `monocore images` and the image side of `monocore run`.

use crate::output::{note, outln};
use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use clap::{Args, Subcommand};
use monocore::{
    MonocoreError,
    image::{
        self, Credentials, Digest, ImageRecord, ImageRootfs, Progress, PullEvent, PullOptions,
        PullPolicy, RunOverrides,
    },
    vm::MicroVmConfig,
};

/// How to reach a registry (for `run IMAGE` and `pull`).
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct RegistryFlags {
    /// Credentials for the image's registry. Without it, those of
    /// ~/.docker/config.json ($DOCKER_CONFIG/config.json) for that registry,
    /// else anonymous.
    #[arg(long, value_name = "USER:PASSWORD")]
    registry_auth: Option<String>,

    /// Reach this registry (HOST[:PORT], as in the image reference) over
    /// plain HTTP (repeatable). Loopback registries (localhost, 127.0.0.0/8,
    /// [::1]) always are; every other one is reached over HTTPS.
    #[arg(long, value_name = "HOST[:PORT]")]
    insecure_registry: Vec<String>,
}

/// The image flags of `monocore run`.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct RunImageFlags {
    /// Replace the image's Entrypoint (an empty string clears it); CMD
    /// then replaces its Cmd.
    #[arg(long, value_name = "PROGRAM")]
    pub(crate) entrypoint: Option<String>,

    /// Ask the registry even when the image is cached.
    #[arg(long)]
    pub(crate) pull: bool,

    #[command(flatten)]
    registry: RegistryFlags,
}

/// `monocore pull IMAGE`.
#[derive(Args, Debug)]
pub(crate) struct PullArgs {
    /// The image: `alpine:3.20`, `ghcr.io/org/app@sha256:…`,
    /// `localhost:5000/x:y`. Docker Hub is the default registry.
    image: String,

    #[command(flatten)]
    registry: RegistryFlags,
}

/// `monocore images [rm IMAGE... | prune]`.
#[derive(Args, Debug)]
pub(crate) struct ImagesArgs {
    #[command(subcommand)]
    command: Option<ImagesCommand>,
}

#[derive(Subcommand, Debug)]
enum ImagesCommand {
    /// List cached images with their sizes (the default).
    Ls,
    /// Forget images, then free what no other image uses.
    Rm {
        /// The images.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Free every blob and root no cached image uses, and what interrupted
    /// pulls left.
    Prune,
}

fn options(flags: &RegistryFlags, policy: PullPolicy) -> Result<PullOptions, MonocoreError> {
    let credentials = flags
        .registry_auth
        .as_deref()
        .map(str::parse::<Credentials>)
        .transpose()?;
    Ok(PullOptions {
        policy,
        credentials,
        insecure_registries: flags.insecure_registry.clone(),
        progress: Some(Arc::new(Display::new())),
        ..PullOptions::default()
    })
}

/// `monocore pull`.
pub(crate) fn pull(args: &PullArgs) -> ExitCode {
    let result = options(&args.registry, PullPolicy::Always)
        .and_then(|options| image::pull_image(&args.image, &options));
    match result {
        Ok(image) => {
            let record = image.record();
            let report = image.report();
            outln!(
                "{}: {} ({} layers, {} downloaded, {} unpacked)",
                record.reference,
                record.manifest_digest,
                record.layers.len(),
                human(report.downloaded_bytes),
                human(record.unpacked_bytes)
            );
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&e),
    }
}

/// The private root of `monocore run IMAGE`: pulled if not cached.
pub(crate) fn run_rootfs(
    reference: &str,
    flags: &RunImageFlags,
) -> Result<ImageRootfs, MonocoreError> {
    let policy = if flags.pull {
        PullPolicy::Always
    } else {
        PullPolicy::Missing
    };
    image::pull(reference, &options(&flags.registry, policy)?)
}

/// Puts the image's run defaults under what the command line set.
pub(crate) fn apply(
    rootfs: &ImageRootfs,
    flags: &RunImageFlags,
    config: &mut MicroVmConfig,
) -> Result<(), MonocoreError> {
    let overrides = RunOverrides {
        entrypoint: flags.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        }),
    };
    let reference = rootfs.record().reference.clone();
    rootfs.config().apply(config, &overrides, &reference)?;
    if let Some(user) = &rootfs.config().user {
        note!(
            "monocore: note: image {reference} asks for user {user:?}; the command runs as root in the VM"
        );
    }
    Ok(())
}

/// `monocore images`.
pub(crate) fn images(args: &ImagesArgs) -> ExitCode {
    let options = PullOptions::default();
    let result = match &args.command {
        None | Some(ImagesCommand::Ls) => {
            image::list(&options).map(|records| list(&records, &options))
        }
        Some(ImagesCommand::Rm { images }) => remove(images, &options),
        Some(ImagesCommand::Prune) => image::prune(&options).map(|freed| {
            outln!("freed {}", human(freed));
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(&e),
    }
}

fn remove(images: &[String], options: &PullOptions) -> Result<(), MonocoreError> {
    let mut freed = 0;
    for reference in images {
        let (known, bytes) = image::remove(reference, options)?;
        freed += bytes;
        if !known {
            return Err(image::ImageError::NotCached(reference.clone()).into());
        }
        outln!("removed {reference}");
    }
    outln!("freed {}", human(freed));
    Ok(())
}

fn list(records: &[ImageRecord], options: &PullOptions) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    outln!(
        "{:<48} {:<19} {:<13} {:>10} {:>10}  PULLED",
        "REFERENCE",
        "IMAGE ID",
        "PLATFORM",
        "COMPRESSED",
        "UNPACKED"
    );
    for r in records {
        outln!(
            "{:<48} sha256:{:<12} {:<13} {:>10} {:>10}  {}",
            r.reference,
            r.config_digest.short(),
            r.platform,
            human(r.compressed_bytes()),
            human(r.unpacked_bytes),
            age(now.saturating_sub(r.pulled_at))
        );
    }
    outln!(
        "{} image(s) in {}",
        records.len(),
        options.cache_dir().display()
    );
}

fn age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86400),
    }
}

/// Bytes in decimal units, as registries and docker show them.
pub(crate) fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.2} GB", b / 1e9),
    }
}

/// Pull progress: on a terminal, one line per layer redrawn with bytes and
/// rate; otherwise plain lines, one per step.
struct Display {
    tty: bool,
    /// `--quiet`: nothing at all.
    quiet: bool,
    state: Mutex<DisplayState>,
}

struct DisplayState {
    /// The layer being downloaded, when it started, and when the line was
    /// last drawn.
    current: Option<(Digest, Instant, Option<Instant>)>,
}

impl Display {
    fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            quiet: !crate::output::chatty(),
            state: Mutex::new(DisplayState { current: None }),
        }
    }
}

impl Progress for Display {
    fn event(&self, event: PullEvent<'_>) {
        if self.quiet {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let mut err = std::io::stderr().lock();
        let _ = match event {
            PullEvent::Resolved { manifest, layers } => {
                writeln!(err, "resolved {manifest}: {layers} layer(s)")
            }
            PullEvent::Waiting { digest } => {
                writeln!(err, "{}: waiting for another pull", digest.short())
            }
            PullEvent::Cached { digest, size } => {
                writeln!(err, "{}: cached ({})", digest.short(), human(size))
            }
            PullEvent::Downloading {
                digest,
                done,
                total,
            } => {
                let now = Instant::now();
                let fresh = !matches!(&state.current, Some((d, _, _)) if d == digest);
                if fresh {
                    if !self.tty {
                        let _ = writeln!(err, "{}: downloading {}", digest.short(), human(total));
                    }
                    state.current = Some((digest.clone(), now, None));
                }
                let Some((_, start, drawn)) = &mut state.current else {
                    return;
                };
                let due =
                    drawn.is_none_or(|at| now.duration_since(at) >= Duration::from_millis(100));
                if !self.tty || !due {
                    return;
                }
                *drawn = Some(now);
                let secs = now.duration_since(*start).as_secs_f64().max(1e-3);
                write!(
                    err,
                    "\r\x1b[K{}: {} / {} ({}/s)",
                    digest.short(),
                    human(done),
                    human(total),
                    human((done as f64 / secs) as u64)
                )
            }
            PullEvent::Downloaded { digest, size } => {
                let secs = state
                    .current
                    .take()
                    .map_or(0.0, |(_, start, _)| start.elapsed().as_secs_f64());
                let clear = if self.tty { "\r\x1b[K" } else { "" };
                writeln!(
                    err,
                    "{clear}{}: downloaded {} in {secs:.1} s ({}/s)",
                    digest.short(),
                    human(size),
                    human((size as f64 / secs.max(1e-3)) as u64)
                )
            }
            PullEvent::Unpacking {
                digest,
                index,
                count,
            } => {
                writeln!(
                    err,
                    "{}: unpacking layer {}/{count}",
                    digest.short(),
                    index + 1
                )
            }
            _ => Ok(()),
        };
    }
}
