//! The docs point at code that exists: every `*.rs` path a Markdown file
//! names in backquotes is a file of this workspace, and every test that
//! SECURITY.md cites as evidence is a function somewhere in it. A file
//! moved or a test renamed without its doc fails here, with the doc's line.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    fs,
    path::{Path, PathBuf},
};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` whose name ends with one of `suffixes`, skipping
/// build output and hidden directories.
fn files_under(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    stack.push(path);
                }
            } else if suffixes.iter().any(|s| name.ends_with(s)) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The backquoted spans of `line`.
fn quoted(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// Whether `named` is the path of a workspace file, written from the
/// workspace root or from any directory in it (`runtime/krun.rs`,
/// `tests/cli.rs` in the CLI's row): the end of a path, whole components.
fn names_a_file(named: &str, sources: &[String]) -> bool {
    sources
        .iter()
        .any(|s| s == named || s.ends_with(&format!("/{named}")))
}

/// The `.rs` paths of `text` that no file has, as `line: path`.
fn missing_paths(text: &str, sources: &[String]) -> Vec<String> {
    let mut missing = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for span in quoted(line) {
            let path = span.split_whitespace().next().unwrap_or("");
            if path.ends_with(".rs") && !path.contains('*') && !names_a_file(path, sources) {
                missing.push(format!("{}: {path}", n + 1));
            }
        }
    }
    missing
}

fn relative_sources() -> Vec<String> {
    let root = workspace();
    files_under(&root, &[".rs"])
        .iter()
        .map(|p| {
            p.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn every_rust_path_a_doc_names_exists() {
    let sources = relative_sources();
    let mut missing = Vec::new();
    for doc in files_under(&workspace(), &[".md"]) {
        let text = fs::read_to_string(&doc).unwrap();
        for m in missing_paths(&text, &sources) {
            missing.push(format!("{}:{m}", doc.display()));
        }
    }
    assert!(
        missing.is_empty(),
        "docs name files that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_path_check_finds_a_moved_file() {
    let sources = vec!["monocore/src/runtime/krun.rs".to_owned()];
    let doc =
        "a `runtime/krun.rs` b\nc `vm/krun.rs` `CStrArray` `monocore/src/runtime/krun.rs` `un.rs`";
    assert_eq!(missing_paths(doc, &sources), ["2: vm/krun.rs", "2: un.rs"]);
}

/// The test names that SECURITY.md's "tests" column cites: the backquoted
/// snake_case names of its table rows' last cell, with three underscores
/// or more (fuzz targets and module names have fewer).
fn cited_tests(text: &str) -> Vec<(usize, String)> {
    let mut cited = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line.split(" | ").collect();
        if !line.starts_with('|') || cells.len() < 4 {
            continue;
        }
        let last = cells.last().unwrap();
        for span in quoted(last) {
            let name = span.rsplit("::").next().unwrap();
            let snake = name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if snake && name.matches('_').count() >= 3 && !name.contains('*') {
                cited.push((n + 1, name.to_owned()));
            }
        }
    }
    cited
}

#[test]
fn every_test_security_md_cites_exists() {
    let root = workspace();
    // Rust tests, and the Python package's pytest functions.
    let code: String = files_under(&root, &[".rs", ".py"])
        .iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .collect();
    let text = fs::read_to_string(root.join("SECURITY.md")).unwrap();
    let cited = cited_tests(&text);
    assert!(
        cited.len() > 40,
        "the citation reader found only {} tests",
        cited.len()
    );
    let missing: Vec<String> = cited
        .iter()
        .filter(|(_, name)| {
            !code.contains(&format!("fn {name}(")) && !code.contains(&format!("def {name}("))
        })
        .map(|(line, name)| format!("SECURITY.md:{line}: {name}"))
        .collect();
    assert!(
        missing.is_empty(),
        "SECURITY.md cites tests that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_citation_reader_takes_the_last_cell_only() {
    let doc =
        "| input | check | `not_a_cited_test_name` | `a_cited_test_name`, fuzz `control_host` |";
    assert_eq!(cited_tests(doc), [(1, "a_cited_test_name".to_owned())]);
}
