//! The binary, end to end: text summary, JSON reports (file, stdout,
//! atomic writes) and one-line errors with exit code 2 for bad input.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::*;
use serde_json::Value;
use tempfile::TempDir;

fn layerscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_layerscope"))
}

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Run with `args`; expect exit 2, nothing on stdout and exactly one line
/// on stderr starting with `layerscope: ` that contains every `needle`.
fn fails(args: &[&str], needles: &[&str]) -> String {
    let out = layerscope().args(args).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: stderr {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: stdout {:?}", out.stdout);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr:?}");
    assert!(stderr.ends_with('\n'), "{args:?}: {stderr:?}");
    assert!(stderr.starts_with("layerscope: "), "{args:?}: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: {n:?} not in {stderr}");
    }
    eprint!("{stderr}");
    stderr
}

fn main_legacy(dir: &TempDir) -> (Image, PathBuf) {
    let fx = main_image();
    let path = write(dir, "app.tar", &legacy_archive(&[(&fx, &["app:v1"])]));
    (fx, path)
}

#[test]
fn text_summary_has_a_row_per_layer_and_the_totals() {
    let dir = TempDir::new().unwrap();
    let (fx, path) = main_legacy(&dir);
    let model = Model::build(&fx.layers);
    let out = layerscope().arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("app:v1"), "{text}");
    assert!(
        text.contains("base: Debian GNU/Linux 12 (bookworm)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("({} bytes) in 5 layers", model.total())),
        "{text}"
    );
    for (i, instruction) in MAIN_INSTRUCTIONS.iter().enumerate() {
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{} ", i + 1)))
            .unwrap_or_else(|| panic!("no row for layer {}: {text}", i + 1));
        // Named by what it did (`ADD → /`); the JSON keeps the instruction.
        let name = layerscope::image::layer_name(instruction);
        assert!(row.ends_with(&name), "{row}");
    }
    assert!(text.contains("/data/big.log"), "top wasted paths: {text}");
}

#[test]
fn json_file_report_matches_the_model() {
    let dir = TempDir::new().unwrap();
    let (fx, path) = main_legacy(&dir);
    let report = dir.path().join("report.json");
    layerscope()
        .arg(&path)
        .arg("--json")
        .arg(&report)
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    check_report(&v, &fx, &Model::build(&fx.layers));
    assert_eq!(v["images"][0]["tags"], serde_json::json!(["app:v1"]));
    assert_eq!(v["images"][0]["source"], p(&path));
    // Written atomically: no temp file left behind.
    assert_eq!(dir_listing(dir.path()), ["app.tar", "report.json"]);
}

