//! `monocore cp`: files in and out of a VM kept by `run --keep`, in the
//! shape of `docker cp` and `kubectl cp`: one operand is `ID:PATH` (a path
//! in the VM), the other a host path.

use std::{
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::Args;
use monocore::{
    MonocoreError,
    vm::{GuestFileError, GuestFileKind, RunningVm},
};

use crate::{fail, output::errln, output::note};

/// Exit code of a command line that names no VM path, or two.
const EXIT_USAGE: u8 = 2;

/// `monocore cp`.
#[derive(Args, Debug)]
pub(crate) struct CpArgs {
    /// What to copy: `ID:PATH` (an absolute path in the VM whose ID, or its
    /// first 4 or more characters, `monocore ps` shows) or a host path.
    #[arg(value_name = "SRC", value_parser = operand)]
    src: Operand,

    /// Where to: `ID:PATH` or a host path (the other side from SRC).
    #[arg(value_name = "DST", value_parser = operand)]
    dst: Operand,
}

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operand {
    Host(PathBuf),
    Guest { id: String, path: PathBuf },
}

/// `ID:PATH` when there is a colon before any `/` (as `docker cp` reads
/// it: a host path with a colon can be written `./a:b`), else a host path.
fn operand(word: &str) -> Result<Operand, String> {
    match word.split_once(':') {
        Some((id, path)) if !id.is_empty() && !id.contains('/') => {
            if !path.starts_with('/') {
                return Err(format!(
                    "the path in the VM must be absolute: write {id}:/{path}"
                ));
            }
            Ok(Operand::Guest {
                id: id.to_owned(),
                path: PathBuf::from(path),
            })
        }
        _ if word.is_empty() => Err("an empty path".to_owned()),
        _ => Ok(Operand::Host(PathBuf::from(word))),
    }
}

/// Whether `path` ends in `/.`: its contents are copied, not itself.
fn contents_only(path: &Path) -> bool {
    path.as_os_str().as_bytes().ends_with(b"/.")
}

/// Where a copy of `src` goes when its destination `dst` is an existing
/// directory (`is_dir`): inside it, under `src`'s name, unless `src` ends
/// in `/.` or has no name (`/`).
fn into_dir(src: &Path, dst: &Path, is_dir: bool) -> PathBuf {
    match src.file_name() {
        Some(name) if is_dir && !contents_only(src) => dst.join(name),
        _ => dst.to_path_buf(),
    }
}

/// Copies a file or a tree between the host and a running VM.
pub(crate) fn cp(args: CpArgs) -> ExitCode {
    let copied = match (args.src, args.dst) {
        (Operand::Host(src), Operand::Guest { id, path }) => copy_in(&src, &id, &path),
        (Operand::Guest { id, path }, Operand::Host(dst)) => copy_out(&id, &path, &dst),
        (Operand::Host(_), Operand::Host(_)) => {
            errln!("error: SRC or DST must be ID:PATH, a path in a VM (see `monocore ps`)");
            return ExitCode::from(EXIT_USAGE);
        }
        (Operand::Guest { .. }, Operand::Guest { .. }) => {
            errln!("error: SRC and DST are both in a VM: copy to the host, then from it");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match copied {
        Ok((summary, to)) => {
            note!(
                "monocore: copied {} bytes ({} files, {} directories, {} symlinks) to {to}",
                summary.bytes,
                summary.files,
                summary.dirs,
                summary.symlinks
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

type Copied = Result<(monocore::vm::CopySummary, String), MonocoreError>;

fn copy_in(src: &Path, id: &str, path: &Path) -> Copied {
    let vm = RunningVm::find(id)?;
    let is_dir = match vm.files().symlink_metadata(path) {
        Ok(meta) => meta.kind == GuestFileKind::Dir,
        Err(MonocoreError::GuestFile(GuestFileError::Guest { errno, .. }))
            if errno == libc::ENOENT =>
        {
            false
        }
        Err(e) => return Err(e),
    };
    let dst = into_dir(src, path, is_dir);
    let summary = vm.files().copy_in(src, &dst)?;
    Ok((summary, format!("{}:{}", vm.id(), dst.display())))
}

fn copy_out(id: &str, path: &Path, dst: &Path) -> Copied {
    let vm = RunningVm::find(id)?;
    let dst = into_dir(path, dst, dst.is_dir());
    let summary = vm.files().copy_out(path, &dst)?;
    Ok((summary, dst.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operands_are_vm_paths_when_a_colon_comes_before_any_slash() {
        assert_eq!(
            operand("b651:/etc/hosts"),
            Ok(Operand::Guest {
                id: "b651".into(),
                path: "/etc/hosts".into()
            })
        );
        assert_eq!(operand("./a:b"), Ok(Operand::Host("./a:b".into())));
        assert_eq!(operand("/x/y:z"), Ok(Operand::Host("/x/y:z".into())));
        assert_eq!(operand("plain"), Ok(Operand::Host("plain".into())));
        assert_eq!(
            operand("b651:etc"),
            Err("the path in the VM must be absolute: write b651:/etc".to_owned())
        );
    }

    #[test]
    fn an_existing_directory_receives_the_source_under_its_name() {
        let p = Path::new;
        assert_eq!(into_dir(p("src"), p("/tmp"), true), p("/tmp/src"));
        assert_eq!(into_dir(p("/a/f.txt"), p("out"), false), p("out"));
        assert_eq!(into_dir(p("src/."), p("/tmp"), true), p("/tmp"));
        assert_eq!(into_dir(p("/"), p("out"), true), p("out"));
    }
}
