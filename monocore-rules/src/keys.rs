//! The config keys as people type them: whether a word is a key, and the
//! "did you mean" hint for one that is not.
//!
//! The keys themselves are [`Field`]'s table (each key, the
//! `MicroVmConfig` field it sets, whether it is required): this module
//! reads them from there, so the `vm!` macro, the TOML loader and the
//! command line's `--dry-run` JSON, which all take their keys from
//! [`Field`], accept the same keys and give the same hints. (`vm!` also
//! takes `image`, its own alternative to `root`, which is no config field.)

use crate::Field;

/// The keys that must be present, in config order.
pub fn required_keys() -> impl Iterator<Item = &'static str> {
    Field::required_fields().map(Field::key)
}

/// Whether `key` is a config key.
pub fn is_key(key: &str) -> bool {
    Field::from_key(key).is_some()
}

/// Other names people reach for, and the key they mean.
pub const ALIASES: [(&str, &str); 15] = [
    ("memory", "ram"),
    ("mem", "ram"),
    ("cpus", "vcpus"),
    ("command", "exec"),
    ("cmd", "exec"),
    ("volumes", "mapped_dirs"),
    ("ports", "port_map"),
    ("environment", "env"),
    ("rootfs", "root"),
    ("cwd", "workdir"),
    ("log", "log_level"),
    ("ipv4", "ip"),
    ("network", "net"),
    ("egress", "allow"),
    ("allowlist", "allow"),
];

/// The closest of `candidates` to `word`, if it is close enough to be a typo:
/// at most two edits, and fewer edits than the candidate has characters.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, c)| d <= 2 && d < c.chars().count())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// The key an unknown `key` most likely means, for "did you mean …?" hints:
/// the key of a `MicroVmConfig` field name (`ram_mib` → `ram`), of an alias
/// (`memory` → `ram`), or the closest key by edit distance (`rma` → `ram`).
///
/// ```
/// use monocore_rules::keys::suggest_key;
/// assert_eq!(suggest_key("rma"), Some("ram"));
/// assert_eq!(suggest_key("ram_mib"), Some("ram"));
/// assert_eq!(suggest_key("memory"), Some("ram"));
/// assert_eq!(suggest_key("zzzzzz"), None);
/// ```
pub fn suggest_key(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    Field::ALL
        .into_iter()
        .find(|f| f.field_name() == lower)
        .map(Field::key)
        .or_else(|| {
            ALIASES
                .iter()
                .find(|(alias, _)| *alias == lower)
                .map(|(_, k)| *k)
        })
        .or_else(|| closest(&lower, Field::ALL.map(Field::key)))
}

/// The message for an unknown key: a "did you mean" hint, or the list of keys.
///
/// ```
/// use monocore_rules::keys::unknown_key_message;
/// assert_eq!(unknown_key_message("rma"), "unknown key `rma`: did you mean `ram`?");
/// ```
pub fn unknown_key_message(key: &str) -> String {
    match suggest_key(key) {
        Some(k) => format!("unknown key `{key}`: did you mean `{k}`?"),
        None => {
            let all: Vec<String> = Field::ALL.iter().map(|f| format!("`{f}`")).collect();
            format!("unknown key `{key}`: expected one of {}", all.join(", "))
        }
    }
}

/// Edit distance (optimal string alignment: insertions, deletions,
/// substitutions and adjacent transpositions each cost 1) over chars, in
/// O(len(a) * len(b)) time and O(len(a) + len(b)) space.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut before: Vec<usize> = vec![0; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut cur: Vec<usize> = vec![0; width];
    for i in 1..=a.len() {
        if let Some(first) = cur.first_mut() {
            *first = i;
        }
        for j in 1..width {
            let at = |row: &Vec<usize>, k: usize| row.get(k).copied().unwrap_or(usize::MAX / 2);
            let (ca, cb) = (a.get(i - 1), b.get(j - 1));
            let cost = usize::from(ca != cb);
            let mut value = (at(&prev, j - 1) + cost)
                .min(at(&prev, j) + 1)
                .min(at(&cur, j - 1) + 1);
            if i > 1 && j > 1 && ca == b.get(j - 2) && a.get(i - 2) == cb {
                value = value.min(at(&before, j - 2) + 1);
            }
            if let Some(slot) = cur.get_mut(j) {
                *slot = value;
            }
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("ram", "ram"), 0);
        assert_eq!(edit_distance("rma", "ram"), 1);
        assert_eq!(edit_distance("roto", "root"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest_key("roto"), Some("root"));
        assert_eq!(suggest_key("vcpu"), Some("vcpus"));
        assert_eq!(suggest_key("mapped_dir"), Some("mapped_dirs"));
        assert_eq!(suggest_key("exec_path"), Some("exec"));
        assert_eq!(suggest_key("completely_different"), None);
        assert_eq!(suggest_key("portmap"), Some("port_map"));
        assert_eq!(suggest_key("network"), Some("net"));
        assert_eq!(suggest_key("alow"), Some("allow"));
        assert_eq!(suggest_key("x"), None);
        assert_eq!(suggest_key("banana"), None);
        assert_eq!(required_keys().collect::<Vec<_>>(), ["root", "ram"]);
        assert!(is_key("ip") && !is_key("ram_mib"));
        assert!(
            ALIASES
                .iter()
                .all(|(alias, key)| is_key(key) && !is_key(alias))
        );
    }
}
