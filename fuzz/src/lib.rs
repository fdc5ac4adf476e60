//! What each fuzz target runs, in one place: the targets in `fuzz_targets/`
//! call these functions, and `tests/fuzz_regressions.rs` includes this file
//! (`#[path]`) to replay every saved crash input through the same code.
//!
//! Each function feeds bytes to one entry of layerscope and checks what
//! the CLI relies on: no panic, an error is one non-empty line, and a
//! loaded image adds up (shipped bytes = visible + hidden bytes) and
//! serializes to a JSON report.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use layerscope::analysis::Analysis;
use layerscope::analysis::classify::RuleSet;
use layerscope::image::{Image, ImageFacts};
use layerscope::index::layer::{LayerIndex, MAX_CAPTURED_IMAGE, index_tar};
use layerscope::index::merge::{LayerMeta, build_image};
use layerscope::index::tree::PathTree;
use layerscope::output::text;
use layerscope::report::Report;
use layerscope::source::LoadOptions;
use layerscope::source::archive::{assemble, load_archive_file, load_archive_stream, plan};
use layerscope::source::blob::index_blob;

/// Layers the `layout` target indexes (empty ones) for a plan it accepted;
/// the loaders cap plans at 4096 layers, this keeps each run short.
const LAYOUT_LAYERS: usize = 256;

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(RuleSet::builtin)
}

fn options() -> LoadOptions {
    LoadOptions {
        verify: true,
        progress: None,
        // One indexing thread: the fuzzer runs on one core.
        threads: Some(1),
        ..LoadOptions::default()
    }
}

/// An error as the CLI prints it (after `layerscope: `): one line that
/// says something, with no control characters.
fn check_error(what: &str, shown: &str) {
    assert!(
        !shown.trim().is_empty(),
        "{what}: empty error message: {shown:?}"
    );
    assert!(
        !shown.contains(char::is_control),
        "{what}: error message is not one clean line: {shown:?}"
    );
}

/// A loader's inner error (a `String`) as the loaders hand it to the CLI.
fn check_inner_error(what: &str, msg: &str) {
    assert!(!msg.trim().is_empty(), "{what}: empty error message");
    check_error(
        what,
        &layerscope::Error::input("image.tar", msg).to_string(),
    );
}

/// Analyse an image and render what the CLI renders: JSON report, text
/// summary and findings. Checks the byte accounting on the way.
fn analyse(image: Image) {
    let a = Analysis::with_rules(image, rules());
    let w = &a.waste;
    assert_eq!(
        w.total_bytes,
        w.final_bytes + w.hidden_bytes(),
        "shipped bytes must be visible or hidden"
    );
    let report = Report::new(&[&a]);
    let json = serde_json::to_vec(&report).expect("the report serializes");
    serde_json::from_slice::<serde_json::Value>(&json).expect("the report is valid JSON");
    let mut out = std::io::sink();
    text::write_summary(&mut out, &a).expect("text summary");
    text::write_findings(&mut out, &a, 12).expect("text findings");
}

fn meta(i: usize) -> LayerMeta {
    LayerMeta {
        diff_id: format!("sha256:{i:064x}"),
        blob: format!("layer{i}"),
        created_by: Some(format!("/bin/sh -c layer {i}")),
        ..Default::default()
    }
}

/// `layer_tar`: the bytes as one layer's tar, indexed directly and through
/// the blob path (compression by magic bytes, diff_id). A layer that
/// indexes is merged alone and stacked on itself (so its whiteouts and
/// opaque markers hide its own files), then analysed.
pub fn layer_tar(data: &[u8]) -> Result<(), String> {
    // index_tar's errors reach the user only through index_blob's.
    let direct = index_tar(Cursor::new(data)).map_err(|e| e.to_string());
    let budget = AtomicU64::new(MAX_CAPTURED_IMAGE);
    let blob = index_blob(Cursor::new(data), true, &budget);
    if let Err(e) = &blob {
        check_inner_error("index_blob", e);
    }
    let idx = match (direct, blob) {
        (Ok(idx), _) | (Err(_), Ok(idx)) => idx,
        (Err(e), Err(_)) => return Err(e),
    };
    // A hardlink to nothing is refused by the merge, as by Docker.
    for layers in [
        vec![(meta(0), idx.clone())],
        vec![(meta(0), idx.clone()), (meta(1), idx)],
    ] {
        match build_image(ImageFacts::default(), layers) {
            Ok(image) => analyse(image),
            Err(e) => check_inner_error("build_image", &e),
        }
    }
    Ok(())
}

/// `layout`: the bytes as a set of metadata files, split on NUL:
/// `WANT \0 NAME \0 CONTENT \0 NAME \0 CONTENT ...` (an empty WANT asks for
/// no particular tag). [`plan`] reads `manifest.json` or `index.json`, the
/// nested indexes, the OCI manifest and the image config from them; an
/// accepted plan is assembled with empty layers (history, diff_ids,
/// config facts) and analysed.
pub fn layout(data: &[u8]) -> Result<(), String> {
    let mut parts = data.split(|&b| b == 0);
    let want = parts
        .next()
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned());
    let mut files: Vec<(String, &[u8])> = Vec::new();
    while let (Some(name), Some(content)) = (parts.next(), parts.next()) {
        files.push((String::from_utf8_lossy(name).into_owned(), content));
    }
    let get = |p: &str| -> Option<Vec<u8>> {
        files
            .iter()
            .rev()
            .find(|(n, _)| n == p)
            .map(|(_, c)| c.to_vec())
    };
    let result = plan(&get, want.as_deref()).and_then(|p| {
        if p.layers.len() > LAYOUT_LAYERS {
            return Ok(None);
        }
        let layers = (0..p.layers.len())
            .map(|_| LayerIndex {
                tree: PathTree::new(),
                ..Default::default()
            })
            .collect();
        assemble(p, layers, "fuzz", &options()).map(Some)
    });
    match result {
        Ok(Some(image)) => {
            analyse(image);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => {
            check_inner_error("plan", &e);
            Err(e)
        }
    }
}

/// A file of our own for one run of the `archive` target.
fn scratch_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("layerscope-fuzz-{}-{n}.tar", std::process::id()))
}

/// `archive`: the bytes as a `docker save` or `oci-archive` file on disk,
/// through the whole pipeline the CLI runs (load, merge, analysis, JSON
/// and text reports), and the same bytes as the engine's export stream.
pub fn archive(data: &[u8]) -> Result<(), String> {
    let path = scratch_path();
    std::fs::write(&path, data).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let from_file = load_archive_file(&path, None, &options()).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&path);
    let from_stream =
        load_archive_stream(Cursor::new(data), "fuzz", None, &options()).map_err(|e| e.to_string());
    let mut first_err = None;
    for (what, r) in [("file", from_file), ("stream", from_stream)] {
        match r {
            Ok(image) => analyse(image),
            Err(e) => {
                check_error(what, &e);
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}
