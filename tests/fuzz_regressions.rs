//! Inputs the fuzz targets (`fuzz/`) found a panic, hang or memory blow-up
//! with, replayed through the same code as the targets
//! (`fuzz/src/lib.rs`, included below). Each must end in a clean result or
//! one clean error, quickly.
//!
//! The inputs live in `tests/fuzz_regressions/<target>/`. The ignored test
//! `write_fuzz_seeds` writes the fuzzers' seed corpus (`fuzz/seeds/`) from
//! the same fixture builders as the other tests.
#![allow(clippy::unwrap_used)]

mod common;
#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// Longer than any input takes in a debug build; a hang fails the test
/// instead of stalling the suite.
const LIMIT: Duration = Duration::from_secs(60);

/// What a fuzz target runs on one input.
type Target = fn(&[u8]) -> Result<(), String>;

fn dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target)
}

/// Run `f` on an input with a time limit; a panic in it fails the test
/// (the harness asserts the error is one line and the numbers add up).
fn run(target: &str, name: &str, f: Target) -> Result<(), String> {
    let data = std::fs::read(dir(target).join(name)).unwrap();
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(f(&data));
    });
    match rx.recv_timeout(LIMIT) {
        Ok(r) => {
            eprintln!("{target}/{name}: {:?} in {:?}", r, start.elapsed());
            r
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{target}/{name}: still running after {LIMIT:?}")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{target}/{name}: panicked"),
    }
}

/// Every saved input of a target, by file name.
fn inputs(target: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir(target)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_saved_layer_tar_input_is_handled() {
    for name in inputs("layer_tar") {
        let _ = run("layer_tar", &name, harness::layer_tar);
    }
}

#[test]
fn every_saved_layout_input_is_handled() {
    for name in inputs("layout") {
        let _ = run("layout", &name, harness::layout);
    }
}

#[test]
fn every_saved_archive_input_is_handled() {
    for name in inputs("archive") {
        let _ = run("archive", &name, harness::archive);
    }
}

#[test]
fn every_saved_registry_input_is_handled() {
    let targets: [(&str, Target); 4] = [
        ("reference", harness::reference),
        ("credentials", harness::credentials),
        ("challenge", harness::challenge),
        ("platform", harness::platform),
    ];
    for (target, f) in targets {
        for name in inputs(target) {
            let _ = run(target, &name, f);
        }
    }
}

/// The first find of the `reference` target: a suggestion that quoted NULs
/// back raw.
#[test]
fn a_reference_error_quotes_control_characters_escaped() {
    let e = layerscope::source::Reference::parse("ghd\0\0\0o/O)rgApp")
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("write ghd\\u{0}\\u{0}\\u{0}o/o)rgapp"), "{e}");
}

// ---- the seed corpus ---------------------------------------------------------

/// The committed seeds still load (a seed that fails early teaches the
/// fuzzer little); the two-image archive is the one meant to fail.
#[test]
fn the_seeds_load() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let targets: [(&str, Target); 3] = [
        ("layer_tar", harness::layer_tar),
        ("layout", harness::layout),
        ("archive", harness::archive),
    ];
    for (target, f) in targets {
        for e in std::fs::read_dir(seeds.join(target)).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let r = f(&std::fs::read(&path).unwrap());
            if name == "legacy-two-images.tar" {
                let e = r.unwrap_err();
                assert!(e.contains("pick one by tag"), "{e}");
            } else {
                assert_eq!(r, Ok(()), "{target}/{name}");
            }
        }
    }
}

