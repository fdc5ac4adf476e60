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

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command as Proc;

use assert_cmd::Command;
use common_engine::{Dockerd, Listen, Spec, have, run_ok, unavailable};

const IMAGE: &str = "layerscope-tls-test:latest";

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

const TEST: &str = "engine_tls";

/// A second dockerd with TLS (stopped and removed on drop), and the
/// clients' certificates.
struct TlsEngine {
    engine: Dockerd,
    certs: PathBuf,
}

impl TlsEngine {
    fn start() -> Option<TlsEngine> {
        if !have("openssl", "version") {
            return unavailable(TEST, "`openssl` is not installed");
        }
        let spec = Spec {
            test: TEST,
            tag: "tls",
            slot: 0,
            net: 18,
        };
        let engine = Dockerd::start(&spec, |d| {
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
            Listen::Tls {
                port: free_port(),
                ca: server.join("ca.pem"),
                cert: server.join("server-cert.pem"),
                key: server.join("server-key.pem"),
                client_certs: certs,
            }
        })?;
        let certs = engine.client_certs.clone()?;
        Some(TlsEngine { engine, certs })
    }

    fn docker(&self) -> Proc {
        self.engine.docker()
    }

    fn dir(&self) -> &Path {
        self.engine.dir.path()
    }

    /// layerscope with the docker CLI's TLS variables set for `certs`.
    fn layerscope(&self, certs: &Path) -> Command {
        let mut c = Command::cargo_bin("layerscope").expect("binary");
        c.arg("--no-cache");
        c.env("DOCKER_HOST", &self.engine.host)
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", certs);
        c
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
    let tar = engine.dir().join("rootfs.tar");
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
    let wrong = engine.dir().join("wrong-ca");
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
    assert!(err.contains(&engine.engine.host), "names the host: {err}");
    assert!(
        err.contains(&wrong.join("ca.pem").to_string_lossy().into_owned()),
        "names the CA file: {err}"
    );
    assert!(err.contains("not signed by the CA"), "{err}");

    // A missing client key.
    let nokey = engine.dir().join("no-key");
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
    assert!(err.contains(&engine.engine.host), "names the host: {err}");
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
            err.contains(&engine.engine.host) && err.contains("expects TLS"),
            "DOCKER_TLS_VERIFY={verify:?}: {err}"
        );
    }
}
