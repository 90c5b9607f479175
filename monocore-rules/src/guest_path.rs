//! Guest path rules: normalization without touching the filesystem, and the
//! O(n log n) overlap check for virtio-fs mount points.

use core::cmp::Ordering;

use crate::limits::MAX_PATH_LEN;

/// Why a guest path was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestPathError {
    /// The path is empty.
    #[error("guest path is empty")]
    Empty,
    /// The path does not start with `/`.
    #[error("guest path `{0}` is not absolute: it must start with `/`")]
    NotAbsolute(String),
    /// A `..` component climbs above `/`.
    #[error("guest path `{0}` climbs above `/` with `..`")]
    EscapesRoot(String),
    /// The path contains a NUL byte.
    #[error("guest path {0:?} contains a NUL byte")]
    ContainsNul(String),
    /// The path is longer than [`MAX_PATH_LEN`].
    #[error("guest path is {0} bytes long: at most {MAX_PATH_LEN} are allowed")]
    TooLong(usize),
    /// A mapped directory would be mounted over the guest's `/`.
    #[error("guest path `{0}` is the root: a mapped directory cannot be mounted over `/`")]
    IsRoot(String),
}

/// Normalizes an absolute guest path lexically: collapses repeated `/`,
/// removes `.` components and a trailing `/`, and resolves `..`.
///
/// Unlike `typed_path`'s `normalize()`, a `..` that would climb above `/` is an
/// error instead of being silently dropped.
///
/// ```
/// use monocore_rules::{normalize_guest_path, GuestPathError};
/// assert_eq!(normalize_guest_path("/app/./data//x/../").unwrap(), "/app/data");
/// assert!(matches!(normalize_guest_path("/../etc"), Err(GuestPathError::EscapesRoot(_))));
/// assert!(matches!(normalize_guest_path("app"), Err(GuestPathError::NotAbsolute(_))));
/// ```
pub fn normalize_guest_path(path: &str) -> Result<String, GuestPathError> {
    if path.is_empty() {
        return Err(GuestPathError::Empty);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(GuestPathError::TooLong(path.len()));
    }
    if path.contains('\0') {
        return Err(GuestPathError::ContainsNul(path.to_owned()));
    }
    if !path.starts_with('/') {
        return Err(GuestPathError::NotAbsolute(path.to_owned()));
    }
    let mut parts: Vec<&str> = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(GuestPathError::EscapesRoot(path.to_owned()));
                }
            }
            other => parts.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    if parts.is_empty() {
        out.push('/');
    }
    for part in parts {
        out.push('/');
        out.push_str(part);
    }
    Ok(out)
}

/// Normalizes a virtio-fs mount point: a guest path as for
/// [`normalize_guest_path`] that is not `/` itself.
pub fn normalize_mount_point(path: &str) -> Result<String, GuestPathError> {
    let normalized = normalize_guest_path(path)?;
    if normalized == "/" {
        return Err(GuestPathError::IsRoot(path.to_owned()));
    }
    Ok(normalized)
}

