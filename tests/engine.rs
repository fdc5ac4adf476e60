//! The engine source against a real Docker engine (no mocks). Every image
//! is built or imported here through the API under a `layerscope-test-`
//! tag and removed at the end. Without an engine these tests skip with a
//! message; with CI set they fail.

mod common_engine;

use std::collections::BTreeSet;
use std::sync::mpsc;

use assert_cmd::Command;
use common_engine::*;
use layerscope::analysis::Analysis;
use layerscope::image::Image;
use layerscope::source::engine::{load_many, load_tracked};
use layerscope::source::progress::{Reporter, Stage, Tracker};
use layerscope::source::storage::Via;
use layerscope::source::{LoadOptions, load_all};

fn load(name: &str) -> Image {
    let mut v = load_many(&[name.to_string()], &LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading {name}: {e}"));
    v.remove(0)
}

/// Every path visible in layerscope's merged file system, with its size.
fn final_listing(img: &Image) -> BTreeSet<(String, u64)> {
    let mut out = BTreeSet::new();
    for (node, loc) in img.fs.iter().enumerate() {
        if let Some(loc) = loc {
            let e = img.entry(*loc);
            let path = img.tree.path(node as u32);
            let path = path.trim_start_matches('/').to_string();
            if !path.is_empty() {
                out.insert((path, e.disk_bytes()));
            }
        }
    }
    out
}

fn oracle_listing(layers: &[Vec<Listed>]) -> BTreeSet<(String, u64)> {
    merge(layers)
        .into_iter()
        .filter(|(p, _)| !p.is_empty())
        .map(|(p, (_, e))| {
            let b = layer_size(std::slice::from_ref(&e));
            (p, b)
        })
        .collect()
}

/// Check a loaded image against `docker image inspect` and an independent
/// listing of its exported layers.
fn check_against_engine(name: &str, img: &Image) -> Vec<Vec<Listed>> {
    let (size, nlayers, id) = inspect_size(name);
    assert_eq!(img.facts.id, id, "image id");
    assert_eq!(img.total_size(), size, "total size vs docker image inspect");
    assert_eq!(img.layers.len(), nlayers, "layer count");
    let listed = export_layers(name);
    assert_eq!(listed.len(), img.layers.len());
    for (i, (ours, theirs)) in img.layers.iter().zip(&listed).enumerate() {
        assert_eq!(ours.size, layer_size(theirs), "layer {} size", i + 1);
    }
    let oracle_total: u64 = listed.iter().map(|l| layer_size(l)).sum();
    assert_eq!(
        oracle_total, size,
        "the independent listing agrees with docker"
    );
    assert_eq!(
        final_listing(img),
        oracle_listing(&listed),
        "merged file system"
    );
    listed
}

#[test]
fn scratch_image_matches_inspect_and_an_independent_listing() {
    if !engine_available("scratch_image") {
        return;
    }
    let mut clean = Cleanup::new();
    let tag = clean.add(&unique("scratch"));
    let a: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    build(
        &tag,
        "FROM scratch\nCOPY a /a\nCOPY dir /dir\nCOPY a /copy-of-a\nCMD [\"/a\"]\n",
        vec![
            Item::File("a", a.clone(), 0o644),
            Item::Dir("dir", 0o755),
            Item::File("dir/b", vec![7u8; 12345], 0o600),
            Item::Symlink("dir/link", "../a"),
        ],
    );
    let img = load(&format!("docker:{tag}"));
    check_against_engine(&tag, &img);
    assert_eq!(img.total_size(), 1000 + 12345 + 4 + 1000);
    assert_eq!(
        img.facts.tags.first().map(String::as_str),
        Some(tag.as_str())
    );
    assert_eq!(img.facts.source, format!("docker:{tag}"));
    assert_eq!(img.facts.cmd, vec!["/a".to_string()]);
    let a = Analysis::new(img);
    assert_eq!(a.waste.duplicate_bytes, 1000, "/copy-of-a duplicates /a");
    assert_eq!(a.waste.hidden_bytes(), 0);
}

#[test]
fn run_steps_make_real_whiteouts_copy_ups_and_opaque_dirs() {
    if !engine_available("run_steps") {
        return;
    }
    let Some(rootfs) = busybox_rootfs() else {
        return;
    };
    let mut clean = Cleanup::new();
    let base = clean.add(&unique("busybox"));
    import(&base, rootfs);
    let tag = clean.add(&unique("runsteps"));
    build(
        &tag,
        &format!(
            "FROM {base}\n\
             RUN mkdir -p /data/sub /opq && echo hello > /data/keep && head -c 100000 /dev/zero > /data/big \
               && head -c 5000 /dev/urandom > /data/sub/x && echo a > /opq/a && echo b > /opq/b\n\
             RUN rm /data/big && echo changed > /data/keep\n\
             RUN chmod -R 700 /data/sub\n\
             RUN rm -rf /opq && mkdir /opq && echo c > /opq/c\n"
        ),
        vec![],
    );
    let img = load(&format!("docker:{tag}"));
    let listed = check_against_engine(&tag, &img);
    assert_eq!(img.layers.len(), 5);
    // What the engine wrote, seen by the independent listing.
    let names = |i: usize| -> Vec<String> { listed[i].iter().map(|e| e.path.clone()).collect() };
    assert!(
        names(2).contains(&"data/.wh.big".to_string()),
        "{:?}",
        names(2)
    );
    let opaque_marker = names(4).contains(&"opq/.wh..wh..opq".to_string());

    let a = Analysis::new(img);
    let w = &a.waste;
    assert_eq!(w.overwritten_bytes, 6, "hello\\n overwritten");
    assert_eq!(
        w.metadata_only_bytes, 5000,
        "chmod -R copied /data/sub/x up"
    );
    if opaque_marker {
        assert_eq!(w.deleted_bytes, 100_000);
        assert_eq!(w.opaque_bytes, 4, "a\\n and b\\n under the opaque /opq");
    } else {
        // An engine without native overlay diff writes single whiteouts.
        assert_eq!(w.deleted_bytes + w.opaque_bytes, 100_004);
    }
    let total: u64 = listed.iter().map(|l| layer_size(l)).sum();
    assert_eq!(w.hidden_bytes(), total - visible_bytes(&merge(&listed)));
    // The layer that hid each byte.
    let layer = &a.image.layers;
    assert_eq!(layer[1].hidden_bytes, 6 + 100_000 + 5000 + 4);
    assert_eq!(layer[2].hides_bytes, 100_006);
    assert_eq!(layer[3].hides_bytes, 5000);
    assert_eq!(layer[4].hides_bytes, 4);
}

#[test]
fn references_by_tag_full_and_short_id_and_several_at_once() {
    if !engine_available("references") {
        return;
    }
    let mut clean = Cleanup::new();
    let one = clean.add(&unique("ref-one"));
    let two = clean.add(&unique("ref-two"));
    build(
        &one,
        "FROM scratch\nCOPY f /f\n",
        vec![Item::File("f", b"one".to_vec(), 0o644)],
    );
    build(
        &two,
        "FROM scratch\nCOPY f /g\n",
        vec![Item::File("f", vec![1; 4096], 0o644)],
    );
    let (_, _, id) = inspect_size(&one);
    let short = id.trim_start_matches("sha256:")[..12].to_string();
    let untagged = one.trim_end_matches(":latest").to_string();
    let names = vec![
        format!("docker:{two}"),
        id.clone(),
        short,
        untagged,
        format!("docker:{one}"),
    ];
    let imgs = load_all(&names, &LoadOptions::default()).expect("load all");
    assert_eq!(imgs.len(), 5);
    assert_eq!(imgs[0].total_size(), 4096, "order kept");
    for img in &imgs[1..] {
        assert_eq!(img.facts.id, id);
        assert_eq!(img.total_size(), 3);
        assert!(img.facts.tags.contains(&one), "{:?}", img.facts.tags);
    }
}

#[test]
fn progress_events_reach_the_expected_size_and_end_done() {
    if !engine_available("progress") {
        return;
    }
    let mut clean = Cleanup::new();
    let tag = clean.add(&unique("progress"));
    build(
        &tag,
        "FROM scratch\nCOPY f /f\n",
        vec![Item::File("f", vec![9; 300_000], 0o644)],
    );
    let run = |via: Via| {
        let (tx, rx) = mpsc::channel();
        let tracker = Tracker::new(std::slice::from_ref(&tag));
        let reporter = Reporter::start(tracker.clone(), move |ev| tx.send(ev).is_ok());
        let opts = LoadOptions {
            via,
            ..LoadOptions::default()
        };
        let imgs = load_tracked(std::slice::from_ref(&tag), &opts, &tracker.images).expect("load");
        tracker.images[0].set_stage(Stage::Done);
        reporter.finish();
        let events: Vec<_> = rx.try_iter().collect();
        let last = events.last().expect("events").clone();
        assert!(last.done(), "{last:?}");
        assert_eq!(last.expected, imgs[0].total_size());
        (imgs, last)
    };
    // Through the export, progress counts the tar's bytes (headers too).
    let (_, last) = run(Via::Export);
    assert!(last.received > 300_000, "{last:?}");
    // From storage (where it can be read), the content bytes, by layer.
    if std::fs::read_dir("/var/lib/docker/image/overlay2/layerdb").is_err() {
        eprintln!("SKIPPED progress via storage: /var/lib/docker is not readable");
        return;
    }
    let (imgs, last) = run(Via::Storage);
    assert_eq!(imgs[0].facts.layers_read_via, "storage");
    assert_eq!(last.received, 300_000, "{last:?}");
    assert_eq!(last.layers.len(), 1, "{last:?}");
}

/// The binary without the layer cache: these tests are about the export
/// path (tests/cache.rs covers the cache).
fn layerscope() -> Command {
    let mut c = Command::cargo_bin("layerscope").expect("binary");
    c.arg("--no-cache").env("LAYERSCOPE_VIA", "export");
    c
}

fn one_line_error(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(2), "exit code");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn unreachable_engine_names_the_socket_and_how_to_fix_it() {
    // No engine needed.
    let out = layerscope()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("docker:whatever")
        .output()
        .expect("run");
    let err = one_line_error(&out);
    assert!(err.contains("unix:///nonexistent/docker.sock"), "{err}");
    assert!(err.contains("DOCKER_HOST"), "{err}");

    let out = layerscope()
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .arg("whatever")
        .output()
        .expect("run");
    let err = one_line_error(&out);
    assert!(
        err.contains("cannot reach the Docker engine at tcp://127.0.0.1:1"),
        "{err}"
    );
}

#[test]
fn missing_image_lists_similar_local_names() {
    if !engine_available("missing_image") {
        return;
    }
    let mut clean = Cleanup::new();
    let tag = clean.add(&unique("similar"));
    build(
        &tag,
        "FROM scratch\nCOPY f /f\n",
        vec![Item::File("f", b"x".to_vec(), 0o644)],
    );
    let typo = tag.replace("similar", "simliar");
    let out = layerscope()
        .arg(format!("docker:{typo}"))
        .output()
        .expect("run");
    let err = one_line_error(&out);
    assert!(err.contains("no such image"), "{err}");
    assert!(err.contains(&tag), "{err}");
}

#[test]
fn a_connection_dropped_mid_export_is_one_clean_error() {
    if !engine_available("dropped_connection") {
        return;
    }
    let Some(sock) = engine_socket() else {
        eprintln!("SKIPPED dropped_connection: DOCKER_HOST is not a unix socket");
        return;
    };
    let mut clean = Cleanup::new();
    let tag = clean.add(&unique("dropped"));
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    build(
        &tag,
        "FROM scratch\nCOPY f /f\n",
        vec![Item::File("f", big, 0o644)],
    );
    // A connection dropped mid-export: the answers cut after 1 MiB.
    let cutting = proxy(
        &sock,
        Faults {
            budget: 1 << 20,
            ..Faults::default()
        },
    );
    let proxy = cutting.host.clone();
    let out = layerscope()
        .env("DOCKER_HOST", &proxy)
        .arg(format!("docker:{tag}"))
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("run");
    let err = one_line_error(&out);
    assert!(err.contains("dropped during the export after"), "{err}");
    assert!(err.contains("bytes"), "{err}");

    // With a report asked for: none is written, and an earlier one stays.
    let reports = tempfile::tempdir().expect("tempdir");
    let report = reports.path().join("report.json");
    let listing = || -> Vec<String> {
        std::fs::read_dir(reports.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    };
    let run = || {
        layerscope()
            .env("DOCKER_HOST", &proxy)
            .arg(format!("docker:{tag}"))
            .arg("--json")
            .arg(&report)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .expect("run")
    };
    let err = one_line_error(&run());
    assert!(err.contains("dropped during the export after"), "{err}");
    assert!(
        listing().is_empty(),
        "no report, no temp file: {:?}",
        listing()
    );
    std::fs::write(&report, b"{\"earlier\": true}\n").expect("write");
    one_line_error(&run());
    assert_eq!(listing(), ["report.json"]);
    assert_eq!(
        std::fs::read(&report).expect("read"),
        b"{\"earlier\": true}\n",
        "the earlier report is untouched"
    );
}

#[test]
fn demo_refuses_a_missing_base_and_names_local_ones() {
    if !engine_available("demo_missing_base") {
        return;
    }
    let missing = format!("{PREFIX}-absent-golang:0");
    let opts = layerscope::demo::DemoOptions {
        base: Some(missing),
        force: false,
        pull_timeout: None,
    };
    let mut clean = Cleanup::new();
    let names = [
        clean.add(&unique("m-single")),
        clean.add(&unique("m-multi")),
    ];
    let err = layerscope::demo::build_demo_as(&opts, [&names[0], &names[1]], &mut |_| {})
        .expect_err("no such base")
        .to_string();
    assert!(
        err.contains("not in the local Docker engine and could not be pulled"),
        "{err}"
    );
    assert!(err.contains("--base"), "{err}");
    assert!(!err.contains('\n'));
}

#[test]
fn demo_builds_both_images_from_embedded_files() {
    if !engine_available("demo") {
        return;
    }
    // Needs a local Go image; the tests cannot make one without a registry
    // or a Debian mirror, so use one when present.
    let base =
        std::env::var("LAYERSCOPE_TEST_GO_IMAGE").unwrap_or_else(|_| "golang-local:1.19".into());
    if std::process::Command::new("docker")
        .args(["image", "inspect", &base])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        eprintln!("SKIPPED demo: no local Go image {base} (set LAYERSCOPE_TEST_GO_IMAGE)");
        return;
    }
    let mut clean = Cleanup::new();
    let single = clean.add(&unique("go-app-single"));
    let multi = clean.add(&unique("go-app-multi"));
    let mut steps = 0;
    let mut last_id = String::new();
    let mut builder_stage: Vec<String> = Vec::new();
    let opts = layerscope::demo::DemoOptions {
        base: Some(base.clone()),
        ..Default::default()
    };
    let result = layerscope::demo::build_demo_as(&opts, [&single, &multi], &mut |l| {
        if l.starts_with("Step ") {
            steps += 1;
            // The classic builder keeps a multi-stage build's first stage
            // as an untagged image: remember it to remove it.
            if l.ends_with("FROM scratch") && !last_id.is_empty() {
                builder_stage.push(last_id.clone());
            }
        }
        if let Some(id) = l.trim().strip_prefix("---> ") {
            last_id = id.trim().to_string();
        }
    });
    for id in &builder_stage {
        clean.add(id);
    }
    result.expect("demo build");
    assert!(steps >= 10, "build output reached the log ({steps} steps)");
    let imgs = load_all(&[single.clone(), multi.clone()], &LoadOptions::default()).expect("load");
    check_against_engine(&single, &imgs[0]);
    check_against_engine(&multi, &imgs[1]);
    assert!(imgs[1].final_entry("/app/go-app").is_some());
    assert!(imgs[1].final_entry("/app/static/index.html").is_some());
    assert!(imgs[0].total_size() > 20 * imgs[1].total_size());
}

#[test]
fn tls_settings_are_refused_clearly() {
    // No engine needed.
    let out = layerscope()
        .env("DOCKER_HOST", "tcp://127.0.0.1:2376")
        .env("DOCKER_TLS_VERIFY", "1")
        .arg("whatever")
        .output()
        .expect("run");
    let err = one_line_error(&out);
    assert!(err.contains("TLS"), "{err}");
}

#[test]
fn pull_failure_is_one_line() {
    if !engine_available("pull") {
        return;
    }
    // Nobody publishes this name: offline, no registry answers; online,
    // the registry has no such image. Either way one clear line.
    let err = layerscope::source::engine::pull(&format!("{PREFIX}-nothing/none:0"))
        .expect_err("pull must fail")
        .to_string();
    assert!(err.starts_with("cannot pull "), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn pull_falls_back_to_the_local_copy_except_in_ci() {
    if !engine_available("pull_fallback") {
        return;
    }
    let Some(rootfs) = busybox_rootfs() else {
        return;
    };
    // A local image whose registry (a closed loopback port) cannot answer.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let mut clean = Cleanup::new();
    let name = clean.add(&format!(
        "127.0.0.1:{port}/{PREFIX}-{}-pulled:1",
        std::process::id()
    ));
    import(&name, rootfs);
    let (size, _, _) = inspect_size(&name);
    let out = layerscope()
        .args([name.as_str(), "--pull", "--format", "json"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warn: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warn.len(), 1, "{stderr}");
    assert!(warn[0].contains("no registry answered"), "{stderr}");
    assert!(warn[0].contains("using the local"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["images"][0]["totals"]["size_bytes"], size);
    // CI asked for a fresh image: the failure stays an error.
    let out = layerscope()
        .args([name.as_str(), "--pull", "--ci", "--max-size", "1GB"])
        .output()
        .expect("run");
    let err = one_line_error(&out);
    assert!(err.contains("cannot pull"), "{err}");
    // A name that is not local at all fails as before.
    let absent = format!("127.0.0.1:{port}/{PREFIX}-absent:1");
    let out = layerscope()
        .args([absent.as_str(), "--pull"])
        .output()
        .expect("run");
    assert!(one_line_error(&out).contains("cannot pull"));
}