/// A small image with every kind of entry the indexer and the merge know:
/// small files keep the seeds small (fuzzers mutate short inputs faster).
fn seed_image() -> Image {
    let dup = content(1, 40);
    let l1 = Layer::new()
        .dir("bin", 0o755)
        .dir("etc", 0o755)
        .dir("usr/lib", 0o755)
        .dir("var/lib/dpkg/info", 0o755)
        .dir("data/cache", 0o755)
        .file("usr/lib/os-release", OS_RELEASE, 0o644)
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file(
            "var/lib/dpkg/status",
            "Package: sh\nStatus: install ok installed\n\nPackage: gone\nStatus: deinstall ok config-files\n",
            0o644,
        )
        .file("var/lib/dpkg/info/sh.list", "/bin/sh\n/bin\n", 0o644)
        .file("bin/sh", content(2, 30), 0o755)
        .hardlink("bin/bash", "bin/sh")
        .file("data/cache/a.bin", content(3, 20), 0o644)
        .file("data/big.log", content(4, 50), 0o644)
        .file("usr/lib/libdup.so", dup.clone(), 0o644)
        .file("usr/lib/empty", Vec::new(), 0o644)
        .chardev("dev/null")
        .fifo("run/initctl");
    let l2 = Layer::new()
        .pax()
        .file("usr/lib/libdup-copy.so", dup, 0o644)
        .whiteout("data/big.log")
        .file("app/twice.txt", content(5, 11), 0o644)
        .file("app/twice.txt", content(6, 12), 0o600)
        .file(&long_path("app", "pax"), content(7, 9), 0o644)
        .symlink("app/longlink", &long_target());
    let l3 = Layer::new()
        .dot_slash()
        .dir("data/cache", 0o700)
        .opaque("data/cache")
        .file("data/cache/c.bin", content(8, 25), 0o644)
        .file("bin/sh", content(2, 30), 0o700)
        .whiteout("usr/lib")
        .file(&long_path("srv", "gnu"), content(9, 10), 0o644);
    let mut img = Image::simple(vec![l1, l2, l3, Layer::new()]);
    img.history
        .insert(1, hist("/bin/sh -c #(nop)  ENV A=1", true));
    img.history
        .push(hist("/bin/sh -c #(nop)  CMD [\"sh\"]", true));
    img.run_config = serde_json::json!({
        "Env": ["PATH=/bin", "A=1"],
        "Cmd": ["sh"],
        "User": "app",
        "ExposedPorts": {"80/tcp": {}},
    });
    img
}

/// The `layout` target's input: `WANT \0 NAME \0 CONTENT ...`.
fn layout_input(want: &str, files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = want.as_bytes().to_vec();
    for (name, data) in files {
        // Layer blobs are not read by the planner: leave them out.
        if !data.first().is_some_and(|&b| b == b'{' || b == b'[') {
            continue;
        }
        out.push(0);
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(data);
    }
    out
}

