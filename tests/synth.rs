//! The synthetic archive generator of the scale benchmark
//! (`examples/synth.rs`): its archives are valid, reproducible, and what
//! layerscope reports about them matches the generator's own overlay model.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../examples/synth.rs"]
mod synth;

use std::io::Read;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;
use synth::{Expected, Options, generate};

fn make(dir: &Path, entries: usize, layers: usize, seed: u64) -> (std::path::PathBuf, Expected) {
    let out = dir.join(format!("synth-{entries}-{layers}-{seed}.tar"));
    let opts = Options {
        entries,
        layers,
        seed,
        ..Options::default()
    };
    let exp = generate(&opts, &out).unwrap();
    (out, exp)
}

/// Tar entries per layer, counted with the `tar` crate (not layerscope).
fn tar_listing(path: &Path) -> Vec<(String, u64, u64)> {
    let mut outer = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut layers = Vec::new();
    for e in outer.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if !name.ends_with("/layer.tar") {
            continue;
        }
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        let count = tar::Archive::new(&bytes[..]).entries().unwrap().count() as u64;
        layers.push((name, count, bytes.len() as u64));
    }
    layers
}

fn report(path: &Path) -> Value {
    let out = Command::cargo_bin("layerscope")
        .unwrap()
        .arg(path)
        .args(["--verify", "--json", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check(path: &Path, exp: &Expected) {
    // The archive, read by another tar reader.
    let listing = tar_listing(path);
    assert_eq!(listing.len(), exp.layers.len());
    for ((name, count, bytes), l) in listing.iter().zip(&exp.layers) {
        assert_eq!(*count, l.tar_entries, "{name}: tar entries");
        assert_eq!(*bytes, l.tar_bytes, "{name}: tar bytes");
        assert_eq!(format!("sha256:{}", &name[..64]), l.diff_id);
    }
    assert_eq!(
        listing.iter().map(|l| l.1).sum::<u64>(),
        exp.tar_entries,
        "total tar entries"
    );
    assert_eq!(
        exp.tar_entries,
        exp.files + exp.dirs + exp.symlinks + exp.hardlinks + exp.whiteouts + exp.opaque_markers
    );

    // layerscope (with --verify: every diff_id checked) against the model.
    let r = report(path);
    let img = &r["images"][0];
    let t = &img["totals"];
    for (key, want) in [
        ("size_bytes", exp.size_bytes),
        ("final_bytes", exp.final_bytes),
        ("final_entries", exp.final_entries),
        ("hidden_bytes", exp.hidden_bytes),
        ("overwritten_bytes", exp.overwritten_bytes),
        ("metadata_only_bytes", exp.metadata_only_bytes),
        ("recopied_bytes", exp.recopied_bytes),
        ("deleted_bytes", exp.deleted_bytes),
        ("opaque_bytes", exp.opaque_bytes),
        ("duplicate_bytes", exp.duplicate_bytes),
    ] {
        assert_eq!(t[key].as_u64(), Some(want), "totals.{key}");
    }
    let layers = img["layers"].as_array().unwrap();
    assert_eq!(layers.len(), exp.layers.len());
    for (i, (got, want)) in layers.iter().zip(&exp.layers).enumerate() {
        assert_eq!(got["diff_id"].as_str(), Some(want.diff_id.as_str()));
        for (key, v) in [
            ("entries", want.entries),
            ("size_bytes", want.size_bytes),
            ("tar_bytes", want.tar_bytes),
            ("added", want.added),
            ("modified", want.modified),
            ("metadata_only", want.metadata_only),
            ("removed", want.removed),
            ("opaque_dirs", want.opaque_dirs),
            ("hidden_later_bytes", want.hidden_later_bytes),
            ("hides_bytes", want.hides_bytes),
        ] {
            assert_eq!(
                got[key].as_u64(),
                Some(v),
                "layer {i} ({}): {key}",
                want.recipe
            );
        }
    }
    // The base is recognised from os-release and the history's CMD.
    assert_eq!(img["base"]["kind"], "debian");
    assert_eq!(img["base"]["layers"], 1);
    assert_eq!(img["package_manager"], "dpkg");
}

#[test]
fn synthetic_archive_matches_the_generators_model() {
    let dir = tempfile::tempdir().unwrap();
    let (path, exp) = make(dir.path(), 3000, 6, 1);
    assert!(exp.tar_entries >= 3000 && exp.tar_entries < 3100);
    // Every kind of entry and every kind of waste is there.
    assert!(exp.symlinks > 0 && exp.hardlinks > 0 && exp.whiteouts > 0);
    assert!(exp.opaque_markers > 0 && exp.duplicate_bytes > 0);
    assert!(exp.overwritten_bytes > 0 && exp.metadata_only_bytes > 0);
    check(&path, &exp);
}

#[test]
fn more_layers_than_recipes_and_another_seed_still_match() {
    // Eight layers: the recipes wrap around (apt runs again and rewrites
    // the dpkg status, python packages land beside earlier ones).
    let dir = tempfile::tempdir().unwrap();
    let (path, exp) = make(dir.path(), 5000, 8, 7);
    assert!(exp.layers.iter().skip(1).any(|l| l.modified > 0));
    check(&path, &exp);
}

#[test]
fn the_same_options_give_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = make(dir.path(), 2000, 4, 3);
    let copy = dir.path().join("copy.tar");
    std::fs::rename(&a, &copy).unwrap();
    let (b, _) = make(dir.path(), 2000, 4, 3);
    assert!(std::fs::read(&copy).unwrap() == std::fs::read(&b).unwrap());
    let (c, _) = make(dir.path(), 2000, 4, 4);
    assert!(std::fs::read(&c).unwrap() != std::fs::read(&b).unwrap());
}
