//! The desktop crate's module graph, read from its sources: no import cycles between its
//! files, and the pure layer (`model`, `error`, `view/`) free of the controller, the
//! dispatch and any GUI toolkit (the crate has none among its dependencies). A file depends on
//! another when it names it through `crate::…` or `super::…` (module declarations and
//! comments do not count); a path is resolved to the deepest file it reaches.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (e.g. `controller::publish`) → its source file's text.
fn modules() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.insert(module_of(&root, &path), code_only(&path));
            }
        }
    }
    out
}

fn module_of(root: &Path, file: &Path) -> String {
    let rel: PathBuf = file
        .strip_prefix(root)
        .expect("under src")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts.join("::")
}

/// The file without comment lines and without its `#[cfg(test)]` module (tests may
/// reach anywhere).
fn code_only(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("readable");
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b` / `super::a` path in `code`, and every child module it re-exports
/// from (`pub use child::…` in a `mod.rs`), as module paths.
fn paths_in(module: &str, code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in code.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("pub use ") {
            let first = rest.split("::").next().unwrap_or("");
            let child = !first.is_empty()
                && first.chars().all(|c| c.is_alphanumeric() || c == '_')
                && !["crate", "super", "self", "std", "tauri"].contains(&first);
            if child {
                let prefix = if module.is_empty() {
                    String::new()
                } else {
                    format!("{module}::")
                };
                out.insert(format!("{prefix}{first}"));
            }
        }
    }
    for (prefix, base) in [("crate::", String::new()), ("super::", parent(module))] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().last();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let joined = if base.is_empty() {
                path
            } else {
                format!("{base}::{path}")
            };
            out.insert(joined.trim_end_matches(':').to_string());
            // `use crate::x::{a, b}`: each name in the braces may be a module.
            if rest[path_len(rest)..].starts_with('{') {
                let group = &rest[path_len(rest) + 1..];
                let end = group.find('}').unwrap_or(0);
                let stem = out.last().cloned().unwrap_or_default();
                for name in group[..end].split(',') {
                    let name = name.trim().split("::").next().unwrap_or("").trim();
                    if !name.is_empty() && name != "self" {
                        out.insert(format!("{}::{name}", stem.trim_end_matches(':')));
                    }
                }
            }
        }
    }
    out
}

fn path_len(s: &str) -> usize {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .map(char::len_utf8)
        .sum()
}

fn parent(module: &str) -> String {
    module.rsplit_once("::").map_or("", |(p, _)| p).to_string()
}

/// The deepest module among `known` that `path` reaches (`None`: the crate root).
fn resolve(path: &str, known: &BTreeMap<String, String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| known.contains_key(m))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    mods.iter()
        .map(|(m, code)| {
            let deps = paths_in(m, code)
                .iter()
                .filter_map(|p| resolve(p, &mods))
                // A parent `mod.rs` only declares and re-exports its children.
                .filter(|d| d != m && !m.starts_with(&format!("{d}::")) && !d.is_empty())
                .collect();
            (m.clone(), deps)
        })
        .collect()
}

/// A cycle through `node`, if one exists (depth-first, colours).
fn find_cycle(
    node: &str,
    g: &BTreeMap<String, BTreeSet<String>>,
    state: &mut BTreeMap<String, u8>,
    stack: &mut Vec<String>,
) -> Option<Vec<String>> {
    state.insert(node.to_string(), 1);
    stack.push(node.to_string());
    for next in g.get(node).into_iter().flatten() {
        match state.get(next.as_str()).copied().unwrap_or(0) {
            1 => {
                let start = stack.iter().position(|n| n == next).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(next.clone());
                return Some(cycle);
            }
            0 => {
                if let Some(c) = find_cycle(next, g, state, stack) {
                    return Some(c);
                }
            }
            _ => {}
        }
    }
    stack.pop();
    state.insert(node.to_string(), 2);
    None
}

#[test]
fn the_desktop_crate_has_no_import_cycles() {
    let g = graph();
    assert!(g.len() > 10, "the sources were found: {:?}", g.keys());
    assert!(
        g["dispatch"].contains("controller")
            && g["controller::publish"].contains("controller::shell"),
        "the graph is read: {g:#?}"
    );
    let mut state = BTreeMap::new();
    for node in g.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            let cycle = find_cycle(node, &g, &mut state, &mut Vec::new());
            assert!(
                cycle.is_none(),
                "import cycle: {}",
                cycle.unwrap_or_default().join(" → ")
            );
        }
    }
}

#[test]
fn the_pure_layer_knows_nothing_of_the_controller_or_a_toolkit() {
    let g = graph();
    let mods = modules();
    for (m, code) in &mods {
        if m == "model" || m == "error" || m == "view" || m.starts_with("view::") {
            for toolkit in ["tauri", "gtk", "ksni", "tray_icon", "tao"] {
                assert!(
                    !code.contains(&format!("{toolkit}::")),
                    "{m} uses {toolkit}"
                );
            }
            for dep in &g[m] {
                assert!(
                    dep == "model" || dep == "error" || dep.starts_with("view"),
                    "{m} depends on {dep}, outside the pure layer"
                );
            }
        }
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    // The check above must be able to fail: a made-up graph with a cycle.
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    let cycle = find_cycle("a", &g, &mut BTreeMap::new(), &mut Vec::new());
    assert_eq!(
        cycle,
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let known: BTreeMap<String, String> = [("view".to_string(), String::new())].into();
    assert_eq!(
        paths_in(
            "controller",
            "pub use actions::send;\nuse super::shared::Shared;\nuse crate::view::{menu, x};"
        ),
        [
            "controller::actions",
            "shared::Shared",
            "view",
            "view::menu",
            "view::x"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    assert_eq!(resolve("view::menu::x", &known), Some("view".into()));
}
