//! The shape of the code, checked: no two modules of the operator import each other (the
//! graph of `crate::` references between top-level modules has no cycle), and the pure
//! crate `vmnet-plan` depends on neither tokio nor the kube client nor an HTTP stack.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use vmnet_testkit::repo_root;

/// The top-level module a file of `src/` belongs to (`src/writer/apply.rs` → `writer`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib" && name != "main").then_some(name)
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Top-level module → the top-level modules it refers to through `crate::`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = repo_root().join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let modules: BTreeSet<String> = all.iter().filter_map(|f| module_of(&src, f)).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &all {
        let Some(from) = module_of(&src, f) else {
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        let entry = g.entry(from.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            // Only a word boundary before `crate::` makes it a path of this crate.
            if i > 0 {
                let before = text.as_bytes()[i - 1];
                if before.is_ascii_alphanumeric() || before == b'_' {
                    continue;
                }
            }
            let rest = &text[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) && name != from {
                entry.insert(name);
            }
            // `use crate::{a, b}` lists several.
            if let Some(inner) = rest.strip_prefix('{') {
                let list: String = inner.chars().take_while(|c| *c != '}').collect();
                for part in list.split(',') {
                    let name = part.trim().split("::").next().unwrap_or_default();
                    if modules.contains(name) && name != from {
                        entry.insert(name.to_owned());
                    }
                }
            }
        }
    }
    g
}

/// A cycle through `start`, if there is one.
fn cycle(g: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        g: &BTreeMap<String, BTreeSet<String>>,
        at: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in g.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(g, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_owned()];
    walk(g, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_two_modules_import_each_other() {
    let g = graph();
    assert!(
        g.contains_key("writer") && g.contains_key("context"),
        "{g:?}"
    );
    assert!(
        g["controller"].contains("context"),
        "the graph misses references: {g:?}"
    );
    for m in g.keys() {
        if let Some(c) = cycle(&g, m) {
            panic!("modules import each other: {}\n{g:#?}", c.join(" -> "));
        }
    }
}

#[test]
fn the_pure_crate_has_no_runtime_client_or_http_stack() {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "vmnet-plan",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.contains("vmnet-api") && tree.contains("vyos-client"),
        "{tree}"
    );
    for banned in ["tokio ", "kube-client", "kube-runtime", "reqwest", "hyper "] {
        assert!(
            !tree.lines().any(|l| l.starts_with(banned)),
            "vmnet-plan depends on {banned}:\n{tree}"
        );
    }
}