/// Writes `fuzz/seeds/<target>/`. Run it after changing the fixtures:
/// `cargo test --test fuzz_regressions -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let write = |target: &str, name: &str, data: &[u8]| {
        let d = root.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), data).unwrap();
    };
    let img = seed_image();
    let other = Image::simple(vec![Layer::new().file("x", content(10, 5), 0o644)]);

    for (i, tar) in img.tars().iter().enumerate() {
        write("layer_tar", &format!("layer{i}.tar"), tar);
    }
    let l1 = &img.tars()[0];
    write("layer_tar", "layer0.tar.gz", &compress(l1, Comp::Gzip));
    write("layer_tar", "layer0.tar.zst", &compress(l1, Comp::Zstd));

    let two: &[(&Image, &[&str])] = &[(&img, &["seed:1"]), (&other, &["other:2"])];
    let one: &[(&Image, &[&str])] = &[(&img, &["seed:1"])];
    let (legacy, _) = legacy_files(one);
    write("layout", "legacy", &layout_input("", &legacy));
    let (legacy2, _) = legacy_files(two);
    write(
        "layout",
        "legacy-two-tagged",
        &layout_input("other:2", &legacy2),
    );
    let (oci, _) = oci_files(one, &OciOpts::new(&[Comp::Gzip, Comp::Zstd]));
    write("layout", "oci", &layout_input("", &oci));
    let (oci2, _) = oci_files(two, &OciOpts::new(&[Comp::None]));
    write("layout", "oci-two-named", &layout_input("seed:1", &oci2));
    // An index whose manifest is a nested index, with a platform and an
    // attestation manifest, as buildx writes.
    let (mut nested, blobs) = oci_files(one, &OciOpts::new(&[Comp::None]));
    let inner = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": blobs.manifests[0], "size": 1,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": blobs.manifests[0], "size": 1,
             "platform": {"architecture": "unknown", "os": "unknown"}},
        ],
    }))
    .unwrap();
    let inner_digest = digest(&inner);
    nested.push((format!("blobs/sha256/{}", &inner_digest[7..]), inner));
    for (name, data) in nested.iter_mut() {
        if name == "index.json" {
            *data = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "manifests": [{
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "digest": inner_digest, "size": 1,
                    "annotations": {"org.opencontainers.image.ref.name": "1"},
                }],
            }))
            .unwrap();
        }
    }
    write("layout", "oci-nested-index", &layout_input("", &nested));

    write("archive", "legacy.tar", &legacy_archive(one));
    write("archive", "docker25.tar", &docker25_archive(one));
    let (oci, _) = oci_files(one, &OciOpts::new(&[Comp::Gzip, Comp::Zstd, Comp::None]));
    write("archive", "oci-archive.tar", &tar_files(&oci, &[]));
    // Two images, one layer repeated (a symlink in the archive), and no tag
    // asked for: a clean error that names both.
    let repeated = Image::simple(vec![img.layers[0].clone(), img.layers[0].clone()]);
    write(
        "archive",
        "legacy-repeated-layer.tar",
        &legacy_archive(&[(&repeated, &["r:1"])]),
    );
    write("archive", "legacy-two-images.tar", &legacy_archive(two));
}

// ---- findings, as the user sees them -------------------------------------------

/// Found by the `layer_tar` target on its first seed: the tar crate quotes
/// a bad header field (and the member path) in its error, and the manifest
/// names the layer; both reached the terminal raw. The CLI now prints one
/// line, control characters escaped.
#[test]
fn an_error_quoting_hostile_bytes_is_one_escaped_line() {
    let input = dir("archive").join("layer-error-quotes-control-characters.tar");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_layerscope"))
        .arg(&input)
        .arg("--json=-")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(!err.trim_end().contains(char::is_control), "{err:?}");
    assert!(
        err.contains(r"when getting cksum for b\u{1b}[2J"),
        "{err:?}"
    );
}

/// Found by reading the tar crate while the `layer_tar` target ran (the
/// fuzzer had not reached it in 10 minutes): a GNU sparse entry reads back
/// with its holes as zeros, so 3 KB of layer made the indexer hash a
/// terabyte. It is now counted at its apparent size, unread, and the next
/// entry still follows.
#[test]
fn a_sparse_file_with_a_terabyte_of_holes_is_counted_not_read() {
    let data = std::fs::read(dir("layer_tar").join("gnu-sparse-1tib-of-holes.tar")).unwrap();
    let start = Instant::now();
    let idx = layerscope::index::layer::index_tar(&data[..]).unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(idx.entries.len(), 2);
    assert_eq!(idx.size, (1 << 40) + 1 + 5);
    let after = idx.tree.lookup("after.txt").unwrap();
    assert!(idx.entries.iter().any(|e| e.node == after && e.size == 5));
}

const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// Reads per path.
type Reads = std::rc::Rc<std::cell::RefCell<std::collections::HashMap<String, usize>>>;

