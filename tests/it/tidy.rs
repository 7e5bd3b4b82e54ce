//! Repository hygiene, checked under `cargo test`: every source file starts with a `//!`
//! paragraph saying what it owns, no trailing whitespace, and no test is switched off.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn sources_are_documented_and_tidy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    assert!(files.len() > 10);
    let mut problems = Vec::new();
    // Built from pieces so this file does not trip its own check.
    let banned = [
        format!("#[{}]", "ignore"),
        format!("#[{}", "should_panic"),
        format!("{}!(", "todo"),
        format!("{}!(", "unimplemented"),
    ];
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(root).unwrap().display();
        if !text.starts_with("//!") {
            problems.push(format!(
                "{name}: does not start with a `//!` module comment"
            ));
        }
        for (no, line) in text.lines().enumerate() {
            if line.ends_with(' ') || line.ends_with('\t') {
                problems.push(format!("{name}:{}: trailing whitespace", no + 1));
            }
            for word in &banned {
                if line.contains(word.as_str()) {
                    problems.push(format!("{name}:{}: contains {word}", no + 1));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_configuration_option_is_documented_in_the_readme() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let missing: Vec<&str> = securify::config::OPTION_NAMES
        .iter()
        .filter(|name| !readme.contains(&format!("`{name}`")))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "options missing from the README's configuration table: {missing:?}"
    );
}