#[test]
fn json_to_stdout_is_only_json() {
    let dir = TempDir::new().unwrap();
    let fx = main_image();
    let (files, _) = oci_files(
        &[(&fx, &["app:v1"])],
        &OciOpts::new(&[Comp::Zstd, Comp::Gzip]),
    );
    let path = write(&dir, "app.oci.tar", &tar_files(&files, &[]));
    let out = layerscope()
        .arg(format!("oci-archive:{}", p(&path)))
        .args(["--json", "-", "--verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    check_report(&v, &fx, &Model::build(&fx.layers));
}

#[test]
fn json_into_a_missing_directory_fails_and_leaves_nothing() {
    let dir = TempDir::new().unwrap();
    let (_, path) = main_legacy(&dir);
    let report = dir.path().join("no-such-dir").join("report.json");
    fails(
        &[&p(&path), "--json", &p(&report)],
        &[&p(&report), "No such file or directory"],
    );
    assert!(!dir.path().join("no-such-dir").exists());
    assert_eq!(dir_listing(dir.path()), ["app.tar"]);
}

#[test]
fn a_failed_run_does_not_clobber_an_existing_report() {
    let dir = TempDir::new().unwrap();
    let report = write(&dir, "report.json", b"{\"previous\": true}\n");
    let bad = write(&dir, "bad.tar", &b"definitely not a tar\n".repeat(100));
    fails(&[&p(&bad), "--json", &p(&report)], &[&p(&bad), "not a tar"]);
    assert_eq!(std::fs::read(&report).unwrap(), b"{\"previous\": true}\n");
    assert_eq!(dir_listing(dir.path()), ["bad.tar", "report.json"]);
    // A good run replaces it.
    let (_, good) = main_legacy(&dir);
    layerscope()
        .arg(&good)
        .arg("--json")
        .arg(&report)
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(v["schema_version"], 2);
}

#[test]
fn missing_path_is_one_line() {
    fails(
        &["/nonexistent-layerscope-dir/image.tar"],
        &["/nonexistent-layerscope-dir/image.tar", "no such file"],
    );
    fails(
        &["docker-archive:/nonexistent-layerscope-dir/image.tar"],
        &["/nonexistent-layerscope-dir/image.tar", "no such file"],
    );
}

#[test]
fn not_a_tar_is_one_line() {
    let dir = TempDir::new().unwrap();
    let bad = write(&dir, "notes.txt", &b"hello, I am not an image\n".repeat(50));
    fails(&[&p(&bad)], &[&p(&bad), "not a tar"]);
    let empty = write(&dir, "empty.tar", b"");
    fails(&[&p(&empty)], &[&p(&empty)]);
}

#[test]
fn truncated_archive_is_one_line() {
    let dir = TempDir::new().unwrap();
    let fx = main_image();
    let full = legacy_archive(&[(&fx, &["app:v1"])]);
    // Cut inside the archive at several places: a header, file data.
    for cut in [full.len() / 3, full.len() / 2, full.len() - 2000] {
        let path = write(&dir, &format!("cut{cut}.tar"), &full[..cut]);
        fails(&[&p(&path)], &[&p(&path), "truncated"]);
    }
}

#[test]
fn truncated_layer_blob_is_one_line_naming_the_layer() {
    let dir = TempDir::new().unwrap();
    let fx = main_image();
    let (mut files, blobs) = oci_files(&[(&fx, &["app:v1"])], &OciOpts::new(&[Comp::None]));
    let layer = format!("blobs/sha256/{}", &blobs.layers[0][0][7..]);
    let f = files.iter_mut().find(|f| f.0 == layer).unwrap();
    f.1.truncate(f.1.len() / 2);
    write_files(dir.path(), &files);
    fails(&[&p(dir.path())], &[&p(dir.path()), &layer, "truncated"]);
}

#[test]
fn missing_layer_is_one_line_naming_it() {
    let dir = TempDir::new().unwrap();
    let fx = main_image();
    let (mut files, links) = legacy_files(&[(&fx, &["app:v1"])]);
    let manifest: Value =
        serde_json::from_slice(&files.iter().find(|f| f.0 == "manifest.json").unwrap().1).unwrap();
    let gone = manifest[0]["Layers"][2].as_str().unwrap().to_string();
    files.retain(|f| f.0 != gone);
    let path = write(&dir, "missing.tar", &tar_files(&files, &links));
    fails(&[&p(&path)], &[&p(&path), &gone, "missing"]);

    // In an OCI layout directory, too.
    let (files, blobs) = oci_files(&[(&fx, &["app:v1"])], &OciOpts::new(&[Comp::Gzip]));
    let gone = format!("blobs/sha256/{}", &blobs.layers[0][3][7..]);
    let oci = dir.path().join("oci");
    write_files(&oci, &files);
    std::fs::remove_file(oci.join(&gone)).unwrap();
    fails(&[&p(&oci)], &[&p(&oci), &gone]);
}

/// A small image whose layers compress well, so corruption in the middle
/// of a blob breaks the compressed stream itself.
fn compressible() -> Image {
    Image::simple(vec![
        Layer::new().dir("etc", 0o755).file(
            "etc/words",
            b"hello compressible world\n".repeat(4000),
            0o644,
        ),
        Layer::new().file("etc/more", b"0123456789abcdef".repeat(3000), 0o644),
    ])
}

fn corrupt_middle(data: &mut [u8]) {
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 32] {
        *b ^= 0x5a;
    }
}

#[test]
fn corrupt_gzip_and_zstd_layers_are_one_line_naming_the_layer() {
    let dir = TempDir::new().unwrap();
    let fx = compressible();
    for (comp, word) in [(Comp::Gzip, "gzip"), (Comp::Zstd, "zstd")] {
        let (mut files, blobs) = oci_files(&[(&fx, &["app:v1"])], &OciOpts::new(&[comp]));
        let layer = format!("blobs/sha256/{}", &blobs.layers[0][1][7..]);
        corrupt_middle(&mut files.iter_mut().find(|f| f.0 == layer).unwrap().1);
        let path = write(&dir, &format!("{word}.oci.tar"), &tar_files(&files, &[]));
        fails(&[&p(&path)], &[&p(&path), &layer, word]);
        let oci = dir.path().join(word);
        write_files(&oci, &files);
        fails(&[&format!("oci:{}", p(&oci))], &[&p(&oci), &layer, word]);
    }
}

#[test]
fn unknown_layer_media_type_is_one_line() {
    let dir = TempDir::new().unwrap();
    let fx = compressible();
    let mut o = OciOpts::new(&[Comp::Gzip]);
    let odd = "application/vnd.example.layer.v1.squashfs";
    o.media.insert(1, odd.to_string());
    let (files, blobs) = oci_files(&[(&fx, &["app:v1"])], &o);
    write_files(dir.path(), &files);
    fails(
        &[&p(dir.path())],
        &[
            &p(dir.path()),
            &blobs.layers[0][1],
            "unknown media type",
            odd,
        ],
    );
}

#[test]
fn diff_id_mismatch_fails_only_with_verify() {
    let dir = TempDir::new().unwrap();
    let mut fx = main_image();
    fx.bad_diff_id = Some(1);
    let legacy = write(&dir, "bad.tar", &legacy_archive(&[(&fx, &["bad:1"])]));
    let (files, _) = oci_files(&[(&fx, &["bad:1"])], &OciOpts::new(&[Comp::Zstd]));
    let oci = dir.path().join("oci");
    write_files(&oci, &files);
    for path in [p(&legacy), p(&oci)] {
        layerscope().arg(&path).assert().success();
        fails(&[&path, "--verify"], &[&path, "layer 2", "diff_id"]);
    }
    // The good image verifies in every layout.
    let good = main_image();
    let path = write(&dir, "good.tar", &docker25_archive(&[(&good, &["good:1"])]));
    layerscope().arg(&path).arg("--verify").assert().success();
}

#[test]
fn two_images_need_a_tag_and_the_error_lists_them() {
    let dir = TempDir::new().unwrap();
    let a = Image::simple(vec![Layer::new().file("a", content(1, 10), 0o644)]);
    let b = Image::simple(vec![Layer::new().file("b", content(2, 20), 0o644)]);
    let path = write(
        &dir,
        "two.tar",
        &legacy_archive(&[(&a, &["app:v1"]), (&b, &["app:v2"])]),
    );
    fails(&[&p(&path)], &[&p(&path), "app:v1", "app:v2"]);
    let out = layerscope()
        .arg(format!("docker-archive:{}:app:v2", p(&path)))
        .args(["--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["images"][0]["id"], b.id());
    assert_eq!(v["images"][0]["totals"]["size_bytes"], 20);
    fails(
        &[&format!("docker-archive:{}:app:v3", p(&path))],
        &["app:v3", "app:v1", "app:v2"],
    );
}

#[test]
fn malformed_metadata_is_one_line() {
    let dir = TempDir::new().unwrap();
    let fx = compressible();
    let (files, links) = legacy_files(&[(&fx, &["app:v1"])]);
    let manifest: Value =
        serde_json::from_slice(&files.iter().find(|f| f.0 == "manifest.json").unwrap().1).unwrap();
    let config = manifest[0]["Config"].as_str().unwrap().to_string();
    let edit = |name: &str, f: &dyn Fn(&mut Files)| {
        let mut files = files.clone();
        f(&mut files);
        write(&dir, name, &tar_files(&files, &links))
    };

    let path = edit("badjson.tar", &|fs| {
        fs.iter_mut().find(|f| f.0 == "manifest.json").unwrap().1 = b"[{\"Config\": ".to_vec();
    });
    fails(&[&p(&path)], &[&p(&path), "manifest.json", "invalid JSON"]);

    let path = edit("noconfig.tar", &|fs| fs.retain(|f| f.0 != config));
    fails(&[&p(&path)], &[&p(&path), &config, "missing"]);

    // The config lists one diff_id fewer than the manifest has layers.
    let path = edit("short.tar", &|fs| {
        let c = fs.iter_mut().find(|f| f.0 == config).unwrap();
        let mut v: Value = serde_json::from_slice(&c.1).unwrap();
        v["rootfs"]["diff_ids"].as_array_mut().unwrap().pop();
        c.1 = serde_json::to_vec(&v).unwrap();
    });
    fails(&[&p(&path)], &[&p(&path), "diff_id"]);

    // Neither docker save nor OCI.
    let path = write(
        &dir,
        "plain.tar",
        &tar_files(&[("hello.txt".into(), b"hi".to_vec())], &[]),
    );
    fails(&[&p(&path)], &[&p(&path), "manifest.json", "index.json"]);

    // An OCI index pointing at a manifest blob that is not there.
    let (mut files, blobs) = oci_files(&[(&fx, &["app:v1"])], &OciOpts::new(&[Comp::Gzip]));
    let gone = format!("blobs/sha256/{}", &blobs.manifests[0][7..]);
    files.retain(|f| f.0 != gone);
    let path = write(&dir, "nomanifest.oci.tar", &tar_files(&files, &[]));
    fails(&[&p(&path)], &[&p(&path), &gone, "missing"]);
}

#[test]
fn json_onto_a_directory_fails_and_cleans_up() {
    let dir = TempDir::new().unwrap();
    let (_, path) = main_legacy(&dir);
    let target = dir.path().join("out");
    std::fs::create_dir(&target).unwrap();
    fails(&[&p(&path), "--json", &p(&target)], &[&p(&target)]);
    assert!(target.is_dir());
    assert_eq!(dir_listing(dir.path()), ["app.tar", "out"]);
    assert!(dir_listing(&target).is_empty());
}

#[test]
fn demo_reaches_the_engine() {
    // `demo` once fell through to "no image given": it must try to build.
    let out = layerscope()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("demo")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("no image given"), "{stderr}");
    assert!(stderr.contains("/nonexistent/docker.sock"), "{stderr}");
}

#[test]
fn without_a_cache_directory_a_run_goes_on_uncached() {
    let dir = TempDir::new().unwrap();
    let (_, path) = main_legacy(&dir);
    let out = layerscope()
        .env_remove("HOME")
        .env_remove("XDG_CACHE_HOME")
        .args([&p(&path), "--json", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("layerscope: warning: no cache directory"),
        "{stderr}"
    );
    assert!(
        stderr.contains("running without the layer cache"),
        "{stderr}"
    );
    serde_json::from_slice::<Value>(&out.stdout).unwrap();
}

/// `script` (util-linux) runs the command on a pseudo-terminal: the way to
/// see what a user at a terminal sees.
fn on_a_terminal(args: &[String]) -> String {
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_layerscope").to_string())
        .chain(args.iter().cloned())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let out = std::process::Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env("TERM", "dumb")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs the binary on a pseudo-terminal");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

#[test]
fn json_file_on_a_terminal_says_in_one_line_what_was_written() {
    let dir = TempDir::new().unwrap();
    let (_, path) = main_legacy(&dir);
    let report = dir.path().join("report.json");
    let shown = on_a_terminal(&[p(&path), "--json".into(), p(&report)]);
    let bytes = std::fs::metadata(&report).unwrap().len();
    // The size as `docker images` prints it (decimal kB, two decimals).
    assert!(bytes > 1000 && bytes < 1_000_000, "{bytes}");
    let kb = format!("{:.2} kB", bytes as f64 / 1000.0);
    assert_eq!(
        shown,
        format!(
            "wrote the JSON report on 1 image to {} ({})\n",
            p(&report),
            kb.replace(".00 kB", " kB")
        )
    );
    // Not on a pipe: the file is the output, stdout stays empty.
    let out = layerscope()
        .arg(&path)
        .arg("--json")
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "{:?}", out.stdout);
}

#[test]
fn a_name_in_the_wrong_case_suggests_the_right_one() {
    fails(
        &["Go-App-Single"],
        &[
            "\"Go-App-Single\"",
            "image names are lower case: write go-app-single",
        ],
    );
    fails(
        &["docker-daemon:Go-App-Single:Latest"],
        &["write docker-daemon:go-app-single:Latest"],
    );
}

/// Three archives: a base-sized `big`, a `slim` on the same base layer,
/// and a one-layer `tiny`.
fn three_images(dir: &TempDir) -> ([Image; 3], [PathBuf; 3]) {
    let base = Layer::new().file("usr/lib/libbase.so", content(1, 50_000), 0o644);
    let mut big = Image::simple(vec![
        base.clone(),
        Layer::new().file("usr/lib/libtool.so", content(2, 120_000), 0o644),
        Layer::new().file("app/server", content(3, 9_000), 0o755),
    ]);
    big.history[2] = hist(
        "/bin/sh -c #(nop) COPY file:de15d81d61c0a3b3e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7 in /app/server ",
        false,
    );
    let slim = Image::simple(vec![
        base,
        Layer::new().file("app/server", content(3, 9_000), 0o755),
    ]);
    let tiny = Image::simple(vec![Layer::new().file("server", content(3, 9_000), 0o755)]);
    let paths = [("big", &big), ("slim", &slim), ("tiny", &tiny)].map(|(n, img)| {
        write(
            dir,
            &format!("{n}.tar"),
            &legacy_archive(&[(img, &[&format!("{n}:v1")])]),
        )
    });
    ([big, slim, tiny], paths)
}

#[test]
fn three_images_compare_each_against_the_first() {
    let dir = TempDir::new().unwrap();
    let (imgs, paths) = three_images(&dir);
    let args: Vec<String> = paths.iter().map(|x| p(x)).collect();
    // JSON: one comparison per image after the first, each against the first.
    let out = layerscope()
        .args(&args)
        .args(["--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let comps = v["comparison"].as_array().unwrap();
    assert_eq!(comps.len(), 2);
    let sizes: Vec<u64> = imgs
        .iter()
        .map(|i| Model::build(&i.layers).total())
        .collect();
    for (k, c) in comps.iter().enumerate() {
        assert_eq!(c["a"], "big:v1");
        assert_eq!(c["b"], ["slim:v1", "tiny:v1"][k]);
        assert_eq!(c["a_size_bytes"], sizes[0]);
        assert_eq!(c["b_size_bytes"], sizes[k + 1]);
        assert_eq!(
            c["reduction_bytes"].as_i64().unwrap(),
            sizes[0] as i64 - sizes[k + 1] as i64
        );
    }
    // slim shares the base layer with big; tiny shares nothing.
    assert_eq!(comps[0]["shared_layers"], 1);
    assert_eq!(comps[1]["shared_layers"], 0);

    // Text: a row per image, then each against the first with its layers
    // side by side.
    let out = layerscope().args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let table: Vec<&str> = text.lines().take(4).collect();
    assert!(table[0].starts_with("IMAGE"), "{text}");
    for (i, (name, img)) in ["big:v1", "slim:v1", "tiny:v1"]
        .iter()
        .zip(&imgs)
        .enumerate()
    {
        let row = table[i + 1];
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[0], *name, "{row}");
        let size = layerscope::output::size(sizes[i]);
        assert!(row.contains(&format!(" {size} ")), "{row}");
        assert!(row.contains(" n/a "), "pull size column: {row}");
        // LAYERS and FINDINGS columns, then the size against the first.
        let n = img.layers.len().to_string();
        assert!(cols.contains(&n.as_str()), "{row}");
    }
    assert!(table[1].ends_with("baseline"), "{text}");
    assert!(
        table[3].contains(&layerscope::output::delta(
            sizes[2] as i128 - sizes[0] as i128
        )),
        "{text}"
    );
    assert!(text.contains("== slim:v1 against big:v1 =="), "{text}");
    assert!(text.contains("== tiny:v1 against big:v1 =="), "{text}");
    // The layers side by side, named by what they did: no content hash.
    let listing = text
        .lines()
        .skip_while(|l| !l.starts_with("layers, bottom first"))
        .take(5)
        .collect::<Vec<_>>();
    assert_eq!(listing.len(), 5, "{text}");
    assert!(
        listing[1].contains("A big:v1") && listing[1].contains("B slim:v1"),
        "{text}"
    );
    assert!(listing[2].starts_with(" 1="), "the shared base: {text}");
    assert!(listing[4].contains("COPY → /app/server"), "{text}");
    assert!(
        !text.lines().any(layerscope::image::has_hash_run),
        "no 12-hex-digit run in the text: {text}"
    );
}

// ---- --generate ---------------------------------------------------------------

fn generated(what: &str) -> String {
    let out = layerscope().args(["--generate", what]).output().unwrap();
    assert!(out.status.success(), "{what}: {:?}", out);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completion_completes_flags_and_values() {
    let script = generated("complete-bash");
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "layerscope.bash", script.as_bytes());
    // Source the script in a real bash and ask its function what it
    // completes, as readline would.
    let ask = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let (cur, prev) = (words[words.len() - 1], words[words.len() - 2]);
        let probe = format!(
            "source {}; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT={}; \
             _layerscope layerscope '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display(),
            words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            words.len() - 1,
            line.len()
        );
        let out = std::process::Command::new("bash")
            .args(["--norc", "-c", &probe])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let flags = ask("layerscope --max-");
    for f in [
        "--max-size",
        "--max-layers",
        "--max-growth",
        "--max-pull-size",
    ] {
        assert!(flags.lines().any(|l| l == f), "{f} in {flags}");
    }
    assert!(
        !flags.contains("--json"),
        "only what starts --max-: {flags}"
    );
    let formats = ask("layerscope --format ");
    for f in ["text", "json", "junit", "github", "markdown"] {
        assert!(formats.lines().any(|l| l == f), "{f} in {formats}");
    }
}

#[test]
fn every_generated_script_names_the_rule_flags() {
    for what in [
        "complete-bash",
        "complete-zsh",
        "complete-fish",
        "complete-elvish",
        "complete-powershell",
    ] {
        let s = generated(what);
        for flag in ["max-size", "deny", "generate", "platform"] {
            assert!(s.contains(flag), "{what} lacks {flag}");
        }
    }
}

#[test]
fn the_man_page_renders_with_every_option() {
    let page = generated("man");
    assert!(page.contains(".TH layerscope 1"), "{}", &page[..200]);
    // groff renders it without a warning, and the text names the flags.
    let out = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(page.as_bytes())?;
            c.wait_with_output()
        });
    let Ok(out) = out else {
        panic!("groff is needed (Debian's groff-base)");
    };
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for flag in [r"\-\-max\-size", r"\-\-generate", r"\-\-via", r"\-\-ci"] {
        assert!(page.contains(flag), "{flag}");
    }
}

#[test]
fn generate_takes_no_image() {
    let out = layerscope()
        .args(["--generate", "man", "app"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}
