//! The TUI's per-layer file system equals the merge of the layers up to
//! it (issue 17: the overlay rule exists once, in `index::overlay`).
//!
//! For every image here and every N, the state the TUI replays to draw
//! "files after layer N" ([`Replay`], and the rows [`TreeModel`] builds
//! from it) is compared, path by path, with `build_image` run on layers
//! 1..N alone. The images: the fixtures of `tests/common` (also checked
//! against its independent overlay model) and `tests/tui_fixtures`, a few
//! stacks aimed at the rule's corners, and the fuzz corpus (the seeds in
//! `fuzz/seeds/`, the saved inputs in `tests/fuzz_regressions/`, and
//! `fuzz/corpus/` when a fuzzer has written one).
#![allow(clippy::unwrap_used)]

mod common;
mod tui_fixtures;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use layerscope::analysis::Analysis;
use layerscope::image::{Image, ImageFacts, Loc};
use layerscope::index::layer::{LayerIndex, index_tar};
use layerscope::index::merge::{LayerMeta, build_image};
use layerscope::index::tree::NodeId;
use layerscope::source::LoadOptions;
use layerscope::source::archive::load_archive_file;
use layerscope::tui::tree::{Replay, SortBy, SortedKids, Status, TreeMode, TreeModel};

/// Visible entries by path: the layer and entry that wrote each.
type State = BTreeMap<String, Loc>;

fn by_path(img: &Image, state: &[Option<Loc>]) -> State {
    state
        .iter()
        .enumerate()
        .filter_map(|(n, l)| l.map(|l| (img.tree.path(n as NodeId), l)))
        .collect()
}

fn meta(i: usize) -> LayerMeta {
    LayerMeta {
        diff_id: format!("sha256:{i:064}"),
        ..LayerMeta::default()
    }
}

/// Layer indexes from layer tars, in order.
fn indexed(tars: &[Vec<u8>]) -> Vec<(LayerMeta, LayerIndex)> {
    tars.iter()
        .enumerate()
        .map(|(i, t)| (meta(i), index_tar(&t[..]).unwrap()))
        .collect()
}

/// An image's layers as the indexer hands them to the merge, rebuilt from
/// the merged image (for images a loader assembled).
fn unmerged(img: &Image) -> Vec<(LayerMeta, LayerIndex)> {
    img.layers
        .iter()
        .map(|l| {
            (
                LayerMeta {
                    diff_id: l.diff_id.clone(),
                    blob: l.blob.clone(),
                    created: l.created.clone(),
                    created_by: l.created_by.clone(),
                    comment: l.comment.clone(),
                },
                LayerIndex {
                    tree: img.tree.clone(),
                    entries: l.entries.clone(),
                    whiteouts: l.whiteouts.clone(),
                    opaque: l.opaque.clone(),
                    size: l.size,
                    tar_bytes: l.tar_bytes,
                    ..LayerIndex::default()
                },
            )
        })
        .collect()
}

/// Check the TUI's state after every layer of `layers` against the merge
/// of the layers up to it; returns the states, for further checks. An
/// image the merge refuses (a hardlink to nowhere) is skipped.
fn check(what: &str, layers: Vec<(LayerMeta, LayerIndex)>) -> Option<Vec<State>> {
    let full = build_image(ImageFacts::default(), layers.clone()).ok()?;
    let n = full.layers.len();
    let mut merged = Vec::with_capacity(n + 1);
    for upto in 0..=n {
        let img = build_image(ImageFacts::default(), layers[..upto].to_vec())
            .unwrap_or_else(|e| panic!("{what}: layers 1..{upto} do not merge: {e}"));
        merged.push(by_path(&img, &img.fs));
    }
    assert_eq!(merged[n], by_path(&full, &full.fs), "{what}: final state");

    // The replay, visited in an order that uses its checkpoints: up, down,
    // then jumping about.
    let mut replay = Replay::default();
    let mut order: Vec<usize> = (0..=n).chain((0..=n).rev()).collect();
    order.extend((0..=n).map(|i| (i * 7 + 3) % (n + 1)));
    for upto in order {
        let got = by_path(&full, replay.before(&full, upto));
        assert_eq!(
            got,
            merged[upto],
            "{what}: the TUI's file system before layer {}",
            upto + 1
        );
    }

    // What the tree draws: "files after layer N" shows exactly the merged
    // state after it, and "changes in layer N" marks as removed only what
    // was visible before and is gone after.
    let analysis = Analysis::new(full);
    let img = &analysis.image;
    let kids = SortedKids::new(img);
    for li in 0..n {
        let before = replay.before(img, li).to_vec();
        for mode in [TreeMode::Aggregated, TreeMode::Layer] {
            let m = TreeModel::build(
                img,
                &kids,
                &analysis.classes,
                &before,
                li,
                mode,
                SortBy::Name,
            );
            let mut shown = State::new();
            let mut removed = Vec::new();
            m.for_each_path(img, |i, path| {
                let r = &m.rows[i];
                match (r.status, r.loc) {
                    (Status::Removed, _) => removed.push(path.to_string()),
                    (_, Some(l)) if mode == TreeMode::Aggregated => {
                        shown.insert(path.to_string(), l);
                    }
                    _ => {}
                }
            });
            for p in &removed {
                assert!(
                    merged[li].contains_key(p) && !merged[li + 1].contains_key(p),
                    "{what}: layer {} marks {p} removed",
                    li + 1
                );
            }
            if mode == TreeMode::Aggregated {
                assert_eq!(
                    shown,
                    merged[li + 1],
                    "{what}: files after layer {}",
                    li + 1
                );
            }
        }
    }
    Some(merged)
}

