//! `--via storage` against the real engine: the report read from the
//! engine's own layer directories and tar-split records equals the one
//! read through the export, on images holding every kind of entry a layer
//! can hold; the layer cache then spares a rebuilt image's lower layers.

mod common_engine;

use std::path::Path;
use std::process::Command;

use common_engine::*;
use serde_json::Value;

/// Can this process read the engine's storage? (Root on the engine's own
/// machine.) Under CI it must; elsewhere the test is skipped, loudly.
fn storage_readable(test: &str) -> bool {
    if !engine_available(test) {
        return false;
    }
    let ok = std::fs::read_dir("/var/lib/docker/image/overlay2/layerdb/sha256").is_ok();
    if !ok {
        let msg = format!("SKIPPED {test}: /var/lib/docker is not readable (run as root)");
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("{msg}");
    }
    ok
}

/// The JSON report of `image` read `via`, with the cache at `cache` (or none).
fn report(image: &str, via: &str, cache: Option<&Path>) -> Value {
    let bin = assert_cmd::cargo::cargo_bin("layerscope");
    let mut cmd = Command::new(bin);
    cmd.args(["--via", via, "--json", "-", image]);
    match cache {
        Some(dir) => cmd.env("XDG_CACHE_HOME", dir),
        None => cmd.arg("--no-cache"),
    };
    let out = cmd.output().expect("run layerscope");
    assert!(
        out.status.success(),
        "layerscope --via {via} {image} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

/// The report without the fields that say how the layers were read.
fn without_via(mut v: Value) -> (Value, Vec<String>) {
    let mut via = Vec::new();
    for img in v["images"].as_array_mut().expect("images") {
        let o = img.as_object_mut().expect("image");
        via.push(
            o.remove("layers_read_via")
                .expect("layers_read_via")
                .as_str()
                .expect("str")
                .to_string(),
        );
        o.remove("layers_cached").expect("layers_cached");
    }
    (v, via)
}

fn assert_same_both_ways(image: &str) -> Value {
    let (storage, via_s) = without_via(report(image, "storage", None));
    let (export, via_e) = without_via(report(image, "export", None));
    assert_eq!(via_s, vec!["storage"]);
    assert_eq!(via_e, vec!["export"]);
    if storage != export {
        let a = serde_json::to_string_pretty(&storage).unwrap_or_default();
        let b = serde_json::to_string_pretty(&export).unwrap_or_default();
        let first = a
            .lines()
            .zip(b.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(0);
        panic!(
            "{image}: the storage report differs from the export's near line {first}:\n storage: {}\n export:  {}",
            a.lines().nth(first).unwrap_or(""),
            b.lines().nth(first).unwrap_or("")
        );
    }
    storage
}

#[test]
fn storage_and_export_give_the_same_report() {
    if !storage_readable("storage_and_export") {
        return;
    }
    let Some(rootfs) = busybox_rootfs() else {
        return;
    };
    let mut clean = Cleanup::new();
    let base = clean.add(&unique("st-busybox"));
    import(&base, rootfs);
    let tag = clean.add(&unique("st-kinds"));
    // Every kind of change: duplicates (same size and content), files of a
    // size shared with others of other content, whiteouts, an opaque
    // directory, hardlinks, symlinks, devices and a fifo, a chmod copy-up,
    // an in-place edit, a name that is not UTF-8, a sparse file, empty
    // layers, and a file the analysis captures (os-release).
    build(
        &tag,
        &format!(
            "FROM {base}\n\
             COPY ctx /ctx\n\
             RUN mkdir -p /data/sub /opq /etc && echo hello > /data/keep \
               && head -c 100000 /dev/zero > /data/big && head -c 5000 /dev/urandom > /data/sub/x \
               && echo a > /opq/a && echo b > /opq/b && cp /ctx/same /data/same-copy \
               && echo 'ID=test' > /etc/os-release\n\
             RUN rm /data/big && echo changed > /data/keep && ln /data/sub/x /data/hard \
               && ln -s ../data/keep /data/soft && busybox mknod /data/null c 1 3 \
               && busybox mknod /data/blk b 7 0 && busybox mkfifo /data/fifo\n\
             RUN chmod -R 700 /data/sub\n\
             RUN true\n\
             ENV EMPTY=layer\n\
             RUN rm -rf /opq && mkdir /opq && echo c > /opq/c \
               && echo x > \"/data/$(printf 'bad\\377name')\" \
               && busybox dd if=/dev/zero of=/data/sparse bs=1 count=1 seek=3000000 2>/dev/null\n"
        ),
        vec![
            Item::Dir("ctx", 0o755),
            Item::File("ctx/same", vec![7; 4096], 0o644),
            Item::File("ctx/same-size", vec![8; 4096], 0o644),
            Item::File("ctx/other-same-size", vec![9; 4096], 0o644),
            Item::File("ctx/unique", vec![1; 1234], 0o644),
        ],
    );
    let r = assert_same_both_ways(&tag);
    let img = &r["images"][0];
    // `RUN true` and ENV change nothing: the engine records them in the
    // history only (empty layers), which both paths must pair alike.
    assert_eq!(img["layers"].as_array().map(Vec::len), Some(6));
    // The numbers the storage path gives are the export's (above), and
    // the export's are checked against the engine in tests/engine.rs; here,
    // that they hold what the image was built to hold.
    let dup = img["duplicates"].as_array().expect("duplicates");
    assert!(
        dup.iter().any(|d| d["paths"]
            .as_array()
            .is_some_and(
                |p| p.iter().any(|x| x == "/ctx/same") && p.iter().any(|x| x == "/data/same-copy")
            )),
        "{dup:?}"
    );
    let (size, _, _) = inspect_size(&tag);
    assert_eq!(img["totals"]["size_bytes"].as_u64(), Some(size));
}

#[test]
fn a_rebuilt_image_reads_only_its_new_layer() {
    if !storage_readable("rebuilt_top_layer") {
        return;
    }
    let Some(rootfs) = busybox_rootfs() else {
        return;
    };
    let cache = tempfile::tempdir().expect("tempdir");
    let mut clean = Cleanup::new();
    let base = clean.add(&unique("st-rb-busybox"));
    import(&base, rootfs);
    let first = clean.add(&unique("st-rb-1"));
    let steps =
        format!("FROM {base}\nRUN head -c 3000 /dev/urandom > /a && cp /a /b\nRUN echo one > /c\n");
    build(&first, &steps, vec![]);
    let r = report(&first, "storage", Some(cache.path()));
    assert_eq!(r["images"][0]["layers_read_via"], "storage");
    assert_eq!(r["images"][0]["layers_cached"], 0);
    // A second run takes everything from the cache.
    let r = report(&first, "storage", Some(cache.path()));
    assert_eq!(r["images"][0]["layers_read_via"], "cache");
    assert_eq!(r["images"][0]["layers_cached"], 3);

    // The same steps and one more: only the top layer is new, and it holds
    // a third copy of /a, which must be hashed against the cached ones.
    let second = clean.add(&unique("st-rb-2"));
    build(&second, &format!("{steps}RUN cp /a /d\n"), vec![]);
    let r = report(&second, "storage", Some(cache.path()));
    let img = &r["images"][0];
    assert_eq!(img["layers_read_via"], "storage");
    assert_eq!(img["layers_cached"], 3, "only the new top layer is read");
    let (fresh, _) = without_via(report(&second, "export", None));
    let (cached, _) = without_via(r);
    assert_eq!(cached, fresh, "cached + storage equals a fresh export");
    assert_eq!(
        cached["images"][0]["totals"]["duplicate_bytes"].as_u64(),
        Some(6000),
        "/b and /d copy /a"
    );
}

#[test]
fn a_bad_via_is_a_usage_error() {
    let bin = assert_cmd::cargo::cargo_bin("layerscope");
    let out = Command::new(&bin)
        .args(["--via", "sideways", "some-image"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected storage, export or auto"), "{err}");
}

#[test]
fn a_comparison_reads_the_same_both_ways() {
    if !storage_readable("comparison") {
        return;
    }
    let Some(rootfs) = busybox_rootfs() else {
        return;
    };
    let mut clean = Cleanup::new();
    let base = clean.add(&unique("st-cmp-busybox"));
    import(&base, rootfs);
    // /a is a duplicate in A (so A hashes it) and unique in B (so B alone
    // would know it by CRC only): the comparison must still match them.
    let a = clean.add(&unique("st-cmp-a"));
    build(
        &a,
        &format!("FROM {base}\nRUN head -c 7000 /dev/zero > /a && cp /a /b && echo v1 > /v\n"),
        vec![],
    );
    let b = clean.add(&unique("st-cmp-b"));
    build(
        &b,
        &format!("FROM {base}\nRUN head -c 7000 /dev/zero > /a && echo v2 > /v\n"),
        vec![],
    );
    let run = |via: &str| {
        let bin = assert_cmd::cargo::cargo_bin("layerscope");
        let out = Command::new(bin)
            .args(["--no-cache", "--via", via, "--json", "-", &a, &b])
            .output()
            .expect("run layerscope");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        without_via(serde_json::from_slice(&out.stdout).expect("JSON")).0
    };
    let storage = run("storage");
    let export = run("export");
    assert_eq!(storage["comparison"], export["comparison"]);
    assert_eq!(storage, export);
}

#[test]
fn an_image_removed_mid_read_fails_cleanly() {
    if !storage_readable("removed_mid_read") {
        return;
    }
    let Some(rootfs) = busybox_rootfs() else {
        return;
    };
    let mut clean = Cleanup::new();
    let base = clean.add(&unique("st-rm-busybox"));
    import(&base, rootfs);
    let tag = clean.add(&unique("st-rm"));
    // Three copies of one file: the read must open each to hash it.
    build(
        &tag,
        &format!("FROM {base}\nRUN head -c 3000 /dev/urandom > /a && cp /a /b && cp /a /c\n"),
        vec![],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let go = dir.path().join("go");
    let json = dir.path().join("report.json");
    // Test-only: the read opens one file, then waits for `go`.
    let child = Command::new(assert_cmd::cargo::cargo_bin("layerscope"))
        .env("LAYERSCOPE_TEST_PAUSE_AFTER", format!("1:{}", go.display()))
        .args(["--no-cache", "--via", "storage", "--json"])
        .arg(&json)
        .arg(&tag)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run layerscope");
    let paused = dir.path().join("go.paused");
    let t0 = std::time::Instant::now();
    while !paused.exists() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "the read never paused"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run_ok(
        Command::new("docker").args(["rmi", "-f", &tag]),
        "docker rmi -f",
    );
    std::fs::write(&go, b"").expect("release the read");
    let out = child.wait_with_output().expect("wait for layerscope");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("changed or vanished") && err.contains("was the image removed"),
        "{err}"
    );
    assert!(!json.exists(), "no report from a failed read");
}