/// A `get` over in-memory files that counts the reads of each.
fn counting_get(files: Vec<(&'static str, String)>) -> (impl Fn(&str) -> Option<Vec<u8>>, Reads) {
    let reads = Reads::default();
    let r = reads.clone();
    let get = move |p: &str| {
        *r.borrow_mut().entry(p.to_string()).or_insert(0) += 1;
        files
            .iter()
            .find(|(n, _)| *n == p)
            .map(|(_, c)| c.clone().into_bytes())
    };
    (get, reads)
}

/// Found by review of the index walk while the `layout` target ran (its
/// inputs are too small to show it): every descriptor of a nested index
/// was read, and its bytes kept, before the walk noticed it had seen that
/// index, so index.json listing one 1 MB index 10,000 times held 10 GB.
/// The walk now refuses the repeat before reading anything.
#[test]
fn a_nested_index_listed_many_times_is_not_read_many_times() {
    let desc = format!(r#"{{"mediaType":"{INDEX_TYPE}","digest":"sha256:aa"}}"#);
    let index = format!(r#"{{"manifests":[{}]}}"#, vec![desc; 10_000].join(","));
    let nested = format!(r#"{{"manifests":[]}}{}"#, " ".repeat(1 << 20));
    let (get, reads) = counting_get(vec![("index.json", index), ("blobs/sha256/aa", nested)]);
    let e = layerscope::source::archive::plan(&get, None).unwrap_err();
    assert!(e.contains("cycle"), "{e}");
    assert!(reads.borrow().get("blobs/sha256/aa").copied().unwrap_or(0) <= 1);
}

/// Found with the one above: the names (annotations) of an index were
/// copied into every manifest below it, and all of them into the error
/// message, so a 1 MB name over 5,000 manifests took 10 GB and a message as
/// long. Names are now shared down the tree, and a message lists 20 of
/// them, each cut to 200 characters.
#[test]
fn the_names_of_an_index_are_shared_by_the_manifests_below_it() {
    let big = "n".repeat(1 << 20);
    let index = format!(
        r#"{{"manifests":[{{"mediaType":"{INDEX_TYPE}","digest":"sha256:aa","annotations":{{"org.opencontainers.image.ref.name":"{big}"}}}}]}}"#
    );
    let manifests: Vec<String> = (0..5000)
        .map(|i| format!(r#"{{"digest":"sha256:m{i}"}}"#))
        .collect();
    let nested = format!(r#"{{"manifests":[{}]}}"#, manifests.join(","));
    let (get, _) = counting_get(vec![("index.json", index), ("blobs/sha256/aa", nested)]);
    let start = Instant::now();
    for want in [None, Some(big.as_str())] {
        let e = layerscope::source::archive::plan(&get, want).unwrap_err();
        assert!(e.contains("holds 5000 images"), "{}", &e[..200]);
        assert!(e.contains("and 4980 more"), "{}", &e[e.len() - 200..]);
        assert!(e.len() < 10_000, "{} bytes", e.len());
    }
    let e = layerscope::source::archive::plan(&get, Some("other")).unwrap_err();
    assert!(e.starts_with("no image named \"other\""), "{}", &e[..200]);
    assert!(start.elapsed() < Duration::from_secs(20));
}

/// Found by review after the `archive` run: the merge walks a directory's
/// whole subtree for every opaque marker or whiteout, and a layer could
/// repeat one marker as often as it liked, so 20,000 files under a
/// directory and 20,000 copies of its marker (a 30 MB archive) took 14 s
/// per load, and grew with the square. Repeats are dropped when indexing.
#[test]
fn a_repeated_opaque_marker_or_whiteout_counts_once() {
    let n = 20_000;
    let mut lower = Layer::new();
    for i in 0..n {
        lower = lower.file(&format!("d/f{i}"), vec![b'x'], 0o644);
    }
    let mut upper = Layer::new();
    for _ in 0..n {
        upper = upper.opaque("d").whiteout("e");
    }
    let img = Image::simple(vec![lower.file("e/x", vec![b'y'], 0o644), upper]);
    let start = Instant::now();
    let r = layerscope::source::archive::load_archive_stream(
        std::io::Cursor::new(legacy_archive(&[(&img, &[])])),
        "repeats",
        None,
        &layerscope::source::LoadOptions::default(),
    )
    .unwrap();
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(r.layers[1].opaque.len(), 1);
    assert_eq!(r.layers[1].whiteouts.len(), 1);
    assert_eq!(r.layers[1].counts.removed, 1);
    assert_eq!(r.hidden.len(), n + 1);
}
