//! The cgroups under a root of a test's own, in every hierarchy (cgroup v1
//! controllers, v2): a pod's cgroup (kubelet's `cgroup_parent`) and its
//! containers' (the runtime's) go there, and are found, emptied and removed
//! from there.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// The mount points of the cgroup hierarchies (v1 controllers, v2).
pub fn cgroup_mounts() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            if fstype == "cgroup" || fstype == "cgroup2" {
                left.split(' ').nth(4).map(PathBuf::from)
            } else {
                None
            }
        })
        .collect()
}

/// The cgroups at or under `root` (a cgroup path such as `/name`), in any
/// hierarchy, as cgroup paths.
pub fn cgroup_dirs(root: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for mount in cgroup_mounts() {
        let mut stack = vec![mount.join(root.trim_start_matches('/'))];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let path = Path::new("/").join(dir.strip_prefix(&mount).unwrap());
            if !found.contains(&path) {
                found.push(path);
            }
            stack.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    found
}

/// The processes in the cgroups at or under `root`, in any hierarchy.
pub fn cgroup_procs(root: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for mount in cgroup_mounts() {
        for dir in cgroup_dirs(root) {
            let procs = mount
                .join(dir.strip_prefix("/").unwrap())
                .join("cgroup.procs");
            for pid in fs::read_to_string(procs)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.parse().ok())
            {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
    }
    pids
}

/// Removes the cgroups at or under `root`, deepest first, trying again
/// until `timeout` while some still hold a process that is ending.
pub fn remove_cgroups(root: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut dirs = cgroup_dirs(root);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in &dirs {
            for mount in cgroup_mounts() {
                let _ = fs::remove_dir(mount.join(dir.strip_prefix("/").unwrap()));
            }
        }
        if cgroup_dirs(root).is_empty() || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
