//! A second dockerd of the test's own, beside the machine's engine: on a
//! unix socket or on TCP with TLS, with its own data root, exec root and
//! bridge. It is stopped, and its mounts, bridge and directory removed, on
//! drop (also when the test panics). Needs root, `dockerd`, `docker` and
//! `ip`; without them the test is skipped (under CI it fails).
//!
//! Not `--bridge=none`: a dockerd started so deletes the host's `docker0`;
//! each engine gets a bridge of its own, and the drop checks that the
//! host's `docker0` is still there.

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};
use std::time::{Duration, Instant};

use super::{have, run_ok};

/// Skip (or, under CI, fail) with a visible reason.
pub fn unavailable<T>(test: &str, why: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {test} cannot run: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    None
}

/// Where the engine listens.
pub enum Listen {
    /// `docker.sock` in its directory.
    Unix,
    /// `tcp://127.0.0.1:PORT` with `--tlsverify`: the server's CA,
    /// certificate and key, and the directory with the clients' `ca.pem`,
    /// `cert.pem`, `key.pem`.
    Tls {
        port: u16,
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
        client_certs: PathBuf,
    },
}

/// Which engine of which test: names its directory (`/tmp/ls-TAG…`), its
/// bridge (`lsTAGSLOTxPID`, at most 15 bytes) and its subnet
/// (`198.NET.x.1/24`, NET 18 or 19, apart from other tests' engines).
pub struct Spec<'a> {
    pub test: &'a str,
    pub tag: &'a str,
    pub slot: u32,
    pub net: u8,
}

pub struct Dockerd {
    child: Option<Child>,
    bridge: Option<String>,
    had_docker0: bool,
    /// `unix://…/docker.sock` or `tcp://127.0.0.1:PORT`.
    pub host: String,
    /// Its unix socket (with [`Listen::Unix`]).
    pub socket: PathBuf,
    /// The clients' certificates (with [`Listen::Tls`]).
    pub client_certs: Option<PathBuf>,
    log: PathBuf,
    exec_root: PathBuf,
    /// Last: removed after the daemon has stopped.
    pub dir: tempfile::TempDir,
}

impl Dockerd {
    /// Start an engine; `listen` prepares, in the engine's directory, how
    /// it listens (e.g. makes its certificates). `None` when it cannot
    /// run here (said on stderr).
    pub fn start(spec: &Spec, listen: impl FnOnce(&Path) -> Listen) -> Option<Dockerd> {
        let test = spec.test;
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
            .prefix(&format!("ls-{}", spec.tag))
            .tempdir_in("/tmp")
            .expect("temp dir");
        let d = dir.path().to_path_buf();
        let listen = listen(&d);
        // An empty config: /etc/docker/daemon.json belongs to the main engine.
        let config = d.join("daemon.json");
        std::fs::write(&config, "{}").expect("daemon.json");
        let had_docker0 = Path::new("/sys/class/net/docker0").exists();
        let pid = std::process::id();
        let bridge = format!("ls{}{}x{pid}", spec.tag, spec.slot);
        let made = Proc::new("ip")
            .args(["link", "add", &bridge, "type", "bridge"])
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            return unavailable(test, &format!("cannot create the bridge {bridge}"));
        }
        let socket = d.join("docker.sock");
        let (host, client_certs) = match &listen {
            Listen::Unix => (format!("unix://{}", socket.display()), None),
            Listen::Tls {
                port, client_certs, ..
            } => (
                format!("tcp://127.0.0.1:{port}"),
                Some(client_certs.clone()),
            ),
        };
        let mut engine = Dockerd {
            child: None,
            bridge: Some(bridge.clone()),
            had_docker0,
            host,
            socket,
            client_certs,
            log: d.join("dockerd.log"),
            exec_root: d.join("exec"),
            dir,
        };
        let net = format!("198.{}.{}.1/24", spec.net, (pid * 2 + spec.slot) % 250 + 1);
        run_ok(
            Proc::new("ip").args(["addr", "add", &net, "dev", &bridge]),
            "ip addr add",
        );
        let logfile = std::fs::File::create(&engine.log).expect("log file");
        let errfile = logfile.try_clone().expect("log file");
        let p = |p: &Path| p.to_string_lossy().into_owned();
        let mut cmd = Proc::new("dockerd");
        cmd.args(["--config-file", &p(&config), "-H", &engine.host]);
        if let Listen::Tls { ca, cert, key, .. } = &listen {
            cmd.arg("--tlsverify")
                .args(["--tlscacert", &p(ca)])
                .args(["--tlscert", &p(cert)])
                .args(["--tlskey", &p(key)]);
        }
        let child = cmd
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
                    "the second dockerd did not answer at {} ({}); its log ends: {}",
                    engine.host,
                    exited.map_or("timed out".to_string(), |s| s.to_string()),
                    engine.log_tail()
                );
                drop(engine);
                return unavailable(test, &why);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The docker CLI pointed at this engine (test setup only).
    pub fn docker(&self) -> Proc {
        let mut c = Proc::new("docker");
        c.args(["-H", &self.host]);
        if let Some(certs) = &self.client_certs {
            let cert = |f: &str| certs.join(f).to_string_lossy().into_owned();
            c.arg("--tlsverify")
                .args(["--tlscacert", &cert("ca.pem")])
                .args(["--tlscert", &cert("cert.pem")])
                .args(["--tlskey", &cert("key.pem")]);
        }
        c.env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// The last lines of the engine's log, on one line.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// Stop the engine as `systemctl stop docker` does (SIGTERM), and wait
    /// until it has exited; SIGKILL after 30 s.
    pub fn stop(&mut self) {
        self.signal("TERM");
    }

    /// Send `signal` to the engine (TERM: stop; KILL: a crash, and its
    /// containerd is killed too) and wait until it has exited.
    pub fn signal(&mut self, signal: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Proc::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status();
        if signal != "KILL" {
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            eprintln!("dockerd at {} did not stop in 30 s, killing it", self.host);
            let _ = child.kill();
        }
        let _ = child.wait();
        // Its supervised containerd would outlive it.
        let pidfile = self.exec_root.join("containerd/containerd.pid");
        if let Ok(pid) = std::fs::read_to_string(pidfile) {
            let _ = Proc::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }
}

impl Drop for Dockerd {
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
