//! Malformed inputs, generated here byte by byte and run through the real
//! binary. Each bad input must give exit code 2 and exactly one line on
//! stderr that names the problem (the file, the layer or member, the entry
//! and what is wrong with it) — no panic, no backtrace, no hang — and a
//! `--json` report must neither appear nor replace an existing one.
//!
//! Inputs Docker itself loads (non-UTF-8 names, symlink loops, a path
//! listed twice in one layer, a whiteout of nothing, absolute member names,
//! `..` that stays inside the root, no end-of-archive marker) are real
//! images: those must be analysed, and the numbers are checked against
//! values computed here. They are in the second half of this file.
//!
//! Memory is bounded where a small input could make it grow: decompression
//! bombs run under `prlimit --as` (address space), far below what the
//! decompressed data would need.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use common::{Comp, Files, compress, content, digest, sha256_hex, tar_files, write_files};
use serde_json::{Value, json};
use tempfile::TempDir;

/// No case may take longer (they take milliseconds; the bombs seconds).
const TIMEOUT: Duration = Duration::from_secs(120);
const MTIME: u64 = 1_700_000_000;

// ---- layer tars, header by header ------------------------------------------

/// One GNU header block with a correct checksum.
fn header(name: &[u8], flag: u8, size: u64, link: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        let n = name.len().min(100);
        old.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        old.linkname[..l].copy_from_slice(&link[..l]);
    }
    h.set_mode(if flag == b'5' { 0o755 } else { 0o644 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_size(size);
    h.set_entry_type(tar::EntryType::new(flag));
    h.set_cksum();
    h.as_bytes().to_vec()
}

fn pad(v: &mut Vec<u8>) {
    let n = v.len().div_ceil(512) * 512;
    v.resize(n, 0);
}

/// A layer tar written member by member, names as raw bytes.
#[derive(Clone, Default)]
struct Tar(Vec<u8>);

impl Tar {
    fn new() -> Self {
        Tar(Vec::new())
    }
    fn raw(mut self, name: &[u8], flag: u8, body: &[u8], link: &[u8]) -> Self {
        self.0.extend(header(name, flag, body.len() as u64, link));
        self.0.extend_from_slice(body);
        pad(&mut self.0);
        self
    }
    fn dir(self, name: &str) -> Self {
        self.raw(format!("{name}/").as_bytes(), b'5', &[], b"")
    }
    fn file(self, name: &str, body: &[u8]) -> Self {
        self.raw(name.as_bytes(), b'0', body, b"")
    }
    fn symlink(self, name: &str, target: &str) -> Self {
        self.raw(name.as_bytes(), b'2', &[], target.as_bytes())
    }
    fn hardlink(self, name: &str, target: &str) -> Self {
        self.raw(name.as_bytes(), b'1', &[], target.as_bytes())
    }
    /// A GNU long name member: the next member takes this name.
    fn long_name(self, name: &[u8]) -> Self {
        let mut body = name.to_vec();
        body.push(0);
        self.raw(b"././@LongLink", b'L', &body, b"")
    }
    /// A PAX extended header for the next member.
    fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let mut body = Vec::new();
        for (k, v) in records {
            let base = k.len() + v.len() + 3;
            let mut len = base + 1;
            while len != base + len.to_string().len() {
                len = base + len.to_string().len();
            }
            body.extend(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        self.raw(b"PaxHeaders.0/x", b'x', &body, b"")
    }
    /// With the end-of-archive marker.
    fn end(mut self) -> Vec<u8> {
        self.0.extend([0u8; 1024]);
        self.0
    }
}

/// A small, well-formed first layer.
fn base_layer() -> Tar {
    Tar::new()
        .dir("etc")
        .file("etc/hello", &content(1, 3000))
        .dir("app")
        .file("app/server", &content(2, 5000))
}

// ---- zstd frames by hand -----------------------------------------------------

/// Part of a hand-made zstd frame: bytes as they are, or one byte repeated.
enum Z<'a> {
    Raw(&'a [u8]),
    Run(u8, u64),
}

/// A zstd frame of raw and RLE blocks: a stream that decompresses to
/// gigabytes takes kilobytes, and no time to make.
fn zstd_frame(parts: &[Z]) -> Vec<u8> {
    const MAX: u64 = 128 * 1024;
    let mut blocks: Vec<(u8, u64, Vec<u8>)> = Vec::new();
    for p in parts {
        match p {
            Z::Raw(b) => {
                for c in b.chunks(MAX as usize) {
                    blocks.push((0, c.len() as u64, c.to_vec()));
                }
            }
            Z::Run(byte, n) => {
                let mut n = *n;
                while n > 0 {
                    let k = n.min(MAX);
                    blocks.push((1, k, vec![*byte]));
                    n -= k;
                }
            }
        }
    }
    // Magic, a frame header with no content size, a 128 KiB window.
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3];
    let last = blocks.len().saturating_sub(1);
    for (i, (kind, size, data)) in blocks.into_iter().enumerate() {
        let h = u32::from(i == last) | (u32::from(kind) << 1) | ((size as u32) << 3);
        out.extend(&h.to_le_bytes()[..3]);
        out.extend(data);
    }
    out
}

// ---- images ------------------------------------------------------------------

fn config(diff_ids: &[String]) -> Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/app/server"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": diff_ids.iter().enumerate()
            .map(|(i, _)| json!({"created_by": format!("/bin/sh -c layer {i}")}))
            .collect::<Vec<_>>(),
    })
}

/// Where `docker save` (legacy layout) puts layer `i`.
fn legacy_layer(i: usize) -> String {
    format!("{}/layer.tar", sha256_hex(format!("layer {i}").as_bytes()))
}

/// The files of a legacy `docker save` archive with these layer tars:
/// layers first, then the config, then `manifest.json`, as Docker writes.
fn save_files(layers: &[Vec<u8>]) -> Files {
    let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    save_files_with(layers, config(&diff_ids))
}