#[test]
fn the_main_fixture_replays_as_it_merges_and_as_the_model_says() {
    let fx = common::main_image();
    let tars = fx.tars();
    let merged = check("main_image", indexed(&tars)).unwrap();
    // The independent model of tests/common agrees on which layer wrote
    // every visible path after every layer.
    for (upto, state) in merged.iter().enumerate() {
        let model = common::Model::build(&fx.layers[..upto]);
        let want: BTreeMap<String, usize> = model
            .fs
            .iter()
            .map(|(p, e)| (format!("/{p}"), e.layer))
            .collect();
        let got: BTreeMap<String, usize> = state
            .iter()
            .map(|(p, l)| (p.clone(), l.layer as usize))
            .collect();
        assert_eq!(got, want, "main_image after {upto} layers");
    }
}

#[test]
fn the_tui_fixtures_replay_as_they_merge() {
    check("single", tui_fixtures::single_layers()).unwrap();
    check("multi", tui_fixtures::multi_layers()).unwrap();
}

#[test]
fn the_rules_corners_replay_as_they_merge() {
    use common::Layer;
    let stacks: Vec<(&str, Vec<Layer>)> = vec![
        (
            "a file replaces an implied directory",
            vec![
                Layer::new()
                    .file("a/b/c", "x", 0o644)
                    .file("a/d", "y", 0o644),
                Layer::new().file("a", "now a file", 0o644),
                Layer::new().file("a/e", "", 0o644),
            ],
        ),
        (
            "a symlink replaces a directory with an entry",
            vec![
                Layer::new().dir("d", 0o755).file("d/f", "x", 0o644),
                Layer::new().symlink("d", "/elsewhere"),
                Layer::new().dir("d", 0o755),
            ],
        ),
        (
            "opaque directories and whiteouts",
            vec![
                Layer::new()
                    .dir("o", 0o755)
                    .file("o/lower", "x", 0o644)
                    .file("w/x/y", "y", 0o644),
                Layer::new()
                    .opaque("o")
                    .file("o/upper", "z", 0o644)
                    .whiteout("w/x"),
                Layer::new().whiteout("o").file("w/x", "file", 0o644),
            ],
        ),
        (
            "a path listed twice in one layer",
            vec![
                Layer::new().file("p", "one", 0o644),
                Layer::new()
                    .file("p", "two", 0o644)
                    .file("p", "three", 0o600),
            ],
        ),
    ];
    for (what, layers) in stacks {
        let tars: Vec<Vec<u8>> = layers.iter().map(|l| l.tar()).collect();
        check(what, indexed(&tars)).unwrap();
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_fuzz_corpus_replays_as_it_merges() {
    // Layer tars: each alone and stacked on itself, and all seeds stacked
    // in order (they are the main fixture's layers).
    let mut tars = Vec::new();
    for dir in [
        "fuzz/seeds/layer_tar",
        "tests/fuzz_regressions/layer_tar",
        "fuzz/corpus/layer_tar",
    ] {
        for p in files_in(&root().join(dir)) {
            let data = std::fs::read(&p).unwrap();
            // Inputs the indexer refuses are the fuzzers' business.
            let Ok(idx) = index_tar(&data[..]) else {
                continue;
            };
            let what = p.display().to_string();
            check(&what, vec![(meta(0), idx.clone()), (meta(1), idx)]);
            if dir == "fuzz/seeds/layer_tar" && p.extension().is_some_and(|e| e == "tar") {
                tars.push(data);
            }
        }
    }
    assert!(tars.len() >= 4, "the layer seeds are missing");
    check("the layer seeds stacked", indexed(&tars)).unwrap();

    // Archives, as the loader assembles them.
    let opts = LoadOptions {
        progress: None,
        threads: Some(1),
        ..LoadOptions::default()
    };
    let mut archives = 0;
    for dir in [
        "fuzz/seeds/archive",
        "tests/fuzz_regressions/archive",
        "fuzz/corpus/archive",
    ] {
        for p in files_in(&root().join(dir)) {
            let Ok(img) = load_archive_file(&p, None, &opts) else {
                continue;
            };
            if check(&p.display().to_string(), unmerged(&img)).is_some() {
                archives += 1;
            }
        }
    }
    assert!(archives >= 4, "only {archives} archives checked");
}
