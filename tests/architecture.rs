//! The architecture the README's "Workspace layout" draws, checked: the
//! `monocore` library's top-level modules form layers, and each uses only
//! the layers below it (so there is no import cycle); the library's source
//! files stay small; an error's cause is told once.
//!
//! The checks read the source text (comments dropped, test modules left
//! out), so a violation fails here with the file that has it.

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

/// `monocore/src`'s top-level modules, lowest first: each may use only
/// those before it. `lib.rs` re-exports from all of them.
const LAYERS: [&str; 12] = [
    "util", "error", "config", "state", "rootfs", "image", "host", "net", "doctor", "runtime",
    "vm", "pool",
];

/// The library files allowed past [`MAX_LINES`], each with its reason.
const LONG_FILES: [(&str, &str); 0] = [];

/// The most lines a library source file has (tests apart).
const MAX_LINES: usize = 500;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Whether `path` holds only tests (`tests.rs`, or under a `tests/`
/// directory of a module).
fn is_test_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "tests.rs")
        || path.components().any(|c| c.as_os_str() == "tests")
}

/// The code of a source file: comments dropped, and nothing from the first
/// `#[cfg(test)]` on (each file's test module comes last).
fn code_of(source: &str) -> String {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate's top-level modules that `code` names: in `crate::x` paths,
/// and as the first segment of each item of `use crate::{x::…, y, …}`.
fn crate_modules_used(code: &str) -> Vec<String> {
    let mut used = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            used.extend(group_heads(group));
        } else {
            used.push(ident_at(rest));
        }
    }
    used.retain(|m| !m.is_empty());
    used
}

/// The first path segment of each item at the top level of a `{…}` group
/// (`group` starts just after the `{`).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item_start = true,
            c if c.is_whitespace() => {}
            _ if at_item_start && depth == 0 => {
                heads.push(ident_at(&group[i..]));
                at_item_start = false;
            }
            _ => {}
        }
    }
    heads
}

fn ident_at(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level module that a file under `src` belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let first = file.strip_prefix(src).unwrap().components().next().unwrap();
    let name = first.as_os_str().to_str().unwrap();
    name.strip_suffix(".rs").unwrap_or(name).to_owned()
}

#[test]
fn each_library_layer_uses_only_the_layers_below_it() {
    let src = workspace().join("monocore/src");
    // module -> (module it uses -> a file that does)
    let mut uses: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in rust_files(&src) {
        let module = module_of(&src, &file);
        if module == "lib" || is_test_file(&file) {
            continue;
        }
        assert!(
            LAYERS.contains(&module.as_str()),
            "{} is in module `{module}`, which has no layer in LAYERS",
            file.display()
        );
        let code = code_of(&fs::read_to_string(&file).unwrap());
        for used in crate_modules_used(&code) {
            if LAYERS.contains(&used.as_str()) && used != module {
                uses.entry(module.clone())
                    .or_default()
                    .entry(used)
                    .or_insert_with(|| file.clone());
            }
        }
    }
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m).unwrap();
    let mut wrong = Vec::new();
    for (module, used) in &uses {
        for (dep, file) in used {
            if rank(dep) > rank(module) {
                wrong.push(format!(
                    "{module} uses {dep}, a layer above it ({})",
                    file.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
    // The checker itself sees the edges that exist.
    assert!(uses["runtime"].contains_key("config"), "{uses:#?}");
    assert!(uses["vm"].contains_key("runtime"), "{uses:#?}");
}

#[test]
fn the_checker_reads_grouped_and_plain_paths() {
    let code = code_of(
        "use crate::{\n    config::{A, B},\n    error::C,\n    host,\n};\n\
         // crate::vm in a comment\nfn f() { crate::state::x(); }\n\
         #[cfg(test)]\nmod tests { use crate::runtime; }",
    );
    assert_eq!(
        crate_modules_used(&code),
        ["config", "error", "host", "state"]
    );
}

#[test]
fn library_source_files_stay_small() {
    let mut long = Vec::new();
    for krate in [
        "monocore",
        "monocore-rules",
        "monocore-macros",
        "monocore-agent",
        "monocore-cli",
        "monocore-shim",
    ] {
        let src = workspace().join(krate).join("src");
        for file in rust_files(&src) {
            if is_test_file(&file) {
                continue;
            }
            let source = fs::read_to_string(&file).unwrap();
            // Lines before the file's test module.
            let lines = source
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .lines()
                .count();
            let name = file.strip_prefix(workspace()).unwrap();
            let allowed = LONG_FILES.iter().any(|(path, _)| Path::new(path) == name);
            if lines > MAX_LINES && !allowed {
                long.push(format!("{} ({lines} lines)", name.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (split them by responsibility, or add one to LONG_FILES with the reason):\n{}",
        long.join("\n")
    );
}

/// The messages in `code` of `#[error(…)]` variants that print their own
/// `#[source]`/`#[from]` field: `{source}` with a `#[source]` field named
/// `source`, or `{0}` with a `#[source]`/`#[from]` tuple field.
fn messages_repeating_their_source(code: &str) -> Vec<String> {
    let mut repeated = Vec::new();
    for variant in code.split("#[error(").skip(1) {
        let Some(end) = variant.find(")]") else {
            continue;
        };
        let (message, rest) = variant.split_at(end);
        // The variant's fields: up to the end of the enum at the latest.
        let fields = rest.split("\n}").next().unwrap_or_default();
        let named = fields.contains("#[source]") && message.contains("{source}");
        let positional = (fields.contains("(#[source]") || fields.contains("(#[from]"))
            && message.contains("{0}");
        if named || positional {
            repeated.push(message.to_owned());
        }
    }
    repeated
}

#[test]
fn the_source_check_finds_a_repeated_cause() {
    let code = "enum E {\n    #[error(\"bad line {line}: {source}\")]\n    Line {\n        line: usize,\n        #[source]\n        source: io::Error,\n    },\n    #[error(\"bad line {line}\")]\n    Ok {\n        line: usize,\n        #[source]\n        source: io::Error,\n    },\n    #[error(\"wrapped: {0}\")]\n    Wrapped(#[from] io::Error),\n    #[error(\"io error: {0}\")]\n    ByHand(io::Error),\n}\n";
    assert_eq!(
        messages_repeating_their_source(code),
        ["\"bad line {line}: {source}\"", "\"wrapped: {0}\""]
    );
}

#[test]
fn an_error_tells_its_cause_once() {
    // `ErrorChain` (and the CLI) print each cause after the message, so a
    // message never prints its cause too.
    let mut repeated = Vec::new();
    for krate in [
        "monocore",
        "monocore-agent",
        "monocore-cli",
        "monocore-shim",
        "monocore-rules",
    ] {
        for file in rust_files(&workspace().join(krate).join("src")) {
            let code = code_of(&fs::read_to_string(&file).unwrap());
            for message in messages_repeating_their_source(&code) {
                repeated.push(format!("{}: #[error({message})]", file.display()));
            }
        }
    }
    assert!(
        repeated.is_empty(),
        "messages that repeat their source:\n{}",
        repeated.join("\n")
    );
}