fn save_files_with(layers: &[Vec<u8>], config: Value) -> Files {
    let cfg = serde_json::to_vec(&config).unwrap();
    let cfg_name = format!("{}.json", sha256_hex(&cfg));
    let mut files: Files = layers
        .iter()
        .enumerate()
        .map(|(i, l)| (legacy_layer(i), l.clone()))
        .collect();
    files.push((cfg_name.clone(), cfg));
    let manifest = json!([{
        "Config": cfg_name,
        "RepoTags": ["bad:1"],
        "Layers": (0..layers.len()).map(legacy_layer).collect::<Vec<_>>(),
    }]);
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    files
}

fn config_name(files: &Files) -> String {
    files
        .iter()
        .find(|f| f.0.ends_with(".json") && f.0 != "manifest.json")
        .unwrap()
        .0
        .clone()
}

fn save(layers: &[Vec<u8>]) -> Vec<u8> {
    tar_files(&save_files(layers), &[])
}

/// An OCI layout: `oci-layout`, `index.json`, blobs. `edit` may change the
/// manifest before it is hashed. Returns the files and the layer blob paths.
fn oci_files(layers: &[(Vec<u8>, &str)], edit: impl FnOnce(&mut Value)) -> (Files, Vec<String>) {
    let mut files: Files = Vec::new();
    let mut put = |data: Vec<u8>| -> (String, usize) {
        let d = digest(&data);
        let n = data.len();
        let path = format!("blobs/sha256/{}", &d[7..]);
        if !files.iter().any(|f| f.0 == path) {
            files.push((path, data));
        }
        (d, n)
    };
    // Diff ids are not checked without --verify; any digest will do.
    let diff_ids: Vec<String> = layers.iter().map(|(b, _)| digest(b)).collect();
    let mut descs = Vec::new();
    let mut paths = Vec::new();
    for (blob, media) in layers {
        let (d, n) = put(blob.clone());
        paths.push(format!("blobs/sha256/{}", &d[7..]));
        descs.push(json!({"mediaType": media, "digest": d, "size": n}));
    }
    let (cd, cn) = put(serde_json::to_vec(&config(&diff_ids)).unwrap());
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
        "layers": descs,
    });
    edit(&mut manifest);
    let (md, mn) = put(serde_json::to_vec(&manifest).unwrap());
    files.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": mn,
        "annotations": {"org.opencontainers.image.ref.name": "bad"},
    }]});
    files.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
    (files, paths)
}

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Where a member of an outer archive lies: (header offset, data offset, size).
fn member(archive: &[u8], name: &str) -> (usize, usize, usize) {
    let mut ar = tar::Archive::new(archive);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == name {
            return (
                e.raw_header_position() as usize,
                e.raw_file_position() as usize,
                e.size() as usize,
            );
        }
    }
    panic!("no member {name}");
}

// ---- running the binary ------------------------------------------------------

struct Case {
    dir: TempDir,
}

impl Case {
    fn new() -> Case {
        let dir = TempDir::new().unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        Case { dir }
    }
    /// Write an input file; returns its path as an argument.
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    }
    /// Write an OCI layout directory.
    fn layout(&self, name: &str, files: &Files) -> String {
        let p = self.dir.path().join(name);
        write_files(&p, files);
        p.display().to_string()
    }
    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
}

fn run(cmd: &mut Command) -> (Output, Duration) {
    let t = Instant::now();
    let out = cmd
        .env_remove("CI")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .timeout(TIMEOUT)
        .output()
        .unwrap();
    let took = t.elapsed();
    assert!(
        took < TIMEOUT,
        "timed out after {took:?}: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out, took)
}

fn layerscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_layerscope"))
}

/// Check one failed run: exit 2, nothing on stdout, one line on stderr that
/// starts with `layerscope: ` and holds every needle.
fn one_line(out: &Output, what: &str, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: exit code; stderr: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{what}: stdout {:?}", out.stdout);
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bad), "{what}: {bad:?} in {stderr}");
    }
    assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr:?}");
    assert!(stderr.ends_with('\n'), "{what}: {stderr:?}");
    assert!(stderr.starts_with("layerscope: "), "{what}: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{what}: {n:?} not in {stderr}");
    }
    stderr
}

/// Run `layerscope INPUT ARGS --json out/report.json` twice, once with no
/// report and once with an earlier report in place: both must fail with
/// one line naming every needle, leave no report (or the earlier one
/// untouched) and no temporary file.
fn fails(case: &Case, input: &str, args: &[&str], needles: &[&str]) -> String {
    let report = case.out().join("report.json");
    let listing = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(case.out())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let json_arg = report.display().to_string();
    let mut all: Vec<&str> = vec![input];
    all.extend(args);
    all.extend(["--json", &json_arg]);

    let (out, _) = run(layerscope().args(&all));
    let line = one_line(&out, input, needles);
    assert!(
        listing().is_empty(),
        "no report, no temp file: {:?}",
        listing()
    );

    let earlier = b"{\"earlier\": true}\n";
    std::fs::write(&report, earlier).unwrap();
    let (out, _) = run(layerscope().args(&all));
    let again = one_line(&out, input, needles);
    assert_eq!(line, again, "the same error both times");
    assert_eq!(std::fs::read(&report).unwrap(), earlier, "report untouched");
    assert_eq!(listing(), ["report.json"]);
    eprint!("{line}");
    line
}

