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

/// A source file of the crate, read for the boundary checks.
struct Source {
    /// Path from the repository root, for messages.
    name: String,
    /// Module path: `src/search/query.rs` is `["search", "query"]`, `src/search/mod.rs` is
    /// `["search"]`, `src/lib.rs` is `[]`.
    module: Vec<String>,
    /// Production lines (number, text without comments); items under `#[cfg(test)]` left out.
    lines: Vec<(usize, String)>,
    /// Every line (number, text without comments), tests included.
    all_lines: Vec<(usize, String)>,
    /// Modules this file declares under `#[cfg(test)]` (`mod tests;`).
    test_children: Vec<String>,
}

fn without_comment(line: &str) -> &str {
    line.find("//").map_or(line, |at| &line[..at])
}

fn read_sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut sources = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let relative = file.strip_prefix(root.join("src")).unwrap();
        let mut module: Vec<String> = relative
            .iter()
            .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if matches!(
            module.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            module.pop();
        }
        let raw: Vec<&str> = text.lines().collect();
        let mut lines = Vec::new();
        let mut test_children = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            let line = raw[i];
            if line.trim() == "#[cfg(test)]" {
                let indent = &line[..line.len() - line.trim_start().len()];
                let item = raw.get(i + 1).copied().unwrap_or("").trim();
                if let Some(name) = item
                    .strip_prefix("mod ")
                    .and_then(|rest| rest.strip_suffix(';'))
                {
                    test_children.push(name.trim().to_string());
                    i += 2;
                    continue;
                }
                // Skip the item: up to the closing brace at its own indentation.
                let close = format!("{indent}}}");
                i += 1;
                while i < raw.len() && raw[i] != close {
                    i += 1;
                }
                i += 1;
                continue;
            }
            lines.push((i + 1, without_comment(line).to_string()));
            i += 1;
        }
        let all_lines = raw
            .iter()
            .enumerate()
            .map(|(no, line)| (no + 1, without_comment(line).to_string()))
            .collect();
        sources.push(Source {
            name: format!("src/{}", relative.display()),
            module,
            lines,
            all_lines,
            test_children,
        });
    }
    // Files declared under `#[cfg(test)]` hold only tests.
    let test_only: Vec<Vec<String>> = sources
        .iter()
        .flat_map(|s| {
            s.test_children.iter().map(|child| {
                let mut module = s.module.clone();
                module.push(child.clone());
                module
            })
        })
        .collect();
    for source in &mut sources {
        if test_only.iter().any(|t| source.module.starts_with(t)) {
            source.lines.clear();
        }
    }
    sources
}

/// The module paths named in `line` by `crate::…` and `super::…` paths (braces expanded),
/// resolved from `module` (the file's module; `super` of a folder's `mod.rs` is its parent).
fn named_paths(line: &str, module: &[String]) -> Vec<Vec<String>> {
    let bytes = line.as_bytes();
    let mut found = Vec::new();
    for root in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = line[from..].find(root).map(|p| p + from) {
            from = at + root.len();
            let before = at.checked_sub(1).map(|p| bytes[p]);
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
                continue;
            }
            let mut base: Vec<String> = if root == "crate::" {
                Vec::new()
            } else {
                module[..module.len().saturating_sub(1)].to_vec()
            };
            let mut rest = &line[from..];
            while let Some(next) = rest.strip_prefix("super::") {
                base.pop();
                rest = next;
            }
            let mut out = Vec::new();
            path_tree(rest, &base, &mut out);
            found.extend(out);
        }
    }
    found
}

