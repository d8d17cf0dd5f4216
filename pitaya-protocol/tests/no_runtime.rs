//! The protocol crate stays free of any async runtime, so it builds for
//! `wasm32-unknown-unknown` and for clients that bring their own I/O. (The
//! wasm target cannot be installed on the build machines: rustup reaches no
//! download server there, so this checks the dependency tree instead.)

use std::process::Command;

/// The crates of `pitaya-protocol`'s normal dependency tree, with `features`.
fn dependencies(features: &[&str]) -> Vec<String> {
    let mut command = Command::new(env!("CARGO"));
    command.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "tree",
        "-p",
        "pitaya-protocol",
        "-e",
        "normal",
        "--prefix",
        "none",
    ]);
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    let output = command.output().expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_default_build_has_no_tokio_at_all() {
    let crates = dependencies(&[]);
    assert!(crates.iter().any(|name| name == "prost"), "{crates:?}");
    let tokio: Vec<_> = crates
        .iter()
        .filter(|name| name.starts_with("tokio") || *name == "mio" || *name == "socket2")
        .collect();
    assert!(tokio.is_empty(), "runtime crates in the tree: {tokio:?}");
}

#[test]
fn the_tokio_codec_feature_brings_the_codec_traits_but_no_runtime() {
    let crates = dependencies(&["tokio-codec"]);
    assert!(crates.iter().any(|name| name == "tokio-util"), "{crates:?}");
    let runtime: Vec<_> = crates
        .iter()
        .filter(|name| *name == "mio" || *name == "socket2" || *name == "signal-hook-registry")
        .collect();
    assert!(
        runtime.is_empty(),
        "runtime crates in the tree: {runtime:?}"
    );
}
