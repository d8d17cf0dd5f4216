//! The crate's modules form layers: a module uses only modules of its own
//! layer or below, and no module reaches back to itself through others.
//! A new module must be given a layer here, which documents where it sits.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Bottom to top. A module may use the modules of its layer and below.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundations: no runtime module below them",
        &[
            "acceptor",
            "cluster",
            "context",
            "nuid",
            "conn_gate",
            "heavy",
            "remote",
            "session",
            "timer",
        ],
    ),
    ("settings and membership", &["config", "group"]),
    (
        "the cluster's outgoing side: forwarding, remote calls, backend sessions",
        &["clustered"],
    ),
    (
        "what user code holds: the handle and its pushes",
        &["handle", "push"],
    ),
    ("what user code implements", &["handler", "module"]),
    ("routing", &["pipeline", "dispatch"]),
    ("shared server state", &["server"]),
    (
        "serving: deciding where a message goes, a client connection, a request from the cluster",
        &["dispatcher", "agent", "inbound"],
    ),
    ("the app", &["app"]),
    (
        "the test harness: drives an app without sockets",
        &["testing"],
    ),
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every top-level module of the crate and the files it is made of.
fn modules() -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules = BTreeMap::new();
    for entry in fs::read_dir(src_dir()).expect("src is readable") {
        let path = entry.expect("src entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 file name")
            .to_owned();
        if path.is_dir() {
            let mut files = Vec::new();
            collect_rs(&path, &mut files);
            modules.entry(name).or_insert_with(Vec::new).extend(files);
        } else if path.extension().is_some_and(|ext| ext == "rs") && name != "lib" {
            modules.entry(name).or_insert_with(Vec::new).push(path);
        }
    }
    modules
}

fn collect_rs(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("module dir is readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect_rs(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// The modules `files` name as `crate::<module>` outside comments.
fn uses(files: &[PathBuf], known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for file in files {
        let text = fs::read_to_string(file).expect("source is readable");
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for (at, _) in code.match_indices("crate::") {
                let name: String = code[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if known.contains(&name) {
                    found.insert(name);
                }
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(name, files)| {
            let mut used = uses(files, &known);
            used.remove(name);
            (name.clone(), used)
        })
        .collect()
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, members)| members.contains(&module))
}

#[test]
fn every_module_has_a_layer() {
    let missing: Vec<String> = graph()
        .into_keys()
        .filter(|module| layer_of(module).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "give these modules a layer in tests/layers.rs: {missing:?}"
    );
}

#[test]
fn modules_use_only_their_layer_and_below() {
    let mut upward = Vec::new();
    for (module, used) in graph() {
        let Some(own) = layer_of(&module) else {
            continue;
        };
        for other in used {
            if layer_of(&other).is_some_and(|layer| layer > own) {
                upward.push(format!(
                    "{module} ({}) uses {other} ({})",
                    LAYERS[own].0,
                    LAYERS[layer_of(&other).unwrap_or(own)].0
                ));
            }
        }
    }
    assert!(upward.is_empty(), "uses across layers, upward: {upward:#?}");
}

#[test]
fn no_import_circles() {
    let graph = graph();
    // Depth-first search; a module met again on the current path closes a
    // circle.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        circles: &mut Vec<String>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut circle = path[start..].to_vec();
            circle.push(module.to_owned());
            circles.push(circle.join(" -> "));
            return;
        }
        path.push(module.to_owned());
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path, done, circles);
        }
        path.pop();
        done.insert(module.to_owned());
    }
    let mut done = BTreeSet::new();
    let mut circles = Vec::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

#[test]
fn the_scan_sees_the_known_uses() {
    // Guards the scanner itself: these uses exist, so a scanner that found
    // nothing would let every check above pass.
    let graph = graph();
    assert!(graph["agent"].contains("server"));
    assert!(graph["app"].contains("agent"));
    assert!(graph["handler"].contains("session"));
}
