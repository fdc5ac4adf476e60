//! The engine source over TLS, against a real second Docker engine.
//!
//! The test makes a CA, a server certificate for 127.0.0.1 and a client
//! certificate with `openssl`, starts its own `dockerd` on a free
//! 127.0.0.1 port with `--tlsverify` and private data, exec and pid paths (no
//! bridge, no iptables: it leaves the main engine alone), imports a tiny image
//! there, and runs layerscope with DOCKER_HOST, DOCKER_TLS_VERIFY and
//! DOCKER_CERT_PATH as the docker CLI would use them. The daemon is stopped,
//! its bridge deleted and its directory removed when the guard drops, also on
//! a panic.
//!
//! Not `--bridge=none`: a dockerd started so deletes the host's `docker0`
//! interface at start-up, which breaks the main engine's containers. The
//! second engine gets a bridge of its own instead, with an address from the
//! benchmarking range 198.18.0.0/15, and no iptables or ip_forward changes.
//!
//! Needs root, `dockerd`, `docker`, `ip` and `openssl`. Without them the test
//! is skipped with a message; with CI set it fails.

mod common_engine;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use common_engine::{have, run_ok};

const IMAGE: &str = "layerscope-tls-test:latest";

/// Skip (or, under CI, fail) with a visible reason.
fn unavailable<T>(why: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but the TLS engine test cannot run: {why}");
    }
    eprintln!("SKIPPED engine_tls: {why}");
    None
}

fn openssl(dir: &Path, args: &[&str]) {
    run_ok(
        Proc::new("openssl").current_dir(dir).args(args),
        &format!("openssl {}", args.join(" ")),
    );
}

/// A self-signed CA (`ca.pem`, `ca-key.pem`) in `dir`.
fn make_ca(dir: &Path, cn: &str) {
    let subj = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &subj,
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
    );
}

/// `cert`/`key` signed by the CA in `dir`, with the extensions `ext`.
fn sign(dir: &Path, cn: &str, cert: &str, key: &str, ext: &str) {
    let csr = format!("{cert}.csr");
    let extfile = format!("{cert}.ext");
    std::fs::write(dir.join(&extfile), ext).expect("write extensions");
    let subj = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", &subj, "-keyout", key, "-out", &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &extfile,
            "-out",
            cert,
        ],
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A second dockerd with TLS; stopped and removed on drop.
struct TlsEngine {
    child: Option<Child>,
    /// Its own bridge interface, deleted on drop.
    bridge: Option<String>,
    /// Did the host have `docker0` before? It must still have it after.
    had_docker0: bool,
    /// `ca.pem`, `cert.pem`, `key.pem` for clients.
    certs: PathBuf,
    host: String,
    log: PathBuf,
    exec_root: PathBuf,
    // Last: removed after the daemon has stopped.
    dir: tempfile::TempDir,
}

