//! `docker://` against a registry that serves TLS with a CA the test makes
//! (openssl): rejected while nothing trusts the CA, read once the CA is in
//! a certs.d directory as Docker and podman keep them
//! (`~/.config/containers/certs.d/HOST:PORT/ca.crt`, and, when the tests
//! run as root, `/etc/docker/certs.d/` and `/etc/containers/certs.d/`).
//! A registry that requires a client certificate fails with a line that
//! says layerscope cannot present one (oci-client's HTTP client cannot be
//! given one).

mod common_engine;
mod common_registry;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use common_engine::*;
use common_registry::*;
use tempfile::TempDir;

/// A CA, a server certificate for 127.0.0.1 and a client certificate.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            dir: TempDir::new().expect("tempdir"),
        };
        let d = pki.dir.path();
        run_ok(
            Std::new("openssl")
                .current_dir(d)
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", "/CN=layerscope-test-ca"])
                .args(["-keyout", "ca.key", "-out", "ca.crt"]),
            "openssl req (CA)",
        );
        for (name, cn, ext) in [
            (
                "server",
                "127.0.0.1",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            ),
            (
                "client",
                "layerscope-test-client",
                "extendedKeyUsage=clientAuth\n",
            ),
        ] {
            std::fs::write(d.join(format!("{name}.ext")), ext).expect("ext");
            run_ok(
                Std::new("openssl")
                    .current_dir(d)
                    .args(["req", "-newkey", "rsa:2048", "-nodes"])
                    .args(["-subj", &format!("/CN={cn}")])
                    .args(["-keyout", &format!("{name}.key")])
                    .args(["-out", &format!("{name}.csr")]),
                "openssl req",
            );
            run_ok(
                Std::new("openssl")
                    .current_dir(d)
                    .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
                    .args([
                        "-in",
                        &format!("{name}.csr"),
                        "-CA",
                        "ca.crt",
                        "-CAkey",
                        "ca.key",
                    ])
                    .args(["-extfile", &format!("{name}.ext")])
                    .args(["-out", &format!("{name}.crt")]),
                "openssl x509 -req",
            );
        }
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.path("ca.crt")).expect("ca.crt")
    }

    fn server(&self, client_ca: bool) -> TlsFiles {
        TlsFiles {
            cert: self.path("server.crt"),
            key: self.path("server.key"),
            client_ca: client_ca.then(|| self.path("ca.crt")),
        }
    }
}

/// `DIR/HOST/` with the CA in it (and the client pair when asked).
fn certs_d(dir: &Path, host: &str, pki: &Pki, client: bool) -> PathBuf {
    let d = dir.join(host);
    std::fs::create_dir_all(&d).expect("certs.d");
    std::fs::copy(pki.path("ca.crt"), d.join("ca.crt")).expect("ca.crt");
    if client {
        std::fs::copy(pki.path("client.crt"), d.join("client.cert")).expect("client.cert");
        std::fs::copy(pki.path("client.key"), d.join("client.key")).expect("client.key");
    }
    d
}

/// Removes a directory made under /etc when dropped.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl_available(test: &str) -> bool {
    if have("openssl", "version") {
        return true;
    }
    let msg = "openssl missing (apt-get install openssl; .ci/ensure-test-tools does)";
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED {test}: {msg}");
    false
}

