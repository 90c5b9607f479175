//! Small helpers shared inside the crate.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_differ_within_a_process() {
        let names: std::collections::BTreeSet<String> =
            (0..1000).map(|_| unique_suffix()).collect();
        assert_eq!(names.len(), 1000);
    }
}
