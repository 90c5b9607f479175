//! Small helpers shared inside the crate, below every other module: they
//! use nothing of the crate.

use std::{
    hash::{BuildHasher, RandomState},
    sync::atomic::{AtomicU64, Ordering},
};

/// A file-name suffix no other process or thread will pick, and that another
/// local user cannot predict: a randomly keyed hash of the pid, the time and
/// a per-process counter (the counter makes it unique within the process).
pub(crate) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().hash_one((std::process::id(), std::time::SystemTime::now(), n));
    format!("{random:016x}-{n}")
}

/// `strerror`-like text for an errno.
pub(crate) fn errno_description(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // std appends " (os error N)"; keep only the description.
    match text.rfind(" (os error") {
        Some(end) => text.get(..end).unwrap_or(&text).to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_differ_within_a_process() {
        let names: std::collections::BTreeSet<String> =
            (0..1000).map(|_| unique_suffix()).collect();
        assert_eq!(names.len(), 1000);
    }

    #[test]
    fn an_errno_is_described_without_its_number() {
        assert_eq!(errno_description(libc::ENOENT), "No such file or directory");
    }
}
