//! Engine faults against real engines: an export that stalls (a proxy
//! forwards part of it, then holds the connection open and silent), and an
//! engine stopped half-way through an export (a second dockerd of our own,
//! stopped while layerscope reads from it). Each must end in one clean line,
//! exit code 2, no report file and no hang.
//!
//! The second engine is `common_engine::dockerd`'s, as in
//! `tests/engine_tls.rs`: private data, exec and pid paths, its own bridge with an address from
//! the benchmarking range 198.18.0.0/15, no iptables, no ip_forward, and
//! here a unix socket. The host's `docker0` and the main engine are left
//! alone (checked on drop). Without root or the tools the tests skip with
//! a message; with CI set they fail.

mod common_engine;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use common_engine::*;

/// The binary without the layer cache: these faults happen during exports.
fn layerscope() -> Command {
    let mut c = Command::cargo_bin("layerscope").expect("binary");
    c.arg("--no-cache").env("LAYERSCOPE_VIA", "export");
    c
}

/// Exit 2, nothing on stdout, one line on stderr; returns the line.
fn one_line_error(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "exit code; stderr: {err}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("layerscope: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Run layerscope with a report file asked for, an earlier report in
/// place: it must fail, and leave the earlier report as it was.
struct ReportDir {
    dir: tempfile::TempDir,
}

const EARLIER: &[u8] = b"{\"earlier\": true}\n";

impl ReportDir {
    fn new() -> ReportDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("report.json"), EARLIER).expect("write");
        ReportDir { dir }
    }
    fn path(&self) -> String {
        self.dir.path().join("report.json").display().to_string()
    }
    fn check_untouched(&self) {
        let names: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["report.json"], "no partial or temporary file");
        assert_eq!(
            std::fs::read(self.dir.path().join("report.json")).expect("read"),
            EARLIER,
            "the earlier report is untouched"
        );
    }
}

fn main_socket(test: &str) -> Option<String> {
    if !engine_available(test) {
        return None;
    }
    match engine_socket() {
        Some(s) => Some(s),
        None => unavailable(test, "DOCKER_HOST is not a unix socket"),
    }
}

#[test]
fn a_stalled_export_fails_within_the_stall_timeout() {
    let Some(sock) = main_socket("stalled_export") else {
        return;
    };
    let mut clean = Cleanup::new();
    let tag = clean.add(&unique("stalled"));
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    build(
        &tag,
        "FROM scratch\nCOPY f /f\n",
        vec![Item::File("f", big, 0o644)],
    );
    // Enough for the version check, the inspect and the start of the export.
    // The answers stall after 1 MiB, the connection left open.
    let stalling = proxy(
        &sock,
        Faults {
            budget: 1 << 20,
            after_budget: AfterBudget::Stall,
            ..Faults::default()
        },
    );
    let (proxy, forwarded) = (stalling.host.clone(), &stalling.forwarded);
    let report = ReportDir::new();
    let t = Instant::now();
    let out = layerscope()
        .env("DOCKER_HOST", &proxy)
        .env("LAYERSCOPE_ENGINE_TIMEOUT", "3")
        .args([&format!("docker:{tag}"), "--json", &report.path()])
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run");
    let took = t.elapsed();
    let err = one_line_error(&out);
    assert!(
        err.contains("sent nothing for 3 s during the export"),
        "{err}"
    );
    assert!(err.contains("LAYERSCOPE_ENGINE_TIMEOUT"), "{err}");
    assert!(err.contains(&proxy), "names the host: {err}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(30),
        "failed after {took:?}"
    );
    assert!(
        forwarded.load(Ordering::SeqCst) >= 1 << 20,
        "the export had started"
    );
    report.check_untouched();
    eprintln!("stalled export: {err}failed after {took:?}");

    // A bad value for the timeout is a usage error, before any request.
    let out = layerscope()
        .env("DOCKER_HOST", &proxy)
        .env("LAYERSCOPE_ENGINE_TIMEOUT", "soon")
        .arg(format!("docker:{tag}"))
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run");
    let err = one_line_error(&out);
    assert!(err.contains("LAYERSCOPE_ENGINE_TIMEOUT=\"soon\""), "{err}");
}

