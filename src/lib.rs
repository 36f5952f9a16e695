//! cargo-worker-build: turns a wasm-bindgen crate into a Cloudflare Worker bundle whose panics
//! unwind (one failed request) and whose aborts recover (a fresh instance for the next request).
//!
//! The pipeline, one module per stage: [`plan`] resolves everything up front, then
//! [`toolchain`] -> [`cargo`] -> [`bindgen`] -> optimise ([`opt`]) -> [`bundle`] (entry +
//! recovery runtime + glue in one ES module, with [`esbuild`]; [`minify`] decides its form) ->
//! [`check`] (when asked). [`symbols`] writes the map of the shipped module's functions that
//! [`symbolize`] applies to logs.

pub mod bindgen;
pub mod bundle;
pub mod cache;
pub mod cargo;
pub mod check;
pub mod cli;
pub mod compat;
pub mod errors;
pub mod esbuild;
pub mod exports;
pub mod fs;
pub mod imports;
pub mod interrupt;
pub mod locate;
pub mod minify;
pub mod model;
pub mod opt;
pub mod pipeline;
pub mod plan;
pub mod process;
pub mod scaffold;
pub mod size;
pub mod symbolize;
pub mod symbols;
pub mod term;
pub mod toolcache;
pub mod toolchain;
pub mod tools;
pub mod workspace;

/// The modules above form layers: no module reaches, through `crate::` paths, back to itself.
#[cfg(test)]
mod module_graph {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// The top-level modules that `source` names through `crate::` paths (`use crate::a::B`,
    /// `use crate::{a, b::C}`, `crate::d::f()`), comment lines left out.
    fn mentions(source: &str) -> BTreeSet<String> {
        let code: String = source
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let ident = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        let mut found = BTreeSet::new();
        let mut rest = code.as_str();
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            let after = &rest[at + "crate::".len()..];
            rest = after;
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let Some(group) = after.strip_prefix('{') else {
                found.insert(ident(after));
                continue;
            };
            // The first name of each item at the group's top level.
            let (mut depth, mut item_start) = (0, true);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        found.insert(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        }
        found.remove("");
        found
    }

    /// Module -> the modules it names, for every file under `src/` (a directory is one module;
    /// the roots lib.rs and main.rs are left out).
    fn graph() -> BTreeMap<String, BTreeSet<String>> {
        fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, files);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in files {
            let relative = file.strip_prefix(&src).unwrap();
            let first = relative.components().next().unwrap().as_os_str();
            let module = first.to_str().unwrap().trim_end_matches(".rs").to_string();
            if module == "lib" || module == "main" {
                continue;
            }
            let source = std::fs::read_to_string(&file).unwrap();
            let names = graph.entry(module.clone()).or_default();
            names.extend(mentions(&source).into_iter().filter(|m| *m != module));
        }
        graph
    }

    /// A path of modules from `start` back to itself, if there is one.
    fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
        fn visit(
            node: &str,
            graph: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|n| n == node) {
                let mut found = path[at..].to_vec();
                found.push(node.to_string());
                return Some(found);
            }
            if !done.insert(node.to_string()) {
                return None;
            }
            path.push(node.to_string());
            for next in graph.get(node).into_iter().flatten() {
                if let Some(found) = visit(next, graph, path, done) {
                    return Some(found);
                }
            }
            path.pop();
            None
        }
        let mut done = BTreeSet::new();
        graph
            .keys()
            .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
    }

    #[test]
    fn crate_paths_are_read_from_uses_groups_and_expressions() {
        let source = "use crate::a::B;\nuse crate::{b, c::{D, E}, d::F};\n// crate::commented\n\
                      let x = crate::e::f($crate::macro_only, my_crate::other);";
        let names: Vec<String> = mentions(source).into_iter().collect();
        assert_eq!(names, ["a", "b", "c", "d", "e"]);
        let mut g = BTreeMap::new();
        g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
        g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
        assert_eq!(cycle(&g), Some(vec!["a".into(), "b".into(), "a".into()]));
    }

    #[test]
    fn no_module_imports_itself_through_others() {
        let graph = graph();
        // The scan sees the real graph, not an empty one.
        assert!(graph["pipeline"].contains("plan"), "{graph:?}");
        assert!(graph["check"].contains("model"), "{graph:?}");
        if let Some(cycle) = cycle(&graph) {
            panic!(
                "module import cycle: {} (move what both need into a module of its own)",
                cycle.join(" -> ")
            );
        }
    }
}