impl TlsEngine {
    fn start() -> Option<TlsEngine> {
        let root = Proc::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !root {
            return unavailable("dockerd needs root to start a second engine");
        }
        for (tool, arg) in [
            ("dockerd", "--version"),
            ("docker", "--version"),
            ("openssl", "version"),
            ("ip", "-V"),
        ] {
            if !have(tool, arg) {
                return unavailable(&format!("`{tool}` is not installed"));
            }
        }
        // Short, fixed parent: containerd's socket path must stay short.
        let dir = tempfile::Builder::new()
            .prefix("ls-tls")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let d = dir.path();
        let certs = d.join("certs");
        let server = d.join("server");
        for p in [&certs, &server] {
            std::fs::create_dir(p).expect("mkdir");
        }
        make_ca(&server, "layerscope-test-ca");
        sign(
            &server,
            "127.0.0.1",
            "server-cert.pem",
            "server-key.pem",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        sign(
            &server,
            "layerscope-client",
            "cert.pem",
            "key.pem",
            "extendedKeyUsage=clientAuth\n",
        );
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::copy(server.join(f), certs.join(f)).expect("copy cert");
        }
        // An empty config: /etc/docker/daemon.json belongs to the main engine.
        let config = d.join("daemon.json");
        std::fs::write(&config, "{}").expect("daemon.json");
        let had_docker0 = Path::new("/sys/class/net/docker0").exists();
        let pid = std::process::id();
        let bridge = format!("lstls{pid}");
        let made = Proc::new("ip")
            .args(["link", "add", &bridge, "type", "bridge"])
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            return unavailable(&format!(
                "cannot create the bridge {bridge} (`ip link add`)"
            ));
        }
        let mut engine = TlsEngine {
            child: None,
            bridge: Some(bridge.clone()),
            had_docker0,
            certs,
            host: String::new(),
            log: d.join("dockerd.log"),
            exec_root: d.join("exec"),
            dir,
        };
        let net = format!("198.18.{}.1/24", pid % 250 + 1);
        run_ok(
            Proc::new("ip").args(["addr", "add", &net, "dev", &bridge]),
            "ip addr add",
        );
        let d = engine.dir.path();
        let port = free_port();
        let host = format!("tcp://127.0.0.1:{port}");
        let logfile = std::fs::File::create(&engine.log).expect("log file");
        let errfile = logfile.try_clone().expect("log file");
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let child = Proc::new("dockerd")
            .args(["--config-file", &path(&config), "-H", &host, "--tlsverify"])
            .args(["--tlscacert", &path(&server.join("ca.pem"))])
            .args(["--tlscert", &path(&server.join("server-cert.pem"))])
            .args(["--tlskey", &path(&server.join("server-key.pem"))])
            .args(["--data-root", &path(&d.join("data"))])
            .args(["--exec-root", &path(&engine.exec_root)])
            .args(["--pidfile", &path(&d.join("dockerd.pid"))])
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
                return unavailable(&format!("cannot start dockerd: {e}"));
            }
        }
        engine.host = host;
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
                    "the second dockerd did not answer at {} ({}); its log ends: {}",
                    engine.host,
                    exited.map_or("timed out".to_string(), |s| s.to_string()),
                    engine.log_tail()
                );
                drop(engine);
                return unavailable(&why);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The docker CLI pointed at this engine (test setup only).
    fn docker(&self) -> Proc {
        let mut c = Proc::new("docker");
        let cert = |f: &str| self.certs.join(f).to_string_lossy().into_owned();
        c.args(["-H", &self.host, "--tlsverify"])
            .args(["--tlscacert", &cert("ca.pem")])
            .args(["--tlscert", &cert("cert.pem")])
            .args(["--tlskey", &cert("key.pem")])
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// layerscope with the docker CLI's TLS variables set for `certs`.
    fn layerscope(&self, certs: &Path) -> Command {
        let mut c = Command::cargo_bin("layerscope").expect("binary");
        c.arg("--no-cache");
        c.env("DOCKER_HOST", &self.host)
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", certs);
        c
    }
}

impl Drop for TlsEngine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM lets dockerd stop its own containerd and unmount.
            let _ = Proc::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if child.try_wait().ok().flatten().is_none() {
                eprintln!("engine_tls: dockerd did not stop in 30 s, killing it");
                let _ = child.kill();
                let _ = child.wait();
                // Its supervised containerd would outlive it.
                let pidfile = self.exec_root.join("containerd/containerd.pid");
                if let Ok(pid) = std::fs::read_to_string(pidfile) {
                    let _ = Proc::new("kill").args(["-KILL", pid.trim()]).status();
                }
            }
        }
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