/// A second engine of this test's own (`slot` tells apart engines
/// started by one test process).
fn second_engine(test: &str, slot: u32) -> Option<Dockerd> {
    let spec = Spec {
        test,
        tag: "flt",
        slot,
        net: 19,
    };
    Dockerd::start(&spec, |_| Listen::Unix)
}

/// A root file system tar of `files` files of `each` bytes that do not
/// compress, written to `path`; returns its payload size.
fn noise_rootfs(path: &Path, files: usize, each: usize) -> u64 {
    let f = std::fs::File::create(path).expect("rootfs tar");
    let mut tar = tar::Builder::new(std::io::BufWriter::new(f));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut data = vec![0u8; each];
    for i in 0..files {
        for chunk in data.chunks_mut(8) {
            // xorshift64: fast, and gzip or the engine cannot shrink it.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(each as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        tar.append_data(&mut h, format!("data/blob{i:03}.bin"), data.as_slice())
            .expect("tar entry");
    }
    tar.into_inner().expect("tar").flush().expect("flush");
    (files * each) as u64
}

#[test]
fn an_engine_stopped_mid_export_is_one_clean_error() {
    stopped_mid_export("engine_stopped_mid_export", 0, "TERM");
}

#[test]
fn an_engine_killed_mid_export_is_one_clean_error() {
    stopped_mid_export("engine_killed_mid_export", 1, "KILL");
}

/// Stop a second engine with `signal` while layerscope reads its export.
fn stopped_mid_export(test: &str, slot: u32, signal: &str) {
    let Some(mut engine) = second_engine(test, slot) else {
        return;
    };
    let image = "layerscope-fault-test:big";
    let rootfs = engine.dir.path().join("rootfs.tar");
    let payload = noise_rootfs(&rootfs, 12, 25 << 20); // 300 MiB
    run_ok(
        engine
            .docker()
            .args(["import", &rootfs.to_string_lossy(), image]),
        "docker import into the second engine",
    );
    let _ = std::fs::remove_file(&rootfs);
    let size: u64 = run_ok(
        engine
            .docker()
            .args(["image", "inspect", "--format", "{{.Size}}", image]),
        "docker image inspect",
    )
    .trim()
    .parse()
    .expect("inspect Size");
    assert_eq!(size, payload);

    // layerscope reads through a proxy that counts, and holds the answer
    // once 20 MiB of the export have passed, until the engine has stopped:
    // so the engine stops with most of the export still to send, however
    // fast the machine is. Then the proxy passes on what it still gets
    // and the connection's end, as a direct connection would.
    let release = Arc::new(AtomicBool::new(false));
    let holding = proxy(
        &engine.socket.to_string_lossy(),
        Faults {
            hold: Some((20 << 20, release.clone())),
            ..Faults::default()
        },
    );
    let (proxy, seen) = (holding.host.clone(), &holding.forwarded);
    let report = ReportDir::new();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_layerscope"))
        .env("DOCKER_HOST", &proxy)
        .args([
            "--no-cache",
            "--via",
            "export",
            image,
            "--json",
            &report.path(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start layerscope");
    let started = Instant::now();
    while seen.load(Ordering::SeqCst) < 20 << 20 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the export never reached 20 MiB ({} bytes)",
            seen.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let at = seen.load(Ordering::SeqCst);
    let stopping = Instant::now();
    engine.signal(signal);
    let stopped_in = stopping.elapsed();
    release.store(true, Ordering::SeqCst);
    // layerscope must end by itself, soon.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("layerscope did not end within 60 s of the engine stopping")
        .expect("layerscope output");
    let took = stopping.elapsed();
    let err = one_line_error(&out);
    assert!(err.contains(image), "names the image: {err}");
    assert!(
        err.contains("dropped during the export"),
        "says what happened: {err}"
    );
    assert!(err.contains("bytes) of about"), "{err}");
    report.check_untouched();
    eprintln!(
        "engine sent SIG{signal} after {at} bytes of the export (it took {stopped_in:?} to exit); layerscope ended {took:?} after the signal with: {err}"
    );
}
