//! The import graph of the top-level modules follows the data flow (docs/ARCHITECTURE.md):
//! a module uses only modules of its own stage or earlier ones, and the ground floor (text,
//! time, rng, vocab_macro, synth) uses no stage. `KNOWN` lists the back edges that are still to
//! be removed (issue 17); a new back edge fails this test, and so does a listed one that is gone
//! (strike it from the list).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The stage of each top-level module, in data-flow order; -1 is the ground floor.
const STAGES: &[(&str, i32)] = &[
    ("text", -1),
    ("time", -1),
    ("rng", -1),
    ("synth", -1),
    ("vocab_macro", -1),
    ("wire", -1),
    ("capture", 0),
    ("decode", 1),
    ("flow", 2),
    ("proto", 3),
    ("names", 4),
    ("pipeline", 5),
    ("catalog", 6),
    ("provenance", 6),
    ("audit", 7),
    ("allowlist", 8),
    ("report", 9),
    ("cli", 10),
];

/// Back edges still in the code (from -> to), each to be removed by issue 17's refactor.
const KNOWN: &[(&str, &str)] = &[];

fn stage(m: &str) -> Option<i32> {
    STAGES.iter().find(|(n, _)| *n == m).map(|(_, s)| *s)
}

/// The source without comments and without the unit tests at the end of a file.
fn code(text: &str) -> String {
    let text = text
        .find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i]);
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `text` names: `crate::x` and `use crate::{x, y::z}`.
fn uses(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for part in group.split(',') {
                let m = ident(part.trim());
                if !m.is_empty() {
                    out.insert(m);
                }
            }
        } else {
            let m = ident(rest);
            if !m.is_empty() {
                out.insert(m);
            }
        }
    }
    out
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, files);
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
}

/// Every edge between two top-level modules: from -> {to}.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for m in uses(&code(&text)) {
            if m != top {
                g.entry(top.clone()).or_default().insert(m);
            }
        }
    }
    g
}

#[test]
fn imports_follow_the_data_flow() {
    let g = graph();
    let mut back = BTreeSet::new();
    for (from, tos) in &g {
        let a = stage(from).unwrap_or_else(|| panic!("module {from} has no stage: add it"));
        for to in tos {
            let Some(b) = stage(to) else { continue };
            let cycle = a == b && g.get(to).is_some_and(|t| t.contains(from));
            if b > a || cycle || (a == -1 && b != -1) {
                back.insert((from.clone(), to.clone()));
            }
        }
    }
    let known: BTreeSet<(String, String)> = KNOWN
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<_> = back.difference(&known).collect();
    let gone: Vec<_> = known.difference(&back).collect();
    assert!(
        new.is_empty(),
        "imports against the data flow (a later stage's code used by an earlier one): {new:?}"
    );
    assert!(
        gone.is_empty(),
        "back edges listed in KNOWN that the code no longer has (strike them): {gone:?}"
    );
}

#[test]
fn the_scanner_sees_groups_and_paths() {
    let u = uses("use crate::{flow::Flow, names};\nlet x = crate::text::ip_text(a);");
    assert_eq!(u.into_iter().collect::<Vec<_>>(), ["flow", "names", "text"]);
    assert_eq!(code("a // crate::x\nb"), "a \nb");
}
