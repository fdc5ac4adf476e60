//! Engine faults against real engines: an export that stalls (a proxy
//! forwards part of it, then holds the connection open and silent), and an
//! engine stopped half-way through an export (a second dockerd of our own,
//! stopped while layerscope reads from it). Each must end in one clean line,
//! exit code 2, no report file and no hang.
//!
//! The second engine is started as `tests/engine_tls.rs` starts its own:
//! private data, exec and pid paths, its own bridge with an address from
//! the benchmarking range 198.18.0.0/15, no iptables, no ip_forward, and
//! here a unix socket. The host's `docker0` and the main engine are left
//! alone (checked on drop). Without root or the tools the tests skip with
//! a message; with CI set they fail.

mod common_engine;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// Skip (or, under CI, fail) with a visible reason.
fn unavailable<T>(test: &str, why: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {test} cannot run: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    None
}

/// A unix-socket proxy to `upstream` that forwards `budget` bytes of each
/// connection's answers, then goes silent while keeping the connection
/// open: a stalled engine (or network) as the client sees it. Returns the
/// host to use and the bytes forwarded so far.
fn stalling_proxy(upstream: String, budget: u64) -> (tempfile::TempDir, String, Arc<AtomicU64>) {
    proxy(upstream, budget, None)
}

/// Forwards `budget` bytes of each answer, then stays silent; with `hold`
/// (a byte count and a flag), stops forwarding at that count until the flag
/// is set, and then forwards the rest.
fn proxy(
    upstream: String,
    budget: u64,
    hold: Option<(u64, Arc<AtomicBool>)>,
) -> (tempfile::TempDir, String, Arc<AtomicU64>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stall.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    let forwarded = Arc::new(AtomicU64::new(0));
    let total = forwarded.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = UnixStream::connect(&upstream) else {
                return;
            };
            let closed = Arc::new(AtomicBool::new(false));
            let (mut c_read, mut s_write) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            let done = closed.clone();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
                done.store(true, Ordering::SeqCst);
            });
            let (mut s_read, mut c_write) = (server, client);
            let total = total.clone();
            let hold = hold.clone();
            std::thread::spawn(move || {
                let mut left = budget;
                let mut buf = vec![0u8; 16 * 1024];
                while left > 0 {
                    if let Some((at, release)) = &hold {
                        let t = Instant::now();
                        while total.load(Ordering::SeqCst) >= *at
                            && !release.load(Ordering::SeqCst)
                            && t.elapsed() < Duration::from_secs(300)
                        {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                    let want = (left as usize).min(buf.len());
                    let n = match s_read.read(&mut buf[..want]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    total.fetch_add(n as u64, Ordering::SeqCst);
                    left -= n as u64;
                }
                // Past the budget: silent, open, until the client goes away
                // (bounded anyway). A closed upstream is passed on at once.
                let t = Instant::now();
                while left == 0
                    && !closed.load(Ordering::SeqCst)
                    && t.elapsed() < Duration::from_secs(300)
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = c_write.shutdown(std::net::Shutdown::Both);
                let _ = s_read.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    let host = format!("unix://{}", path.display());
    (dir, host, forwarded)
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
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    match host.strip_prefix("unix://") {
        Some(s) => Some(s.to_string()),
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
    let (_dir, proxy, forwarded) = stalling_proxy(sock, 1 << 20);
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

// ---- a second engine ---------------------------------------------------------

/// A second dockerd on a unix socket of its own; stopped, its mounts,
/// bridge and directory removed on drop (also on a panic).
struct SecondEngine {
    child: Option<Child>,
    bridge: Option<String>,
    had_docker0: bool,
    socket: PathBuf,
    log: PathBuf,
    exec_root: PathBuf,
    // Last: removed after the daemon has stopped.
    dir: tempfile::TempDir,
}

impl SecondEngine {
    /// `slot` tells apart engines started by one test process.
    fn start(test: &str, slot: u32) -> Option<SecondEngine> {
        let root = Proc::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !root {
            return unavailable(test, "dockerd needs root to start a second engine");
        }
        for (tool, arg) in [
            ("dockerd", "--version"),
            ("docker", "--version"),
            ("ip", "-V"),
        ] {
            if !have(tool, arg) {
                return unavailable(test, &format!("`{tool}` is not installed"));
            }
        }
        // Short, fixed parent: socket paths must stay short.
        let dir = tempfile::Builder::new()
            .prefix("ls-flt")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let d = dir.path().to_path_buf();
        let config = d.join("daemon.json");
        std::fs::write(&config, "{}").expect("daemon.json");
        let had_docker0 = Path::new("/sys/class/net/docker0").exists();
        let pid = std::process::id();
        let bridge = format!("lsflt{slot}x{pid}");
        let made = Proc::new("ip")
            .args(["link", "add", &bridge, "type", "bridge"])
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            return unavailable(test, &format!("cannot create the bridge {bridge}"));
        }
        let mut engine = SecondEngine {
            child: None,
            bridge: Some(bridge.clone()),
            had_docker0,
            socket: d.join("docker.sock"),
            log: d.join("dockerd.log"),
            exec_root: d.join("exec"),
            dir,
        };
        let net = format!("198.19.{}.1/24", (pid * 2 + slot) % 250 + 1);
        run_ok(
            Proc::new("ip").args(["addr", "add", &net, "dev", &bridge]),
            "ip addr add",
        );
        let logfile = std::fs::File::create(&engine.log).expect("log file");
        let errfile = logfile.try_clone().expect("log file");
        let p = |p: &Path| p.to_string_lossy().into_owned();
        let child = Proc::new("dockerd")
            .args(["--config-file", &p(&config)])
            .args(["-H", &format!("unix://{}", p(&engine.socket))])
            .args(["--data-root", &p(&d.join("data"))])
            .args(["--exec-root", &p(&engine.exec_root)])
            .args(["--pidfile", &p(&d.join("dockerd.pid"))])
            .args(["--bridge", &bridge])
            .args(["--iptables=false", "--ip6tables=false"])
            .args(["--ip-forward=false", "--ip-masq=false"])
            .stdin(Stdio::null())
            .stdout(logfile)
            .stderr(errfile)
            .spawn();
        match child {
            Ok(c) => engine.child = Some(c),
            Err(e) => {
                drop(engine);
                return unavailable(test, &format!("cannot start dockerd: {e}"));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if engine
                .docker()
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Some(engine);
            }
            let exited = engine
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let why = format!(
                    "the second dockerd did not answer ({}); its log ends: {}",
                    exited.map_or("timed out".to_string(), |s| s.to_string()),
                    engine.log_tail()
                );
                drop(engine);
                return unavailable(test, &why);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The docker CLI pointed at this engine (test setup only).
    fn docker(&self) -> Proc {
        let mut c = Proc::new("docker");
        c.args(["-H", &self.host()])
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// Stop the engine as `systemctl stop docker` does (SIGTERM), and wait
    /// until it has exited; SIGKILL after 30 s.
    fn stop(&mut self) {
        self.signal("TERM");
    }

    /// Send `signal` to the engine (TERM: stop; KILL: a crash, and its
    /// containerd is killed too) and wait until it has exited.
    fn signal(&mut self, signal: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Proc::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status();
        if signal == "KILL" {
            let _ = child.wait();
            let pidfile = self.exec_root.join("containerd/containerd.pid");
            if let Ok(pid) = std::fs::read_to_string(pidfile) {
                let _ = Proc::new("kill").args(["-KILL", pid.trim()]).status();
            }
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if child.try_wait().ok().flatten().is_none() {
            eprintln!("engine_faults: dockerd did not stop in 30 s, killing it");
            let _ = child.kill();
            let _ = child.wait();
            // Its supervised containerd would outlive it.
            let pidfile = self.exec_root.join("containerd/containerd.pid");
            if let Ok(pid) = std::fs::read_to_string(pidfile) {
                let _ = Proc::new("kill").args(["-KILL", pid.trim()]).status();
            }
        }
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        self.stop();
        // Anything still mounted under the directory would stop its removal.
        let dir = self.dir.path().to_string_lossy().into_owned();
        if let Ok(mounts) = std::fs::read_to_string("/proc/mounts") {
            let mut points: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter(|m| m.starts_with(&dir))
                .collect();
            points.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in points {
                let _ = Proc::new("umount").args(["-l", m]).status();
            }
        }
        if let Some(bridge) = self.bridge.take() {
            let _ = Proc::new("ip").args(["link", "del", &bridge]).status();
        }
        let lost = self.had_docker0 && !Path::new("/sys/class/net/docker0").exists();
        if lost && !std::thread::panicking() {
            panic!("the second engine deleted the host's docker0 interface");
        }
    }
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
    let Some(mut engine) = SecondEngine::start(test, slot) else {
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
    let (_proxy_dir, proxy, seen) = proxy(
        engine.socket.to_string_lossy().into_owned(),
        u64::MAX,
        Some((20 << 20, release.clone())),
    );
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