/// Whether two *normalized* guest paths overlap: they are equal, or one is a
/// component-wise prefix of the other (`/app` and `/app/data`, but not `/app`
/// and `/apple`).
pub fn paths_overlap(a: &str, b: &str) -> bool {
    fn is_component_prefix(prefix: &str, path: &str) -> bool {
        prefix == "/"
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
    is_component_prefix(a, b) || is_component_prefix(b, a)
}

/// Orders normalized paths component by component: `/` sorts before every
/// other byte, so a path sorts right before the paths below it
/// (`/app` < `/app/data` < `/app-x`).
fn component_order(a: &str, b: &str) -> Ordering {
    let key = |byte: u8| if byte == b'/' { 0 } else { byte };
    a.bytes().map(key).cmp(b.bytes().map(key))
}

/// Finds two overlapping paths among *normalized* guest paths, in
/// O(n log n): sort component-wise, then compare neighbours.
///
/// If `p` is a component-wise prefix of `q`, every path that sorts between
/// them also lies below `p`, so some pair of neighbours overlaps whenever any
/// pair does. Returns the original indices `(i, j)` with `i < j`.
///
/// ```
/// use monocore_rules::find_overlap;
/// assert_eq!(find_overlap(&["/data", "/app", "/apple", "/app/x"]), Some((1, 3)));
/// assert_eq!(find_overlap(&["/data", "/app", "/apple"]), None);
/// ```
pub fn find_overlap<S: AsRef<str>>(paths: &[S]) -> Option<(usize, usize)> {
    let mut order: Vec<(usize, &str)> = paths.iter().map(|p| p.as_ref()).enumerate().collect();
    order.sort_unstable_by(|a, b| component_order(a.1, b.1).then(a.0.cmp(&b.0)));
    order.windows(2).find_map(|pair| match pair {
        [(i, a), (j, b)] if paths_overlap(a, b) => Some(((*i).min(*j), (*i).max(*j))),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalization_collapses_dots_and_slashes() {
        assert_eq!(normalize_guest_path("/").unwrap(), "/");
        assert_eq!(normalize_guest_path("//").unwrap(), "/");
        assert_eq!(normalize_guest_path("/a/./b/").unwrap(), "/a/b");
        assert_eq!(normalize_guest_path("/a//b").unwrap(), "/a/b");
        assert_eq!(normalize_guest_path("/a/b/..").unwrap(), "/a");
        assert_eq!(normalize_guest_path("/a/..").unwrap(), "/");
        assert_eq!(normalize_guest_path("/a/...").unwrap(), "/a/...");
    }

    #[test]
    fn dotdot_above_root_is_an_error_not_dropped() {
        assert_eq!(
            normalize_guest_path("/.."),
            Err(GuestPathError::EscapesRoot("/..".into()))
        );
        assert_eq!(
            normalize_guest_path("/a/../../etc"),
            Err(GuestPathError::EscapesRoot("/a/../../etc".into()))
        );
    }

    #[test]
    fn relative_empty_nul_and_long_paths_are_rejected() {
        assert_eq!(normalize_guest_path(""), Err(GuestPathError::Empty));
        assert_eq!(
            normalize_guest_path("data"),
            Err(GuestPathError::NotAbsolute("data".into()))
        );
        assert_eq!(
            normalize_guest_path("/a\0b"),
            Err(GuestPathError::ContainsNul("/a\0b".into()))
        );
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert_eq!(
            normalize_guest_path(&long),
            Err(GuestPathError::TooLong(long.len()))
        );
    }

    #[test]
    fn mount_point_cannot_be_root() {
        assert_eq!(
            normalize_mount_point("/a/.."),
            Err(GuestPathError::IsRoot("/a/..".into()))
        );
        assert_eq!(normalize_mount_point("/a").unwrap(), "/a");
    }

    #[test]
    fn overlap_is_component_wise() {
        assert!(paths_overlap("/app", "/app"));
        assert!(paths_overlap("/app", "/app/data"));
        assert!(paths_overlap("/app/data", "/app"));
        assert!(!paths_overlap("/app", "/apple"));
        assert!(!paths_overlap("/app-x", "/app/x"));
        assert!(paths_overlap("/", "/anything"));
    }

    #[test]
    fn find_overlap_sees_prefixes_hidden_behind_sibling_names() {
        // Plain byte order would put `/app-x` between `/app` and `/app/data`.
        assert_eq!(find_overlap(&["/app/data", "/app-x", "/app"]), Some((0, 2)));
        assert_eq!(find_overlap(&["/a", "/b", "/a"]), Some((0, 2)));
        assert_eq!(find_overlap::<&str>(&[]), None);
        assert_eq!(find_overlap(&["/only"]), None);
        assert_eq!(find_overlap(&["/var/log", "/var", "/etc"]), Some((0, 1)));
    }

    fn reference_overlap(paths: &[String]) -> bool {
        paths
            .iter()
            .enumerate()
            .any(|(i, a)| paths.iter().skip(i + 1).any(|b| paths_overlap(a, b)))
    }

    proptest! {
        #[test]
        fn find_overlap_agrees_with_pairwise_reference(
            raw in proptest::collection::vec("(/[ab.-]{1,3}){1,4}", 0..12)
        ) {
            let paths: Vec<String> = raw.iter().filter_map(|p| normalize_guest_path(p).ok()).collect();
            let found = find_overlap(&paths);
            prop_assert_eq!(found.is_some(), reference_overlap(&paths));
            if let Some((i, j)) = found {
                prop_assert!(i < j);
                prop_assert!(paths_overlap(&paths[i], &paths[j]));
            }
        }

        #[test]
        fn normalization_is_idempotent(raw in "(/[a.]{0,3}){1,6}") {
            if let Ok(once) = normalize_guest_path(&raw) {
                prop_assert_eq!(normalize_guest_path(&once), Ok(once.clone()));
                prop_assert!(!once.contains("//"));
                prop_assert!(once == "/" || !once.ends_with('/'));
            }
        }
    }
}