/// Run `layerscope INPUT --json -` and return the report; it must succeed
/// without a word on stderr.
fn succeeds(input: &str) -> Value {
    let (out, _) = run(layerscope().args([input, "--json", "-"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{input}: {stderr}");
    assert!(stderr.is_empty(), "{input}: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn totals(report: &Value) -> &Value {
    &report["images"][0]["totals"]
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

// ==== errors: the outer archive ===============================================

#[test]
fn e01_an_empty_file() {
    let c = Case::new();
    let input = c.file("empty.tar", b"");
    fails(&c, &input, &[], &[&input, "empty file"]);
}

#[test]
fn e02_an_empty_archive() {
    // Only the end-of-archive marker: a tar, but with nothing in it.
    let c = Case::new();
    let input = c.file("empty.tar", &[0u8; 1024]);
    fails(&c, &input, &[], &[&input, "empty archive"]);
}

#[test]
fn e03_not_a_tar_at_all() {
    let c = Case::new();
    let input = c.file("notes.tar", &b"just some text, not an archive\n".repeat(40));
    fails(&c, &input, &[], &[&input, "not a tar archive"]);
}

#[test]
fn e04_archive_truncated_inside_a_header() {
    let c = Case::new();
    let full = save(&[base_layer().end()]);
    let (hdr, _, _) = member(&full, "manifest.json");
    let input = c.file("cut-header.tar", &full[..hdr + 200]);
    fails(
        &c,
        &input,
        &[],
        &[
            &input,
            "truncated archive",
            "inside a tar header",
            "after member",
        ],
    );
}

#[test]
fn e05_archive_truncated_inside_a_member() {
    let c = Case::new();
    let full = save(&[
        base_layer().end(),
        Tar::new().file("big", &content(3, 50_000)).end(),
    ]);
    let name = legacy_layer(1);
    let (_, data, size) = member(&full, &name);
    let input = c.file("cut-body.tar", &full[..data + size / 2]);
    fails(&c, &input, &[], &[&input, "truncated archive", &name]);
}

#[test]
fn e06_archive_truncated_inside_its_end_marker() {
    // Every member is whole; the file stops 100 bytes into the zero block
    // that ends it. Docker's loader (Go's archive/tar) refuses this too.
    let c = Case::new();
    let full = save(&[base_layer().end()]);
    let input = c.file("cut-end.tar", &full[..full.len() - 1024 + 100]);
    fails(
        &c,
        &input,
        &[],
        &[&input, "truncated archive", "end-of-archive marker"],
    );
}

#[test]
fn e07_archive_header_with_a_bad_checksum() {
    let c = Case::new();
    let mut full = save(&[base_layer().end()]);
    let (hdr, _, _) = member(&full, "manifest.json");
    full[hdr + 3] ^= 0x20; // "manifest.json" -> "maNifest.json", checksum kept
    let input = c.file("checksum.tar", &full);
    fails(
        &c,
        &input,
        &[],
        &[&input, "bad checksum", &format!("at byte {hdr}")],
    );
}

#[test]
fn e08_member_declares_far_more_than_the_file_holds() {
    // The header of the layer says 64 GiB; the file holds a few kilobytes.
    let c = Case::new();
    let mut full = save(&[base_layer().end()]);
    let name = legacy_layer(0);
    let (hdr, _, _) = member(&full, &name);
    let mut h = tar::Header::from_byte_slice(&full[hdr..hdr + 512]).clone();
    h.set_size(64 << 30);
    h.set_cksum();
    full[hdr..hdr + 512].copy_from_slice(h.as_bytes());
    let input = c.file("huge-member.tar", &full);
    fails(
        &c,
        &input,
        &[],
        &[&input, "truncated archive", &name, "68719476736 bytes"],
    );
}

// ==== errors: the manifest, the config, the index ===============================

#[test]
fn e09_manifest_names_a_missing_layer() {
    let c = Case::new();
    let mut files = save_files(&[base_layer().end(), Tar::new().file("x", b"x").end()]);
    let gone = legacy_layer(1);
    files.retain(|f| f.0 != gone);
    let input = c.file("no-layer.tar", &tar_files(&files, &[]));
    fails(&c, &input, &[], &[&input, &gone, "missing"]);
}

#[test]
fn e10_manifest_names_a_missing_config() {
    let c = Case::new();
    let mut files = save_files(&[base_layer().end()]);
    let cfg = config_name(&files);
    files.retain(|f| f.0 != cfg);
    let input = c.file("no-config.tar", &tar_files(&files, &[]));
    fails(&c, &input, &[], &[&input, &cfg, "missing"]);
}

#[test]
fn e11_oci_index_names_a_missing_manifest_blob() {
    let c = Case::new();
    let (mut files, _) = oci_files(&[(base_layer().end(), TAR)], |_| {});
    let index: Value =
        serde_json::from_slice(&files.iter().find(|f| f.0 == "index.json").unwrap().1).unwrap();
    let m = format!(
        "blobs/sha256/{}",
        &index["manifests"][0]["digest"].as_str().unwrap()[7..]
    );
    files.retain(|f| f.0 != m);
    let input = c.layout("oci", &files);
    fails(&c, &input, &[], &[&input, &m, "missing"]);
}

#[test]
fn e12_oci_manifest_names_a_missing_layer_blob() {
    let c = Case::new();
    let (mut files, layers) = oci_files(
        &[
            (base_layer().end(), TAR),
            (Tar::new().file("x", b"x").end(), TAR),
        ],
        |_| {},
    );
    files.retain(|f| f.0 != layers[1]);
    let input = c.file("oci.tar", &tar_files(&files, &[]));
    fails(&c, &input, &[], &[&input, "layer 2", &layers[1], "missing"]);
}

#[test]
fn e13_wrong_diff_id_with_verify() {
    let c = Case::new();
    let layers = [base_layer().end(), Tar::new().file("x", b"x").end()];
    let mut ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    ids[1] = digest(b"some other layer");
    let files = save_files_with(&layers, config(&ids));
    let input = c.file("diff-id.tar", &tar_files(&files, &[]));
    fails(
        &c,
        &input,
        &["--verify"],
        &[&input, "layer 2", "does not match its diff_id", &ids[1]],
    );
}

#[test]
fn e14_a_diff_id_that_is_not_a_digest() {
    let c = Case::new();
    let layers = [base_layer().end()];
    let files = save_files_with(&layers, config(&["sha256:not-hex".to_string()]));
    let input = c.file("diff-id-format.tar", &tar_files(&files, &[]));
    fails(
        &c,
        &input,
        &[],
        &[
            &input,
            "diff_id for layer 1",
            "sha256:not-hex",
            "not a digest",
        ],
    );
}

#[test]
fn e15_fewer_diff_ids_than_layers() {
    let c = Case::new();
    let layers = [base_layer().end(), Tar::new().file("x", b"x").end()];
    let files = save_files_with(&layers, config(&[digest(&layers[0])]));
    let input = c.file("diff-id-count.tar", &tar_files(&files, &[]));
    fails(&c, &input, &[], &[&input, "2 layers", "1 diff_ids"]);
}

#[test]
fn e16_an_unknown_layer_media_type() {
    let c = Case::new();
    let (files, layers) = oci_files(
        &[(base_layer().end(), "application/vnd.example.layer.v9+lzip")],
        |_| {},
    );
    let input = c.layout("oci", &files);
    fails(
        &c,
        &input,
        &[],
        &[
            &input,
            &layers[0][13..],
            "unknown media type application/vnd.example.layer.v9+lzip",
        ],
    );
}

#[test]
fn e17_an_artifact_that_is_not_a_container_image() {
    // A Helm chart pushed as an OCI artifact: its config is not an image's.
    let c = Case::new();
    let (files, _) = oci_files(&[(base_layer().end(), TAR)], |m| {
        m["config"]["mediaType"] = json!("application/vnd.cncf.helm.config.v1+json");
    });
    let input = c.layout("oci", &files);
    fails(
        &c,
        &input,
        &[],
        &[
            &input,
            "not a container image",
            "application/vnd.cncf.helm.config.v1+json",
        ],
    );
}

#[test]
fn e18_malformed_manifest_json() {
    let c = Case::new();
    let mut files = save_files(&[base_layer().end()]);
    let m = files.iter_mut().find(|f| f.0 == "manifest.json").unwrap();
    m.1 = b"Config: abc.json\nLayers: [l/layer.tar]\n".to_vec(); // YAML, not JSON
    let input = c.file("manifest-yaml.tar", &tar_files(&files, &[]));
    fails(&c, &input, &[], &[&input, "manifest.json", "invalid JSON"]);
}

#[test]
fn e19_malformed_config_json() {
    let c = Case::new();
    let mut files = save_files(&[base_layer().end()]);
    let cfg = config_name(&files);
    let f = files.iter_mut().find(|f| f.0 == cfg).unwrap();
    f.1.truncate(f.1.len() / 2); // cut mid-object
    let input = c.file("config-cut.tar", &tar_files(&files, &[]));
    fails(&c, &input, &[], &[&input, &cfg, "invalid JSON"]);
}

#[test]
fn e20_malformed_index_json() {
    let c = Case::new();
    let (mut files, _) = oci_files(&[(base_layer().end(), TAR)], |_| {});
    files.iter_mut().find(|f| f.0 == "index.json").unwrap().1 = b"{\"manifests\": [}".to_vec();
    let input = c.layout("oci", &files);
    fails(&c, &input, &[], &[&input, "index.json", "invalid JSON"]);
}

#[test]
fn e21_manifest_json_of_the_wrong_shape() {
    let c = Case::new();
    let mut files = save_files(&[base_layer().end()]);
    let m = files.iter_mut().find(|f| f.0 == "manifest.json").unwrap();
    m.1 = br#"{"Config": "x.json", "Layers": "l/layer.tar"}"#.to_vec();
    let input = c.file("manifest-object.tar", &tar_files(&files, &[]));
    fails(
        &c,
        &input,
        &[],
        &[
            &input,
            "manifest.json",
            "invalid JSON",
            "expected a sequence",
        ],
    );
}

#[test]
fn e22_oci_blob_smaller_than_its_descriptor_says() {
    // The manifest declares 1 GB for a layer of a few kilobytes.
    let c = Case::new();
    let (files, layers) = oci_files(&[(base_layer().end(), TAR)], |m| {
        m["layers"][0]["size"] = json!(1_000_000_000u64);
    });
    let input = c.layout("oci", &files);
    fails(
        &c,
        &input,
        &[],
        &[&input, "layer 1", &layers[0], "declares 1000000000 bytes"],
    );
}

// ==== errors: layer tars ========================================================

/// A docker save archive whose second layer is `bad` (the first is fine).
fn with_bad_layer(c: &Case, name: &str, bad: Vec<u8>) -> String {
    c.file(name, &save(&[base_layer().end(), bad]))
}

#[test]
fn e23_layer_truncated_inside_a_header() {
    let c = Case::new();
    let mut bad = Tar::new().file("a.txt", &content(4, 700)).0;
    bad.extend(&header(b"b.txt", b'0', 10, b"")[..300]);
    let input = with_bad_layer(&c, "layer-cut-header.tar", bad);
    fails(
        &c,
        &input,
        &[],
        &[
            &input,
            "layer 2",
            &legacy_layer(1),
            "truncated",
            "inside a tar header",
            "a.txt",
        ],
    );
}

#[test]
fn e24_layer_truncated_inside_a_file() {
    let c = Case::new();
    let full = Tar::new().file("data.bin", &content(5, 20_000)).end();
    let bad = full[..512 + 7000].to_vec();
    let input = with_bad_layer(&c, "layer-cut-body.tar", bad);
    fails(
        &c,
        &input,
        &[],
        &[
            &input,
            "layer 2",
            "truncated",
            "entry data.bin",
            "7000",
            "20000",
        ],
    );
}

#[test]
fn e25_layer_truncated_inside_its_end_marker() {
    let c = Case::new();
    let full = Tar::new().file("a.txt", b"hello\n").end();
    let bad = full[..1024 + 200].to_vec();
    let input = with_bad_layer(&c, "layer-cut-end.tar", bad);
    fails(
        &c,
        &input,
        &[],
        &[&input, "layer 2", "truncated", "end-of-archive marker"],
    );
}

#[test]
fn e26_layer_header_with_a_bad_checksum() {
    let c = Case::new();
    let mut bad = Tar::new()
        .file("a.txt", b"hello\n")
        .file("b.txt", b"world\n")
        .end();
    bad[1024 + 2] = b'X'; // "b.txt" -> "b.Xxt", checksum kept
    let input = with_bad_layer(&c, "layer-checksum.tar", bad);
    fails(
        &c,
        &input,
        &[],
        &[&input, "layer 2", "bad checksum", "after entry /a.txt"],
    );
}

#[test]
fn e27_layer_entry_declares_far_more_than_the_layer_holds() {
    // A header declaring 1 TiB, followed by 10 bytes and the end.
    let c = Case::new();
    let mut bad = header(b"huge.bin", b'0', 1 << 40, b"");
    bad.extend(b"0123456789");
    let input = with_bad_layer(&c, "layer-huge-entry.tar", bad);
    fails(
        &c,
        &input,
        &[],
        &[&input, "layer 2", "entry huge.bin", "1099511627776"],
    );
}

/// An oci-archive with one layer blob.
fn oci_archive_of(c: &Case, name: &str, blob: Vec<u8>, media: &str) -> (String, String) {
    let (files, layers) = oci_files(&[(blob, media)], |_| {});
    (c.file(name, &tar_files(&files, &[])), layers[0].clone())
}

#[test]
fn e28_gzip_stream_with_a_broken_header() {
    let c = Case::new();
    let mut gz = compress(&base_layer().end(), Comp::Gzip);
    gz[3] = 0xe0; // reserved flag bits set
    let (input, layer) = oci_archive_of(&c, "gzip-header.tar", gz, GZIP);
    fails(&c, &input, &[], &[&input, &layer, "corrupt gzip stream"]);
}

#[test]
fn e29_gzip_stream_with_a_wrong_checksum() {
    let c = Case::new();
    let mut gz = compress(&base_layer().end(), Comp::Gzip);
    let n = gz.len();
    gz[n - 8] ^= 0xff; // CRC-32 of the data
    let (input, layer) = oci_archive_of(&c, "gzip-crc.tar", gz, GZIP);
    fails(
        &c,
        &input,
        &[],
        &[&input, &layer, "corrupt gzip stream", "checksum"],
    );
}

#[test]
fn e30_gzip_stream_cut_short() {
    let c = Case::new();
    let gz = compress(&base_layer().end(), Comp::Gzip);
    let (input, layer) = oci_archive_of(&c, "gzip-cut.tar", gz[..gz.len() / 2].to_vec(), GZIP);
    fails(
        &c,
        &input,
        &[],
        &[&input, &layer, "truncated", "gzip stream ends early"],
    );
}

#[test]
fn e31_zstd_stream_with_corrupt_data() {
    let c = Case::new();
    // Text compresses into real zstd blocks (random bytes would be stored
    // raw, where a flipped byte is just different content).
    let text = Tar::new()
        .file("words", &b"hello compressible world\n".repeat(4000))
        .end();
    let mut zs = compress(&text, Comp::Zstd);
    let mid = zs.len() / 2;
    for b in &mut zs[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let (input, layer) = oci_archive_of(&c, "zstd-corrupt.tar", zs, ZSTD);
    fails(&c, &input, &[], &[&input, &layer, "corrupt zstd stream"]);
}

#[test]
fn e32_zstd_stream_cut_short() {
    let c = Case::new();
    let zs = compress(&base_layer().end(), Comp::Zstd);
    let (input, layer) = oci_archive_of(&c, "zstd-cut.tar", zs[..zs.len() - 5].to_vec(), ZSTD);
    fails(
        &c,
        &input,
        &[],
        &[&input, &layer, "truncated", "zstd stream ends early"],
    );
}

#[test]
fn e33_an_xz_layer() {
    let c = Case::new();
    let mut xz = vec![0xfd, b'7', b'z', b'X', b'Z', 0];
    xz.extend(content(6, 600));
    let (input, layer) = oci_archive_of(&c, "xz.tar", xz, TAR);
    fails(
        &c,
        &input,
        &[],
        &[&input, &layer, "xz-compressed layers are not supported"],
    );
}

/// Run a bomb under an address-space limit far below its decompressed size.
const BOMB_LIMIT: u64 = 256 << 20;
const BOMB: u64 = 1 << 30;

/// An address-space limit counts reservations, and glibc reserves 64 MiB
/// of address space per malloc arena (one per thread that allocates, up to
/// 8 per core): two arenas keep the limit about what the program uses.
fn prlimit_as(limit: u64) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.env("MALLOC_ARENA_MAX", "2")
        .arg(format!("--as={limit}"));
    cmd
}

fn under_limit(args: &[&str]) -> Command {
    let mut cmd = prlimit_as(BOMB_LIMIT);
    cmd.arg("--")
        .arg(env!("CARGO_BIN_EXE_layerscope"))
        .args(args);
    cmd
}

fn bomb_fails(c: &Case, input: &str, needles: &[&str]) {
    let (out, took) = run(&mut under_limit(&[input]));
    one_line(&out, input, needles);
    eprintln!(
        "{}refused in {took:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And the usual checks (report untouched), without the limit.
    fails(c, input, &[], needles);
}

#[test]
fn e34_bomb_a_gnu_long_name_of_a_gigabyte() {
    // 33 KB of zstd declaring a 1 GiB file name: the tar crate would read
    // it whole into memory; Go's archive/tar refuses names over 1 MiB.
    let c = Case::new();
    let mut layer = header(b"././@LongLink", b'L', BOMB + 1, b"");
    layer.extend(header(b"x", b'0', 0, b""));
    let blob = zstd_frame(&[
        Z::Raw(&layer[..512]),
        Z::Run(b'a', BOMB),
        Z::Run(0, 512),
        Z::Raw(&layer[512..]),
        Z::Run(0, 1024),
    ]);
    assert!(blob.len() < 64 << 10);
    let (input, l) = oci_archive_of(&c, "bomb-name.tar", blob, ZSTD);
    bomb_fails(
        &c,
        &input,
        &[&input, &l, "GNU long name of 1073741825 bytes"],
    );
}

#[test]
fn e35_bomb_a_pax_header_of_a_gigabyte() {
    let c = Case::new();
    let layer = header(b"PaxHeaders.0/x", b'x', BOMB, b"");
    let blob = zstd_frame(&[Z::Raw(&layer), Z::Run(b'7', BOMB), Z::Run(0, 1024)]);
    let (input, l) = oci_archive_of(&c, "bomb-pax.tar", blob, ZSTD);
    bomb_fails(
        &c,
        &input,
        &[&input, &l, "PAX extended header of 1073741824 bytes"],
    );
}

#[test]
fn e36_an_entry_that_climbs_out_of_the_root() {
    let c = Case::new();
    let bad = Tar::new()
        .file("ok.txt", b"fine\n")
        .file("../../etc/cron.d/evil", b"* * * * * root sh\n")
        .end();
    let input = with_bad_layer(&c, "dotdot.tar", bad);
    fails(
        &c,
        &input,
        &[],
        &[
            &input,
            "layer 2",
            "../../etc/cron.d/evil",
            "climbs out of the image root",
        ],
    );
}

#[test]
fn e37_a_hardlink_that_climbs_out_of_the_root() {
    let c = Case::new();
    let bad = Tar::new().hardlink("shadow", "../../etc/shadow").end();
    let input = with_bad_layer(&c, "dotdot-link.tar", bad);
    fails(
        &c,
        &input,
        &[],
        &[
            &input,
            "layer 2",
            "entry shadow",
            "../../etc/shadow",
            "climbs out",
        ],
    );
}

#[test]
fn e38_a_hardlink_to_nowhere() {
    let c = Case::new();
    let bad = Tar::new()
        .dir("bin")
        .hardlink("bin/sh", "bin/busybox")
        .end();
    let input = with_bad_layer(&c, "dangling-link.tar", bad);
    fails(
        &c,
        &input,
        &[],
        &[
            &input,
            "layer 2",
            "/bin/sh is a hardlink to /bin/busybox",
            "neither in this layer nor below",
        ],
    );
}

#[test]
fn e39_a_hardlink_to_a_file_deleted_below() {
    // The target existed in layer 1, but layer 2 deletes it before linking.
    let c = Case::new();
    let bad = Tar::new()
        .file("etc/.wh.hello", b"")
        .hardlink("etc/hello2", "etc/hello")
        .end();
    let input = with_bad_layer(&c, "deleted-link.tar", bad);
    fails(
        &c,
        &input,
        &[],
        &[&input, "layer 2", "/etc/hello2 is a hardlink to /etc/hello"],
    );
}

#[test]
fn e40_a_file_name_longer_than_name_max() {
    let c = Case::new();
    let name = format!("app/{}", "n".repeat(300));
    let bad = Tar::new().long_name(name.as_bytes()).file("x", b"x").end();
    let input = with_bad_layer(&c, "long-name.tar", bad);
    fails(
        &c,
        &input,
        &[],
        &[
            &input,
            "layer 2",
            "file name of 300 bytes",
            "longer than 255",
        ],
    );
}

#[test]
fn e41_a_path_longer_than_path_max() {
    let c = Case::new();
    let name = vec!["d"; 2100].join("/");
    let bad = Tar::new()
        .pax(&[("path", name.as_bytes())])
        .file("x", b"x")
        .end();
    let input = with_bad_layer(&c, "long-path.tar", bad);
    fails(
        &c,
        &input,
        &[],
        &[&input, "layer 2", "path of 4199 bytes", "longer than 4096"],
    );
}

#[test]
fn e42_a_malformed_pax_record() {
    let c = Case::new();
    // The record says it is 99 bytes long; it is not.
    let bad = Tar::new()
        .raw(b"PaxHeaders.0/x", b'x', b"99 path=short\n", b"")
        .file("x", b"x")
        .end();
    let input = with_bad_layer(&c, "bad-pax.tar", bad);
    fails(&c, &input, &[], &[&input, "layer 2", "pax"]);
}

#[test]
fn e43_a_long_name_with_no_entry_after_it() {
    let c = Case::new();
    let bad = Tar::new()
        .file("a", b"a")
        .long_name(b"orphan/name/with/nothing/after/it")
        .end();
    let input = with_bad_layer(&c, "orphan-long-name.tar", bad);
    fails(
        &c,
        &input,
        &[],
        &[&input, "layer 2", "no future member", "after entry /a"],
    );
}

#[test]
fn e44_an_oci_digest_that_would_leave_the_layout() {
    let c = Case::new();
    let (files, _) = oci_files(&[(base_layer().end(), TAR)], |m| {
        m["layers"][0]["digest"] = json!("sha256:../../../../etc/passwd");
    });
    let input = c.layout("oci", &files);
    fails(
        &c,
        &input,
        &[],
        &[&input, "invalid digest", "../../../../etc/passwd"],
    );
}

#[test]
fn e45_a_fifo_instead_of_an_archive() {
    // Opening a FIFO waits for a writer that never comes: refused first.
    let c = Case::new();
    let fifo = c.dir.path().join("image.tar");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let input = fifo.display().to_string();
    fails(&c, &input, &[], &[&input, "not a regular file"]);
    std::fs::remove_file(c.out().join("report.json")).unwrap();
    let prefixed = format!("docker-archive:{input}");
    fails(&c, &prefixed, &[], &[&input, "not a regular file"]);
}

#[test]
fn e46_an_oci_blob_that_is_a_link_to_dev_zero() {
    // A config blob that never ends (and a layer blob too): not read.
    let c = Case::new();
    let (files, layers) = oci_files(&[(base_layer().end(), TAR)], |_| {});
    let input = c.layout("oci", &files);
    let index: Value =
        serde_json::from_slice(&files.iter().find(|f| f.0 == "index.json").unwrap().1).unwrap();
    let m = format!(
        "blobs/sha256/{}",
        &index["manifests"][0]["digest"].as_str().unwrap()[7..]
    );
    let manifest: Value =
        serde_json::from_slice(&files.iter().find(|f| f.0 == m).unwrap().1).unwrap();
    let cfg = format!(
        "blobs/sha256/{}",
        &manifest["config"]["digest"].as_str().unwrap()[7..]
    );
    let cfg_path = c.dir.path().join("oci").join(&cfg);
    std::fs::remove_file(&cfg_path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &cfg_path).unwrap();
    fails(&c, &input, &[], &[&input, &cfg, "not a regular file"]);

    // The config back, the layer a link to /dev/zero.
    std::fs::remove_file(c.out().join("report.json")).unwrap();
    std::fs::remove_file(&cfg_path).unwrap();
    write_files(&c.dir.path().join("oci"), &files);
    let layer_path = c.dir.path().join("oci").join(&layers[0]);
    std::fs::remove_file(&layer_path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &layer_path).unwrap();
    fails(&c, &input, &[], &[&input, &layers[0], "not a regular file"]);
}

#[test]
fn e47_a_streamed_export_with_a_gigabyte_long_name() {
    // The engine's export is read as a stream by the same loader; its
    // outer tar gets the same guard. (In process: the stream is made
    // lazily, a header and then a gigabyte of 'a' that is never stored.)
    use std::io::Read;
    let head = header(b"././@LongLink", b'L', BOMB + 1, b"");
    let stream = std::io::Cursor::new(head).chain(std::io::repeat(b'a').take(BOMB + 1));
    let t = Instant::now();
    let loaded = layerscope::source::archive::load_archive_stream(
        stream,
        "docker:bomb",
        None,
        &layerscope::source::LoadOptions::default(),
    );
    let Err(err) = loaded else {
        panic!("a gigabyte long name was accepted");
    };
    let err = err.to_string();
    assert!(err.starts_with("docker:bomb: "), "{err}");
    assert!(err.contains("GNU long name of 1073741825 bytes"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

// ==== accepted: inputs Docker loads ================================================

#[test]
fn a01_non_utf8_names_stay_distinct_and_sizes_exact() {
    // Three files whose names differ only in bytes that are not UTF-8
    // (Latin-1 é, è and a lone continuation byte), plus the UTF-8 é, and a
    // hardlink to one of them. Docker creates four files; the lossy
    // conversion used to merge the first three into one.
    let c = Case::new();
    let layer = Tar::new()
        .dir("data")
        .raw(b"data/caf\xe9", b'0', &content(10, 100), b"")
        .raw(b"data/caf\xe8", b'0', &content(11, 200), b"")
        .raw(b"data/caf\x80", b'0', &content(12, 400), b"")
        .file("data/caf\u{e9}", &content(13, 50))
        .raw(b"data/link", b'1', &[], b"data/caf\xe9")
        .end();
    let input = c.file("latin1.tar", &save(&[layer]));
    let r = succeeds(&input);
    let t = totals(&r);
    assert_eq!(num(t, "size_bytes"), 100 + 200 + 400 + 50);
    assert_eq!(num(t, "final_bytes"), 750);
    assert_eq!(num(t, "final_entries"), 6, "data/, four files, the link");
    assert_eq!(num(t, "wasted_bytes"), 0);
    assert_eq!(r["images"][0]["layers"][0]["entries"], 6);
}

#[test]
fn a02_symlink_loops_are_just_symlinks() {
    // a -> b -> a, a link to itself, a directory loop, and an os-release
    // that points at itself (the base detection follows it).
    let c = Case::new();
    let layer = Tar::new()
        .dir("etc")
        .symlink("a", "b")
        .symlink("b", "a")
        .symlink("self", "self")
        .symlink("etc/os-release", "os-release")
        .dir("loop")
        .symlink("loop/up", "../loop/up/up")
        .symlink("var", "var/lib/dpkg")
        .end();
    let input = c.file("loops.tar", &save(&[layer]));
    let r = succeeds(&input);
    let t = totals(&r);
    // A symlink weighs its target's length.
    let want = [
        "b",
        "a",
        "self",
        "os-release",
        "../loop/up/up",
        "var/lib/dpkg",
    ]
    .iter()
    .map(|s| s.len() as u64)
    .sum::<u64>();
    assert_eq!(num(t, "size_bytes"), want);
    assert_eq!(num(t, "final_entries"), 8);
}

#[test]
fn a03_a_path_listed_twice_in_one_layer_last_wins() {
    // As Docker applies it: the second copy replaces the first, and only
    // the second is on disk (so it is what the layer weighs).
    let c = Case::new();
    let layer = Tar::new()
        .file("twice", &content(20, 1000))
        .file("twice", &content(21, 300))
        .dir("was-a-dir")
        .file("was-a-dir", &content(22, 70))
        .file("keep", &content(23, 5))
        .end();
    let input = c.file("twice.tar", &save(&[layer]));
    let r = succeeds(&input);
    let t = totals(&r);
    assert_eq!(num(t, "size_bytes"), 300 + 70 + 5);
    assert_eq!(num(t, "final_entries"), 3);
    assert_eq!(num(t, "hidden_bytes"), 0);
    assert_eq!(r["images"][0]["layers"][0]["entries"], 3);
}

#[test]
fn a04_a_whiteout_of_something_that_never_existed() {
    let c = Case::new();
    let l2 = Tar::new()
        .file(".wh.ghost", b"")
        .file("nowhere/.wh.nothing", b"")
        .file("etc/.wh.not-there", b"")
        .file("new", &content(30, 40))
        .end();
    let input = c.file("ghost.tar", &save(&[base_layer().end(), l2]));
    let r = succeeds(&input);
    let t = totals(&r);
    assert_eq!(num(t, "size_bytes"), 3000 + 5000 + 40);
    assert_eq!(num(t, "final_bytes"), 8040);
    assert_eq!(num(t, "deleted_bytes"), 0);
    assert_eq!(r["images"][0]["layers"][1]["removed"], 3);
}

#[test]
fn a05_absolute_member_names_are_relative_to_the_root() {
    // Decision: `/etc/passwd` in a layer is `etc/passwd` in the image, as
    // Docker applies it (it joins every name to the layer's root). So the
    // second layer's `etc/passwd` overwrites it, and `/./app//x` is `app/x`.
    let c = Case::new();
    let l1 = Tar::new()
        .file("/etc/passwd", &content(40, 900))
        .file("/./app//x", &content(41, 100))
        .end();
    let l2 = Tar::new().file("etc/passwd", &content(42, 950)).end();
    let input = c.file("absolute.tar", &save(&[l1, l2]));
    let r = succeeds(&input);
    let t = totals(&r);
    assert_eq!(num(t, "size_bytes"), 900 + 100 + 950);
    assert_eq!(num(t, "overwritten_bytes"), 900);
    assert_eq!(num(t, "final_bytes"), 1050);
    assert_eq!(num(t, "final_entries"), 2);
}

#[test]
fn a06_dotdot_that_stays_inside_the_root() {
    // Docker cleans `usr/lib/../bin/tool` to `usr/bin/tool` and accepts it;
    // so does layerscope (and a hardlink named so finds its target).
    let c = Case::new();
    let layer = Tar::new()
        .file("usr/lib/../bin/tool", &content(50, 600))
        .hardlink("usr/bin/tool2", "usr/share/../bin/tool")
        .file("usr/bin/other", &content(51, 10))
        .end();
    let input = c.file("dotdot-inside.tar", &save(&[layer]));
    let r = succeeds(&input);
    let t = totals(&r);
    assert_eq!(
        num(t, "size_bytes"),
        610,
        "the hardlinked inode counts once"
    );
    assert_eq!(num(t, "final_entries"), 3);
    let text = r.to_string();
    assert!(!text.contains("/.."), "{text}");
}

#[test]
fn a07_no_end_of_archive_marker() {
    // Layer and archive both stop right after their last member, on a
    // block boundary. Go's archive/tar reads that as the end, and so does
    // Docker; so does layerscope.
    let c = Case::new();
    let layer = Tar::new().file("a", &content(60, 1000)).0;
    let full = save(&[layer]);
    let input = c.file("no-end.tar", &full[..full.len() - 1024]);
    let r = succeeds(&input);
    assert_eq!(num(totals(&r), "size_bytes"), 1000);
}

#[test]
fn a08_long_names_and_pax_headers_within_the_limits() {
    // A 255-byte name, a 4000-byte path, a PAX header with a 200 KB
    // extended attribute (Docker keeps xattrs; the guard allows 1 MiB).
    let c = Case::new();
    let name255 = format!("d/{}", "n".repeat(255));
    let deep = format!("{}/f", vec!["dir"; 999].join("/"));
    assert!(deep.len() < 4096 && deep.len() > 3990);
    let layer = Tar::new()
        .long_name(name255.as_bytes())
        .file("ignored", &content(70, 11))
        .pax(&[("path", deep.as_bytes())])
        .file("ignored", &content(71, 22))
        .pax(&[("SCHILY.xattr.user.big", &vec![b'x'; 200_000])])
        .file("xattr", &content(72, 33))
        .end();
    let input = c.file("long-ok.tar", &save(&[layer]));
    let r = succeeds(&input);
    let t = totals(&r);
    assert_eq!(num(t, "size_bytes"), 66);
    assert_eq!(num(t, "final_entries"), 3);
}

#[test]
fn a09_bomb_a_gigabyte_of_zeros_streams_in_bounded_memory() {
    // A real (if silly) image: one 1 GiB file of zeros, 33 KB of zstd.
    // Indexed under a 256 MiB address-space limit, it must still be
    // counted exactly: the layer is streamed, never held.
    let c = Case::new();
    let hdr = header(b"zeros.bin", b'0', BOMB, b"");
    let blob = zstd_frame(&[Z::Raw(&hdr), Z::Run(0, BOMB), Z::Run(0, 1024)]);
    let (input, _) = oci_archive_of(&c, "zeros.tar", blob, ZSTD);
    let (out, took) = run(&mut under_limit(&[&input, "--json", "-"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(num(totals(&r), "size_bytes"), BOMB);
    eprintln!("1 GiB of zeros indexed in {took:?} under a {BOMB_LIMIT}-byte limit");
}

#[test]
fn a10_an_empty_layer_and_a_layer_of_only_the_end_marker() {
    let c = Case::new();
    let input = c.file(
        "empty-layers.tar",
        &save(&[Vec::new(), vec![0u8; 1024], base_layer().end()]),
    );
    let r = succeeds(&input);
    assert_eq!(num(totals(&r), "size_bytes"), 8000);
    assert_eq!(num(totals(&r), "layers"), 3);
}

#[test]
fn a11_bomb_package_databases_in_every_layer_stay_within_a_budget() {
    // Files named like dpkg's status.d entries are kept in memory for the
    // analysis (15 MiB each is under the per-file cap, four per layer under
    // the per-layer cap). Twelve layers of them, zeros in zstd, would keep
    // 720 MiB; the image-wide budget keeps at most 256 MiB, so the run fits
    // a 512 MiB address space and still counts every byte.
    const EACH: u64 = 15 << 20;
    let c = Case::new();
    let mut layers = Vec::new();
    for l in 0..12 {
        let mut parts_hdrs = Vec::new();
        for f in 0..4 {
            parts_hdrs.push(header(
                format!("var/lib/dpkg/status.d/pkg{l}x{f}").as_bytes(),
                b'0',
                EACH,
                b"",
            ));
        }
        let mut parts: Vec<Z> = Vec::new();
        for h in &parts_hdrs {
            parts.push(Z::Raw(h));
            parts.push(Z::Run(0, EACH));
        }
        parts.push(Z::Run(0, 1024));
        layers.push((zstd_frame(&parts), ZSTD));
    }
    let (files, _) = oci_files(&layers, |_| {});
    let input = c.file("status-d.tar", &tar_files(&files, &[]));
    let (out, took) = run(prlimit_as(512 << 20)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_layerscope"))
        .args([&input, "--json", "-"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(num(totals(&r), "size_bytes"), 12 * 4 * EACH);
    eprintln!("720 MiB of package-database-named zeros indexed in {took:?} under a 512 MiB limit");
}