/// Reads `a::b::{c, d::e}` from the start of `text` with `prefix`; returns how much it read.
fn path_tree(text: &str, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix.to_vec();
    let mut at = 0;
    loop {
        let rest = &text[at..];
        if let Some(group) = rest.strip_prefix('{') {
            at += 1;
            let mut inner = group;
            loop {
                let trimmed = inner.trim_start();
                at += inner.len() - trimmed.len();
                if trimmed.starts_with('}') || trimmed.is_empty() {
                    at += usize::from(!trimmed.is_empty());
                    return at;
                }
                let read = path_tree(trimmed, &path, out);
                at += read;
                inner = &text[at..];
                let trimmed = inner.trim_start();
                at += inner.len() - trimmed.len();
                if let Some(after) = trimmed.strip_prefix(',') {
                    at += 1;
                    inner = after;
                } else {
                    inner = trimmed;
                }
                if read == 0 && !inner.starts_with('}') {
                    // Not a path: stop rather than loop.
                    return at;
                }
            }
        }
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            break;
        }
        at += ident.len();
        if ident != "self" {
            path.push(ident);
        }
        if text[at..].starts_with("::") {
            at += 2;
        } else {
            break;
        }
    }
    out.push(path);
    at
}

/// The longest prefix of `path` that is a module of the crate.
fn module_of(path: &[String], modules: &[Vec<String>]) -> Vec<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
        .unwrap_or_default()
}

/// Every module reference of production code: (file, line, from module, to module).
fn references(sources: &[Source]) -> Vec<(String, usize, Vec<String>, Vec<String>)> {
    let modules: Vec<Vec<String>> = sources.iter().map(|s| s.module.clone()).collect();
    let mut refs = Vec::new();
    for source in sources {
        for (no, line) in &source.lines {
            for path in named_paths(line, &source.module) {
                let target = module_of(&path, &modules);
                refs.push((source.name.clone(), *no, source.module.clone(), target));
            }
        }
    }
    refs
}

/// Whether `line` names the path `name` (`redb::`) as a path of its own, not as the end of
/// another name (`my_redb::`).
fn names(line: &str, name: &str) -> bool {
    line.match_indices(name).any(|(at, _)| {
        at == 0 || {
            let before = line.as_bytes()[at - 1];
            !before.is_ascii_alphanumeric() && before != b'_'
        }
    })
}