#[test]
fn tls_registry_trusted_through_certs_d_and_rejected_without() {
    let test = "tls_registry_trusted_through_certs_d_and_rejected_without";
    if !tools_available(test) || !openssl_available(test) {
        return;
    }
    let pki = Pki::new();
    let reg = Registry::start_with(&Auth::Htpasswd, Some(&pki.server(false)));
    let host = reg.host();
    let repo = format!("{PREFIX}/{}-tls", std::process::id());
    let p = Pusher::with_ca(&reg, &repo, Some(&pki.ca_pem()));
    let tar = tar_of(&[Item::File("srv.bin", noise(50_000, 31), 0o644)]);
    let gz = gzip(&tar);
    let layer = p.blob("application/vnd.oci.image.layer.v1.tar+gzip", &gz);
    p.manifest(
        "v1",
        OCI_MANIFEST,
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": p.config(OCI_CONFIG, "amd64", None, &[sha256(&tar)]),
            "layers": [layer]}),
    );
    let image = format!("docker://{host}/{repo}:v1");
    let ok = |env: &Env, how: &str| {
        let out = env
            .layerscope()
            .args([&image, "--json", "-"])
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{how}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let img = json_of(&out.stdout)["images"][0].clone();
        assert_eq!(img["totals"]["size_bytes"].as_u64(), Some(50_000), "{how}");
        assert_eq!(
            img["totals"]["pull_size_bytes"].as_u64(),
            Some(gz.len() as u64),
            "{how}"
        );
    };

    // Nothing trusts the CA: refused, and not retried in plain HTTP.
    let env = Env::new();
    env.store_credentials(&host);
    let e = env.fails(&[&image, "--json", "-"]);
    assert!(
        e.contains("TLS certificate this machine does not trust")
            && e.contains(&format!("/etc/docker/certs.d/{host}/ca.crt")),
        "{e}"
    );
    assert!(!e.contains(PASSWORD));
    // --insecure: the certificate is not checked, the TLS stays.
    let report = env.report(&[&image, "--insecure", "--json", "-"]);
    let img = &report["images"][0];
    assert_eq!(img["totals"]["size_bytes"].as_u64(), Some(50_000));

    // podman's per-user certs.d.
    certs_d(
        &env.dir.path().join(".config/containers/certs.d"),
        &host,
        &pki,
        false,
    );
    ok(&env, "~/.config/containers/certs.d");

    // The system-wide ones, where the tests may write them.
    if !rustix::process::geteuid().is_root() {
        eprintln!("{test}: not root, /etc/docker/certs.d and /etc/containers/certs.d not tried");
        return;
    }
    for system in ["/etc/docker/certs.d", "/etc/containers/certs.d"] {
        let _guard = RemoveDir(certs_d(Path::new(system), &host, &pki, false));
        let fresh = Env::new();
        fresh.store_credentials(&host);
        ok(&fresh, system);
    }
}

#[test]
fn a_registry_that_wants_a_client_certificate_says_so() {
    let test = "a_registry_that_wants_a_client_certificate_says_so";
    if !tools_available(test) || !openssl_available(test) {
        return;
    }
    let pki = Pki::new();
    let reg = Registry::start_with(&Auth::None, Some(&pki.server(true)));
    let host = reg.host();
    let env = Env::new();
    let dir = certs_d(
        &env.dir.path().join(".config/containers/certs.d"),
        &host,
        &pki,
        true,
    );
    let e = env.fails(&[&format!("docker://{host}/{PREFIX}/any:v1"), "--json", "-"]);
    assert!(
        e.contains("asks for a TLS client certificate, which layerscope cannot present")
            && e.contains(&format!(
                "{} is not used",
                dir.join("client.cert").display()
            )),
        "{e}"
    );
}

/// This machine's address on its default route (no packet is sent), if it
/// has one that is not loopback.
fn outward_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.255:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn plain_http_to_another_host_needs_insecure() {
    let test = "plain_http_to_another_host_needs_insecure";
    if !tools_available(test) || !engine_available(test) {
        return;
    }
    let Some(ip) = outward_ip() else {
        eprintln!("SKIPPED {test}: no address other than loopback");
        return;
    };
    // Pushed through loopback (which the engine trusts), read through the
    // same registry's other address, where plain HTTP is not trusted.
    let reg = Registry::start_on("0.0.0.0", &Auth::None, None);
    let env = Env::new();
    let repo = format!("{PREFIX}/{}-insecure", std::process::id());
    let local = format!("{}/{repo}:v1", reg.host());
    let mut clean = Cleanup::new();
    clean.add(&local);
    build(
        &local,
        "FROM scratch\nCOPY a.bin /a.bin\n",
        vec![Item::File("a.bin", noise(50_000, 3), 0o644)],
    );
    push(&env, &local);
    let (size, _, _) = inspect_size(&local);
    let remote = format!("docker://{ip}:{}/{repo}:v1", reg.port);
    let err = env.fails(&[&remote]);
    assert!(err.contains("--insecure"), "{err}");
    let report = env.report(&[&remote, "--insecure", "--json", "-"]);
    assert_eq!(
        report["images"][0]["totals"]["size_bytes"].as_u64(),
        Some(size)
    );
}
