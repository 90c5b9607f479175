//! Whiteouts: how a layer removes what lower layers put in the root
//! (`.wh.NAME` for one name, `.wh..wh..opq` for a directory's contents),
//! never what the layer itself wrote.

use std::{
    ffi::OsStr,
    os::{fd::OwnedFd, unix::ffi::OsStrExt},
};

use super::{EntryError, Layer, Unpacker, open_child_dir};
use crate::rootfs::inroot::{self, InRootPath};

impl Unpacker {
    /// `.wh.NAME`: removes what lower layers put at `NAME`.
    pub(super) fn whiteout(
        &self,
        path: &InRootPath,
        hidden: &[u8],
        layer: &Layer<'_>,
    ) -> Result<(), EntryError> {
        if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
            return Err(EntryError::Refused("a whiteout without a name".into()));
        }
        let hidden = OsStr::from_bytes(hidden);
        let target = InRootPath::clean(path.parent().as_os_str().as_bytes()).map_or_else(
            || InRootPath::clean(hidden.as_bytes()),
            |p| Some(p.join(hidden)),
        );
        if target.as_ref().is_some_and(|t| layer.written.contains(t)) {
            return Ok(());
        }
        match self.root.open_dir(&path.parent()) {
            Ok(dir) => Ok(inroot::remove_all_at(&dir, hidden)?),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// `DIR/.wh..wh..opq`: removes everything lower layers put in `DIR`.
    pub(super) fn opaque(&self, marker: &InRootPath, layer: &Layer<'_>) -> Result<(), EntryError> {
        let dir_path = marker.parent();
        let dir = match self.root.open_dir(&dir_path) {
            Ok(dir) => dir,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let base = InRootPath::clean(dir_path.as_os_str().as_bytes());
        self.clear_lower(&dir, base.as_ref(), layer)
    }

    /// Removes the entries of `dir` (at `path`, `None` for the root) that
    /// this layer did not write, keeping directories on the way to what it
    /// did.
    fn clear_lower(
        &self,
        dir: &OwnedFd,
        path: Option<&InRootPath>,
        layer: &Layer<'_>,
    ) -> Result<(), EntryError> {
        for name in inroot::list_dir(dir)? {
            let child = match path {
                Some(p) => p.join(&name),
                None => InRootPath::clean(name.as_bytes())
                    .ok_or_else(|| EntryError::Refused("a bad name".into()))?,
            };
            let keeps_something = layer.written.iter().any(|w| w.starts_with(&child));
            if !keeps_something {
                inroot::remove_all_at(dir, &name)?;
                continue;
            }
            let is_dir = inroot::stat_at(dir, &name)?.is_some_and(|s| {
                rustix::fs::FileType::from_raw_mode(s.st_mode) == rustix::fs::FileType::Directory
            });
            if is_dir {
                let sub = open_child_dir(dir, &name)?;
                self.clear_lower(&sub, Some(&child), layer)?;
            }
        }
        Ok(())
    }
}