/// A small root file system as a tar, written to `path`.
fn rootfs_tar(path: &Path) {
    let file = std::fs::File::create(path).expect("tar file");
    let mut tar = tar::Builder::new(file);
    let files: [(&str, Vec<u8>); 3] = [
        ("etc/hello", b"hello over TLS\n".to_vec()),
        (
            "data/blob.bin",
            (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect(),
        ),
        ("data/small.txt", vec![b'x'; 1234]),
    ];
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        tar.append_data(&mut h, name, data.as_slice())
            .expect("tar entry");
    }
    tar.finish().expect("tar");
}

fn one_line_error(out: &std::process::Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit code; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn tls_engine_total_matches_inspect_and_bad_certs_fail_cleanly() {
    let Some(engine) = TlsEngine::start() else {
        return;
    };
    let tar = engine.dir.path().join("rootfs.tar");
    rootfs_tar(&tar);
    run_ok(
        engine
            .docker()
            .args(["import", &tar.to_string_lossy(), IMAGE]),
        "docker import",
    );
    let size: u64 = run_ok(
        engine
            .docker()
            .args(["image", "inspect", "--format", "{{.Size}}", IMAGE]),
        "docker image inspect",
    )
    .trim()
    .parse()
    .expect("inspect Size");
    assert!(size > 50_000, "inspect Size {size}");

    // The report over TLS: its total is the engine's Size.
    let out = engine
        .layerscope(&engine.certs)
        .args([IMAGE, "--json", "-"])
        .output()
        .expect("run layerscope");
    assert!(
        out.status.success(),
        "layerscope over TLS failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let total = report["images"][0]["totals"]["size_bytes"].as_u64();
    assert_eq!(total, Some(size), "total vs docker image inspect Size");
    assert_eq!(report["images"][0]["name"], IMAGE);
    // A tcp engine is not local: auto reads through the export, and says why once.
    assert_eq!(report["images"][0]["layers_read_via"], "export");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("is not local").count(), 1, "{err}");

    // A CA that did not sign the engine's certificate.
    let wrong = engine.dir.path().join("wrong-ca");
    std::fs::create_dir(&wrong).expect("mkdir");
    make_ca(&wrong, "some-other-ca");
    for f in ["cert.pem", "key.pem"] {
        std::fs::copy(engine.certs.join(f), wrong.join(f)).expect("copy cert");
    }
    let out = engine
        .layerscope(&wrong)
        .arg(IMAGE)
        .output()
        .expect("run layerscope");
    let err = one_line_error(&out);
    assert!(err.contains(&engine.host), "names the host: {err}");
    assert!(
        err.contains(&wrong.join("ca.pem").to_string_lossy().into_owned()),
        "names the CA file: {err}"
    );
    assert!(err.contains("not signed by the CA"), "{err}");

    // A missing client key.
    let nokey = engine.dir.path().join("no-key");
    std::fs::create_dir(&nokey).expect("mkdir");
    for f in ["ca.pem", "cert.pem"] {
        std::fs::copy(engine.certs.join(f), nokey.join(f)).expect("copy cert");
    }
    let out = engine
        .layerscope(&nokey)
        .arg(IMAGE)
        .output()
        .expect("run layerscope");
    let err = one_line_error(&out);
    assert!(err.contains(&engine.host), "names the host: {err}");
    assert!(
        err.contains(&nokey.join("key.pem").to_string_lossy().into_owned()),
        "names the key file: {err}"
    );

    // Plain HTTP to the TLS port says TLS is expected; DOCKER_TLS_VERIFY=0
    // means plain, as unset does.
    for verify in [None, Some("0")] {
        let mut cmd = engine.layerscope(&engine.certs);
        match verify {
            Some(v) => cmd.env("DOCKER_TLS_VERIFY", v),
            None => cmd.env_remove("DOCKER_TLS_VERIFY"),
        };
        let out = cmd.arg(IMAGE).output().expect("run layerscope");
        let err = one_line_error(&out);
        assert!(
            err.contains(&engine.host) && err.contains("expects TLS"),
            "DOCKER_TLS_VERIFY={verify:?}: {err}"
        );
    }
}