#[test]
fn crates_are_named_only_in_their_own_modules() {
    // (what, where it may be named)
    let homes: [(&str, &[&str]); 6] = [
        ("redb::", &["storage"]),
        ("tantivy::", &["search"]),
        ("axum::", &["api", "web", "app"]),
        ("axum_server::", &["app"]),
        ("askama::", &["web"]),
        ("hyper::", &["api", "web", "app"]),
    ];
    let mut problems = Vec::new();
    for source in read_sources() {
        let top = source.module.first().map_or("", String::as_str);
        for (no, line) in &source.all_lines {
            for (name, allowed) in homes {
                if names(line, name) && !allowed.contains(&top) {
                    problems.push(format!(
                        "{}:{no}: names `{}` outside {}",
                        source.name,
                        name.trim_end_matches("::"),
                        allowed.join(", ")
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_http_layer_is_used_only_by_the_http_layer() {
    // (module, who may use it)
    let layers: [(&str, &[&str]); 4] = [
        ("api", &["api", "web", "app"]),
        ("web", &["web", "app"]),
        ("state", &["api", "web", "app", "state"]),
        ("app", &["app", "cli"]),
    ];
    let sources = read_sources();
    let mut problems = Vec::new();
    for (file, no, from, to) in references(&sources) {
        let (Some(from_top), Some(to_top)) = (from.first(), to.first()) else {
            continue;
        };
        for (layer, users) in layers {
            if to_top == layer && !users.contains(&from_top.as_str()) {
                problems.push(format!(
                    "{file}:{no}: `{}` uses `crate::{}` (only {} may)",
                    from.join("::"),
                    to.join("::"),
                    users.join(", ")
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn events_are_encoded_for_the_store_only_by_the_intake() {
    let mut problems = Vec::new();
    for source in read_sources() {
        if source.name == "src/intake.rs" || source.name.starts_with("src/storage/") {
            continue;
        }
        for (no, line) in &source.lines {
            if ["EncodedEvent::new", "EncodedEvent::all", "EncodedEvent {"]
                .iter()
                .any(|built| line.contains(built))
            {
                problems.push(format!(
                    "{}:{no}: builds an `EncodedEvent`; hand events to `intake` instead",
                    source.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Edges between sibling modules, each with one place (`file:line`) that makes it.
type Edges = std::collections::BTreeMap<(Vec<String>, Vec<String>), String>;

/// Depth-first search from `node`; a node met again on the current path closes a cycle.
fn visit(
    node: &[String],
    edges: &Edges,
    path: &mut Vec<Vec<String>>,
    done: &mut std::collections::BTreeSet<Vec<String>>,
    cycles: &mut Vec<String>,
) {
    if let Some(start) = path.iter().position(|n| n == node) {
        let mut cycle = path[start..].to_vec();
        cycle.push(node.to_vec());
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|pair| {
                format!(
                    "{} -> {} ({})",
                    pair[0].join("::"),
                    pair[1].join("::"),
                    edges[&(pair[0].clone(), pair[1].clone())]
                )
            })
            .collect();
        cycles.push(steps.join("; "));
        return;
    }
    if done.contains(node) {
        return;
    }
    path.push(node.to_vec());
    for ((from, to), _) in edges.range((node.to_vec(), Vec::new())..) {
        if from != node {
            break;
        }
        visit(to, edges, path, done, cycles);
    }
    path.pop();
    done.insert(node.to_vec());
}

#[test]
fn modules_do_not_import_each_other_in_a_cycle() {
    let sources = read_sources();
    // Edges between sibling modules (the children of the deepest module both lie in), each with
    // one place that makes it.
    let mut edges = Edges::new();
    for (file, no, from, to) in references(&sources) {
        let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
        if common == from.len() || common == to.len() {
            continue; // a module and its own ancestor or descendant
        }
        let key = (from[..=common].to_vec(), to[..=common].to_vec());
        edges.entry(key).or_insert(format!("{file}:{no}"));
    }
    let nodes: std::collections::BTreeSet<Vec<String>> = edges
        .keys()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    let mut done = std::collections::BTreeSet::new();
    let mut cycles = Vec::new();
    for node in &nodes {
        visit(node, &edges, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(edges.len() > 20, "too few module references found");
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn source_files_stay_small() {
    // Tables of data may be longer; none is yet.
    const LONGEST: usize = 720;
    let problems: Vec<String> = read_sources()
        .iter()
        .filter(|s| s.all_lines.len() > LONGEST)
        .map(|s| {
            format!(
                "{}: {} lines (split it by concern; at most {LONGEST})",
                s.name,
                s.all_lines.len()
            )
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_boundary_checks_find_what_they_look_for() {
    let module = |path: &str| -> Vec<String> { path.split("::").map(String::from).collect() };
    assert_eq!(
        named_paths(
            "use crate::search::{query::Find, SearchIndex, self};",
            &module("api::events")
        ),
        [
            module("search::query::Find"),
            module("search::SearchIndex"),
            module("search"),
        ]
    );
    assert_eq!(
        named_paths(
            "use super::finding::{Finding, finding};",
            &module("detect::profile")
        ),
        [
            module("detect::finding::Finding"),
            module("detect::finding::finding")
        ]
    );
    assert_eq!(
        named_paths(
            "let x = crate::now_micros() + super::super::X;",
            &module("a::b::c")
        ),
        [module("now_micros"), module("a::X")]
    );
    assert!(
        named_paths(
            without_comment("use securify::crate_like::x; // crate::api"),
            &module("x")
        )
        .is_empty()
    );
    assert!(names("use redb::{Database};", "redb::"));
    assert!(names("    let t: redb::TableDefinition", "redb::"));
    assert!(!names("use my_redb::x;", "redb::"));
    assert!(!names("use axum_server::Handle;", "axum::"));
    let modules = vec![module("search"), module("search::query"), Vec::new()];
    assert_eq!(
        module_of(&module("search::query::Find"), &modules),
        module("search::query")
    );
    assert_eq!(
        module_of(&module("now_micros"), &modules),
        Vec::<String>::new()
    );
}
