//! Inputs from the review of the whole change: hostile or unusual archives
//! and the edge cases they exposed. Each must give the right numbers or one
//! clean error, never a hang or a panic.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use layerscope::analysis::Analysis;
use layerscope::analysis::compare::compare;
use layerscope::source::{ImageRef, LoadOptions, load_saved};
use tempfile::TempDir;

fn load(path: &std::path::Path) -> Result<layerscope::image::Image, String> {
    let r = ImageRef::parse(&path.display().to_string()).map_err(|e| e.to_string())?;
    load_saved(&r, &LoadOptions::default()).map_err(|e| e.to_string())
}

fn archive(dir: &TempDir, name: &str, img: &Image) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, legacy_archive(&[(img, &[])])).unwrap();
    p
}

#[test]
fn a_file_replacing_an_implied_directory_hides_its_content() {
    let dir = TempDir::new().unwrap();
    // Layer 1 has d/x but no entry for d itself; layer 2 makes d a file.
    let img = Image::simple(vec![
        Layer::new().file("d/x", content(1, 30), 0o644),
        Layer::new().file("d", content(2, 10), 0o644),
    ]);
    let a = Analysis::new(load(&archive(&dir, "a.tar", &img)).unwrap());
    assert_eq!(a.waste.final_bytes, 10);
    assert_eq!(a.waste.deleted_bytes, 30);
    assert!(a.image.final_entry("d/x").is_none());
}

#[test]
fn a_cycle_of_oci_indexes_is_an_error_not_a_hang() {
    let dir = TempDir::new().unwrap();
    let digest = format!("sha256:{}", "a".repeat(64));
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{digest}","size":1}}]}}"#
    );
    std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
    std::fs::write(
        dir.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("index.json"), &index).unwrap();
    std::fs::write(dir.path().join("blobs/sha256").join("a".repeat(64)), &index).unwrap();
    let e = load(dir.path()).unwrap_err();
    assert!(e.contains("cycle"), "{e}");
}

#[test]
fn manifest_paths_cannot_leave_the_archive() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("oci-layout"), "{}").unwrap();
    std::fs::write(dir.path().join("index.json"), r#"{"manifests":[]}"#).unwrap();
    std::fs::write(
        dir.path().join("manifest.json"),
        r#"[{"Config":"../../../../etc/hostname","RepoTags":["x:1"],"Layers":["../../../../dev/zero"]}]"#,
    )
    .unwrap();
    let e = load(dir.path()).unwrap_err();
    assert!(e.contains("outside the archive"), "{e}");
}

#[test]
fn a_re_pointed_symlink_is_a_change() {
    let dir = TempDir::new().unwrap();
    let a = Image::simple(vec![Layer::new().symlink("app/cur", "v1")]);
    let b = Image::simple(vec![Layer::new().symlink("app/cur", "v2")]);
    let a = Analysis::new(load(&archive(&dir, "a.tar", &a)).unwrap());
    let b = Analysis::new(load(&archive(&dir, "b.tar", &b)).unwrap());
    let c = compare(&a, &b);
    assert_eq!((c.files.changed, c.files.unchanged), (1, 0));
}

#[test]
fn an_inode_kept_by_a_hardlink_is_a_duplicate_of_its_new_copy() {
    let dir = TempDir::new().unwrap();
    // chmod of `a` copies it up; the old inode stays visible through `b`.
    let img = Image::simple(vec![
        Layer::new()
            .file("a", content(1, 50), 0o644)
            .hardlink("b", "a"),
        Layer::new().file("a", content(1, 50), 0o755),
    ]);
    let a = Analysis::new(load(&archive(&dir, "h.tar", &img)).unwrap());
    assert_eq!(
        a.waste.hidden_bytes(),
        0,
        "the old inode is still visible as b"
    );
    assert_eq!(a.waste.final_bytes, 100);
    assert_eq!(a.waste.duplicate_bytes, 50);
}

#[test]
fn too_many_layers_is_one_error() {
    let dir = TempDir::new().unwrap();
    let layer = Layer::new().file("x", content(1, 5), 0o644);
    let img = Image::simple(vec![layer; 4097]);
    let e = load(&archive(&dir, "many.tar", &img)).unwrap_err();
    assert!(e.contains("at most 4096"), "{e}");
}

#[test]
fn a_path_longer_than_path_max_is_refused() {
    let dir = TempDir::new().unwrap();
    let deep = vec!["d"; 2100].join("/");
    let img = Image::simple(vec![Layer::new().file(&deep, content(1, 5), 0o644)]);
    let e = load(&archive(&dir, "deep.tar", &img)).unwrap_err();
    assert!(e.contains("longer than 4096"), "{e}");
}

fn gate(path: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_layerscope"))
        .arg(path)
        .args(["--ci"])
        .args(args)
        .env_remove("CI")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn min_efficiency_exactly_at_its_limit_passes() {
    let dir = TempDir::new().unwrap();
    // 100 bytes shipped, 7 of them overwritten: 93% efficient exactly
    // (1 - 7/100 is just below 0.93 in floating point).
    let img = Image::simple(vec![
        Layer::new()
            .file("a", content(1, 7), 0o644)
            .file("b", content(2, 86), 0o644),
        Layer::new().file("a", content(3, 7), 0o644),
    ]);
    let p = archive(&dir, "e.tar", &img);
    assert_eq!(gate(&p, &["--min-efficiency", "0.93"]).0, 0);
    assert_eq!(gate(&p, &["--min-efficiency", "93%"]).0, 0);
    assert_eq!(gate(&p, &["--min-efficiency", "0.931"]).0, 1);
}

#[test]
fn a_relative_ignore_pattern_matches_at_any_depth() {
    let dir = TempDir::new().unwrap();
    let img = Image::simple(vec![
        Layer::new().file("srv/a", content(1, 100), 0o644),
        Layer::new().file("srv/a", content(2, 100), 0o644),
    ]);
    let p = archive(&dir, "i.tar", &img);
    assert_eq!(gate(&p, &["--max-waste", "0"]).0, 1);
    assert_eq!(gate(&p, &["--max-waste", "0", "--ignore", "a"]).0, 0);
    assert_eq!(gate(&p, &["--max-waste", "0", "--ignore", "/srv/*"]).0, 0);
    assert_eq!(gate(&p, &["--max-waste", "0", "--ignore", "/a"]).0, 1);
}
