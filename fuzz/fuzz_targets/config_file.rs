//! The TOML config loader, `parse_config(text, base_dir)`, on arbitrary text:
//!
//! * it never panics;
//! * an error list is non-empty, sorted, and every error's line and column
//!   are 1-based and inside the text;
//! * an accepted config passes `validate_values` and `validate` (the loader
//!   runs every check), and survives the helper's JSON config channel.
#![no_main]

use std::{path::PathBuf, sync::OnceLock};

use libfuzzer_sys::fuzz_target;
use monocore::{config::file::parse_config, vm::MicroVmConfig};

/// A base directory holding `rootfs/` and `data/`, so that `root = "rootfs"`
/// and `mapped_dirs = ["data:/data"]` can be accepted.
fn base_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("monocore-fuzz-config-{}", std::process::id()));
        for sub in ["rootfs", "data"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create the fuzz base dir");
        }
        dir
    })
}

fuzz_target!(|text: &str| {
    let base = base_dir();
    match parse_config(text, base) {
        Ok(config) => {
            assert!(config.validate_values().is_ok(), "{text:?}: {config:?}");
            assert!(config.validate().is_ok(), "{text:?}: {config:?}");
            let json = serde_json::to_string(&config).expect("serialize");
            let back: MicroVmConfig = serde_json::from_str(&json).expect("JSON round-trip");
            assert_eq!(back, config);
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "{text:?}: empty error list");
            let lines: Vec<&str> = text.split('\n').collect();
            for e in &errors.0 {
                assert!(e.line >= 1 && e.column >= 1, "{text:?}: {e:?}");
                let line = lines.get(e.line - 1).unwrap_or_else(|| {
                    panic!("{text:?}: line {} of {}: {e:?}", e.line, lines.len())
                });
                assert!(
                    e.column <= line.chars().count() + 1,
                    "{text:?}: column {} past the end of {line:?}: {e:?}",
                    e.column
                );
                assert!(!e.message.is_empty());
            }
            assert!(
                errors
                    .0
                    .windows(2)
                    .all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column)),
                "{text:?}: unsorted {errors:?}"
            );
        }
    }
});
